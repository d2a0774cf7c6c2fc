"""Typed configuration: the validated tfvars and YAML load into frozen dataclasses, read as attributes.

The JSON Schemas (settings.py) and variables.tf stay the single source of truth; these tests keep the classes
in step with them, so a key added, renamed or made optional on one side and not the other fails here.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import types
import typing
from pathlib import Path

import hcl2
import pytest
import yaml

from pipeline_scripts import config, settings, tfmodule
from pipeline_scripts.config import (
    DEFAULT_ENV_FILE,
    ConfigError,
    EnvConfig,
    PipelineConfig,
    declared_variables,
    load_env,
    load_pipeline_config,
    load_settings,
    settings_class,
    settings_schema,
)
from pipeline_scripts.contracts import PIPELINES
from pipeline_scripts.settings import (
    INFERENCE_SETTINGS,
    TRAINING_HPO_SETTINGS,
    TRAINING_SETTINGS,
    BaselineDataQuality,
    InferenceSettings,
    TrainingHpoSettings,
    TrainingSettings,
)

ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((ROOT / "env_files").glob("*.tfvars"))
SCHEMAS = [(TRAINING_SETTINGS, TrainingSettings), (TRAINING_HPO_SETTINGS, TrainingHpoSettings),
           (INFERENCE_SETTINGS, InferenceSettings)]
_JSON_TYPES = {"integer": int, "number": float, "string": str, "boolean": bool, "array": tuple, "object": dict}


# --- the classes against the schemas -----------------------------------------------------------------

def _members(annotation) -> list:
    """The alternatives of a union (X | None included), else [annotation]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _kinds(annotation) -> set:
    """The JSON kinds a field's type can hold (None left out): Literal["a"] is str, tuple[...] is an array."""
    kinds = set()
    for member in _members(annotation):
        origin = typing.get_origin(member)
        if member is type(None):
            continue
        if origin is typing.Literal:
            kinds |= {type(v) for v in typing.get_args(member)}
        elif origin is tuple:
            kinds.add(tuple)
        elif origin in (dict, collections.abc.Mapping) or dataclasses.is_dataclass(member):
            kinds.add(dict)
        else:
            kinds.add(member)
    return kinds


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def schema_drift(schema: dict, annotation, where: str) -> list[str]:
    """How a field type departs from its schema, recursively: objects with fixed keys are dataclasses with one
    field per property (required <=> no default), free-form maps are mappings, enums are Literals."""
    problems = []
    types_ = schema.get("type")
    if types_ == "object" and schema.get("additionalProperties") is False:
        classes = [m for m in _members(annotation) if dataclasses.is_dataclass(m)]
        if len(classes) != 1:
            return [f"{where}: an object with fixed keys in the schema, {annotation} in the class"]
        cls = classes[0]
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        properties = schema["properties"]
        if set(fields) != set(properties):
            problems.append(f"{where} ({cls.__name__}): fields without schema property "
                            f"{sorted(set(fields) - set(properties))}, properties without field "
                            f"{sorted(set(properties) - set(fields))}")
        required = set(schema.get("required", ()))
        for name in sorted(set(fields) & set(properties)):
            if (name in required) == _has_default(fields[name]):
                problems.append(f"{where}.{name}: {'required' if name in required else 'optional'} in the schema, "
                                f"{'with' if _has_default(fields[name]) else 'without'} a default in {cls.__name__}")
            problems += schema_drift(properties[name], hints[name], f"{where}.{name}")
        return problems
    if types_ == "object":  # a free-form map: a mapping whose values follow additionalProperties
        mappings = [m for m in _members(annotation) if typing.get_origin(m) in (dict, collections.abc.Mapping)]
        if len(mappings) != 1:
            return [f"{where}: a free-form map in the schema, {annotation} in the class"]
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            problems += schema_drift(values, typing.get_args(mappings[0])[1], f"{where}.*")
        return problems
    if "enum" in schema:
        literals = {v for m in _members(annotation) if typing.get_origin(m) is typing.Literal
                    for v in typing.get_args(m)}
        if literals != set(schema["enum"]):
            problems.append(f"{where}: enum {schema['enum']} in the schema, {annotation} in the class")
        return problems
    if types_ is not None:
        expected = {_JSON_TYPES[t] for t in ([types_] if isinstance(types_, str) else types_) if t != "null"}
        kinds = _kinds(annotation)
        if float in expected and int not in expected and float in kinds:  # int | float: a number kept as written
            kinds.discard(int)
        if kinds != expected:
            problems.append(f"{where}: type {types_} in the schema, {annotation} in the class")
        if "items" in schema and tuple in expected:
            (item,) = [typing.get_args(m)[0] for m in _members(annotation) if typing.get_origin(m) is tuple]
            problems += schema_drift(schema["items"], item, f"{where}[]")
    return problems


