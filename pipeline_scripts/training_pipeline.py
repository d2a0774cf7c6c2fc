"""Training pipeline: preprocess, data-quality baseline, train, evaluate, MSE gate, register.

    python -m pipeline_scripts.training_pipeline [--env-file env_files/dev_env.tfvars]
                                                 [--config ...yaml] [--definition-out FILE]

The HPO pipeline (training_hpo_pipeline.py) reuses ``build_training_pipeline`` with a
tuning step in place of the training step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

from steplib import artifacts

from pipeline_scripts import cli, shipping, step_blocks
from pipeline_scripts.config import PipelineConfig
from pipeline_scripts.contracts import PREDICTION_BASELINE, STEPS
from pipeline_scripts.settings import TRAINING_SETTINGS, Feedback, TrainingSettings
from pipeline_scripts.shipping import PROCESSING
from pipeline_scripts.step_blocks import artifact_uri, output_of, processing_input, processing_output

# The SageMaker SDK is imported inside the functions that use it: it needs a region when it is
# imported, which the command line knows only after parsing (sdk_adapter.load_sdk).
if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep, TrainingStep
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import InputData

# Step names are an interface (EventBridge rules, notifications): contracts/pipelines.json holds them.
PREPROCESS = STEPS["training_preprocess"]
PREPROCESS_SHARDS = STEPS["training_preprocess_shards"]
BASELINE = STEPS["data_quality_baseline"]
BASELINE_SHARDS = STEPS["data_quality_baseline_shards"]
TRAIN = STEPS["training"]
EVALUATE = STEPS["evaluation"]
CONDITION = STEPS["mse_condition"]
REGISTER = STEPS["register"]
FAIL = STEPS["mse_threshold_fail"]

# The serving functions (model_fn, predict_fn, ...) live in train.py, which the training job
# copies into the model artifact's code/ folder, so a model package is self-contained.
SERVING_ENV = {"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}

SETTINGS_SCHEMA = TRAINING_SETTINGS  # its YAML's JSON Schema (config.settings_schema)
SETTINGS_CLASS = TrainingSettings  # what its YAML loads into (config.settings_class)
TrainingConfig = PipelineConfig[TrainingSettings]
_S = TypeVar("_S", bound=TrainingSettings)  # the settings of a pipeline built on this one (TrainingHpoSettings)
# (cfg, session, pipeline name, preprocessing step) -> (training-like step, model.tar.gz URI)
ModelStepFactory = Callable[[PipelineConfig[_S], "PipelineSession", str, "ProcessingStep"], tuple[Any, Any]]
FEEDBACK_DIR = f"{PROCESSING}/input/feedback"


def model_trainer(cfg: TrainingConfig, session: PipelineSession, pipeline_name: str,
                  source_dir: str = str(shipping.SCRIPTS_DIR)) -> ModelTrainer:
    """A ModelTrainer running scripts/train.py. The SDK uploads a local ``source_dir`` under the
    project prefix with the output key; pass an S3 sourcedir.tar.gz where it would not (tuning)."""
    from sagemaker.core.shapes import OutputDataConfig
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, Networking, SourceCode, StoppingCondition

    training = cfg.settings.training
    vpc = step_blocks.vpc_config(cfg) or {}
    return ModelTrainer(
        training_image=step_blocks.image_uri(cfg, training.instance_type),
        role=cfg.env.role_arn,
        sagemaker_session=session,
        base_job_name=f"{pipeline_name}-train",
        source_code=SourceCode(source_dir=source_dir, entry_script="train.py"),
        compute=Compute(instance_type=training.instance_type, instance_count=training.instance_count,
                        volume_size_in_gb=training.volume_size_gb,
                        volume_kms_key_id=step_blocks.kms_key(cfg)),
        networking=Networking(subnets=vpc.get("Subnets"), security_group_ids=vpc.get("SecurityGroupIds") or None,
                              enable_inter_container_traffic_encryption=True),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=training.max_runtime_seconds),
        hyperparameters={k: str(v) for k, v in training.hyperparameters.items()},
        # model artifacts under the project prefix, encrypted with the project key
        output_data_config=OutputDataConfig(s3_output_path=cfg.env.s3_uri("artifacts", pipeline_name, "models"),
                                            kms_key_id=step_blocks.kms_key(cfg), compression_type="GZIP"),
    )


def training_channels(pre: ProcessingStep) -> list[InputData]:
    from sagemaker.train.configs import InputData

    return [InputData(channel_name=name, data_source=output_of(pre, name), content_type="text/csv")
            for name in ("train", "validation", "preprocessor")]


def training_step(cfg: TrainingConfig, session: PipelineSession, pipeline_name: str,
                  pre: ProcessingStep) -> tuple[TrainingStep, Any]:
    from sagemaker.mlops.workflow import TrainingStep

    trainer = model_trainer(cfg, session, pipeline_name)
    step = TrainingStep(name=TRAIN, step_args=trainer.train(input_data_config=training_channels(pre)),
                        retry_policies=step_blocks.retry_policies())
    return step, step.properties.ModelArtifacts.S3ModelArtifacts


def _preprocess_steps(cfg: TrainingConfig, session: PipelineSession, name: str, data: Any, inputs: list,
                      arguments: list) -> list[Any]:
    """The training preprocessing; with more than one instance, a shard step first: every instance parses and
    validates its ShardedByS3Key share of ``data`` into parts, and the preprocessing step (one
    instance: cleaning, split and fit need every row) reads the parts instead of the raw files. Same outputs
    as one pass (scripts/preprocess_training.py)."""
    from sagemaker.mlops.workflow import ProcessingStep

    outputs = [processing_output(out, f"{PROCESSING}/output/{out}", artifact_uri(cfg, name, "preprocess", out))
               for out in ("train", "validation", "test", "baseline", "preprocessor")]
    schema = inputs[:1]  # the shards validate against the schema; feedback is the merge's (a global window)
    shards = []
    if cfg.settings.processing.instances("training_preprocess") > 1:
        shards = [ProcessingStep(name=PREPROCESS_SHARDS, retry_policies=step_blocks.retry_policies(), step_args=step_blocks.processor(
            cfg, session, f"{name}-preprocess-shards", "training_preprocess").run(
            code=shipping.script("preprocess_training.py"), inputs=[data, *schema], arguments=["--partial"],
            outputs=[processing_output("parts", f"{PROCESSING}/output/parts",
                                       artifact_uri(cfg, name, "preprocess", "parts"))]))]
        data = processing_input("parts", output_of(shards[0], "parts"), f"{PROCESSING}/input/parts")
        arguments = [*arguments, "--parts-dir", f"{PROCESSING}/input/parts"]
    merger = step_blocks.processor(cfg, session, f"{name}-preprocess", "training_preprocess")
    merger.instance_count = 1  # cleaning, the split and the fit see every row
    return [*shards, ProcessingStep(name=PREPROCESS, retry_policies=step_blocks.retry_policies(), step_args=merger.run(
        code=shipping.script("preprocess_training.py"), inputs=[data, *inputs], arguments=arguments, outputs=outputs))]


def _baseline_steps(cfg: TrainingConfig, session: PipelineSession, pipeline_name: str,
                    pre: ProcessingStep, schema_uri: str) -> list[Any]:
    """Data-quality baseline of the training split: our engine by default, Model Monitor on request.
    The last step writes statistics.json/constraints.json; with more than one instance a sharded step
    comes first (see step_blocks.sharded_data_quality)."""
    from sagemaker.mlops.workflow import ProcessingStep

    destination = artifact_uri(cfg, pipeline_name, "data-quality-baseline")
    if cfg.settings.data_quality.engine == "model_monitor":
        from sagemaker.core.model_monitor.dataset_format import DatasetFormat
        from sagemaker.mlops.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

        # QualityCheck steps take no RetryPolicies (SageMaker supports them on job steps only)
        return [QualityCheckStep(
            name=BASELINE, skip_check=True, register_new_baseline=True,
            quality_check_config=DataQualityCheckConfig(
                baseline_dataset=output_of(pre, "baseline"), dataset_format=DatasetFormat.csv(header=True),
                output_s3_uri=destination),
            check_job_config=step_blocks.check_job_config(cfg, session, "data_quality_baseline"))]
    drift = _drift_arguments(cfg)
    if cfg.settings.processing.instances("data_quality_baseline") > 1:
        return step_blocks.sharded_data_quality(
            cfg, session, f"{pipeline_name}-dq-baseline", "data_quality_baseline", BASELINE_SHARDS, BASELINE,
            sharded=processing_input("baseline", output_of(pre, "baseline"), f"{PROCESSING}/input/baseline", sharded=True),
            inputs=[processing_input("schema", schema_uri, f"{PROCESSING}/input/schema")],
            output=("baseline", destination), command="baseline", merge_arguments=drift)
    args = step_blocks.processor(cfg, session, f"{pipeline_name}-dq-baseline", "data_quality_baseline").run(
        code=shipping.script("data_quality.py"),
        inputs=[processing_input("baseline", output_of(pre, "baseline"), f"{PROCESSING}/input/baseline"),
                processing_input("schema", schema_uri, f"{PROCESSING}/input/schema")],
        outputs=[processing_output("baseline", f"{PROCESSING}/output", destination)],
        arguments=["baseline", *drift],
    )
    return [ProcessingStep(name=BASELINE, step_args=args, retry_policies=step_blocks.retry_policies())]


def _drift_arguments(cfg: TrainingConfig) -> list[str]:
    """The drift sensitivity the YAML sets, as the data-quality script's options: it goes into the
    constraints.json of both baselines (features, predictions), which every later check reads."""
    return [a for key, value in cfg.settings.data_quality.drift.items() for a in (f"--{key.replace('_', '-')}", str(value))]


def _baseline_files(cfg: TrainingConfig, baseline: Any) -> tuple[Any, Any]:
    from sagemaker.core.workflow.functions import Join

    if cfg.settings.data_quality.engine == "model_monitor":
        return (baseline.properties.CalculatedBaselineStatistics,
                baseline.properties.CalculatedBaselineConstraints)
    folder = output_of(baseline, "baseline")
    return (Join(on="/", values=[folder, "statistics.json"]), Join(on="/", values=[folder, "constraints.json"]))


def build_training_pipeline(cfg: PipelineConfig[_S], session: PipelineSession, name: str,
                            make_model_step: ModelStepFactory[_S], feedback: Feedback | None = None) -> Pipeline:
    """The training DAG. ``feedback`` adds the newest ``feedback.max_batches`` labelled inference batches to
    the training data (retraining after a quality breach must learn the new regime)."""
    from sagemaker.core.shapes import (
        DriftCheckBaselines,
        DriftCheckModelDataQuality,
        MetricsSource,
        ModelDataQuality,
        ModelMetrics,
        ModelQuality,
    )
    from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ConditionStep, FailStep, Pipeline, ProcessingStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    retries = step_blocks.retry_policies()
    schema_uri = shipping.upload_schema(cfg, session)
    split = cfg.settings.split
    registration = cfg.settings.registration

    training_data = ParameterString(name="TrainingData", default_value=cfg.env.training_data_uri)
    feedback_data = ParameterString(name="FeedbackData", default_value=cfg.env.feedback_uri)
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=cfg.mse_threshold)
    approval_status = ParameterString(name="ModelApprovalStatus", default_value=registration.approval_status)

    inputs = [processing_input("schema", schema_uri, f"{PROCESSING}/input/schema")]
    arguments = ["--validation-ratio", str(split.validation_ratio), "--test-ratio", str(split.test_ratio),
                 "--seed", str(split.seed)]
    if feedback is not None:
        inputs.append(processing_input("feedback", feedback_data, FEEDBACK_DIR))
        arguments += ["--feedback-dir", FEEDBACK_DIR, "--feedback-window", str(feedback.max_batches)]
    data = processing_input("data", training_data, f"{PROCESSING}/input/data",
                            sharded=cfg.settings.processing.instances("training_preprocess") > 1)
    *preprocess_shards, pre = _preprocess_steps(cfg, session, name, data, inputs, arguments)
    *baseline_shards, baseline = _baseline_steps(cfg, session, name, pre, schema_uri)
    train, model_data = make_model_step(cfg, session, name, pre)

    evaluation = PropertyFile(name="EvaluationReport", output_name="evaluation",
                              path=artifacts.file("evaluation"))
    evaluate = ProcessingStep(name=EVALUATE, property_files=[evaluation], retry_policies=retries,
                              step_args=step_blocks.processor(cfg, session, f"{name}-evaluate", "evaluation").run(
        code=shipping.script("evaluate.py"),
        # the threshold is checked against the target's variance; the drift options shape the prediction baseline
        arguments=["--mse-threshold", mse_threshold.to_string(), *_drift_arguments(cfg)],
        inputs=[processing_input("model", model_data, f"{PROCESSING}/model"),
                processing_input("test", output_of(pre, "test"), f"{PROCESSING}/test")],
        outputs=[processing_output("evaluation", f"{PROCESSING}/evaluation", artifact_uri(cfg, name, "evaluation"))],
    ))

    statistics, constraints = _baseline_files(cfg, baseline)
    evaluation_uri = Join(on="/", values=[output_of(evaluate, "evaluation"), artifacts.file("evaluation")])
    metrics = ModelMetrics(
        model_quality=ModelQuality(statistics=MetricsSource(s3_uri=evaluation_uri, content_type="application/json")),
        model_data_quality=ModelDataQuality(
            statistics=MetricsSource(s3_uri=statistics, content_type="application/json"),
            constraints=MetricsSource(s3_uri=constraints, content_type="application/json")))
    drift_baselines = DriftCheckBaselines(model_data_quality=DriftCheckModelDataQuality(
        statistics=MetricsSource(s3_uri=statistics, content_type="application/json"),
        constraints=MetricsSource(s3_uri=constraints, content_type="application/json")))
    builder = ModelBuilder(s3_model_data_url=model_data, image_uri=step_blocks.image_uri(cfg, "ml.m5.xlarge"),
                           env_vars=dict(SERVING_ENV), role_arn=cfg.env.role_arn, sagemaker_session=session)
    register = ModelStep(name=REGISTER, retry_policies=step_blocks.retry_policies(job=False), step_args=builder.register(
        model_package_group_name=cfg.env.model_package_group_name,
        content_types=["text/csv"], response_types=["text/csv"],
        inference_instances=_listed(registration.inference_instances),
        transform_instances=_listed(registration.transform_instances),
        approval_status=approval_status, model_metrics=metrics, drift_check_baselines=drift_baselines,
        description=registration.description,
        customer_metadata_properties={
            "approver": registration.approver, "pipeline": name,
            # the model-output baseline evaluate.py writes; the inference pipeline's prediction-drift check reads it
            **{PREDICTION_BASELINE[kind]: Join(on="/", values=[output_of(evaluate, "evaluation"),
                                                                 artifacts.file(f"prediction_baseline_{kind}")])
               for kind in ("statistics", "constraints")}},
    ))
    test_mse = JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="regression_metrics.mse.value")
    fail = FailStep(name=FAIL, error_message=Join(on=" ", values=[
        "Test-split MSE", test_mse, "is above the threshold", mse_threshold, "; the model was not registered."]))
    gate = ConditionStep(
        name=CONDITION,
        conditions=[ConditionLessThanOrEqualTo(left=test_mse, right=mse_threshold)],
        if_steps=[register], else_steps=[fail])

    parameters = [training_data, *([feedback_data] if feedback is not None else []), mse_threshold, approval_status]
    return Pipeline(name=name, parameters=parameters,
                    steps=[*preprocess_shards, pre, *baseline_shards, baseline, train, evaluate, gate], sagemaker_session=session)


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values is not None else None


def build(cfg: TrainingConfig, session: PipelineSession) -> Pipeline:
    return build_training_pipeline(cfg, session, cfg.env.pipeline_name("training"), training_step)


def main(argv: list[str] | None = None) -> int:
    return cli.run_cli("training", build, "Training: preprocess, baseline, train, evaluate, register", argv)


if __name__ == "__main__":
    raise SystemExit(main())
