"""One typed, validated configuration for the three pipeline scripts.

Sources, in order:
  * ``env_files/<env>.tfvars`` -- the Terraform variables, shared with ``terraform -var-file``.
    Read through the Terraform module itself (pipeline_scripts.tfmodule, tfparse): every key must be
    declared in ``variables.tf`` and pass its validation blocks, evaluated as Terraform evaluates them
    (their rules live in ``tfvars_rules.json``), so both sides accept and reject the same files.
    Pipeline names and the model package group come from the module's locals (contracts.json and
    the data set schema, overridable by ``pipeline_names`` / ``model_package_group_name``).
  * ``pipeline_scripts/<pipeline>.yaml`` -- SageMaker settings of one pipeline
    (instance types, framework, hyperparameters, tuning ranges, thresholds).

The YAML is checked against JSON Schemas; a bad value stops with an error naming the
file, the key and what was expected.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import yaml
from steplib import algorithms
from steplib.dataquality import DRIFT_SETTINGS

from pipeline_scripts import tfmodule
from pipeline_scripts.contracts import PIPELINES, STEPS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = PROJECT_ROOT / "env_files" / "dev_env.tfvars"
VARIABLES_TF = PROJECT_ROOT / "variables.tf"


class ConfigError(ValueError):
    """A configuration file is missing, unparsable or holds a wrong value."""


# --- schemas -----------------------------------------------------------------------------

_INSTANCE = {"type": "string", "pattern": r"^ml\.[a-z0-9]+\.[a-z0-9]+$"}
_COUNT = {"type": "integer", "minimum": 1}

# The processing steps that shard their input (ShardedByS3Key) over several instances, by contracts.json role.
# Every other processing step reads its whole input and runs on one instance: a second one would redo the
# same work and write the same files (S3 would keep one copy), so it is never started.
SHARDED_ROLES = ("training_preprocess", "data_quality_baseline", "inference_preprocess", "data_quality_check")

_PROCESSING = {
    "type": "object", "additionalProperties": False,
    "required": ["instance_type", "instance_count"],
    "properties": {"instance_type": _INSTANCE, "instance_count": _COUNT,
                   # per-step instance counts, keyed by the step roles of contracts.json that shard
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
_HYPERPARAMETERS = {  # names, types and ranges per algorithm: _check_algorithm (steplib/algorithms.py)
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

# The settings schemas of the template's builders; each builder names its own as SETTINGS_SCHEMA, so a new
# pipeline brings its schema with its builder (or reuses one of these).
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


# --- typed result ------------------------------------------------------------------------

@dataclass(frozen=True)
class EnvConfig:
    """The Terraform variables the pipelines use (typed view of the tfvars file)."""

    source: Path
    values: dict[str, Any]
    pipeline_names: dict[str, str] = field(default_factory=dict)  # contract key -> SageMaker pipeline name
    model_package_group: str = ""

    def pipeline_name(self, key: str) -> str:
        try:
            return self.pipeline_names[key]
        except KeyError:
            raise ConfigError(f"{self.source}: no pipeline {key!r} (contracts.json: {', '.join(self.pipeline_names)})") from None

    def __getattr__(self, name: str) -> Any:  # tfvars keys as attributes: cfg.env.bucket_name
        if name == "model_package_group_name":
            return self.model_package_group
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def region(self) -> str:
        return self.values.get("aws_region", "us-east-1")

    def s3_uri(self, *parts: str) -> str:
        key = "/".join(p.strip("/") for p in (self.bucket_prefix, *parts) if p)
        return f"s3://{self.bucket_name}/{key}"

    @property
    def training_data_uri(self) -> str:
        return self.s3_uri(self.bucket_train_prefix)

    @property
    def inference_root_uri(self) -> str:
        return self.s3_uri(self.bucket_inf_prefix)

    @property
    def inference_input_uri(self) -> str:
        return self.s3_uri(self.bucket_inf_prefix, "input")

    @property
    def ground_truth_uri(self) -> str:
        return self.s3_uri(self.bucket_inf_prefix, "ground-truth")

    @property
    def feedback_uri(self) -> str:
        """Labelled inference batches (features + ground truth) that HPO retraining learns from."""
        return self.s3_uri("feedback")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one pipeline script needs: the environment plus its own YAML."""

    kind: str
    env: EnvConfig
    settings: dict[str, Any]
    settings_source: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mse_threshold(self) -> float:
        # the YAML may override the shared Terraform threshold for one pipeline
        override = self.settings.get("mse_threshold")
        return float(override if override is not None else self.env.accuracy_mse_threshold)


