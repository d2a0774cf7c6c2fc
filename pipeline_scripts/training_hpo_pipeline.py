"""Training pipeline with hyperparameter tuning, started when model quality breaks its threshold.

    python -m pipeline_scripts.training_hpo_pipeline [--env-file ...] [--config ...] [--definition-out FILE]

Same steps as the training pipeline, with a tuning step over the configured ranges in place
of the single training job; the best job's model is evaluated and registered. It trains on the
training data plus the labelled inference batches (FeedbackData) that revealed the breach. Its versions
carry ``approver: review-board`` and stay PendingManualApproval until the board approves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline_scripts import cli, shipping, step_blocks
from pipeline_scripts.config import PipelineConfig
from pipeline_scripts.contracts import STEPS
from pipeline_scripts.settings import TRAINING_HPO_SETTINGS, ParameterRange, TrainingHpoSettings
from pipeline_scripts.training_pipeline import build_training_pipeline, model_trainer, training_channels

if TYPE_CHECKING:  # the SDK is imported where it is used (see training_pipeline.py)
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep, TuningStep

TUNING = STEPS["tuning"]
SETTINGS_SCHEMA = TRAINING_HPO_SETTINGS  # its YAML's JSON Schema (config.settings_schema)
SETTINGS_CLASS = TrainingHpoSettings  # what its YAML loads into (config.settings_class)
HpoConfig = PipelineConfig[TrainingHpoSettings]


def parameter_ranges(ranges: Mapping[str, ParameterRange]) -> dict[str, Any]:
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

    built: dict[str, Any] = {}
    for name, spec in ranges.items():
        if spec.type == "categorical":
            built[name] = CategoricalParameter([str(v) for v in spec.values or ()])
            continue
        assert spec.min is not None and spec.max is not None  # settings.check_ranges: numeric ranges have both
        if spec.type == "integer":
            built[name] = IntegerParameter(int(spec.min), int(spec.max), scaling_type=spec.scaling)
        else:
            built[name] = ContinuousParameter(float(spec.min), float(spec.max), scaling_type=spec.scaling)
    return built


def tuning_step(cfg: HpoConfig, session: PipelineSession, pipeline_name: str,
                pre: ProcessingStep) -> tuple[TuningStep, Any]:
    from sagemaker.train.tuner import HyperparameterTuner

    tuning = cfg.settings.tuning
    # The SDK's tuner would upload the training code to the bucket root, unencrypted, under a
    # timestamped key; it takes ours from under the project prefix, encrypted with the project key.
    trainer = model_trainer(cfg, session, pipeline_name, source_dir=shipping.upload_training_code(cfg, session))
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=tuning.objective.metric,
        objective_type=tuning.objective.type,
        metric_definitions=[{"Name": tuning.objective.metric, "Regex": tuning.objective.regex}],
        hyperparameter_ranges=parameter_ranges(tuning.ranges),
        strategy=tuning.strategy,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        random_seed=tuning.seed,
        base_tuning_job_name=f"{pipeline_name}-hpo"[:32],
    )
    step = _tuning_step_class()(name=TUNING, step_args=tuner.tune(inputs=training_channels(pre)),
                                retry_policies=step_blocks.retry_policies(), volume_kms_key=step_blocks.kms_key(cfg))
    # The best job (index 0) writes its artifact under the trainer's output path.
    output = trainer.output_data_config.s3_output_path
    bucket, _, prefix = output[len("s3://"):].partition("/")
    return step, step.get_top_model_s3_uri(top_k=0, s3_bucket=bucket, prefix=prefix)


def _tuning_step_class() -> type:
    from sagemaker.mlops.workflow import TuningStep

    class EncryptedTuningStep(TuningStep):
        """A TuningStep whose training jobs keep the trainer's volume key and inter-container
        encryption: the SDK's tuner (3.27, HyperparameterTuner._build_training_job_definition)
        copies the trainer's instances and VPC into the tuning request but drops both."""

        def __init__(self, *args: Any, volume_kms_key: str | None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.volume_kms_key = volume_kms_key

        @property
        def arguments(self) -> dict[str, Any]:
            request = super().arguments
            definition = request["TrainingJobDefinition"]
            definition["EnableInterContainerTrafficEncryption"] = True
            if self.volume_kms_key:
                definition["ResourceConfig"]["VolumeKmsKeyId"] = self.volume_kms_key
            return request

    return EncryptedTuningStep


def build(cfg: HpoConfig, session: PipelineSession) -> Pipeline:
    return build_training_pipeline(cfg, session, cfg.env.pipeline_name("training_hpo"), tuning_step,
                                   feedback=cfg.settings.feedback)


def main(argv: list[str] | None = None) -> int:
    return cli.run_cli("training_hpo", build, "Training with hyperparameter tuning (review-board approval)", argv)


if __name__ == "__main__":
    raise SystemExit(main())