@pytest.mark.parametrize("schema, cls", SCHEMAS, ids=lambda x: getattr(x, "__name__", ""))
def test_settings_classes_match_their_schemas(schema, cls):
    assert schema_drift(schema, cls, cls.__name__) == []


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_every_builder_names_a_settings_class_that_matches_its_schema(kind):
    # a new pipeline's builder is checked here too, whatever schema and class it brings
    cls = settings_class(kind)
    assert issubclass(cls, settings.PipelineSettings)
    assert schema_drift(settings_schema(kind), cls, f"{kind}: {cls.__name__}") == []


def test_the_drift_check_notices_a_class_that_departs_from_its_schema():
    @dataclasses.dataclass(frozen=True)
    class Split:  # test_ratio missing, seed optional, one field too many
        validation_ratio: float
        seed: int = 0
        shuffle: bool = True

    problems = schema_drift(TRAINING_SETTINGS["properties"]["split"], Split, "split")
    assert any("test_ratio" in p and "shuffle" in p for p in problems)
    assert any(p.startswith("split.seed: required in the schema, with a default") for p in problems)


def test_drift_settings_are_fields_of_the_baseline_data_quality():
    from steplib.dataquality import DRIFT_SETTINGS

    assert set(DRIFT_SETTINGS) <= {f.name for f in dataclasses.fields(BaselineDataQuality)}


def test_a_builder_without_settings_class_is_named(monkeypatch):
    from pipeline_scripts import training_pipeline

    monkeypatch.delattr(training_pipeline, "SETTINGS_CLASS")
    with pytest.raises(ConfigError, match="defines no SETTINGS_CLASS"):
        load_settings("training", ROOT / PIPELINES["training"].settings)


# --- EnvConfig against variables.tf ------------------------------------------------------------------

_TF_TYPES = {"string": {str}, "bool": {bool}, "number": {int, float}}


def test_env_config_has_one_typed_field_per_variable_of_variables_tf():
    module = tfmodule.load()
    hints = typing.get_type_hints(EnvConfig)
    fields = {f.name for f in dataclasses.fields(EnvConfig)} - {"source"}
    assert fields == declared_variables() and len(fields) == len(module.variables)
    for name in sorted(fields):
        tf_type, annotation = module.declarations[name]["type"], hints[name]
        if tf_type in _TF_TYPES:
            assert _kinds(annotation) <= _TF_TYPES[tf_type] and len(_kinds(annotation)) == 1, (name, annotation)
        elif tf_type == "list of string":
            assert annotation == tuple[str, ...], name
        elif tf_type == "map of string":
            assert annotation == collections.abc.Mapping[str, str], name
        elif tf_type == "list of object":  # the object's attributes, as its default spells them
            (item,) = typing.get_args(annotation)[:1]
            attributes = {k for entry in module.declarations[name]["default"] for k in entry}
            assert {f.name for f in dataclasses.fields(item)} == attributes, name
        else:
            pytest.fail(f"{name}: Terraform type {tf_type} has no rule here")


# --- loading the shipped files --------------------------------------------------------------------------

