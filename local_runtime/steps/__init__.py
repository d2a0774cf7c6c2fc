"""Step handlers, one per SageMaker step type (see base.StepHandler). HANDLERS maps a definition's step
"Type" to its handler; Condition and Fail steps are control flow the executor evaluates itself."""
from __future__ import annotations

from .job import JobStepHandler
from .processing import run_processing_job
from .quality import QualityCheckHandler
from .registry import CreateModelHandler, RegisterModelHandler
from .training import run_training_job
from .transform import run_transform_job
from .tuning import TuningHandler


def default_handlers() -> dict:
    handlers = {}
    for handler in (JobStepHandler("Processing", "processing", run_processing_job),
                    JobStepHandler("Training", "training", run_training_job),
                    JobStepHandler("Transform", "transform", run_transform_job),
                    TuningHandler(), RegisterModelHandler(), CreateModelHandler(), QualityCheckHandler()):
        for step_type in handler.step_types:
            handlers[step_type] = handler
    return handlers


HANDLERS = default_handlers()
