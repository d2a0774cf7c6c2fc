"""What a deploy does beyond the definition: upsert the pipeline, make sure the model package group exists,
upload the data files the tfvars flags ask for."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_scripts.config import PROJECT_ROOT, PipelineConfig
from pipeline_scripts.errors import ConfigError
from pipeline_scripts.sdk_adapter import Sessions, sessions_of
from pipeline_scripts.shipping import encryption_args, tags

if TYPE_CHECKING:
    from sagemaker.mlops.workflow import Pipeline

log = logging.getLogger("pipeline_scripts")
DATA_DIR = PROJECT_ROOT / "data"

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
