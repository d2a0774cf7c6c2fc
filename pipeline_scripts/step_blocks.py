"""The building blocks of the pipelines' steps: images, network and encryption, retry policies, instance
counts, processors that mount the step library, sharded data-quality steps, and processing inputs and outputs.

Builders compose steps from these; the SDK's quirks are in sdk_adapter, the uploads in shipping. The SDK is
imported inside the functions (it needs a region at import: sdk_adapter.load_sdk).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pipeline_scripts import sdk_adapter
from pipeline_scripts.config import PipelineConfig
from pipeline_scripts.errors import ConfigError
from pipeline_scripts.settings import PipelineSettings
from pipeline_scripts.shipping import PROCESSING, STEPLIB_MOUNT, STEPLIB_PATH, script, upload_steplib

if TYPE_CHECKING:
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.retry import RetryPolicy

# Any pipeline's configuration: the blocks read what every settings class has (framework, processing).
Config = PipelineConfig[PipelineSettings]


def image_uri(cfg: Config, instance_type: str) -> str:
    framework = cfg.settings.framework
    try:
        return sdk_adapter.image_uri(framework.name, cfg.env.region, framework.version, framework.py_version,
                                     instance_type)
    except ValueError as exc:  # the SDK's own words name the versions it knows
        raise ConfigError(f"{cfg.settings_source}: key 'framework': no SageMaker {framework.name} image for "
                          f"version {framework.version!r} in {cfg.env.region}: {exc}") from None


def kms_key(cfg: PipelineConfig) -> str | None:
    return cfg.env.kms_key or None


def vpc_config(cfg: PipelineConfig) -> dict[str, list[str]] | None:
    """The account's private subnet and security group (API shape VpcConfig), or None without one."""
    if not cfg.env.subnet_id:
        return None
    return {"Subnets": [cfg.env.subnet_id], "SecurityGroupIds": [cfg.env.sg_id] if cfg.env.sg_id else []}


def model_network(cfg: PipelineConfig) -> Any:
    """The VpcConfig of CreateModel (the batch transform containers run in the private subnet)."""
    from sagemaker.serve.configs import Network

    vpc = vpc_config(cfg)
    return Network(vpc_config=vpc) if vpc else None


def network_config(cfg: PipelineConfig) -> NetworkConfig:
    """Jobs run in the account's private subnet when one is configured; traffic between
    containers is encrypted either way."""
    from sagemaker.core.network import NetworkConfig

    vpc = vpc_config(cfg)
    if vpc is None:
        return NetworkConfig(encrypt_inter_container_traffic=True)
    return NetworkConfig(subnets=vpc["Subnets"], security_group_ids=vpc["SecurityGroupIds"] or None,
                         encrypt_inter_container_traffic=True)


# Retried by SageMaker Pipelines: throttling and faults of the services a step calls, and job
# failures a new job can fix (internal error, no capacity, a resource quota momentarily full).
# https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html. Not supported on
# QualityCheck, Condition and Fail steps; tuning jobs retry internal errors themselves.
SERVICE_RETRY = {"interval_seconds": 5, "backoff_rate": 2.0, "max_attempts": 5}
JOB_RETRY = {"interval_seconds": 60, "backoff_rate": 2.0, "max_attempts": 4}


def retry_policies(job: bool = True) -> list[RetryPolicy]:
    """The RetryPolicies of a step: throttling and service faults everywhere; for steps that run a
    job (processing, training, tuning, transform) also internal, capacity and quota errors. Model
    steps (CreateModel, RegisterModel) start no job and take step-level policies only."""
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    service = StepRetryPolicy(exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                              **SERVICE_RETRY)
    if not job:
        return [service]
    return [
        service,
        SageMakerJobStepRetryPolicy(exception_types=[SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                                                     SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                                                     SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT],
                                    **JOB_RETRY),
    ]



@lru_cache(maxsize=None)
def _step_script_processor_class() -> type:
    from sagemaker.core.processing import ScriptProcessor

    class StepScriptProcessor(ScriptProcessor):
        """A ScriptProcessor whose jobs also mount the step library (see above)."""

        def __init__(self, *args: Any, steplib_uri: str, **kwargs: Any) -> None:
            kwargs["env"] = {**(kwargs.get("env") or {}), "PYTHONPATH": STEPLIB_PATH}
            super().__init__(*args, **kwargs)
            self.steplib_uri = steplib_uri

        def run(self, *args: Any, inputs: list | None = None, **kwargs: Any) -> Any:
            lib = processing_input("steplib", self.steplib_uri, STEPLIB_MOUNT)
            return super().run(*args, inputs=[*(inputs or []), lib], **kwargs)

    return StepScriptProcessor


