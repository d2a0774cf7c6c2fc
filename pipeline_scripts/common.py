"""Shared building blocks of the three pipeline scripts.

One place for: SDK settings, sessions, container images, processors with the
account's network and encryption settings, S3 locations, upsert and data upload,
and the command line every pipeline script exposes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

# The SDK reads its defaults file when it is imported: point it at ours first
# (telemetry off, so builds never phone home from CI runners or offline).
os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(Path(__file__).with_name("sagemaker_config.yaml")))

import boto3  # noqa: E402
from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.network import NetworkConfig  # noqa: E402
from sagemaker.core.processing import ScriptProcessor  # noqa: E402
from sagemaker.core.shapes import (  # noqa: E402
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables  # noqa: E402
from sagemaker.core.workflow.functions import Join  # noqa: E402
from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.mlops.workflow import Pipeline  # noqa: E402
from steplib.schema import SchemaError  # noqa: E402
from steplib.schema import load_schema as load_dataset_schema  # noqa: E402

from pipeline_scripts import console  # noqa: E402
from pipeline_scripts.config import PROJECT_ROOT, ConfigError, PipelineConfig, load_pipeline_config  # noqa: E402

log = logging.getLogger("pipeline_scripts")

SCRIPTS_DIR = PROJECT_ROOT / "scripts"
DATA_DIR = PROJECT_ROOT / "data"
SCHEMA_FILE = SCRIPTS_DIR / "dataset_schema.json"
TAGS_FILE = PROJECT_ROOT / "tags.json"
PROCESSING = "/opt/ml/processing"


class PipelineBuildError(RuntimeError):
    """The pipeline cannot be built from the current state of the account."""


class NoApprovedModelError(PipelineBuildError):
    """The inference pipeline needs an Approved model version and the group has none yet."""


EXIT_CONFIG_ERROR = 2
EXIT_NO_APPROVED_MODEL = 3  # CI tolerates it on a first deploy: approving a version triggers a redeploy


# --- sessions, images, network ----------------------------------------------------------

def _memoized(validate: Callable[..., None]) -> Callable[..., None]:
    if getattr(validate, "validates_once", False):
        return validate
    validated: set[str] = set()

    def validate_once(sagemaker_config: dict | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in validated:
            validate(sagemaker_config)
            validated.add(key)

    validate_once.validates_once = True  # type: ignore[attr-defined]
    return validate_once


def _validate_sdk_defaults_once() -> None:
    """The SDK re-validates its whole defaults file (ours only opts out of telemetry) against a
    large JSON Schema on every config lookup: ~0.2 s each, ~80 per pipeline build, most of the
    build time. Validate each distinct config once; the check itself is unchanged."""
    from sagemaker.core.config import config as sdk_config
    from sagemaker.core.config.config_manager import SageMakerConfig

    sdk_config.validate_sagemaker_config = _memoized(sdk_config.validate_sagemaker_config)
    SageMakerConfig.validate_sagemaker_config = staticmethod(_memoized(SageMakerConfig.validate_sagemaker_config))


def make_session(cfg: PipelineConfig) -> PipelineSession:
    """A PipelineSession: SDK calls record step arguments instead of starting jobs."""
    _validate_sdk_defaults_once()
    boto_session = boto3.Session(region_name=cfg.env.region)
    return PipelineSession(boto_session=boto_session, default_bucket=cfg.env.bucket_name,
                           default_bucket_prefix=cfg.env.bucket_prefix)


def image_uri(cfg: PipelineConfig, instance_type: str) -> str:
    framework = cfg.settings["framework"]
    try:
        return image_uris.retrieve(framework["name"], region=cfg.env.region, version=framework["version"],
                                   py_version=framework.get("py_version", "py3"), instance_type=instance_type)
    except ValueError as exc:  # the SDK's own words name the versions it knows
        raise ConfigError(f"{cfg.settings_source}: key 'framework': no SageMaker {framework['name']} image for "
                          f"version {framework['version']!r} in {cfg.env.region}: {exc}") from None


def kms_key(cfg: PipelineConfig) -> str | None:
    return cfg.env.kms_key or None


def network_config(cfg: PipelineConfig) -> NetworkConfig | None:
    """Jobs run in the account's private subnet when one is configured; traffic between
    containers is encrypted either way."""
    if not cfg.env.subnet_id:
        return NetworkConfig(encrypt_inter_container_traffic=True)
    return NetworkConfig(subnets=[cfg.env.subnet_id],
                         security_group_ids=[cfg.env.sg_id] if cfg.env.sg_id else None,
                         encrypt_inter_container_traffic=True)


# --- how the step library reaches the jobs ---------------------------------------------------------
# Every step script imports ``steplib`` (scripts/steplib). Training jobs get it with their source_dir
# (scripts/, ModelTrainer's SourceCode), the model gets it in model.tar.gz (train.py copies it to code/).
# Processing jobs get it as one more ProcessingInput, mounted at STEPLIB_MOUNT and put on PYTHONPATH:
# the stock scikit-learn image runs the script with plain python3, nothing is pip-installed at job start,
# and the upload is content-addressed, so the pipeline definition stays the same from build to build.
# (SDK 3.27's FrameworkProcessor would ship it too, but it re-uploads sourcedir.tar.gz under a new
# timestamped job name at every build and wraps the script in a generated bash runproc.sh.)
STEPLIB_DIR = SCRIPTS_DIR / "steplib"
STEPLIB_MOUNT = f"{PROCESSING}/input/steplib"


def steplib_files() -> list[Path]:
    return sorted(p for p in STEPLIB_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix in (".py", ".json"))


def upload_steplib(cfg: PipelineConfig, session: PipelineSession) -> str:
    """Upload scripts/steplib (content-addressed key), once per build session; the S3 prefix whose steplib/
    folder the jobs mount."""
    uploaded = getattr(session, "_steplib_uri", None)
    if uploaded:
        return uploaded
    files = steplib_files()
    digest = hashlib.sha256(b"".join(p.relative_to(STEPLIB_DIR).as_posix().encode() + b"\0" + p.read_bytes()
                                     for p in files)).hexdigest()[:16]
    prefix = f"{cfg.env.bucket_prefix}/code/steplib/{digest}"
    s3 = boto3.Session(region_name=cfg.env.region).client("s3")
    for path in files:
        s3.put_object(Bucket=cfg.env.bucket_name, Key=f"{prefix}/steplib/{path.relative_to(STEPLIB_DIR).as_posix()}",
                      Body=path.read_bytes(), **encryption_args(cfg))
    session._steplib_uri = f"s3://{cfg.env.bucket_name}/{prefix}"  # type: ignore[attr-defined]
    return session._steplib_uri


class StepScriptProcessor(ScriptProcessor):
    """A ScriptProcessor whose jobs also mount the step library (see above)."""

    def __init__(self, *args: Any, steplib_uri: str, **kwargs: Any) -> None:
        kwargs["env"] = {**(kwargs.get("env") or {}), "PYTHONPATH": STEPLIB_MOUNT}
        super().__init__(*args, **kwargs)
        self.steplib_uri = steplib_uri

    def run(self, *args: Any, inputs: list | None = None, **kwargs: Any) -> Any:
        return super().run(*args, inputs=[*(inputs or []), processing_input("steplib", self.steplib_uri, STEPLIB_MOUNT)],
                           **kwargs)


def processor(cfg: PipelineConfig, session: PipelineSession, base_job_name: str) -> ScriptProcessor:
    settings = cfg.settings["processing"]
    return StepScriptProcessor(
        steplib_uri=upload_steplib(cfg, session),
        role=cfg.env.role_arn,
        image_uri=image_uri(cfg, settings["instance_type"]),
        command=["python3"],
        instance_type=settings["instance_type"],
        instance_count=settings["instance_count"],
        volume_size_in_gb=settings.get("volume_size_gb", 30),
        volume_kms_key=kms_key(cfg),
        output_kms_key=kms_key(cfg),
        max_runtime_in_seconds=settings.get("max_runtime_seconds"),
        base_job_name=base_job_name,
        sagemaker_session=session,
        network_config=network_config(cfg),
    )


# --- processing inputs and outputs --------------------------------------------------------

def processing_input(name: str, source: Any, local_path: str) -> ProcessingInput:
    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=source, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="FullyReplicated"))


def processing_output(name: str, local_path: str, destination: Any) -> ProcessingOutput:
    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
        s3_uri=destination, local_path=local_path, s3_upload_mode="EndOfJob"))


def artifact_uri(cfg: PipelineConfig, pipeline_name: str, step: str, *rest: str) -> Join:
    """s3://bucket/prefix/artifacts/<pipeline>/<execution id>/<step>/...: one folder per run."""
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