def _field_default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def assert_matches(value, document, where: str) -> None:
    """``value`` (typed) holds what ``document`` (the parsed file) says; a key the file leaves out has the
    field's default. Numbers and strings keep their type (an int hyperparameter stays an int)."""
    if dataclasses.is_dataclass(value):
        assert isinstance(document, dict), where
        names = {f.name for f in dataclasses.fields(value)}
        assert set(document) <= names, f"{where}: keys without field: {set(document) - names}"
        for f in dataclasses.fields(value):
            if f.name in document:
                assert_matches(getattr(value, f.name), document[f.name], f"{where}.{f.name}")
            else:
                assert getattr(value, f.name) == _field_default(f), f"{where}.{f.name}: not the default"
    elif isinstance(value, collections.abc.Mapping):
        assert isinstance(document, dict) and set(value) == set(document), where
        for key in value:
            assert_matches(value[key], document[key], f"{where}.{key}")
    elif isinstance(value, tuple):
        assert isinstance(document, list) and len(value) == len(document), where
        for i, (item, raw) in enumerate(zip(value, document)):
            assert_matches(item, raw, f"{where}[{i}]")
    else:
        assert value == document, f"{where}: {value!r} != {document!r}"
        same_kind = type(value) is type(document) or (type(value) is float and type(document) is int)
        assert same_kind, f"{where}: {type(document).__name__} became {type(value).__name__}"


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_shipped_yaml_loads_into_its_settings_class(kind):
    path = ROOT / PIPELINES[kind].settings
    settings = load_settings(kind, path)
    assert type(settings) is settings_class(kind)
    assert_matches(settings, yaml.safe_load(path.read_text()), kind)


def test_training_settings_read_as_attributes():
    cfg = load_pipeline_config("training")
    assert isinstance(cfg.settings, TrainingSettings)
    assert cfg.settings.processing.instance_type == "ml.m5.xlarge"
    assert cfg.settings.training.hyperparameters["algorithm"] == "stacking"
    assert type(cfg.settings.training.hyperparameters["n_estimators"]) is int
    assert type(cfg.settings.training.hyperparameters["max_features"]) is float
    assert cfg.settings.split.seed == 42 and cfg.settings.registration.inference_instances == ("ml.m5.large",)
    assert cfg.settings.mse_threshold is None and cfg.mse_threshold == cfg.env.accuracy_mse_threshold


def test_hpo_ranges_are_typed():
    ranges = load_pipeline_config("training_hpo").settings.tuning.ranges
    assert ranges["svr_c"].scaling == "Logarithmic" and ranges["n_estimators"].scaling == "Auto"
    assert (ranges["n_estimators"].type, ranges["n_estimators"].min, ranges["n_estimators"].max) == ("integer", 100, 300)


def test_left_out_optional_keys_take_the_defaults_builders_use(tmp_path):
    data = yaml.safe_load((ROOT / PIPELINES["training_hpo"].settings).read_text())
    for section, key in [("processing", "volume_size_gb"), ("processing", "max_runtime_seconds"),
                         ("training", "max_runtime_seconds"), ("registration", "approver"),
                         ("registration", "inference_instances"), ("registration", "description"), ("tuning", "seed")]:
        del data[section][key]
    del data["feedback"], data["mse_threshold"]
    path = tmp_path / "hpo.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = load_settings("training_hpo", path)
    assert (settings.processing.volume_size_gb, settings.processing.max_runtime_seconds) == (30, None)
    assert settings.processing.instance_counts == {}
    assert (settings.training.volume_size_gb, settings.training.max_runtime_seconds) == (30, 3600)
    assert settings.framework.py_version == "py3"
    assert (settings.registration.approver, settings.registration.inference_instances,
            settings.registration.description) == ("", None, None)
    assert settings.tuning.seed is None and settings.feedback.max_batches == 10 and settings.mse_threshold is None
    assert settings.data_quality.drift == {}

    inference = yaml.safe_load((ROOT / PIPELINES["inference"].settings).read_text())
    del inference["transform"]["max_payload_mb"]
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(inference))
    transform = load_settings("inference", path).transform
    assert (transform.max_payload_mb, transform.part_files, transform.max_concurrent_transforms) == (6, None, None)


