"""Shared building blocks of the three pipeline scripts.

One place for: loading the SageMaker SDK, the AWS sessions of one command, container images,
processors with the account's network and encryption settings, retry policies, S3 locations and
uploads, upsert and data upload, and the command line every pipeline script exposes.

Nothing here imports the SageMaker SDK at module level: it creates boto3 clients when it is
imported, so the command line is parsed (``--help`` works with no AWS configuration at all) and
the region is known before :func:`load_sdk` imports it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import os
import sys
import tarfile
import uuid
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import boto3
import botocore.session

from steplib.schema import SchemaError
from steplib.schema import load_schema as load_dataset_schema

from pipeline_scripts import console
from pipeline_scripts.config import PROJECT_ROOT, SHARDED_ROLES, ConfigError, PipelineConfig, load_pipeline_config
from pipeline_scripts.contracts import PIPELINES

if TYPE_CHECKING:
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline
    from sagemaker.mlops.workflow.retry import RetryPolicy

log = logging.getLogger("pipeline_scripts")

SCRIPTS_DIR = PROJECT_ROOT / "scripts"
DATA_DIR = PROJECT_ROOT / "data"
SCHEMA_FILE = SCRIPTS_DIR / "dataset_schema.json"
TAGS_FILE = PROJECT_ROOT / "tags.json"
PROCESSING = "/opt/ml/processing"
SDK_CONFIG_FILE = Path(__file__).with_name("sagemaker_config.yaml")
SDK_CONFIG_ENV = "SAGEMAKER_USER_CONFIG_OVERRIDE"


class PipelineBuildError(RuntimeError):
    """The pipeline cannot be built from the current state of the account."""


class NoApprovedModelError(PipelineBuildError):
    """The inference pipeline needs an Approved model version and the group has none yet."""


class AwsCallBlocked(PipelineBuildError):
    """A call to AWS while only writing the definition (``--definition-out``)."""


EXIT_CONFIG_ERROR = 2
EXIT_NO_APPROVED_MODEL = 3  # CI tolerates it on a first deploy: approving a version triggers a redeploy


# --- the SDK and the sessions of one command ------------------------------------------------

def load_sdk(region: str) -> None:
    """Prepare this process for the SageMaker SDK, then import it. Idempotent; explicit, so that
    importing a pipeline script changes nothing.

    * The SDK reads its defaults file from SAGEMAKER_USER_CONFIG_OVERRIDE whenever it builds a
      Session of its own; ours opts out of telemetry (builds never phone home from CI or offline).
      A file the caller already points at is kept.
    * The SDK needs a region in the environment, not only in the session it is given: importing it
      creates boto3 clients (``sagemaker/ai_registry/air_hub.py``) and every ProcessingStep builds
      a throwaway ``LocalSession`` from ``boto3.Session()``; without a region both raise. The
      command's region (the tfvars' aws_region) fills in when the environment names none.
    * The SDK checks its whole config JSON Schema (check_schema, ~0.4 s) at every config lookup,
      dozens per build; :func:`_check_sdk_config_once` keeps the check, once per distinct config.
    """
    os.environ.setdefault(SDK_CONFIG_ENV, str(SDK_CONFIG_FILE))
    if botocore.session.get_session().get_config_variable("region") is None:
        os.environ["AWS_DEFAULT_REGION"] = region
    if SDK_CHECKS_CONFIG_ONCE is None:
        _check_sdk_config_once()
    import sagemaker.core.workflow.pipeline_context  # noqa: F401  (the import that needs a region)


SDK_CHECKS_CONFIG_ONCE: Callable[..., None] | None = None


def _check_sdk_config_once() -> None:
    """Point the SDK's two config validators at one that checks each distinct config once.

    The SDK (3.27) calls ``jsonschema.validate(config, SCHEMA)`` at every lookup; nearly all of its
    cost is re-checking the 16 kB schema itself against the JSON Schema meta-schema. Validating each
    config once per process gives the same verdicts (a config that fails keeps failing: failures are
    never remembered), 76 schema checks per training build become 1 (tests/test_sdk_sessions.py)."""
    global SDK_CHECKS_CONFIG_ONCE
    import jsonschema
    from sagemaker.core.config import config as sdk_config
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    validator = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    validator.check_schema(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    checker = validator(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    valid: set[str] = set()

    def validate_sagemaker_config(sagemaker_config: dict | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in valid:
            error = jsonschema.exceptions.best_match(checker.iter_errors(sagemaker_config))
            if error is not None:
                raise error
            valid.add(key)

    sdk_config.validate_sagemaker_config = validate_sagemaker_config
    SageMakerConfig.validate_sagemaker_config = staticmethod(validate_sagemaker_config)
    SDK_CHECKS_CONFIG_ONCE = validate_sagemaker_config


@lru_cache(maxsize=None)
def sdk_defaults(path: str) -> dict:
    """The SDK defaults (the file at ``path`` merged over the admin file), read and validated once
    per process and handed to every session, instead of each SDK Session reading the files again."""
    from sagemaker.core.config.config import load_sagemaker_config

    return load_sagemaker_config()


class Sessions:
    """The AWS sessions of one command: one boto3 Session, whose clients are created once and
    shared, and one PipelineSession built on it. With ``definition_only`` (``--definition-out``)
    nothing reaches AWS: every API call raises :class:`AwsCallBlocked` before it is signed,
    uploads return the URI they would write to, and the bucket is not looked up."""

    def __init__(self, region: str, definition_only: bool = False, boto: boto3.Session | None = None):
        self.region = region
        self.definition_only = definition_only
        self.boto = boto or boto3.Session(region_name=region)
        self.pipeline: PipelineSession | None = None
        self.blocked_calls: list[str] = []
        self._clients: dict[str, Any] = {}
        if definition_only:
            # before-call runs ahead of credential lookup and signing: no credentials, no IMDS probe
            self.boto.events.register("before-call", self._block)
            # the SDK checks a role with iam:SimulatePrincipalPolicy; that is for a deploy, not here
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"

    def _block(self, model: Any, **_: Any) -> None:
        call = f"{model.service_model.service_name}.{model.name}"
        self.blocked_calls.append(call)
        raise AwsCallBlocked(f"{call}: --definition-out builds the definition without calling AWS")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.boto.client(service)
        return self._clients[service]

    def open_pipeline_session(self, bucket: str, prefix: str) -> PipelineSession:
        load_sdk(self.region)
        cls = _definition_only_session_class() if self.definition_only else _pipeline_session_class()
        self.pipeline = cls(boto_session=self.boto, sagemaker_client=self.client("sagemaker"),
                            default_bucket=bucket, default_bucket_prefix=prefix,
                            sagemaker_config=sdk_defaults(os.environ[SDK_CONFIG_ENV]))
        self.pipeline.template_sessions = self  # the builders get the PipelineSession only
        return self.pipeline

    def put_object(self, uri: str, body: bytes, encryption: dict[str, str]) -> str:
        if not self.definition_only:
            bucket, key = uri[len("s3://"):].split("/", 1)
            self.client("s3").put_object(Bucket=bucket, Key=key, Body=body, **encryption)
        return uri


def _pipeline_session_class() -> type:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession


@lru_cache(maxsize=None)
def _definition_only_session_class() -> type:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class DefinitionOnlySession(PipelineSession):
        """Records step arguments like a PipelineSession, with the S3 side planned, not performed:
        the same URIs as an upsert, no bucket lookup, no upload."""

        def default_bucket(self) -> str:
            return self._default_bucket_name_override

        def upload_data(self, path: str, bucket: str | None = None, key_prefix: str = "data",
                        callback: Any = None, extra_args: Any = None) -> str:
            bucket, key_prefix = self.determine_bucket_and_prefix(
                bucket=bucket, key_prefix=key_prefix, sagemaker_session=self)
            uri = f"s3://{bucket}/{key_prefix}"
            return uri if os.path.isdir(path) else f"{uri}/{os.path.basename(path)}"

        def upload_string_as_file_body(self, body: str, bucket: str, key: str, kms_key: str | None = None) -> str:
            return f"s3://{bucket}/{key}"

    return DefinitionOnlySession


class _CommandSessions:
    """While open (a ``with``), every build shares one boto3 Session per region and its clients."""

    def __init__(self) -> None:
        self.by_region: dict[str, Sessions] | None = None
        self._depth = 0

    def __enter__(self) -> None:
        self._depth += 1
        if self.by_region is None:
            self.by_region = {}

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.by_region = None


one_boto3_session_per_command = _CommandSessions()
"""``with common.one_boto3_session_per_command:`` builds run inside share one boto3 Session per region and
its clients: a command that runs several builds in one process (the offline runtime's demo, upserts and
approval deploys) decodes botocore's service models once instead of once per build. Each build still gets
its own PipelineSession (its recorded steps and uploads are its own); ``--definition-out`` builds never
share (their session refuses every AWS call). Open it where the AWS endpoint is settled (the runtime: inside
its moto context) and close it with that context: the sessions belong to it."""


def open_sessions(cfg: PipelineConfig, definition_only: bool = False) -> Sessions:
    shared = one_boto3_session_per_command.by_region
    if shared is None or definition_only:
        sessions = Sessions(region=cfg.env.region, definition_only=definition_only)
    else:
        first = shared.get(cfg.env.region) or shared.setdefault(cfg.env.region, Sessions(region=cfg.env.region))
        sessions = Sessions(region=cfg.env.region, boto=first.boto)
        sessions._clients = first._clients
    sessions.open_pipeline_session(cfg.env.bucket_name, cfg.env.bucket_prefix)
    return sessions


def make_session(cfg: PipelineConfig) -> PipelineSession:
    """A PipelineSession for one build (SDK calls record step arguments instead of starting jobs)."""
    return open_sessions(cfg).pipeline


def sessions_of(session: PipelineSession | None, region: str | None = None) -> Sessions:
    """The Sessions a PipelineSession was opened from; a PipelineSession made elsewhere lends its
    boto3 session; no session at all gives a new one in ``region``."""
    if session is None:
        return Sessions(region=region or boto3.Session().region_name)
    found = getattr(session, "template_sessions", None)
    if found is None:
        found = Sessions(region=session.boto_region_name, boto=session.boto_session)
        found.pipeline = session
        session.template_sessions = found
    return found


# --- images, network, encryption, retries --------------------------------------------------

def image_uri(cfg: PipelineConfig, instance_type: str) -> str:
    framework = cfg.settings["framework"]
    try:
        return _image_uri(framework["name"], cfg.env.region, framework["version"], framework.get("py_version", "py3"),
                          instance_type)
    except ValueError as exc:  # the SDK's own words name the versions it knows
        raise ConfigError(f"{cfg.settings_source}: key 'framework': no SageMaker {framework['name']} image for "
                          f"version {framework['version']!r} in {cfg.env.region}: {exc}") from None


@lru_cache(maxsize=None)
def _image_uri(framework: str, region: str, version: str, py_version: str, instance_type: str) -> str:
    """The SDK's answer, once per process for the same arguments: every call reads botocore's endpoints
    file again (~0.1 s) to name the region's partition, a dozen times per build. An unknown version
    raises, and a failure is not cached (lru_cache keeps only returned values)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(framework, region=region, version=version, py_version=py_version,
                               instance_type=instance_type)


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


