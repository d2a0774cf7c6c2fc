"""Batch inference pipeline with data- and model-quality monitoring.

    python -m pipeline_scripts.inference_pipeline [--env-file ...] [--config ...] [--definition-out FILE]
                                                  [--model-package-arn ARN | --model-package-description FILE]

Built around an *Approved* version of the model package group (the one named by
--model-package-arn, else the latest): its model artifact
(model + the preprocessing fitted at training time + serving code) and the data-quality
baseline registered with it. Re-run this script after approving a new version (the GitLab
deploy job does, triggered by the approval event).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_scripts import common
from pipeline_scripts.common import PROCESSING, artifact_uri, output_of, processing_input, processing_output
from pipeline_scripts.config import ConfigError, PipelineConfig
from pipeline_scripts.contracts import STEPS
from pipeline_scripts.instances import vcpus

if TYPE_CHECKING:  # the SDK is imported where it is used: it needs a region at import (common.load_sdk)
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep

CREATE_MODEL = STEPS["create_model"]
PREPROCESS = STEPS["inference_preprocess"]
TRANSFORM = STEPS["batch_transform"]
DATA_CHECK_PREP = STEPS["data_check_preprocess"]
DATA_QUALITY = STEPS["data_quality_check"]
DATA_QUALITY_SHARDS = STEPS["data_quality_check_shards"]
GROUND_TRUTH_COND = STEPS["ground_truth_condition"]
MODEL_QUALITY = STEPS["model_quality"]


@dataclass(frozen=True)
class ApprovedModel:
    """What the inference pipeline needs from the approved model package."""

    arn: str
    image: str
    model_data_url: str
    environment: dict[str, str]
    baseline_statistics: str
    baseline_constraints: str


def approved_model(cfg: PipelineConfig, session: PipelineSession) -> ApprovedModel:
    """The model to serve: a saved DescribeModelPackage response (--model-package-description, no
    AWS call), the package named by --model-package-arn (the approval deploy passes it), or the
    group's latest Approved version."""
    description_file = cfg.extra.get("model_package_description")
    if description_file:
        try:
            package = json.loads(Path(description_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{description_file}: cannot read the model package description: {exc}") from exc
        return _from_description(package, description_file)
    sessions = common.sessions_of(session)
    if sessions.definition_only:
        raise ConfigError("--definition-out calls no AWS API: save the approved package with `aws sagemaker "
                          "describe-model-package --model-package-name <arn> > package.json` and pass "
                          "--model-package-description package.json")
    client = sessions.client("sagemaker")
    arn = cfg.extra.get("model_package_arn") or _latest_approved_arn(cfg, client)
    try:
        package = client.describe_model_package(ModelPackageName=arn)
    except client.exceptions.ClientError as exc:
        raise common.PipelineBuildError(f"cannot describe model package {arn}: {exc}") from exc
    return _from_description(package, arn)


def _latest_approved_arn(cfg: PipelineConfig, client: Any) -> str:
    group = cfg.env.model_package_group_name
    try:
        listed = client.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                            SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    except client.exceptions.ClientError as exc:
        raise common.PipelineBuildError(f"cannot list model package group '{group}': {exc}") from exc
    packages = listed.get("ModelPackageSummaryList", [])
    if not packages:
        raise common.NoApprovedModelError(
            f"no Approved model version in model package group '{group}'. Run the training pipeline, then "
            "approve a version in SageMaker Studio or with `aws sagemaker update-model-package "
            "--model-package-arn <arn> --model-approval-status Approved`, and run this script again.")
    return packages[0]["ModelPackageArn"]


def _from_description(package: dict[str, Any], source: str) -> ApprovedModel:
    arn = package.get("ModelPackageArn", source)
    if package.get("ModelApprovalStatus", "Approved") != "Approved":
        raise common.PipelineBuildError(
            f"model package {arn} is {package['ModelApprovalStatus']}, not Approved; approve it first")
    try:
        container = package["InferenceSpecification"]["Containers"][0]
        image, model_data_url = container["Image"], container["ModelDataUrl"]
    except (KeyError, IndexError, TypeError) as exc:
        raise common.PipelineBuildError(f"{source}: model package has no inference container "
                                        f"(InferenceSpecification.Containers[0] with Image and ModelDataUrl)") from exc
    baselines = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    if "Statistics" not in baselines or "Constraints" not in baselines:
        raise common.PipelineBuildError(
            f"model package {arn} has no data-quality drift-check baselines (statistics and constraints); "
            "register versions with the training pipeline of this template")
    return ApprovedModel(arn=arn, image=image, model_data_url=model_data_url,
                         environment=dict(container.get("Environment", {})),
                         baseline_statistics=baselines["Statistics"]["S3Uri"],
                         baseline_constraints=baselines["Constraints"]["S3Uri"])


def _data_quality_steps(cfg: PipelineConfig, session: PipelineSession, name: str, data_check: ProcessingStep,
                        model: ApprovedModel) -> list[Any]:
    """The data-quality check; the last step writes the violations (a sharded step first with > 1 instance)."""
    from sagemaker.mlops.workflow import ProcessingStep

    destination = artifact_uri(cfg, name, "data-quality")
    if cfg.settings["data_quality"]["engine"] == "model_monitor":
        from sagemaker.core.model_monitor.dataset_format import DatasetFormat
        from sagemaker.mlops.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

        return [QualityCheckStep(
            name=DATA_QUALITY, skip_check=False, register_new_baseline=False, fail_on_violation=False,
            supplied_baseline_statistics=model.baseline_statistics,
            supplied_baseline_constraints=model.baseline_constraints,
            quality_check_config=DataQualityCheckConfig(
                baseline_dataset=output_of(data_check, "data_check"), dataset_format=DatasetFormat.csv(header=True),
                output_s3_uri=destination),
            check_job_config=common.check_job_config(cfg, session, "data_quality_check"))]
    baselines = [processing_input("baseline_statistics", model.baseline_statistics, f"{PROCESSING}/baseline/statistics"),
                 processing_input("baseline_constraints", model.baseline_constraints,
                                  f"{PROCESSING}/baseline/constraints")]
    if common.instance_count(cfg, "data_quality_check") > 1:
        return common.sharded_data_quality(
            cfg, session, f"{name}-dq-check", "data_quality_check", DATA_QUALITY_SHARDS, DATA_QUALITY,
            sharded=processing_input("data_check", output_of(data_check, "data_check"),
                                     f"{PROCESSING}/input/data_check", sharded=True),
            inputs=baselines, output=("data_quality", destination), command="check")
    return [ProcessingStep(name=DATA_QUALITY, retry_policies=common.retry_policies(), step_args=common.processor(
        cfg, session, f"{name}-dq-check", "data_quality_check").run(
        code=common.script("data_quality.py"),
        inputs=[processing_input("data_check", output_of(data_check, "data_check"), f"{PROCESSING}/input/data_check"),
                processing_input("baseline_statistics", model.baseline_statistics,
                                 f"{PROCESSING}/baseline/statistics"),
                processing_input("baseline_constraints", model.baseline_constraints,
                                 f"{PROCESSING}/baseline/constraints")],
        outputs=[processing_output("data_quality", f"{PROCESSING}/output", destination)],
        arguments=["check"],
    ))]


def build(cfg: PipelineConfig, session: PipelineSession) -> Pipeline:
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ConditionStep, Pipeline, ProcessingStep, TransformStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    name = cfg.env.pipeline_name("inference")
    model = approved_model(cfg, session)
    retries = common.retry_policies()
    transform = cfg.settings["transform"]

    inference_root = ParameterString(name="InferenceRoot", default_value=cfg.env.inference_root_uri)
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=cfg.mse_threshold)
    raw_data = Join(on="/", values=[inference_root, "input"])

    create_model = ModelStep(name=CREATE_MODEL, retry_policies=common.retry_policies(job=False), step_args=ModelBuilder(
        s3_model_data_url=model.model_data_url, image_uri=model.image, env_vars=model.environment,
        role_arn=cfg.env.role_arn, sagemaker_session=session, network=common.model_network(cfg)).build())

    preprocess = ProcessingStep(name=PREPROCESS, retry_policies=retries, step_args=common.processor(
        cfg, session, f"{name}-preprocess").run(
        code=common.script("preprocess_inference.py"),
        inputs=[processing_input("data", raw_data, f"{PROCESSING}/input/data"),
                processing_input("model", model.model_data_url, f"{PROCESSING}/model")],
        outputs=[processing_output("transformed", f"{PROCESSING}/output/transformed",
                                   artifact_uri(cfg, name, "transformed"))],
    ))

    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=transform["instance_count"], instance_type=transform["instance_type"],
        strategy="MultiRecord", assemble_with="Line", accept="text/csv",
        max_payload=transform.get("max_payload_mb", 6),
        # default: one request per vCPU (the API's own default is 1: one busy core per instance)
        max_concurrent_transforms=transform.get("max_concurrent_transforms") or vcpus(transform["instance_type"]),
        output_path=artifact_uri(cfg, name, "predictions"),
        output_kms_key=common.kms_key(cfg), volume_kms_key=common.kms_key(cfg),
        sagemaker_session=session)
    batch = TransformStep(name=TRANSFORM, retry_policies=retries, step_args=transformer.transform(
        data=output_of(preprocess, "transformed"), content_type="text/csv", split_type="Line"))

    ground_truth = PropertyFile(name="GroundTruthReport", output_name="ground_truth", path="ground_truth.json")
    data_check = ProcessingStep(name=DATA_CHECK_PREP, property_files=[ground_truth], retry_policies=retries,
                                step_args=common.processor(cfg, session, f"{name}-data-check-prep").run(
        code=common.script("prepare_data_check.py"),
        inputs=[processing_input("inference", inference_root, f"{PROCESSING}/input/inference"),
                processing_input("predictions", batch.properties.TransformOutput.S3OutputPath,
                                 f"{PROCESSING}/input/predictions"),
                # the schema travels inside the model (one route, see scripts/steplib/schema.py)
                processing_input("model", model.model_data_url, f"{PROCESSING}/model")],
        outputs=[processing_output(out, f"{PROCESSING}/output/{out}", artifact_uri(cfg, name, out))
                 for out in ("data_check", "model_quality", "ground_truth")]
        # labelled batches land where the HPO pipeline looks for them, one folder per execution
        + [processing_output("feedback", f"{PROCESSING}/output/feedback",
                             Join(on="/", values=[cfg.env.feedback_uri, ExecutionVariables.PIPELINE_EXECUTION_ID]))],
    ))

    *data_quality_shards, data_quality = _data_quality_steps(cfg, session, name, data_check, model)

    model_quality = ProcessingStep(name=MODEL_QUALITY, retry_policies=retries, step_args=common.processor(
        cfg, session, f"{name}-model-quality").run(
        code=common.script("model_quality.py"),
        inputs=[processing_input("model_quality", output_of(data_check, "model_quality"),
                                 f"{PROCESSING}/input/model_quality")],
        outputs=[processing_output("model_quality", f"{PROCESSING}/output/model_quality",
                                   artifact_uri(cfg, name, "model-quality"))],
        arguments=["--mse-threshold", mse_threshold.to_string()],
    ))
    gate = ConditionStep(
        name=GROUND_TRUTH_COND,
        conditions=[ConditionEquals(left=JsonGet(step_name=data_check.name, property_file=ground_truth,
                                                 json_path="available"), right=True)],
        if_steps=[model_quality], else_steps=[])

    return Pipeline(name=name, parameters=[inference_root, mse_threshold],
                    steps=[create_model, preprocess, batch, data_check, *data_quality_shards, data_quality, gate],
                    sagemaker_session=session)


def main(argv: list[str] | None = None) -> int:
    return common.run_cli("inference", build, "Batch inference with data- and model-quality monitoring", argv)


if __name__ == "__main__":
    raise SystemExit(main())