def processor(cfg: Config, session: PipelineSession, base_job_name: str,
              step_role: str | None = None) -> ScriptProcessor:
    processing = cfg.settings.processing
    return _step_script_processor_class()(
        steplib_uri=upload_steplib(cfg, session),
        role=cfg.env.role_arn,
        image_uri=image_uri(cfg, processing.instance_type),
        command=["python3"],
        instance_type=processing.instance_type,
        instance_count=processing.instances(step_role),
        volume_size_in_gb=processing.volume_size_gb,
        volume_kms_key=kms_key(cfg),
        output_kms_key=kms_key(cfg),
        max_runtime_in_seconds=processing.max_runtime_seconds,
        base_job_name=base_job_name,
        sagemaker_session=session,
        network_config=network_config(cfg),
    )


def sharded_data_quality(cfg: Config, session: PipelineSession, base_job_name: str, step_role: str,
                         shard_step: str, merge_step: str, sharded: Any, inputs: list, output: tuple[str, Any],
                         command: str, merge_arguments: list[str] = ()) -> list[Any]:
    """A data-quality baseline or check over ``processing.instances(step_role)`` instances (owner: scale helper).

    ``shard_step``: every instance reads its share of the data files (``sharded``, ShardedByS3Key) and writes
    its mergeable profile, partial-<host>.json (``--partial``: also when one instance runs it, as offline).
    ``merge_step`` (one instance, the name the rest of the pipeline refers to) merges the partials and
    writes the usual files to ``output`` = (output name, S3 destination): the same statistics as one pass.
    ``merge_arguments`` go to the merge only (the baseline's drift settings: constraints.json is written there).
    """
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ProcessingStep

    name, destination = output
    partials_uri = Join(on="/", values=[destination, "partials"])
    shards = ProcessingStep(name=shard_step, retry_policies=retry_policies(), step_args=processor(
        cfg, session, f"{base_job_name}-shards", step_role).run(
        code=script("data_quality.py"), inputs=[sharded, *inputs],
        outputs=[processing_output("partials", f"{PROCESSING}/output", partials_uri)],
        arguments=[command, "--partial"]))
    merger = processor(cfg, session, base_job_name, step_role)
    merger.instance_count = 1  # merging partials is a one-instance job
    merge = ProcessingStep(name=merge_step, retry_policies=retry_policies(), step_args=merger.run(
        code=script("data_quality.py"),
        inputs=[*inputs, processing_input("partials", output_of(shards, "partials"), f"{PROCESSING}/input/partials")],
        outputs=[processing_output(name, f"{PROCESSING}/output", destination)],
        arguments=[command, "--partials", f"{PROCESSING}/input/partials", *merge_arguments]))
    return [shards, merge]


def check_job_config(cfg: Config, session: PipelineSession, step_role: str) -> Any:
    """The job settings of a Model Monitor QualityCheckStep: the same instances, keys and network
    as the processing steps."""
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig

    processing = cfg.settings.processing
    return CheckJobConfig(
        role=cfg.env.role_arn, instance_count=processing.instances(step_role),
        instance_type=processing.instance_type, volume_size_in_gb=processing.volume_size_gb,
        volume_kms_key=kms_key(cfg), output_kms_key=kms_key(cfg),
        max_runtime_in_seconds=processing.max_runtime_seconds, sagemaker_session=session,
        network_config=sdk_adapter.check_job_network_config(network_config(cfg)))


def processing_input(name: str, source: Any, local_path: str, sharded: bool = False) -> ProcessingInput:
    """An S3 prefix copied to ``local_path``. ``sharded``: each instance of a multi-instance job
    gets its share of the objects (ShardedByS3Key) instead of all of them; the step's script
    then writes a partial result that a later step merges."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=source, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="ShardedByS3Key" if sharded else "FullyReplicated"))


def processing_output(name: str, local_path: str, destination: Any) -> ProcessingOutput:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
        s3_uri=destination, local_path=local_path, s3_upload_mode="EndOfJob"))


def artifact_uri(cfg: PipelineConfig, pipeline_name: str, step: str, *rest: str) -> Join:
    """s3://bucket/prefix/artifacts/<pipeline>/<execution id>/<step>/...: one folder per run."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[cfg.env.s3_uri("artifacts", pipeline_name),
                                ExecutionVariables.PIPELINE_EXECUTION_ID, step, *rest])


def output_of(step: Any, name: str) -> Any:
    """S3 URI of a processing step's named output (a property reference)."""
    return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri
