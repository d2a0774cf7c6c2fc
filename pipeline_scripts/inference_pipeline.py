"""Batch inference pipeline with data- and model-quality monitoring.

    python -m pipeline_scripts.inference_pipeline [--env-file ...] [--config ...] [--definition-out FILE]

Built around the latest *Approved* version of the model package group: its model artifact
(model + the preprocessing fitted at training time + serving code) and the data-quality
baseline registered with it. Re-run this script after approving a new version (the GitLab
deploy job does, triggered by the approval event).
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3

from pipeline_scripts import common
from pipeline_scripts.common import PROCESSING, artifact_uri, output_of, processing_input, processing_output
from pipeline_scripts.config import PipelineConfig
from pipeline_scripts.contracts import CONTRACTS, MARKERS, STEPS
from sagemaker.core.transformer import Transformer
from sagemaker.core.workflow.conditions import ConditionEquals, ConditionLessThanOrEqualTo
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow import ConditionStep, FailStep, Pipeline, ProcessingStep, TransformStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.serve.model_builder import ModelBuilder



@dataclass(frozen=True)
class ApprovedModel:
    """What the inference pipeline needs from the approved model package."""

    arn: str
    image: str
    model_data_url: str
    environment: dict[str, str]
    baseline_statistics: str
    baseline_constraints: str


def latest_approved_model(cfg: PipelineConfig) -> ApprovedModel:
    client = boto3.Session(region_name=cfg.env.region).client("sagemaker")
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
    arn = packages[0]["ModelPackageArn"]
    package = client.describe_model_package(ModelPackageName=arn)
    container = package["InferenceSpecification"]["Containers"][0]
    baselines = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    if "Statistics" not in baselines or "Constraints" not in baselines:
        raise common.PipelineBuildError(
            f"model package {arn} has no data-quality drift-check baselines (statistics and constraints); "
            "register versions with the training pipeline of this template")
    return ApprovedModel(arn=arn, image=container["Image"], model_data_url=container["ModelDataUrl"],
                         environment=dict(container.get("Environment", {})),
                         baseline_statistics=baselines["Statistics"]["S3Uri"],
                         baseline_constraints=baselines["Constraints"]["S3Uri"])


def data_quality_uri(cfg: PipelineConfig, name: str) -> Join:
    """The run's data-quality results folder; the report lands beside them."""
    return artifact_uri(cfg, name, "data-quality")


def _data_quality_step(cfg: PipelineConfig, session: PipelineSession, name: str, data_check: ProcessingStep,
                       model: ApprovedModel) -> ProcessingStep:
    destination = data_quality_uri(cfg, name)
    if cfg.settings["data_quality"]["engine"] == "model_monitor":
        from sagemaker.core.model_monitor.dataset_format import DatasetFormat
        from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
        from sagemaker.mlops.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

        settings = cfg.settings["processing"]
        return QualityCheckStep(
            name=STEPS["data_quality_check"], skip_check=False, register_new_baseline=False, fail_on_violation=False,
            supplied_baseline_statistics=model.baseline_statistics,
            supplied_baseline_constraints=model.baseline_constraints,
            quality_check_config=DataQualityCheckConfig(
                baseline_dataset=output_of(data_check, "data_check"), dataset_format=DatasetFormat.csv(header=True),
                output_s3_uri=destination),
            check_job_config=CheckJobConfig(
                role=cfg.env.role_arn, instance_count=settings["instance_count"],
                instance_type=settings["instance_type"], volume_kms_key=common.kms_key(cfg),
                output_kms_key=common.kms_key(cfg), sagemaker_session=session))
    return ProcessingStep(name=STEPS["data_quality_check"], step_args=common.processor(cfg, session, f"{name}-dq-check").run(
        code=common.script("data_quality.py"),
        inputs=[processing_input("data_check", output_of(data_check, "data_check"), f"{PROCESSING}/input/data_check"),
                processing_input("baseline_statistics", model.baseline_statistics,
                                 f"{PROCESSING}/baseline/statistics"),
                processing_input("baseline_constraints", model.baseline_constraints,
                                 f"{PROCESSING}/baseline/constraints")],
        outputs=[processing_output("data_quality", f"{PROCESSING}/output", destination)],
        arguments=["check"],
    ))


