"""The pipelines' YAML settings: their JSON Schemas, the frozen dataclasses they load into, and the cross-field
rules a schema cannot express.

The schemas are the source of truth (their messages name the file, the key and what was expected); each
builder publishes its own as SETTINGS_SCHEMA (composed of the pieces here) and its class as SETTINGS_CLASS.
pipeline_scripts/config.py loads a YAML file through them. tests/unit/test_typed_config.py keeps schemas and
classes in step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from steplib import algorithms
from steplib.dataquality import DRIFT_SETTINGS

from pipeline_scripts.errors import ConfigError

# --- schemas -----------------------------------------------------------------------------

_INSTANCE = {"type": "string", "pattern": r"^ml\.[a-z0-9]+\.[a-z0-9]+$"}
_COUNT = {"type": "integer", "minimum": 1}

# The processing steps that shard their input (ShardedByS3Key) over several instances, by contracts/pipelines.json role.
# Every other processing step reads its whole input and runs on one instance: a second one would redo the
# same work and write the same files (S3 would keep one copy), so it is never started.
SHARDED_ROLES = ("training_preprocess", "data_quality_baseline", "inference_preprocess", "data_quality_check")

_PROCESSING = {
    "type": "object", "additionalProperties": False,
    "required": ["instance_type", "instance_count"],
    "properties": {"instance_type": _INSTANCE, "instance_count": _COUNT,
                   # per-step instance counts, keyed by the step roles of contracts/pipelines.json that shard
                   "instance_counts": {"type": "object", "propertyNames": {"enum": list(SHARDED_ROLES)},
                                       "additionalProperties": _COUNT},
                   "volume_size_gb": {"type": "integer", "minimum": 1, "maximum": 16384},
                   "max_runtime_seconds": {"type": "integer", "minimum": 60}},
}
_FRAMEWORK = {
    "type": "object", "additionalProperties": False, "required": ["name", "version"],
    "properties": {"name": {"enum": ["sklearn", "xgboost"]}, "version": {"type": "string"},
                   "py_version": {"type": "string"}},
}
_HYPERPARAMETERS = {  # names, types and ranges per algorithm: check_algorithm (steplib/algorithms.py)
    "type": "object",
    "properties": {"algorithm": {"enum": list(algorithms.ALGORITHMS)}},
    "additionalProperties": {"type": ["string", "number"]},
}
_RANGE = {
    "type": "object", "additionalProperties": False, "required": ["type"],
    "properties": {
        "type": {"enum": ["integer", "continuous", "categorical"]},
        "min": {"type": "number"}, "max": {"type": "number"},
        "values": {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}},
        "scaling": {"enum": ["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]},
    },
}
_REGISTRATION = {
    "type": "object", "additionalProperties": False,
    "required": ["approval_status"],
    "properties": {
        "approval_status": {"enum": ["PendingManualApproval", "Approved", "Rejected"]},
        "approver": {"type": "string"},
        "inference_instances": {"type": "array", "items": _INSTANCE, "minItems": 1},
        "transform_instances": {"type": "array", "items": _INSTANCE, "minItems": 1},
        "description": {"type": "string"},
    },
}
_DATA_QUALITY = {
    "type": "object", "additionalProperties": False, "required": ["engine"],
    "properties": {"engine": {"enum": ["builtin", "model_monitor"]}},
}
# The baseline (training pipelines) also sets how much drift the checks flag: Model Monitor's
# distribution_constraints (DRIFT_SETTINGS), written into the baseline's constraints.json (the builtin engine;
# Model Monitor's own baseline suggests its defaults). Inference reads them from the baseline it checks against.
_BASELINE_DATA_QUALITY = {**_DATA_QUALITY, "properties": {
    **_DATA_QUALITY["properties"],
    "comparison_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "comparison_method": {"enum": ["Robust", "Simple"]},
    "categorical_comparison_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
}}
_TRAINING_COMMON = {
    "framework": _FRAMEWORK,
    "processing": _PROCESSING,
    "training": {
        "type": "object", "additionalProperties": False,
        "required": ["instance_type", "instance_count", "hyperparameters"],
        "properties": {"instance_type": _INSTANCE, "instance_count": _COUNT,
                       "volume_size_gb": {"type": "integer", "minimum": 1},
                       "max_runtime_seconds": {"type": "integer", "minimum": 60},
                       "hyperparameters": _HYPERPARAMETERS},
    },
    "split": {
        "type": "object", "additionalProperties": False,
        "required": ["validation_ratio", "test_ratio", "seed"],
        "properties": {"validation_ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
                       "test_ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
                       "seed": {"type": "integer", "minimum": 0}},
    },
    "data_quality": _BASELINE_DATA_QUALITY,
    "registration": _REGISTRATION,
    "mse_threshold": {"type": ["number", "null"], "exclusiveMinimum": 0},
}

# The settings schemas of the template's builders; each builder names its own as SETTINGS_SCHEMA and the frozen
# dataclass it loads into as SETTINGS_CLASS (TrainingSettings, ... below), so a new pipeline brings both with its
# builder (or reuses these).
TRAINING_SETTINGS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["framework", "processing", "training", "split", "data_quality", "registration"],
    "properties": dict(_TRAINING_COMMON),
}
TRAINING_HPO_SETTINGS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["framework", "processing", "training", "split", "data_quality", "registration", "tuning"],
    "properties": {
        **_TRAINING_COMMON,
        "tuning": {
            "type": "object", "additionalProperties": False,
            "required": ["strategy", "max_jobs", "max_parallel_jobs", "objective", "ranges"],
            "properties": {
                "strategy": {"enum": ["Bayesian", "Random", "Hyperband", "Grid"]},
                "max_jobs": {"type": "integer", "minimum": 2, "maximum": 500},
                "max_parallel_jobs": {"type": "integer", "minimum": 1, "maximum": 100},
                "seed": {"type": "integer", "minimum": 0},
                "objective": {
                    "type": "object", "additionalProperties": False,
                    "required": ["metric", "type", "regex"],
                    "properties": {"metric": {"type": "string"}, "type": {"enum": ["Minimize", "Maximize"]},
                                   "regex": {"type": "string"}},
                },
                # a real search: at least two hyperparameters
                "ranges": {"type": "object", "minProperties": 2, "additionalProperties": _RANGE},
            },
        },
        # labelled inference batches retraining learns from: the newest max_batches, de-duplicated
        "feedback": {
            "type": "object", "additionalProperties": False, "required": ["max_batches"],
            "properties": {"max_batches": {"type": "integer", "minimum": 1, "maximum": 1000}},
        },
    },
}
INFERENCE_SETTINGS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["framework", "processing", "transform", "data_quality"],
    "properties": {
        "framework": _FRAMEWORK,
        "processing": _PROCESSING,
        "transform": {
            "type": "object", "additionalProperties": False,
            "required": ["instance_type", "instance_count"],
            "properties": {"instance_type": _INSTANCE, "instance_count": _COUNT,
                           "max_payload_mb": {"type": "integer", "minimum": 1, "maximum": 100},
                           # parts the inference preprocessing cuts each batch file into (default: instance_count)
                           "part_files": {"type": "integer", "minimum": 1, "maximum": 1000},
                           "max_concurrent_transforms": {"type": "integer", "minimum": 1}},
        },
        "data_quality": _DATA_QUALITY,
        "mse_threshold": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
}


# --- typed settings ------------------------------------------------------------------------
# One frozen dataclass per object of the schemas above, field for property: the YAML is validated against the
# schema (jsonschema, for its messages), then built into these (pydantic's TypeAdapter, _typed). A required
# property is a field without default; an optional one has the default the builders use when the YAML leaves it
# out, so no reader repeats it. Free-form maps (hyperparameters, ranges, instance_counts) stay mappings.
# tests/unit/test_typed_config.py walks every builder's schema against its class, so the two cannot drift.

@dataclass(frozen=True, slots=True, kw_only=True)
class Framework:
    """``framework``: the SageMaker framework image every job runs."""

    name: Literal["sklearn", "xgboost"]
    version: str
    py_version: str = "py3"


@dataclass(frozen=True, slots=True, kw_only=True)
class Processing:
    """``processing``: the processing jobs' instances, volume and time limit."""

    instance_type: str
    instance_count: int
    instance_counts: Mapping[str, int] = field(default_factory=dict)  # by SHARDED_ROLES role
    volume_size_gb: int = 30
    max_runtime_seconds: int | None = None  # None: SageMaker's default

    def instances(self, step_role: str | None) -> int:
        """Instances of one processing step. A step that shards its input (SHARDED_ROLES) gets
        ``instance_counts[<role>]``, else ``instance_count``; every other step reads its whole input and runs
        on one instance."""
        if step_role not in SHARDED_ROLES:
            return 1
        return self.instance_counts.get(step_role, self.instance_count)