# --- loading -------------------------------------------------------------------------------

def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "required":
        return f"missing key {error.message.split(' is a required')[0]} under '{key}'"
    if error.validator == "additionalProperties":
        return f"unknown key under '{key}': {error.message}"
    expected = {"pattern": f"a value matching {error.validator_value!r}",
                "enum": f"one of {error.validator_value}",
                "type": f"type {error.validator_value}",
                "minimum": f">= {error.validator_value}", "maximum": f"<= {error.validator_value}",
                "exclusiveMinimum": f"> {error.validator_value}",
                "exclusiveMaximum": f"< {error.validator_value}"}.get(error.validator, error.message)
    return f"key '{key}': expected {expected}, got {json.dumps(error.instance, default=str)}"


def _validate(data: Any, schema: dict[str, Any], source: Path) -> None:
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"{source}: invalid configuration:\n  {lines}")


def _tfvars_keys(path: Path) -> list[str]:
    """The keys a tfvars file sets. python-hcl2 only lists them (tfparse, which evaluates the
    values, does not report keys that variables.tf does not declare)."""
    try:
        with path.open() as handle:
            return [k for k in hcl2.load(handle) if not k.startswith("__")]
    except Exception as exc:  # lark raises many error types; all mean "not valid HCL"
        raise ConfigError(f"{path}: not valid HCL: {exc}".strip()) from exc


def declared_variables(variables_tf: Path = VARIABLES_TF) -> set[str]:
    """Names of the variables declared in the module of variables.tf."""
    return set(tfmodule.load(variables_tf.parent).variables)


def load_env(path: Path | str = DEFAULT_ENV_FILE, variables_tf: Path = VARIABLES_TF) -> EnvConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    keys = _tfvars_keys(path)
    try:
        module = tfmodule.load(variables_tf.parent, path)
    except tfmodule.TerraformConfigError as exc:
        raise ConfigError(str(exc)) from None
    problems = []
    undeclared = sorted(set(keys) - set(module.variables))
    if undeclared:
        problems.append(f"keys not declared in {variables_tf.name}: {', '.join(undeclared)}")
    problems += module.validation_errors(set_keys=set(keys))
    if problems:
        raise ConfigError(f"{path}: invalid configuration (variables.tf rules, as terraform plan applies them):\n  "
                          + "\n  ".join(problems))
    return EnvConfig(source=path, values=dict(module.values), pipeline_names=dict(module.locals["pipeline_names"]),
                     model_package_group=module.locals["model_package_group_name"])


def load_settings(kind: str, path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    _validate(data, settings_schema(kind), path)
    _check_ranges(data, path)
    _check_algorithm(data, path)
    return data


def _check_ranges(data: dict[str, Any], path: Path) -> None:
    """Cross-field rules a JSON Schema cannot express."""
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


def _check_algorithm(data: dict[str, Any], path: Path) -> None:
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


def _contract(kind: str):
    try:
        return PIPELINES[kind]
    except KeyError:
        raise ConfigError(f"unknown pipeline kind {kind!r}; expected one of {sorted(PIPELINES)} (contracts.json)") from None


def settings_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a pipeline's YAML: SETTINGS_SCHEMA of the builder contracts.json names for it."""
    builder = importlib.import_module(_contract(kind).builder)
    try:
        return builder.SETTINGS_SCHEMA
    except AttributeError:
        raise ConfigError(f"{builder.__file__}: the builder of pipeline {kind!r} defines no SETTINGS_SCHEMA "
                          "(the JSON Schema of its YAML)") from None


def load_pipeline_config(kind: str, env_file: Path | str = DEFAULT_ENV_FILE,
                         settings_file: Path | str | None = None) -> PipelineConfig:
    settings_path = Path(settings_file) if settings_file else PROJECT_ROOT / _contract(kind).settings
    env = load_env(env_file)
    return PipelineConfig(kind=kind, env=env, settings=load_settings(kind, settings_path),
                          settings_source=settings_path)