def encryption_args(cfg: PipelineConfig) -> dict[str, str]:
    """Server-side encryption for what the scripts upload: the project key when set, else SSE-S3."""
    if cfg.env.kms_key:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": cfg.env.kms_key}
    return {"ServerSideEncryption": "AES256"}


def upload_schema(cfg: PipelineConfig) -> str:
    """Upload the data set schema once per content (content-addressed key) and return its S3 URI."""
    try:  # validated here, at upsert, not first inside a job (steplib.schema is the one reader)
        load_dataset_schema(str(SCHEMA_FILE))
    except SchemaError as exc:
        raise ConfigError(str(exc)) from exc
    body = SCHEMA_FILE.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    key = f"{cfg.env.bucket_prefix}/code/schema/{digest}/{SCHEMA_FILE.name}"
    boto3.Session(region_name=cfg.env.region).client("s3").put_object(
        Bucket=cfg.env.bucket_name, Key=key, Body=body, **encryption_args(cfg))
    return f"s3://{cfg.env.bucket_name}/{cfg.env.bucket_prefix}/code/schema/{digest}"


def tags() -> list[dict[str, str]]:
    """tags.json, applied to pipelines here and to every Terraform resource via default_tags."""
    if not TAGS_FILE.is_file():
        return []
    data = json.loads(TAGS_FILE.read_text())
    return [{"Key": k, "Value": str(v)} for k, v in sorted(data.items())]