def instance_count(cfg: PipelineConfig, step_role: str | None) -> int:
    """Instances of one processing step. A step that shards its input (config.SHARDED_ROLES) gets
    ``processing.instance_counts.<role>`` (the step roles of contracts.json), else
    ``processing.instance_count``; every other step reads its whole input and runs on one instance."""
    if step_role not in SHARDED_ROLES:
        return 1
    settings = cfg.settings["processing"]
    return int(settings.get("instance_counts", {}).get(step_role, settings["instance_count"]))


# --- how the step library reaches the jobs ---------------------------------------------------------
# Every step script imports ``steplib`` (scripts/steplib). Training jobs get it with their code
# (upload_training_code packs scripts/), the model gets it in model.tar.gz (train.py copies it to code/).
# Processing jobs get it as one more ProcessingInput: a single steplib.zip, mounted under STEPLIB_MOUNT and put
# on PYTHONPATH (Python imports packages from a zip on its path: zipimport, no extraction, no pip): the stock
# scikit-learn image runs the script with plain python3, and each job fetches one object instead of one per
# module. The zip is reproducible and its key content-addressed, so the pipeline definition stays the same from
# build to build. (SDK 3.27's FrameworkProcessor would ship it too, but it re-uploads sourcedir.tar.gz under a
# new timestamped job name at every build and wraps the script in a generated bash runproc.sh.)
STEPLIB_DIR = SCRIPTS_DIR / "steplib"
STEPLIB_MOUNT = f"{PROCESSING}/input/steplib"
STEPLIB_ZIP = "steplib.zip"
STEPLIB_PATH = f"{STEPLIB_MOUNT}/{STEPLIB_ZIP}"  # the jobs' PYTHONPATH