def test_processing_instances_per_step_role(tmp_path):
    data = yaml.safe_load((ROOT / PIPELINES["training"].settings).read_text())
    data["processing"].update(instance_count=4, instance_counts={"training_preprocess": 3})
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(data))
    processing = load_settings("training", path).processing
    assert processing.instances("training_preprocess") == 3
    assert processing.instances("data_quality_baseline") == 4  # a sharded role without its own count
    assert processing.instances("evaluation") == 1 and processing.instances(None) == 1  # reads its whole input


def _unquoted(value):
    """python-hcl2 keeps the quotes of strings: '"dev"'."""
    if isinstance(value, str) and value.startswith('"'):
        return json.loads(value)
    if isinstance(value, list):
        return [_unquoted(v) for v in value]
    if isinstance(value, dict):
        return {k: _unquoted(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_shipped_tfvars_load_into_typed_fields(env_file):
    env = load_env(env_file)
    with env_file.open() as handle:
        document = {k: _unquoted(v) for k, v in hcl2.load(handle).items() if not k.startswith("__")}
    declarations = tfmodule.load().declarations
    for f in dataclasses.fields(env):
        if f.name in ("source", "pipeline_names", "model_package_group_name"):  # the names in force: see below
            continue
        expected = document[f.name] if f.name in document else declarations[f.name]["default"]
        assert_matches(getattr(env, f.name), expected, f"{env_file.name}: {f.name}")
    assert env.source == env_file
    assert set(env.pipeline_names) == set(PIPELINES) and env.model_package_group_name
    assert env.region == env.aws_region and isinstance(env.accuracy_mse_threshold, float)


# --- frozen, and no silent typos ------------------------------------------------------------------------

def _instances(value, where: str = "cfg"):
    """Every dataclass instance reachable from ``value``, with its path."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield where, value
        for f in dataclasses.fields(value):
            yield from _instances(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, collections.abc.Mapping):
        for key, item in value.items():
            yield from _instances(item, f"{where}[{key!r}]")
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _instances(item, f"{where}[{i}]")


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_configuration_is_frozen_all_the_way_down(kind):
    cfg = load_pipeline_config(kind)
    reached = list(_instances(cfg))
    assert len(reached) > 5
    for where, instance in reached:
        name = dataclasses.fields(instance)[0].name
        try:
            setattr(instance, name, getattr(instance, name))
        except dataclasses.FrozenInstanceError:
            continue
        pytest.fail(f"{where} ({type(instance).__name__}) is not frozen")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.settings.processing.instance_count = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.env.bucket_name = "other"


@pytest.mark.parametrize("read", [
    lambda cfg: cfg.settings.processing.instance_typ,
    lambda cfg: cfg.settings.trainig,
    lambda cfg: cfg.settings.training.hyperparameter,
    lambda cfg: cfg.env.bucket_nmae,
    lambda cfg: cfg.env.values,  # the untyped dict is gone
    lambda cfg: cfg.extra,
], ids=["processing.instance_typ", "settings.trainig", "training.hyperparameter", "env.bucket_nmae",
        "env.values", "cfg.extra"])
def test_a_typo_is_an_attribute_error(read):
    cfg = load_pipeline_config("training")
    with pytest.raises(AttributeError):
        read(cfg)


def test_build_options_are_typed_and_default_to_none():
    cfg = load_pipeline_config("inference", options=config.BuildOptions(model_package_arn="arn:x"))
    assert cfg.options.model_package_arn == "arn:x" and cfg.options.model_package_description is None
    assert load_pipeline_config("training").options == config.BuildOptions()
    assert isinstance(cfg, PipelineConfig) and load_env(DEFAULT_ENV_FILE) == cfg.env