# --- upsert and data upload --------------------------------------------------------------

def upsert(pipeline: Pipeline, cfg: PipelineConfig, description: str) -> str:
    """Create or update the pipeline; delete and recreate only when recreate_pipelines is set."""
    client = boto3.Session(region_name=cfg.env.region).client("sagemaker")
    ensure_model_package_group(cfg)  # where the training pipelines register their versions
    if cfg.env.recreate_pipelines:
        try:
            client.delete_pipeline(PipelineName=pipeline.name, ClientRequestToken=str(uuid.uuid4()))
            log.info("deleted pipeline %s (recreate_pipelines = true)", pipeline.name)
        except client.exceptions.ResourceNotFound:
            pass
    response = pipeline.upsert(role_arn=cfg.env.role_arn, description=description, tags=tags())
    return response["PipelineArn"]


def ensure_model_package_group(cfg: PipelineConfig) -> None:
    client = boto3.Session(region_name=cfg.env.region).client("sagemaker")
    name = cfg.env.model_package_group_name
    try:
        client.describe_model_package_group(ModelPackageGroupName=name)
        return
    except client.exceptions.ClientError as exc:
        # SageMaker answers a missing group with ValidationException; anything else (access denied,
        # throttling) is a real problem and must not be mistaken for "create it"
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
    client.create_model_package_group(ModelPackageGroupName=name, Tags=tags(),
                                      ModelPackageGroupDescription="Model versions registered by the training pipelines")


def upload_data(cfg: PipelineConfig, data_dir: Path = DATA_DIR) -> list[str]:
    """Upload the data files the tfvars flags ask for. Ground truth goes before the inference
    data, because the inference data's arrival starts the pipeline that looks for it."""
    plan: list[tuple[Path, str]] = []
    if cfg.env.upload_training_data:
        plan.append((data_dir / "training-data.csv", f"{cfg.env.training_data_uri}/training-data.csv"))
    if cfg.env.upload_inference_data:
        plan.append((data_dir / "ground-truth.csv", f"{cfg.env.ground_truth_uri}/ground-truth.csv"))
        plan.append((data_dir / "inference-data.csv", f"{cfg.env.inference_input_uri}/inference-data.csv"))
    s3 = boto3.Session(region_name=cfg.env.region).client("s3")
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

Builder = Callable[[PipelineConfig, PipelineSession], Pipeline]


def run_cli(kind: str, build: Builder, description: str, argv: list[str] | None = None) -> int:
    """The command line of every pipeline script: build, then write the definition or upsert."""
    parser = argparse.ArgumentParser(description=f"Build and upsert the {kind} SageMaker pipeline.")
    parser.add_argument("--env-file", default=str(PROJECT_ROOT / "env_files" / "dev_env.tfvars"),
                        help="Terraform variables file shared with Terraform (default: %(default)s)")
    parser.add_argument("--config", default=None,
                        help=f"pipeline settings YAML (default: pipeline_scripts/{kind}_pipeline.yaml)")
    parser.add_argument("--definition-out", default=None,
                        help="write the pipeline definition JSON to this file instead of upserting")
    parser.add_argument("--no-upload", action="store_true", help="skip the data upload the tfvars flags ask for")
    args = parser.parse_args(argv)
    console.configure_logging()
    try:
        cfg = load_pipeline_config(kind, args.env_file, args.config)
        session = make_session(cfg)
        pipeline = build(cfg, session)
        definition = pipeline.definition()
        if args.definition_out:
            Path(args.definition_out).write_text(json.dumps(json.loads(definition), indent=2) + "\n")
            print(f"wrote {args.definition_out}")
            return 0
        arn = upsert(pipeline, cfg, description)
        print(f"upserted {arn}")
        if not args.no_upload:
            upload_data(cfg)
        return 0
    except NoApprovedModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_APPROVED_MODEL
    except (ConfigError, PipelineBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