def steplib_files() -> list[Path]:
    return sorted(p for p in STEPLIB_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix in (".py", ".json"))


def steplib_contents() -> dict[str, bytes]:
    """The step library as the jobs import it: archive name (steplib/...) -> bytes, sorted."""
    return {f"steplib/{p.relative_to(STEPLIB_DIR).as_posix()}": p.read_bytes() for p in steplib_files()}


def steplib_zip(contents: dict[str, bytes]) -> bytes:
    """``contents`` as the entries of a zip, in order, with fixed timestamps and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def upload_steplib(cfg: PipelineConfig, session: PipelineSession) -> str:
    """Upload steplib.zip (content-addressed key), once per build session; the S3 prefix the jobs mount."""
    uploaded = getattr(session, "_steplib_uri", None)
    if uploaded:
        return uploaded
    contents = steplib_contents()
    # the key digests the files, not the zip's bytes (those depend on the machine's zlib); the same digest as
    # when the files were uploaded one by one (name without "steplib/", NUL, bytes)
    digest = hashlib.sha256(b"".join(name.removeprefix("steplib/").encode() + b"\0" + data
                                     for name, data in contents.items())).hexdigest()[:16]
    folder = cfg.env.s3_uri("code", "steplib", digest)
    sessions_of(session, cfg.env.region).put_object(f"{folder}/{STEPLIB_ZIP}", steplib_zip(contents),
                                                    encryption_args(cfg))
    session._steplib_uri = folder  # type: ignore[attr-defined]
    return folder


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


def processor(cfg: PipelineConfig, session: PipelineSession, base_job_name: str,
              step_role: str | None = None) -> ScriptProcessor:
    settings = cfg.settings["processing"]
    return _step_script_processor_class()(
        steplib_uri=upload_steplib(cfg, session),
        role=cfg.env.role_arn,
        image_uri=image_uri(cfg, settings["instance_type"]),
        command=["python3"],
        instance_type=settings["instance_type"],
        instance_count=instance_count(cfg, step_role),
        volume_size_in_gb=settings.get("volume_size_gb", 30),
        volume_kms_key=kms_key(cfg),
        output_kms_key=kms_key(cfg),
        max_runtime_in_seconds=settings.get("max_runtime_seconds"),
        base_job_name=base_job_name,
        sagemaker_session=session,
        network_config=network_config(cfg),
    )


def sharded_data_quality(cfg: PipelineConfig, session: PipelineSession, base_job_name: str, step_role: str,
                         shard_step: str, merge_step: str, sharded: Any, inputs: list, output: tuple[str, Any],
                         command: str, merge_arguments: list[str] = ()) -> list[Any]:
    """A data-quality baseline or check over ``instance_count(step_role)`` instances (owner: scale helper).

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


