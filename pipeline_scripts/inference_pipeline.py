"""Batch inference pipeline with data- and model-quality monitoring.

    python -m pipeline_scripts.inference_pipeline [--env-file ...] [--config ...] [--definition-out FILE]
                                                  [--model-package-arn ARN | --model-package-description FILE]

Built around an *Approved* version of the model package group (the one named by
--model-package-arn, else the latest): its model artifact
(model + the preprocessing fitted at training time + serving code) and the data-quality
baseline registered with it. Re-run this script after approving a new version (the GitLab
deploy job does, triggered by the approval event). With no Approved version it exits 3, or, with
--withdraw-if-none (the deploy after the serving version was rejected and none is left), upserts a
pipeline that refuses every batch with the reason (withdrawn_pipeline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steplib import artifacts

from pipeline_scripts import cli, errors, sdk_adapter, shipping, step_blocks
from pipeline_scripts.config import PipelineConfig
from pipeline_scripts.contracts import CONTRACTS, MARKERS, PREDICTION_BASELINE, STEPS
from pipeline_scripts.errors import ConfigError
from pipeline_scripts.instances import vcpus
from pipeline_scripts.settings import INFERENCE_SETTINGS, InferenceSettings
from pipeline_scripts.shipping import PROCESSING
from pipeline_scripts.step_blocks import artifact_uri, output_of, processing_input, processing_output

if TYPE_CHECKING:  # the SDK is imported where it is used: it needs a region at import (sdk_adapter.load_sdk)
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep

CREATE_MODEL = STEPS["create_model"]
PREPROCESS = STEPS["inference_preprocess"]
TRANSFORM = STEPS["batch_transform"]
DATA_CHECK_PREP = STEPS["data_check_preprocess"]
DATA_QUALITY = STEPS["data_quality_check"]
DATA_QUALITY_SHARDS = STEPS["data_quality_check_shards"]
PREDICTION_DRIFT = STEPS["prediction_drift_check"]
GROUND_TRUTH_COND = STEPS["ground_truth_condition"]
MODEL_QUALITY = STEPS["model_quality"]
REPORT = STEPS["report"]
MSE_COND = STEPS["model_quality_condition"]
BREACH_FAIL = STEPS["model_quality_breach"]
FEEDBACK_COND = STEPS["feedback_condition"]
QUARANTINE_FAIL = STEPS["feedback_quarantined"]
NO_SERVING_MODEL = STEPS["no_serving_model"]
SETTINGS_SCHEMA = INFERENCE_SETTINGS  # its YAML's JSON Schema (config.settings_schema)
SETTINGS_CLASS = InferenceSettings  # what its YAML loads into (config.settings_class)
InferenceConfig = PipelineConfig[InferenceSettings]


@dataclass(frozen=True)
class ApprovedModel:
    """What the inference pipeline needs from the approved model package."""

    arn: str
    image: str
    model_data_url: str
    environment: dict[str, str]
    baseline_statistics: str
    baseline_constraints: str
    # the model-output baseline (evaluate.py); None for versions registered before this template wrote one
    prediction_statistics: str | None = None
    prediction_constraints: str | None = None


def approved_model(cfg: PipelineConfig, session: PipelineSession) -> ApprovedModel:
    """The model to serve: a saved DescribeModelPackage response (--model-package-description, no
    AWS call), the package named by --model-package-arn (the approval deploy passes it), or the
    group's latest Approved version."""
    description_file = cfg.options.model_package_description
    if description_file:
        try:
            package = json.loads(description_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{description_file}: cannot read the model package description: {exc}") from exc
        return _from_description(package, str(description_file))
    sessions = sdk_adapter.sessions_of(session)
    if sessions.definition_only:
        raise ConfigError("--definition-out calls no AWS API: save the approved package with `aws sagemaker "
                          "describe-model-package --model-package-name <arn> > package.json` and pass "
                          "--model-package-description package.json")
    client = sessions.client("sagemaker")
    arn = cfg.options.model_package_arn or _latest_approved_arn(cfg, client)
    try:
        package = client.describe_model_package(ModelPackageName=arn)
    except client.exceptions.ClientError as exc:
        raise errors.PipelineBuildError(f"cannot describe model package {arn}: {exc}") from exc
    return _from_description(package, arn)


def _latest_approved_arn(cfg: PipelineConfig, client: Any) -> str:
    group = cfg.env.model_package_group_name
    try:
        listed = client.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                            SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    except client.exceptions.ClientError as exc:
        raise errors.PipelineBuildError(f"cannot list model package group '{group}': {exc}") from exc
    packages = listed.get("ModelPackageSummaryList", [])
    if not packages:
        raise errors.NoApprovedModelError(
            f"no Approved model version in model package group '{group}'. Run the training pipeline, then "
            "approve a version in SageMaker Studio or with `aws sagemaker update-model-package "
            "--model-package-arn <arn> --model-approval-status Approved`, and run this script again.")
    return packages[0]["ModelPackageArn"]


def _from_description(package: dict[str, Any], source: str) -> ApprovedModel:
    arn = package.get("ModelPackageArn", source)
    if package.get("ModelApprovalStatus", "Approved") != "Approved":
        raise errors.PipelineBuildError(
            f"model package {arn} is {package['ModelApprovalStatus']}, not Approved; approve it first")
    try:
        container = package["InferenceSpecification"]["Containers"][0]
        image, model_data_url = container["Image"], container["ModelDataUrl"]
    except (KeyError, IndexError, TypeError) as exc:
        raise errors.PipelineBuildError(f"{source}: model package has no inference container "
                                        f"(InferenceSpecification.Containers[0] with Image and ModelDataUrl)") from exc
    baselines = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    if "Statistics" not in baselines or "Constraints" not in baselines:
        raise errors.PipelineBuildError(
            f"model package {arn} has no data-quality drift-check baselines (statistics and constraints); "
            "register versions with the training pipeline of this template")
    metadata = package.get("CustomerMetadataProperties") or {}
    return ApprovedModel(arn=arn, image=image, model_data_url=model_data_url,
                         environment=dict(container.get("Environment", {})),
                         baseline_statistics=baselines["Statistics"]["S3Uri"],
                         baseline_constraints=baselines["Constraints"]["S3Uri"],
                         prediction_statistics=metadata.get(PREDICTION_BASELINE["statistics"]),
                         prediction_constraints=metadata.get(PREDICTION_BASELINE["constraints"]))


def data_quality_uri(cfg: PipelineConfig, name: str) -> Any:
    """The run's data-quality results folder; the report lands beside them."""
    return artifact_uri(cfg, name, "data-quality")


def _data_quality_steps(cfg: InferenceConfig, session: PipelineSession, name: str, data_check: ProcessingStep,
                        model: ApprovedModel) -> list[Any]:
    """The data-quality check; the last step writes the violations (a sharded step first with > 1 instance)."""
    from sagemaker.mlops.workflow import ProcessingStep

    destination = data_quality_uri(cfg, name)
    if cfg.settings.data_quality.engine == "model_monitor":
        from sagemaker.core.model_monitor.dataset_format import DatasetFormat
        from sagemaker.mlops.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

        return [QualityCheckStep(
            name=DATA_QUALITY, skip_check=False, register_new_baseline=False, fail_on_violation=False,
            supplied_baseline_statistics=model.baseline_statistics,
            supplied_baseline_constraints=model.baseline_constraints,
            quality_check_config=DataQualityCheckConfig(
                baseline_dataset=output_of(data_check, "data_check"), dataset_format=DatasetFormat.csv(header=True),
                output_s3_uri=destination),
            check_job_config=step_blocks.check_job_config(cfg, session, "data_quality_check"))]
    baselines = [processing_input("baseline_statistics", model.baseline_statistics, f"{PROCESSING}/baseline/statistics"),
                 processing_input("baseline_constraints", model.baseline_constraints,
                                  f"{PROCESSING}/baseline/constraints")]
    if cfg.settings.processing.instances("data_quality_check") > 1:
        return step_blocks.sharded_data_quality(
            cfg, session, f"{name}-dq-check", "data_quality_check", DATA_QUALITY_SHARDS, DATA_QUALITY,
            sharded=processing_input("data_check", output_of(data_check, "data_check"),
                                     f"{PROCESSING}/input/data_check", sharded=True),
            inputs=baselines, output=("data_quality", destination), command="check")
    return [ProcessingStep(name=DATA_QUALITY, retry_policies=step_blocks.retry_policies(), step_args=step_blocks.processor(
        cfg, session, f"{name}-dq-check", "data_quality_check").run(
        code=shipping.script("data_quality.py"),
        inputs=[processing_input("data_check", output_of(data_check, "data_check"), f"{PROCESSING}/input/data_check"),
                processing_input("baseline_statistics", model.baseline_statistics,
                                 f"{PROCESSING}/baseline/statistics"),
                processing_input("baseline_constraints", model.baseline_constraints,
                                 f"{PROCESSING}/baseline/constraints")],
        outputs=[processing_output("data_quality", f"{PROCESSING}/output", destination)],
        arguments=["check"],
    ))]


def _prediction_drift_step(cfg: InferenceConfig, session: PipelineSession, name: str, data_check: ProcessingStep,
                           model: ApprovedModel) -> ProcessingStep | None:
    """Model-output drift: the batch's predictions against the version's baseline of its own predictions on
    held-out rows (not against the training labels: predictions are narrower and have no sign contract).
    Our engine in both data-quality settings: Model Monitor's data-quality job takes one data set."""
    from sagemaker.mlops.workflow import ProcessingStep

    if not (model.prediction_statistics and model.prediction_constraints):
        print(f"WARNING: model package {model.arn} has no prediction baseline (CustomerMetadataProperties "
              f"{PREDICTION_BASELINE['statistics']}/{PREDICTION_BASELINE['constraints']}, registered by this "
              "template's training pipelines): the inference pipeline checks no prediction drift")
        return None
    return ProcessingStep(name=PREDICTION_DRIFT, retry_policies=step_blocks.retry_policies(),
                          step_args=step_blocks.processor(cfg, session, f"{name}-prediction-drift").run(
        code=shipping.script("data_quality.py"),
        inputs=[processing_input("prediction_check", output_of(data_check, "prediction_check"),
                                 f"{PROCESSING}/input/data_check"),
                processing_input("baseline_statistics", model.prediction_statistics, f"{PROCESSING}/baseline/statistics"),
                processing_input("baseline_constraints", model.prediction_constraints,
                                 f"{PROCESSING}/baseline/constraints")],
        outputs=[processing_output("prediction_drift", f"{PROCESSING}/output", artifact_uri(cfg, name, "prediction-drift"))],
        arguments=["check"],
    ))


def breach_message(mse: Any, threshold: Any, object_key: Any) -> Any:
    """The FailStep's message: the contract's breach marker first, so notifications and people can tell a
    breach from any other failure at a glance (the HPO rule matches the FailStep by its name)."""
    from sagemaker.core.workflow.functions import Join

    return Join(on="", values=[f"{MARKERS['model_quality_breach']}: mse=", mse, " > threshold=", threshold,
                                " on batch ", object_key, "; HPO retraining starts"])


def build(cfg: InferenceConfig, session: PipelineSession) -> Pipeline:
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import ConditionEquals, ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ConditionStep, FailStep, Pipeline, ProcessingStep, TransformStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    name = cfg.env.pipeline_name("inference")
    retries = step_blocks.retry_policies()
    transform = cfg.settings.transform
    input_prefix = "/".join(p.strip("/") for p in (cfg.env.bucket_prefix, cfg.env.bucket_inf_prefix, "input") if p)

    # The batch this execution scores: the object whose arrival started it (the data-arrival rule sets it),
    # or, by default (schedules, runs by hand), every object under the input prefix.
    object_key = ParameterString(name=CONTRACTS.pipeline("inference").started_by["object_parameter"],
                                 default_value=input_prefix + "/")
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=cfg.mse_threshold)
    try:
        model = approved_model(cfg, session)
    except errors.NoApprovedModelError:
        if not cfg.options.withdraw_if_none:
            raise
        why = (f"no version of model package group '{cfg.env.model_package_group_name}' is Approved; approving one "
               "(SageMaker Studio, or `aws sagemaker update-model-package --model-approval-status Approved`) "
               "deploys the inference pipeline again")
        return withdrawn_pipeline(name, object_key, mse_threshold, why, session)
    batch_uri = Join(on="", values=[f"s3://{cfg.env.bucket_name}/", object_key])

    create_model = ModelStep(name=CREATE_MODEL, retry_policies=step_blocks.retry_policies(job=False), step_args=ModelBuilder(
        s3_model_data_url=model.model_data_url, image_uri=model.image, env_vars=model.environment,
        role_arn=cfg.env.role_arn, sagemaker_session=session, network=step_blocks.model_network(cfg)).build())

    # Every instance transforms its ShardedByS3Key share of the batch's files; each file is cut into part
    # files, so the transform's instances share even a one-file batch (it spreads whole objects).
    preprocess = ProcessingStep(name=PREPROCESS, retry_policies=retries, step_args=step_blocks.processor(
        cfg, session, f"{name}-preprocess", "inference_preprocess").run(
        code=shipping.script("preprocess_inference.py"),
        inputs=[processing_input("data", batch_uri, f"{PROCESSING}/input/data",
                                 sharded=cfg.settings.processing.instances("inference_preprocess") > 1),
                processing_input("model", model.model_data_url, f"{PROCESSING}/model")],
        outputs=[processing_output("transformed", f"{PROCESSING}/output/transformed",
                                   artifact_uri(cfg, name, "transformed"))],
        arguments=["--part-files", str(transform.part_files or transform.instance_count)],
    ))

    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=transform.instance_count, instance_type=transform.instance_type,
        strategy="MultiRecord", assemble_with="Line", accept="text/csv",
        max_payload=transform.max_payload_mb,
        # default: one request per vCPU (the API's own default is 1: one busy core per instance)
        max_concurrent_transforms=transform.max_concurrent_transforms or vcpus(transform.instance_type),
        output_path=artifact_uri(cfg, name, "predictions"),
        output_kms_key=step_blocks.kms_key(cfg), volume_kms_key=step_blocks.kms_key(cfg),
        sagemaker_session=session)
    batch = TransformStep(name=TRANSFORM, retry_policies=retries, step_args=transformer.transform(
        data=output_of(preprocess, "transformed"), content_type="text/csv", split_type="Line"))

    ground_truth = PropertyFile(name="GroundTruthReport", output_name="ground_truth",
                                path=artifacts.file("ground_truth"))
    quarantine_uri = Join(on="/", values=[cfg.env.s3_uri("feedback-quarantine"), ExecutionVariables.PIPELINE_EXECUTION_ID])
    data_check = ProcessingStep(name=DATA_CHECK_PREP, property_files=[ground_truth], retry_policies=retries,
                                step_args=step_blocks.processor(cfg, session, f"{name}-data-check-prep").run(
        code=shipping.script("prepare_data_check.py"),
        # the ground-truth pairing reads <inference prefix>/ground-truth/<batch name> from the "inference"
        # channel (the inference prefix always holds the batch itself, so the channel is never empty, which
        # AWS rejects)
        inputs=[processing_input("batch", batch_uri, f"{PROCESSING}/input/batch"),
                processing_input("inference", cfg.env.inference_root_uri, f"{PROCESSING}/input/inference"),
                processing_input("predictions", batch.properties.TransformOutput.S3OutputPath,
                                 f"{PROCESSING}/input/predictions"),
                # the schema travels inside the model (one route, see scripts/steplib/schema.py)
                processing_input("model", model.model_data_url, f"{PROCESSING}/model")],
        outputs=[processing_output(out, f"{PROCESSING}/output/{out}", artifact_uri(cfg, name, out))
                 for out in ("data_check", "prediction_check", "model_quality", "ground_truth")]
        # labelled batches that pass the schema land where the HPO pipeline looks for them, one folder per
        # execution; those that do not are kept aside for a person, outside anything training reads
        + [processing_output("feedback", f"{PROCESSING}/output/feedback",
                             Join(on="/", values=[cfg.env.feedback_uri, ExecutionVariables.PIPELINE_EXECUTION_ID])),
           processing_output("quarantine", f"{PROCESSING}/output/quarantine", quarantine_uri)],
        arguments=["--object-key", object_key, "--input-prefix", input_prefix,
                   "--execution", ExecutionVariables.PIPELINE_EXECUTION_ID],
    ))

    *data_quality_shards, data_quality = _data_quality_steps(cfg, session, name, data_check, model)
    prediction_drift = _prediction_drift_step(cfg, session, name, data_check, model)

    quality = PropertyFile(name="ModelQualityReport", output_name="model_quality",
                           path=artifacts.file("model_quality"))
    model_quality = ProcessingStep(name=MODEL_QUALITY, property_files=[quality], retry_policies=retries,
                                   step_args=step_blocks.processor(cfg, session, f"{name}-model-quality").run(
        code=shipping.script("model_quality.py"),
        inputs=[processing_input("model_quality", output_of(data_check, "model_quality"),
                                 f"{PROCESSING}/input/model_quality")],
        outputs=[processing_output("model_quality", f"{PROCESSING}/output/model_quality",
                                   artifact_uri(cfg, name, "model-quality"))],
        arguments=["--mse-threshold", mse_threshold.to_string()],
    ))

    # The report reads the data-quality folder by its URI (the Model Monitor engine's QualityCheckStep has no
    # named outputs), so it depends on that step explicitly.
    report = ProcessingStep(name=REPORT, depends_on=[data_quality], retry_policies=retries,
                            step_args=step_blocks.processor(cfg, session, f"{name}-report").run(
        code=shipping.script("inference_report.py"),
        inputs=[processing_input("data_quality", data_quality_uri(cfg, name), f"{PROCESSING}/input/data_quality"),
                processing_input("baseline", model.baseline_statistics, f"{PROCESSING}/input/baseline"),
                processing_input("model_quality", output_of(model_quality, "model_quality"),
                                 f"{PROCESSING}/input/model_quality"),
                processing_input("ground_truth", output_of(data_check, "ground_truth"),
                                 f"{PROCESSING}/input/ground_truth"),
                *([processing_input("prediction_drift", output_of(prediction_drift, "prediction_drift"),
                                    f"{PROCESSING}/input/prediction_drift"),
                   processing_input("prediction_baseline", model.prediction_statistics,
                                    f"{PROCESSING}/input/prediction_baseline")] if prediction_drift else [])],
        outputs=[processing_output("report", f"{PROCESSING}/output/report", data_quality_uri(cfg, name))],
        arguments=["--title", Join(on=" ", values=["Batch inference", ExecutionVariables.PIPELINE_NAME,
                                                   ExecutionVariables.PIPELINE_EXECUTION_ID]),
                   "--model-package", model.arn, "--generated-at", ExecutionVariables.CURRENT_DATETIME],
    ))

    # The verdicts come last, as FailSteps: a step that fails stops the execution, so everything that must
    # run either way (data quality, model quality, the report) runs before them. Bad feedback wins over a
    # breach: a batch that fails the schema never starts retraining.
    mse = JsonGet(step_name=model_quality.name, property_file=quality, json_path="regression_metrics.mse.value")
    breach = FailStep(name=BREACH_FAIL, error_message=breach_message(mse, mse_threshold, object_key))
    mse_gate = ConditionStep(name=MSE_COND, conditions=[ConditionLessThanOrEqualTo(left=mse, right=mse_threshold)],
                             if_steps=[], else_steps=[breach])
    labelled = ConditionStep(
        name=GROUND_TRUTH_COND,
        conditions=[ConditionEquals(left=JsonGet(step_name=data_check.name, property_file=ground_truth,
                                                 json_path="available"), right=True)],
        if_steps=[mse_gate], else_steps=[])
    quarantined = FailStep(name=QUARANTINE_FAIL, error_message=Join(on="", values=[
        f"{MARKERS['feedback_quarantined']}: ",
        JsonGet(step_name=data_check.name, property_file=ground_truth, json_path="note"),
        " (kept under ", quarantine_uri, ")"]))
    verdict = ConditionStep(
        name=FEEDBACK_COND, depends_on=[report],
        conditions=[ConditionEquals(left=JsonGet(step_name=data_check.name, property_file=ground_truth,
                                                 json_path="quarantined"), right=False)],
        if_steps=[labelled], else_steps=[quarantined])

    return Pipeline(name=name, parameters=[object_key, mse_threshold],
                    steps=[create_model, preprocess, batch, data_check, *data_quality_shards, data_quality,
                           *([prediction_drift] if prediction_drift else []), model_quality, report, verdict],
                    sagemaker_session=session)


def withdrawn_pipeline(name: str, object_key: Any, mse_threshold: Any, why: str, session: PipelineSession) -> Pipeline:
    """The inference pipeline while no version may serve (the serving one was rejected and none is Approved):
    same name and parameters, so the data-arrival rule still starts it, and one FailStep, so every batch ends
    Failed with the reason in the digest instead of being scored by the rejected model. The next approval
    deploys the real pipeline over it."""
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import FailStep, Pipeline

    refuse = FailStep(name=NO_SERVING_MODEL, error_message=Join(on="", values=[
        f"{MARKERS['no_serving_model']}: batch ", object_key, f" was not scored: {why}"]))
    return Pipeline(name=name, parameters=[object_key, mse_threshold], steps=[refuse], sagemaker_session=session)


def main(argv: list[str] | None = None) -> int:
    return cli.run_cli("inference", build, "Batch inference with data- and model-quality monitoring", argv)


if __name__ == "__main__":
    raise SystemExit(main())