@dataclass(frozen=True, slots=True, kw_only=True)
class Training:
    """``training``: the training job (also each job of a tuning)."""

    instance_type: str
    instance_count: int
    hyperparameters: Mapping[str, str | float | int]  # names and types: steplib/algorithms.py (check_algorithm)
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """``split``: the training data's validation and test fractions."""

    validation_ratio: float
    test_ratio: float
    seed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataQuality:
    """``data_quality`` of the inference pipeline: which engine checks a batch."""

    engine: Literal["builtin", "model_monitor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineDataQuality(DataQuality):
    """``data_quality`` of the training pipelines: the engine, and how much drift the checks flag
    (DRIFT_SETTINGS; None: the engine's default)."""

    comparison_threshold: float | None = None
    comparison_method: Literal["Robust", "Simple"] | None = None
    categorical_comparison_threshold: float | None = None

    @property
    def drift(self) -> dict[str, float | str]:
        """The drift settings the YAML sets, by DRIFT_SETTINGS name (the data-quality script's options)."""
        return {key: value for key in DRIFT_SETTINGS if (value := getattr(self, key)) is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """``registration``: how the training pipelines register a model version."""

    approval_status: Literal["PendingManualApproval", "Approved", "Rejected"]
    approver: str = ""
    inference_instances: tuple[str, ...] | None = None
    transform_instances: tuple[str, ...] | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterRange:
    """One entry of ``tuning.ranges``: min/max for integer and continuous ranges, values for categorical ones."""

    type: Literal["integer", "continuous", "categorical"]
    min: float | None = None
    max: float | None = None
    values: tuple[str | int | float, ...] | None = None
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class Objective:
    """``tuning.objective``: the metric the tuning minimizes, as train.py prints it."""

    metric: str
    type: Literal["Minimize", "Maximize"]
    regex: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Tuning:
    """``tuning``: the hyperparameter tuning job."""

    strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"]
    max_jobs: int
    max_parallel_jobs: int
    objective: Objective
    ranges: Mapping[str, ParameterRange]
    seed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    """``feedback``: the labelled inference batches retraining learns from."""

    max_batches: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Transform:
    """``transform``: the batch transform job."""

    instance_type: str
    instance_count: int
    max_payload_mb: int = 6
    part_files: int | None = None  # None: instance_count
    max_concurrent_transforms: int | None = None  # None: the instance type's vCPUs


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    """What every pipeline's YAML holds, and all the shared step blocks read: the image, the processing jobs,
    the threshold override. A builder's settings class (its SETTINGS_CLASS) extends it."""

    framework: Framework
    processing: Processing
    mse_threshold: float | None = None  # None: the tfvars' accuracy_mse_threshold


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingSettings(PipelineSettings):
    """training_pipeline.yaml (TRAINING_SETTINGS)."""

    training: Training
    split: Split
    data_quality: BaselineDataQuality
    registration: Registration


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingHpoSettings(TrainingSettings):
    """training_hpo_pipeline.yaml (TRAINING_HPO_SETTINGS)."""

    tuning: Tuning
    feedback: Feedback = Feedback(max_batches=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceSettings(PipelineSettings):
    """inference_pipeline.yaml (INFERENCE_SETTINGS)."""

    transform: Transform
    data_quality: DataQuality


# --- cross-field rules -------------------------------------------------------------------

def check_ranges(data: dict[str, Any], path: Path) -> None:
    """Cross-field rules a JSON Schema cannot express, on the validated YAML document (by the keys it holds,
    so they apply to every builder's schema that has them)."""
    training = data.get("training")
    if training and training["instance_count"] != 1:
        # SageMaker's own SKLearn estimator refuses it ("Scikit-Learn does not support distributed training",
        # sagemaker/sklearn/estimator.py); train.py's scikit-learn/XGBoost fit is one process on one host, so
        # a second instance would fit the same model again and both would write /opt/ml/model.
        raise ConfigError(f"{path}: key 'training.instance_count': expected 1, got {training['instance_count']} "
                          "(train.py fits on one instance; scikit-learn does not support distributed training)")
    transform = data.get("transform")
    if transform and transform.get("part_files", transform["instance_count"]) < transform["instance_count"]:
        raise ConfigError(f"{path}: key 'transform.part_files': expected >= transform.instance_count "
                          f"({transform['instance_count']}), got {transform['part_files']}: batch transform spreads "
                          "whole objects over its instances, so a one-file batch cut into fewer parts leaves "
                          "instances idle")
    quality = data.get("data_quality") or {}
    set_here = [key for key in DRIFT_SETTINGS if key in quality]
    if set_here and quality["engine"] == "model_monitor":  # they would be ignored without a word
        raise ConfigError(f"{path}: key 'data_quality.{set_here[0]}': only the builtin engine writes it into the "
                          "baseline; Model Monitor's baseline job suggests its own constraints.json (edit that "
                          "file's monitoring_config instead)")
    split = data.get("split")
    if split and split["validation_ratio"] + split["test_ratio"] >= 0.9:
        raise ConfigError(f"{path}: key 'split': validation_ratio + test_ratio must leave >= 10% for training")
    tuning = data.get("tuning")
    if not tuning:
        return
    if tuning["max_parallel_jobs"] > tuning["max_jobs"]:
        raise ConfigError(f"{path}: key 'tuning.max_parallel_jobs': expected <= max_jobs ({tuning['max_jobs']})")
    for name, spec in tuning["ranges"].items():
        where = f"{path}: key 'tuning.ranges.{name}'"
        if spec["type"] == "categorical":
            if "values" not in spec:
                raise ConfigError(f"{where}: categorical range needs 'values'")
        elif "min" not in spec or "max" not in spec or spec["min"] >= spec["max"]:
            raise ConfigError(f"{where}: expected numeric 'min' < 'max'")
        if name in data["training"]["hyperparameters"]:
            raise ConfigError(f"{where}: also set as a static hyperparameter in 'training.hyperparameters'")


def check_algorithm(data: dict[str, Any], path: Path) -> None:
    """Hyperparameters, tuning ranges and objective against the algorithm registry; the image must carry
    the algorithm's packages."""
    training = data.get("training")
    if not training:
        return
    hps = training["hyperparameters"]
    algorithm = algorithms.ALGORITHMS[hps.get("algorithm", algorithms.DEFAULT_ALGORITHM)]
    framework = data["framework"]["name"]
    if framework not in algorithm.images:
        raise ConfigError(
            f"{path}: key 'training.hyperparameters.algorithm': {algorithm.name} imports "
            f"{', '.join(algorithm.packages)}, which the SageMaker '{framework}' image does not carry; "
            f"set framework.name to one of {', '.join(algorithm.images)} or choose another algorithm")
    known = ", ".join(algorithm.names)
    for name, value in hps.items():
        if name == "algorithm":
            continue
        where = f"{path}: key 'training.hyperparameters.{name}'"
        if name not in algorithm.names:
            raise ConfigError(f"{where}: not a hyperparameter of {algorithm.name} (expected one of {known})")
        problem = algorithm.hyperparameter(name).problem(value)
        if problem:
            raise ConfigError(f"{where}: {problem}")
    tuning = data.get("tuning")
    if not tuning:
        return
    for name, spec in tuning["ranges"].items():
        where = f"{path}: key 'tuning.ranges.{name}'"
        if name not in algorithm.names:
            raise ConfigError(f"{where}: not a hyperparameter of {algorithm.name} (expected one of {known})")
        hp = algorithm.hyperparameter(name)
        if spec["type"] != "categorical" and spec["type"] != hp.tuning_type:
            raise ConfigError(f"{where}: {name} is {hp.type.__name__}; use type {hp.tuning_type} or categorical")
        bounds = [spec["min"], spec["max"]] if spec["type"] != "categorical" else spec["values"]
        for value in bounds:
            problem = hp.problem(value)
            if problem:
                raise ConfigError(f"{where}: {problem}")
    objective = tuning["objective"]
    if objective["metric"] != algorithms.OBJECTIVE_METRIC:
        raise ConfigError(f"{path}: key 'tuning.objective.metric': train.py reports {algorithms.OBJECTIVE_METRIC}, "
                          f"got {objective['metric']!r}")
    if objective["type"] != algorithms.OBJECTIVE_TYPE:
        raise ConfigError(f"{path}: key 'tuning.objective.type': {objective['metric']} is an error, it can only be "
                          f"minimized (Minimize), got {objective['type']!r}")
    sample = algorithms.OBJECTIVE_LINE.format(value=1.25)
    try:
        match = re.search(objective["regex"], sample)
    except re.error as exc:
        raise ConfigError(f"{path}: key 'tuning.objective.regex': not a valid regular expression ({exc})") from exc
    if not match or not match.groups() or match.group(1) != "1.250000":
        raise ConfigError(f"{path}: key 'tuning.objective.regex': must capture the value in train.py's line "
                          f"{sample!r} as its first group")