def check_job_config(cfg: PipelineConfig, session: PipelineSession, step_role: str) -> Any:
    """The job settings of a Model Monitor QualityCheckStep: the same instances, keys and network
    as the processing steps."""
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig

    settings = cfg.settings["processing"]
    return CheckJobConfig(
        role=cfg.env.role_arn, instance_count=instance_count(cfg, step_role),
        instance_type=settings["instance_type"], volume_size_in_gb=settings.get("volume_size_gb", 30),
        volume_kms_key=kms_key(cfg), output_kms_key=kms_key(cfg),
        max_runtime_in_seconds=settings.get("max_runtime_seconds"), sagemaker_session=session,
        network_config=_check_job_network_config(cfg))


def _check_job_network_config(cfg: PipelineConfig) -> Any:
    """network_config(cfg) in the form a check job needs: the SDK copies the object itself into the
    request (sagemaker/mlops/workflow/_check_job_request.py, SDK 3.27), where CreateProcessingJob
    wants the NetworkConfig dict; this one is both."""
    from sagemaker.core.network import NetworkConfig

    class RequestNetworkConfig(dict, NetworkConfig):
        def __init__(self, *args: Any, **kwargs: Any):  # dict's signature: the SDK rebuilds dicts by type
            dict.__init__(self, *args, **kwargs)
            vpc = self.get("VpcConfig", {})
            NetworkConfig.__init__(self, enable_network_isolation=self.get("EnableNetworkIsolation", False),
                                   security_group_ids=vpc.get("SecurityGroupIds"), subnets=vpc.get("Subnets"),
                                   encrypt_inter_container_traffic=self.get("EnableInterContainerTrafficEncryption"))

    return RequestNetworkConfig(network_config(cfg)._to_request_dict())


