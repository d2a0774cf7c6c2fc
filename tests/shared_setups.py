"""Setups that tests of several tiers share: an approved model version as the training pipeline leaves it,
and a tuning configuration small enough for a test."""

from __future__ import annotations

from pathlib import Path

import boto3
import yaml

from pipeline_scripts import deploy, training_pipeline
from pipeline_scripts.contracts import PREDICTION_BASELINE

ROOT = Path(__file__).resolve().parent.parent


def approve_a_model(cfg, prediction_baseline: bool = True) -> str:
    """A registered, approved version as the training pipeline would leave it (``prediction_baseline=False``: as
    versions registered before the training pipelines recorded one)."""
    sm = boto3.client("sagemaker")
    deploy.ensure_model_package_group(cfg)
    source = {"ContentType": "application/json"}
    arn = sm.create_model_package(
        ModelPackageGroupName=cfg.env.model_package_group_name,
        InferenceSpecification={
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                            "ModelDataUrl": f"s3://{cfg.env.bucket_name}/models/model.tar.gz",
                            "Environment": dict(training_pipeline.SERVING_ENV)}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        DriftCheckBaselines={"ModelDataQuality": {
            "Statistics": {**source, "S3Uri": f"s3://{cfg.env.bucket_name}/baseline/statistics.json"},
            "Constraints": {**source, "S3Uri": f"s3://{cfg.env.bucket_name}/baseline/constraints.json"}}},
        CustomerMetadataProperties={PREDICTION_BASELINE[kind]: f"s3://{cfg.env.bucket_name}/evaluation/prediction-baseline/{kind}.json"
                                    for kind in ("statistics", "constraints") if prediction_baseline} or {"pipeline": "t"},
        ModelApprovalStatus="Approved")["ModelPackageArn"]
    return arn


def small_hpo_config(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "pipeline_scripts" / "training_hpo_pipeline.yaml").read_text())
    cfg["tuning"]["max_jobs"] = 3
    cfg["tuning"]["ranges"]["n_estimators"] = {"type": "integer", "min": 30, "max": 60}
    path = tmp_path / "hpo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
