"""Step executors, one module per SageMaker job kind. Each exposes run(ctx) -> (properties, metadata)."""
