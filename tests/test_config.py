"""Configuration loading: the shared tfvars plus each pipeline's YAML, and their bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeline_scripts.config import (
    DEFAULT_ENV_FILE,
    ConfigError,
    declared_variables,
    load_env,
    load_pipeline_config,
    load_settings,
)

ENV_FILES = sorted((Path(__file__).resolve().parent.parent / "env_files").glob("*.tfvars"))
YAML_DIR = Path(__file__).resolve().parent.parent / "pipeline_scripts"


def _write_tfvars(tmp_path: Path, replace: dict[str, str] | None = None, drop: str | None = None,
                  append: str = "") -> Path:
    text = DEFAULT_ENV_FILE.read_text()
    for key, value in (replace or {}).items():
        text, count = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
        assert count == 1, f"{key} not found once in {DEFAULT_ENV_FILE}"
    if drop:
        text = re.sub(rf"(?m)^{drop}\s*=.*$", "", text)
    path = tmp_path / "test.tfvars"
    path.write_text(text + append)
    return path


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_every_environment_file_loads(env_file):
    env = load_env(env_file)
    assert env.bucket_name and env.role_arn.startswith("arn:aws")
    assert env.accuracy_mse_threshold > 0
    # strings come back without HCL quotes
    assert not env.bucket_name.startswith('"')


def test_dev_values_and_derived_locations():
    env = load_env(DEFAULT_ENV_FILE)
    assert env.training_data_uri == f"s3://{env.bucket_name}/{env.bucket_prefix}/{env.bucket_train_prefix}"
    assert env.inference_input_uri.endswith(f"/{env.bucket_inf_prefix}/input")
    assert env.ground_truth_uri.endswith(f"/{env.bucket_inf_prefix}/ground-truth")
    assert isinstance(env.recreate_pipelines, bool)
    assert env.custom_notification_config[0]["step_custom_message"]


@pytest.mark.parametrize("kind", ["training", "training_hpo", "inference"])
def test_each_pipeline_config_loads(kind):
    cfg = load_pipeline_config(kind)
    assert cfg.mse_threshold == pytest.approx(cfg.env.accuracy_mse_threshold)
    assert cfg.settings["processing"]["instance_count"] >= 1


def test_yaml_threshold_overrides_tfvars(tmp_path):
    data = yaml.safe_load((YAML_DIR / "inference_pipeline.yaml").read_text())
    data["mse_threshold"] = 3.25
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_pipeline_config("inference", settings_file=path).mse_threshold == 3.25


def test_all_tfvars_keys_are_declared_in_variables_tf():
    declared = declared_variables()
    for env_file in ENV_FILES:
        assert set(load_env(env_file).values) <= declared


@pytest.mark.parametrize("replace, expected", [
    ({"accuracy_mse_threshold": '"low"'}, r"accuracy_mse_threshold'.*expected type number.*\"low\""),
    ({"accuracy_mse_threshold": "-1"}, r"accuracy_mse_threshold'.*expected > 0"),
    ({"recreate_pipelines": '"yes"'}, r"recreate_pipelines'.*expected type boolean"),
    ({"role_arn": '"my-role"'}, r"role_arn'.*expected a value matching"),
    ({"bucket_name": '"Bad_Bucket"'}, r"bucket_name'.*expected a value matching"),
    ({"subnet_id": '"vpc-123"'}, r"subnet_id'.*expected a value matching"),
])
def test_wrong_tfvars_values_name_file_key_and_expectation(tmp_path, replace, expected):
    path = _write_tfvars(tmp_path, replace=replace)
    with pytest.raises(ConfigError) as err:
        load_env(path)
    assert str(path) in str(err.value)
    assert re.search(expected, str(err.value)), str(err.value)


def test_missing_tfvars_key_is_named(tmp_path):
    path = _write_tfvars(tmp_path, drop="pipeline_inf")
    with pytest.raises(ConfigError, match=r"missing key 'pipeline_inf'"):
        load_env(path)


def test_undeclared_tfvars_key_is_rejected(tmp_path):
    path = _write_tfvars(tmp_path, append='\nbucket_nmae = "typo"\n')
    with pytest.raises(ConfigError, match=r"not declared in variables.tf: bucket_nmae"):
        load_env(path)


def test_broken_hcl_names_the_file(tmp_path):
    path = tmp_path / "broken.tfvars"
    path.write_text('bucket_name = "x"\nemail_recipient = ["a@b.c",\n')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: not valid HCL"):
        load_env(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_env(tmp_path / "nope.tfvars")


def _settings(tmp_path: Path, kind: str, mutate) -> Path:
    data = yaml.safe_load((YAML_DIR / f"{kind}_pipeline.yaml").read_text())
    mutate(data)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("kind, mutate, expected", [
    ("training", lambda d: d["training"].update(instance_count="two"), r"training.instance_count'.*type integer"),
    ("training", lambda d: d["training"].update(instance_type="m5.large"), r"training.instance_type'.*matching"),
    ("training", lambda d: d["training"]["hyperparameters"].update(algorithm="svm"), r"algorithm'.*one of"),
    ("training", lambda d: d["split"].update(test_ratio=0.7), r"split.test_ratio'.*< 0.5"),
    ("training", lambda d: d.update(colour="blue"), r"unknown key.*colour"),
    ("training_hpo", lambda d: d["tuning"]["ranges"].update(max_depth={"type": "integer", "min": 9, "max": 3}),
     r"tuning.ranges.max_depth': expected numeric 'min' < 'max'"),
    ("training_hpo", lambda d: d["tuning"].update(ranges={"max_depth": {"type": "integer", "min": 2, "max": 9}}),
     r"tuning.ranges'"),
    ("training_hpo", lambda d: d["tuning"].update(max_parallel_jobs=50), r"max_parallel_jobs': expected <= max_jobs"),
    ("inference", lambda d: d["transform"].pop("instance_type"), r"missing key 'instance_type' under 'transform'"),
])
def test_wrong_yaml_values_name_file_key_and_expectation(tmp_path, kind, mutate, expected):
    path = _settings(tmp_path, kind, mutate)
    with pytest.raises(ConfigError) as err:
        load_settings(kind, path)
    assert str(path) in str(err.value)
    assert re.search(expected, str(err.value)), str(err.value)


def test_invalid_yaml_syntax(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("framework: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings("training", path)
