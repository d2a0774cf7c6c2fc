"""Offline runtime for the template's SageMaker pipelines.

Executes the pipeline definition JSON that pipeline_scripts/ upsert (SDK v3) step by step against moto,
with the EventBridge rules, Lambda targets and SNS notifications that the Terraform files declare.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