# --- processing inputs and outputs --------------------------------------------------------

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


def script(name: str) -> str:
    path = SCRIPTS_DIR / name
    if not path.is_file():
        raise ConfigError(f"{path}: step script not found")
    return str(path)


# --- uploads: under the project prefix, with the project key -------------------------------

def encryption_args(cfg: PipelineConfig) -> dict[str, str]:
    """Server-side encryption for what the scripts upload: the project key when set, else SSE-S3."""
    if cfg.env.kms_key:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": cfg.env.kms_key}
    return {"ServerSideEncryption": "AES256"}


def upload_schema(cfg: PipelineConfig, session: PipelineSession | None = None) -> str:
    """Upload the data set schema once per content (content-addressed key) and return its S3 URI."""
    try:  # validated here, at upsert, not first inside a job (steplib.schema is the one reader)
        load_dataset_schema(str(SCHEMA_FILE))
    except SchemaError as exc:
        raise ConfigError(str(exc)) from exc
    body = SCHEMA_FILE.read_bytes()
    folder = cfg.env.s3_uri("code", "schema", hashlib.sha256(body).hexdigest()[:16])
    sessions_of(session, cfg.env.region).put_object(f"{folder}/{SCHEMA_FILE.name}", body, encryption_args(cfg))
    return folder


