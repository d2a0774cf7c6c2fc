"""One typed, validated configuration for the three pipeline scripts.

Sources, in order:
  * ``env_files/<env>.tfvars`` -- the Terraform variables, shared with ``terraform -var-file``.
    Read through the Terraform module itself (pipeline_scripts.tfmodule, tfparse): every key must be
    declared in ``variables.tf`` and pass its validation blocks, evaluated as Terraform evaluates them
    (their rules live in ``contracts/tfvars_rules.json``), so both sides accept and reject the same files.
    Pipeline names and the model package group come from the module's locals (contracts/pipelines.json and
    the data set schema, overridable by ``pipeline_names`` / ``model_package_group_name``).
  * ``pipeline_scripts/<pipeline>.yaml`` -- SageMaker settings of one pipeline
    (instance types, framework, hyperparameters, tuning ranges, thresholds); their schemas, classes and
    cross-field rules are in pipeline_scripts/settings.py.

The YAML is checked against JSON Schemas; a bad value stops with an error naming the
file, the key and what was expected. Both then load into frozen dataclasses, read as attributes
(``cfg.settings.processing.instance_type``, ``cfg.env.bucket_name``): EnvConfig has one typed field per
variable of variables.tf, and each settings schema object has its class (TrainingSettings, Processing, ...),
whose defaults are those of the schema's optional keys. tests/unit/test_typed_config.py keeps classes, schemas and
variables.tf in step.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import hcl2
import jsonschema
import yaml
from pydantic import TypeAdapter, ValidationError

from pipeline_scripts import settings, tfmodule
from pipeline_scripts.contracts import PIPELINES
from pipeline_scripts.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = PROJECT_ROOT / "env_files" / "dev_env.tfvars"
VARIABLES_TF = PROJECT_ROOT / "variables.tf"


# --- typed environment ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class CustomNotification:
    """One entry of ``custom_notification_config``."""

    step_role: str
    step_status: str
    step_custom_message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvConfig:
    """The Terraform variables: one field per ``variable`` of variables.tf (tests/unit/test_typed_config.py checks
    it), valued as Terraform evaluates them for the tfvars file (defaults filled in), plus the file it came from.

    ``pipeline_names`` and ``model_package_group_name`` hold the names in force, the module's locals of the
    same names: the tfvars override where it sets one, else the default derived from the data set schema and
    contracts/pipelines.json."""

    source: Path
    # identity
    environment: str
    aws_region: str
    user_id: str
    # S3 layout
    bucket_name: str
    bucket_prefix: str
    bucket_train_prefix: str
    bucket_inf_prefix: str
    upload_training_data: bool
    upload_inference_data: bool
    # notifications
    notification_function_name: str
    email_recipient: tuple[str, ...]
    notify_clean_runs: bool
    custom_notification_config: tuple[CustomNotification, ...]
    idempotency_ttl_hours: float
    # SageMaker pipelines
    pipeline_names: Mapping[str, str]  # contract key -> SageMaker pipeline name, every key of the contract
    recreate_pipelines: bool
    model_package_group_name: str
    accuracy_mse_threshold: float
    pipeline_schedules: Mapping[str, str]
    # security, networking
    role_arn: str
    kms_key: str
    subnet_id: str
    sg_id: str
    # Lambda packaging and limits
    lambda_zip_path: str
    lambda_runtime: str
    lambda_reserved_concurrency: int
    log_retention_days: int
    code_signing_config_arn: str
    # GitLab deploy trigger
    gitlab_project_id: str
    gitlab_api_url: str
    gitlab_trigger_token_secret_arn: str
    gitlab_trigger_token_kms_key_arn: str
    gitlab_trigger_ref: str
    deploy_trigger_function_name: str

    def pipeline_name(self, key: str) -> str:
        try:
            return self.pipeline_names[key]
        except KeyError:
            raise ConfigError(f"{self.source}: no pipeline {key!r} (contracts/pipelines.json: {', '.join(self.pipeline_names)})") from None

    @property
    def region(self) -> str:
        return self.aws_region

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


# --- one pipeline's configuration ----------------------------------------------------------

SettingsT = TypeVar("SettingsT", bound=settings.PipelineSettings, covariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    """What the command line adds to the files (the pipelines that serve a model: which approved version)."""

    model_package_arn: str | None = None  # --model-package-arn
    model_package_description: Path | None = None  # --model-package-description: a saved DescribeModelPackage
    withdraw_if_none: bool = False  # --withdraw-if-none: no Approved version -> a pipeline that refuses batches


@dataclass(frozen=True)  # no slots: a slotted generic dataclass cannot be instantiated as PipelineConfig[...](...)
class PipelineConfig(Generic[SettingsT]):
    """Everything one pipeline script needs: the environment plus its own YAML, typed by its builder's
    SETTINGS_CLASS (a builder annotates ``PipelineConfig[TrainingSettings]``)."""

    kind: str
    env: EnvConfig
    settings: SettingsT
    settings_source: Path
    options: BuildOptions = BuildOptions()

    @property
    def mse_threshold(self) -> float:
        # the YAML may override the shared Terraform threshold for one pipeline
        override = self.settings.mse_threshold
        return float(override if override is not None else self.env.accuracy_mse_threshold)


_T = TypeVar("_T")
_ADAPTERS: dict[type, TypeAdapter[Any]] = {}  # building one takes milliseconds: once per class


def _typed(cls: type[_T], data: Mapping[str, Any], source: Path) -> _T:
    """``data``, already validated (JSON Schema or variables.tf), as an instance of ``cls``. A failure here is a
    class that disagrees with its schema, which tests/unit/test_typed_config.py rules out for the shipped ones."""
    adapter = _ADAPTERS.get(cls) or _ADAPTERS.setdefault(cls, TypeAdapter(cls))
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: the validated configuration does not fit {cls.__name__} "
                          f"(the class and its schema disagree): {exc}") from None


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
    values = {name: module.values.get(name) for name in module.variables}
    # the names in force (module locals): the tfvars override, else the default derived from the schema/contract
    values.update(pipeline_names=module.locals["pipeline_names"],
                  model_package_group_name=module.locals["model_package_group_name"])
    return _typed(EnvConfig, {"source": path, **values}, path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key set twice in one mapping is an error: PyYAML keeps the last value
    without a word (the YAML spec requires unique keys), so an edit below an old value would silently win or lose."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is set twice (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_settings(kind: str, path: Path | str) -> settings.PipelineSettings:
    """The pipeline's YAML, validated against its builder's SETTINGS_SCHEMA (and the cross-field rules of settings.py),
    as an instance of its builder's SETTINGS_CLASS."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        with path.open() as handle:  # (a file, not its text: the error names it with line and column)
            data = yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    _validate(data, settings_schema(kind), path)
    settings.check_ranges(data, path)
    settings.check_algorithm(data, path)
    return _typed(settings_class(kind), data, path)