def breach_message(mse: JsonGet, threshold: ParameterFloat, object_key: ParameterString) -> Join:
    """The FailStep's message: the contract's breach marker first, so notifications and people can tell a
    breach from any other failure at a glance (the HPO rule matches the FailStep by its name)."""
    return Join(on="", values=[f"{MARKERS['model_quality_breach']}: mse=", mse, " > threshold=", threshold,
                                " on batch ", object_key, "; HPO retraining starts"])


def build(cfg: PipelineConfig, session: PipelineSession) -> Pipeline:
    name = cfg.env.pipeline_inf
    model = latest_approved_model(cfg)
    schema_uri = common.upload_schema(cfg)
    transform = cfg.settings["transform"]
    input_prefix = "/".join(p.strip("/") for p in (cfg.env.bucket_prefix, cfg.env.bucket_inf_prefix, "input") if p)

    # The batch this execution scores: the object whose arrival started it (the data-arrival rule sets it),
    # or, by default (schedules, runs by hand), every object under the input prefix.
    object_key = ParameterString(name=CONTRACTS.pipeline("inference").started_by["object_parameter"],
                                 default_value=input_prefix + "/")
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=cfg.mse_threshold)
    batch_uri = Join(on="", values=[f"s3://{cfg.env.bucket_name}/", object_key])

    create_model = ModelStep(name=STEPS["create_model"], step_args=ModelBuilder(
        s3_model_data_url=model.model_data_url, image_uri=model.image, env_vars=model.environment,
        role_arn=cfg.env.role_arn, sagemaker_session=session).build())

    preprocess = ProcessingStep(name=STEPS["inference_preprocess"], step_args=common.processor(
        cfg, session, f"{name}-preprocess").run(
        code=common.script("preprocess_inference.py"),
        inputs=[processing_input("data", batch_uri, f"{PROCESSING}/input/data"),
                processing_input("model", model.model_data_url, f"{PROCESSING}/model")],
        outputs=[processing_output("transformed", f"{PROCESSING}/output/transformed",
                                   artifact_uri(cfg, name, "transformed"))],
    ))

    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=transform["instance_count"], instance_type=transform["instance_type"],
        strategy="MultiRecord", assemble_with="Line", accept="text/csv",
        max_payload=transform.get("max_payload_mb", 6),
        max_concurrent_transforms=transform.get("max_concurrent_transforms"),
        output_path=artifact_uri(cfg, name, "predictions"),
        output_kms_key=common.kms_key(cfg), volume_kms_key=common.kms_key(cfg),
        sagemaker_session=session)
    batch = TransformStep(name=STEPS["batch_transform"], step_args=transformer.transform(
        data=output_of(preprocess, "transformed"), content_type="text/csv", split_type="Line"))

    ground_truth = PropertyFile(name="GroundTruthReport", output_name="ground_truth", path="ground_truth.json")
    data_check = ProcessingStep(name=STEPS["data_check_preprocess"], property_files=[ground_truth],
                                step_args=common.processor(cfg, session, f"{name}-data-check-prep").run(
        code=common.script("prepare_data_check.py"),
        # the ground-truth pairing reads <inference prefix>/ground-truth/<batch name> from this channel (the
        # inference prefix always holds the batch itself, so the channel is never empty, which AWS rejects)
        inputs=[processing_input("batch", batch_uri, f"{PROCESSING}/input/batch"),
                processing_input("inference", cfg.env.inference_root_uri, f"{PROCESSING}/input/inference"),
                processing_input("predictions", batch.properties.TransformOutput.S3OutputPath,
                                 f"{PROCESSING}/input/predictions"),
                processing_input("schema", schema_uri, f"{PROCESSING}/input/schema")],
        outputs=[processing_output(out, f"{PROCESSING}/output/{out}", artifact_uri(cfg, name, out))
                 for out in ("data_check", "model_quality", "ground_truth")]
        # labelled batches that pass the schema land where the HPO pipeline looks for them, one folder per
        # execution; those that do not are kept aside for a person, outside anything training reads
        + [processing_output("feedback", f"{PROCESSING}/output/feedback",
                             Join(on="/", values=[cfg.env.feedback_uri, ExecutionVariables.PIPELINE_EXECUTION_ID])),
           processing_output("quarantine", f"{PROCESSING}/output/quarantine",
                             Join(on="/", values=[cfg.env.s3_uri("feedback-quarantine"),
                                                  ExecutionVariables.PIPELINE_EXECUTION_ID]))],
        arguments=["--object-key", object_key, "--input-prefix", input_prefix,
                   "--execution", ExecutionVariables.PIPELINE_EXECUTION_ID],
    ))

    data_quality = _data_quality_step(cfg, session, name, data_check, model)

    quality = PropertyFile(name="ModelQualityReport", output_name="model_quality", path="model_quality.json")
    model_quality = ProcessingStep(name=STEPS["model_quality"], property_files=[quality],
                                   step_args=common.processor(cfg, session, f"{name}-model-quality").run(
        code=common.script("model_quality.py"),
        inputs=[processing_input("model_quality", output_of(data_check, "model_quality"),
                                 f"{PROCESSING}/input/model_quality")],
        outputs=[processing_output("model_quality", f"{PROCESSING}/output/model_quality",
                                   artifact_uri(cfg, name, "model-quality"))],
        arguments=["--mse-threshold", mse_threshold.to_string()],
    ))

    # The report reads the data-quality folder by its URI (the Model Monitor engine's QualityCheckStep has no
    # named outputs), so it depends on that step explicitly.
    report = ProcessingStep(name=STEPS["report"], depends_on=[data_quality],
                            step_args=common.processor(cfg, session, f"{name}-report").run(
        code=common.script("inference_report.py"),
        inputs=[processing_input("data_quality", data_quality_uri(cfg, name), f"{PROCESSING}/input/data_quality"),
                processing_input("baseline", model.baseline_statistics, f"{PROCESSING}/input/baseline"),
                processing_input("model_quality", output_of(model_quality, "model_quality"),
                                 f"{PROCESSING}/input/model_quality"),
                processing_input("ground_truth", output_of(data_check, "ground_truth"),
                                 f"{PROCESSING}/input/ground_truth")],
        outputs=[processing_output("report", f"{PROCESSING}/output/report", data_quality_uri(cfg, name))],
        arguments=["--title", Join(on=" ", values=["Batch inference", ExecutionVariables.PIPELINE_NAME,
                                                   ExecutionVariables.PIPELINE_EXECUTION_ID]),
                   "--model-package", model.arn, "--generated-at", ExecutionVariables.CURRENT_DATETIME],
    ))

    # The verdicts come last, as FailSteps: a step that fails stops the execution, so everything that must
    # run either way (data quality, model quality, the report) runs before them. Bad feedback wins over a
    # breach: a batch that fails the schema never starts retraining.
    mse = JsonGet(step_name=model_quality.name, property_file=quality, json_path="regression_metrics.mse.value")
    breach = FailStep(name=STEPS["model_quality_breach"], error_message=breach_message(mse, mse_threshold, object_key))
    mse_gate = ConditionStep(name=STEPS["model_quality_condition"],
                             conditions=[ConditionLessThanOrEqualTo(left=mse, right=mse_threshold)],
                             if_steps=[], else_steps=[breach])
    labelled = ConditionStep(
        name=STEPS["ground_truth_condition"],
        conditions=[ConditionEquals(left=JsonGet(step_name=data_check.name, property_file=ground_truth,
                                                 json_path="available"), right=True)],
        if_steps=[mse_gate], else_steps=[])
    quarantined = FailStep(name=STEPS["feedback_quarantined"], error_message=Join(on="", values=[
        f"{MARKERS['feedback_quarantined']}: ",
        JsonGet(step_name=data_check.name, property_file=ground_truth, json_path="note"),
        " (kept under ", Join(on="/", values=[cfg.env.s3_uri("feedback-quarantine"),
                                              ExecutionVariables.PIPELINE_EXECUTION_ID]), ")"]))
    verdict = ConditionStep(
        name=STEPS["feedback_condition"], depends_on=[report],
        conditions=[ConditionEquals(left=JsonGet(step_name=data_check.name, property_file=ground_truth,
                                                 json_path="quarantined"), right=False)],
        if_steps=[labelled], else_steps=[quarantined])

    return Pipeline(name=name, parameters=[object_key, mse_threshold],
                    steps=[create_model, preprocess, batch, data_check, data_quality, model_quality, report,
                           verdict],
                    sagemaker_session=session)


def main(argv: list[str] | None = None) -> int:
    return common.run_cli("inference", build, "Batch inference with data- and model-quality monitoring", argv)


if __name__ == "__main__":
    raise SystemExit(main())