def source_archive(directory: Path) -> bytes:
    """``directory`` as a reproducible sourcedir.tar.gz: sorted entries, no timestamps or owners,
    no caches, so the same code gives the same bytes (and the same content-addressed key)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if path.is_dir() or any(part.startswith(".") or part == "__pycache__" for part in relative.parts) \
                    or path.suffix == ".pyc":
                continue
            info = tarfile.TarInfo(str(relative))
            data = path.read_bytes()
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_training_code(cfg: PipelineConfig, session: PipelineSession, directory: Path = SCRIPTS_DIR) -> str:
    """The training code as one content-addressed sourcedir.tar.gz under the project prefix,
    encrypted with the project key (the tuning job's sagemaker_submit_directory)."""
    body = source_archive(directory)
    uri = cfg.env.s3_uri("code", "training", hashlib.sha256(body).hexdigest()[:16], "sourcedir.tar.gz")
    return sessions_of(session).put_object(uri, body, encryption_args(cfg))


def tags() -> list[dict[str, str]]:
    """tags.json, applied to pipelines here and to every Terraform resource via default_tags."""
    if not TAGS_FILE.is_file():
        return []
    data = json.loads(TAGS_FILE.read_text())
    return [{"Key": k, "Value": str(v)} for k, v in sorted(data.items())]


# --- upsert and data upload --------------------------------------------------------------

def upsert(pipeline: Pipeline, cfg: PipelineConfig, description: str, sessions: Sessions | None = None) -> str:
    """Create or update the pipeline; delete and recreate only when recreate_pipelines is set."""
    sessions = sessions or sessions_of(pipeline.sagemaker_session)
    client = sessions.client("sagemaker")
    ensure_model_package_group(cfg, sessions)  # where the training pipelines register their versions
    if cfg.env.recreate_pipelines:
        try:
            client.delete_pipeline(PipelineName=pipeline.name, ClientRequestToken=str(uuid.uuid4()))
            log.info("deleted pipeline %s (recreate_pipelines = true)", pipeline.name)
        except client.exceptions.ResourceNotFound:
            pass
    response = pipeline.upsert(role_arn=cfg.env.role_arn, description=description, tags=tags())
    return response["PipelineArn"]


def ensure_model_package_group(cfg: PipelineConfig, sessions: Sessions | None = None) -> None:
    client = (sessions or Sessions(region=cfg.env.region)).client("sagemaker")
    name = cfg.env.model_package_group_name
    try:
        client.describe_model_package_group(ModelPackageGroupName=name)
        return
    except client.exceptions.ClientError as exc:
        # SageMaker answers a missing group with ValidationException; anything
        # else (access denied, throttling) is a real problem and must not be mistaken for "create it"
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
    client.create_model_package_group(ModelPackageGroupName=name, Tags=tags(),
                                      ModelPackageGroupDescription="Model versions registered by the training pipelines")


def upload_data(cfg: PipelineConfig, data_dir: Path = DATA_DIR, sessions: Sessions | None = None) -> list[str]:
    """Upload the data files the tfvars flags ask for. Ground truth goes before the inference
    data, because the inference data's arrival starts the pipeline that looks for it."""
    plan: list[tuple[Path, str]] = []
    if cfg.env.upload_training_data:
        plan.append((data_dir / "training-data.csv", f"{cfg.env.training_data_uri}/training-data.csv"))
    if cfg.env.upload_inference_data:
        plan.append((data_dir / "ground-truth.csv", f"{cfg.env.ground_truth_uri}/ground-truth.csv"))
        plan.append((data_dir / "inference-data.csv", f"{cfg.env.inference_input_uri}/inference-data.csv"))
    s3 = (sessions or Sessions(region=cfg.env.region)).client("s3")
    uploaded = []
    for path, uri in plan:
        if not path.is_file():
            raise ConfigError(f"{path}: data file not found (upload requested by the tfvars flags)")
        bucket, key = uri[len("s3://"):].split("/", 1)
        s3.upload_file(str(path), bucket, key, ExtraArgs=encryption_args(cfg))
        uploaded.append(uri)
        log.info("uploaded %s to %s", path, uri)
    return uploaded


# --- command line ------------------------------------------------------------------------

Builder = Callable[[PipelineConfig, "PipelineSession"], "Pipeline"]


def build_parser(kind: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"Build and upsert the {kind} SageMaker pipeline.")
    parser.add_argument("--env-file", default=str(PROJECT_ROOT / "env_files" / "dev_env.tfvars"),
                        help="Terraform variables file shared with Terraform (default: %(default)s)")
    parser.add_argument("--config", default=None,
                        help=f"pipeline settings YAML (default: pipeline_scripts/{kind}_pipeline.yaml)")
    parser.add_argument("--definition-out", default=None,
                        help="write the pipeline definition JSON to this file instead of upserting; "
                             "calls no AWS API (no credentials needed)")
    parser.add_argument("--no-upload", action="store_true", help="skip the data upload the tfvars flags ask for")
    if PIPELINES[kind].needs_approved_model:
        add_model_package_options(parser)
    return parser


def add_model_package_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-package-arn", default=None,
                        help="inference: build around this approved model package (the ARN the approval "
                             "deploy passes) instead of the group's latest Approved version")
    parser.add_argument("--model-package-description", default=None, metavar="FILE",
                        help="inference: a DescribeModelPackage response saved as JSON "
                             "(`aws sagemaker describe-model-package`), for --definition-out without AWS")


def run_cli(kind: str, build: Builder, description: str, argv: list[str] | None = None) -> int:
    """The command line of every pipeline script: build, then write the definition or upsert.
    The SDK is loaded after the arguments are parsed (``--help`` needs no region or credentials)."""
    args = build_parser(kind).parse_args(argv)
    console.configure_logging()
    try:
        cfg = load_pipeline_config(kind, args.env_file, args.config)
        cfg.extra.update(model_package_arn=getattr(args, "model_package_arn", None),
                         model_package_description=getattr(args, "model_package_description", None))
        definition_only = bool(args.definition_out)
        sessions = open_sessions(cfg, definition_only=definition_only)
        pipeline = build(cfg, sessions.pipeline)
        if definition_only:  # (an upsert compiles the definition itself: once per command, not twice)
            definition = pipeline.definition()
            Path(args.definition_out).write_text(json.dumps(json.loads(definition), indent=2) + "\n")
            print(f"wrote {args.definition_out}")
            return 0
        arn = upsert(pipeline, cfg, description, sessions)
        print(f"upserted {arn}")
        if not args.no_upload:
            upload_data(cfg, sessions=sessions)
        return 0
    except NoApprovedModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_APPROVED_MODEL
    except (ConfigError, PipelineBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