def _contract(kind: str):
    try:
        return PIPELINES[kind]
    except KeyError:
        raise ConfigError(f"unknown pipeline kind {kind!r}; expected one of {sorted(PIPELINES)} (contracts/pipelines.json)") from None


def _builder_attribute(kind: str, name: str, what: str) -> Any:
    builder = importlib.import_module(_contract(kind).builder)
    try:
        return getattr(builder, name)
    except AttributeError:
        raise ConfigError(f"{builder.__file__}: the builder of pipeline {kind!r} defines no {name} ({what})") from None


def settings_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a pipeline's YAML: SETTINGS_SCHEMA of the builder contracts/pipelines.json names for it."""
    return _builder_attribute(kind, "SETTINGS_SCHEMA", "the JSON Schema of its YAML")


def settings_class(kind: str) -> type[settings.PipelineSettings]:
    """The typed settings of a pipeline's YAML: SETTINGS_CLASS of its builder, the frozen dataclass whose
    fields are the properties of its SETTINGS_SCHEMA."""
    return _builder_attribute(kind, "SETTINGS_CLASS", "the settings class its YAML loads into, e.g. TrainingSettings")


def load_pipeline_config(kind: str, env_file: Path | str = DEFAULT_ENV_FILE, settings_file: Path | str | None = None,
                         options: BuildOptions = BuildOptions()) -> PipelineConfig[settings.PipelineSettings]:
    settings_path = Path(settings_file) if settings_file else PROJECT_ROOT / _contract(kind).settings
    env = load_env(env_file)
    return PipelineConfig(kind=kind, env=env, settings=load_settings(kind, settings_path),
                          settings_source=settings_path, options=options)
