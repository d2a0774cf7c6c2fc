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

ENV_FILES = sorted((Path(__file__).resolve().parents[2] / "env_files").glob("*.tfvars"))
YAML_DIR = Path(__file__).resolve().parents[2] / "pipeline_scripts"


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
    assert env.custom_notification_config[0].step_custom_message


@pytest.mark.parametrize("kind", ["training", "training_hpo", "inference"])
def test_each_pipeline_config_loads(kind):
    cfg = load_pipeline_config(kind)
    assert cfg.mse_threshold == pytest.approx(cfg.env.accuracy_mse_threshold)
    assert cfg.settings.processing.instance_count >= 1


def test_yaml_threshold_overrides_tfvars(tmp_path):
    data = yaml.safe_load((YAML_DIR / "inference_pipeline.yaml").read_text())
    data["mse_threshold"] = 3.25
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_pipeline_config("inference", settings_file=path).mse_threshold == 3.25


def test_all_tfvars_keys_are_declared_in_variables_tf():
    import hcl2

    declared = declared_variables()
    for env_file in ENV_FILES:
        with env_file.open() as handle:
            assert {k for k in hcl2.load(handle) if not k.startswith("__")} <= declared


@pytest.mark.parametrize("replace, expected", [
    ({"accuracy_mse_threshold": '"low"'}, r"accuracy_mse_threshold: the value set in .* does not convert to type number"),
    ({"accuracy_mse_threshold": "-1"}, r"accuracy_mse_threshold must be > 0.*got -1"),
    ({"recreate_pipelines": '"yes"'}, r"recreate_pipelines: the value set in .* does not convert to type bool"),
    ({"role_arn": '"my-role"'}, r"role_arn must match .*got 'my-role'"),
    ({"bucket_name": '"Bad_Bucket"'}, r"bucket_name must match .*got 'Bad_Bucket'"),
    ({"subnet_id": '"vpc-123"'}, r"subnet_id must match .*got 'vpc-123'"),
    # issue 10: values variables.tf rejects are rejected here too (same rules, same evaluator)
    ({"kms_key": '""'}, r"kms_key must match .*got ''"),
    ({"kms_key": '"arn:aws:kms:us-east-1:123456789012:alias/my-key"'}, r"kms_key must match .*alias/my-key"),
    ({"environment": '"qa"'}, r"environment must be one of dev, staging, prod.*got 'qa'"),
])
def test_wrong_tfvars_values_name_file_key_and_expectation(tmp_path, replace, expected):
    path = _write_tfvars(tmp_path, replace=replace)
    with pytest.raises(ConfigError) as err:
        load_env(path)
    assert str(path) in str(err.value)
    assert re.search(expected, str(err.value)), str(err.value)


# EventBridge user guide, "Setting a schedule pattern for scheduled rules": its example expressions, the wildcards
# of each field, and what it rules out (values out of range, '?' in neither or both day fields, a second '#'
# expression, rate 0 and a unit whose number does not match it: "rate(1 hours) and rate(5 hour) are not valid").
VALID_SCHEDULES = ["cron(0 10 * * ? *)", "cron(15 12 * * ? *)", "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)",
                   "cron(0/15 * * * ? *)", "cron(0/10 * ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)",
                   "cron(0 9 ? * 2#1 *)", "cron(0 0 L * ? *)", "cron(0 0 3W * ? *)", "cron(0 0 ? * 6L *)",
                   "cron(1,31 0-5 1-15 JAN,FEB ? 2026-2030)", "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)",
                   "rate(12 hours)", "rate(1 day)", "rate(7 days)"]
INVALID_SCHEDULES = ["cron(99 99 * * ? *)", "rate(0 minutes)", "rate(1 hours)", "rate(5 hour)", "cron(0 10 * * * *)",
                     "cron(0 10 ? * ? *)", "cron(0 10 * *)", "cron(0 24 * * ? *)", "cron(60 1 * * ? *)",
                     "cron(0 0 32 * ? *)", "cron(0 0 * 13 ? *)", "cron(0 0 ? * 8 *)", "cron(0 0 * * ? 1969)",
                     "cron(0 0 * * ? 2200)", "cron(0 9 ? * 3#1,6#3 *)", "rate(-1 minutes)", "rate(5 weeks)",
                     "rate(1.5 hours)", "cron()"]


def test_the_schedule_rule_accepts_eventbridges_examples_and_refuses_what_it_rules_out():
    """The rule itself (contracts/tfvars_rules.json), on every example; variables.tf applies it (next test)."""
    import json
    from pipeline_scripts.config import PROJECT_ROOT
    rule = re.compile(json.loads((PROJECT_ROOT / "contracts" / "tfvars_rules.json").read_text())
                      ["patterns"]["schedule_expression"])
    assert [e for e in VALID_SCHEDULES if not rule.fullmatch(e)] == []
    assert [e for e in INVALID_SCHEDULES if rule.fullmatch(e)] == []


def test_variables_tf_applies_the_schedule_rule_and_names_the_refused_value(tmp_path):
    good = _write_tfvars(tmp_path, replace={"pipeline_schedules": '{ inference = "cron(0 18 ? * MON-FRI *)" }'})
    assert load_env(good).pipeline_schedules == {"inference": "cron(0 18 ? * MON-FRI *)"}
    bad = _write_tfvars(tmp_path, replace={"pipeline_schedules": '{ training = "cron(99 99 * * ? *)" }'})
    with pytest.raises(ConfigError) as err:
        load_env(bad)
    assert "must be EventBridge schedule expressions" in str(err.value) and "not cron(99 99 * * ? *)" in str(err.value)


def test_an_empty_recipient_list_is_refused(tmp_path):
    path = _write_tfvars(tmp_path, replace={"email_recipient": "[]"})
    with pytest.raises(ConfigError, match="email_recipient must name at least one address"):
        load_env(path)


def test_a_key_set_twice_in_a_pipeline_yaml_is_refused_with_both_lines(tmp_path):
    text = (YAML_DIR / "training_pipeline.yaml").read_text()
    path = tmp_path / "training.yaml"
    path.write_text(text + "\nsplit:\n  seed: 1\n")
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("split:"))
    with pytest.raises(ConfigError) as err:
        load_settings("training", path)
    message = str(err.value)
    assert f"key 'split' is set twice (first at line {first})" in message
    assert f'in "{path}", line {len(text.splitlines()) + 2}, column 1' in message


def test_missing_tfvars_key_is_named(tmp_path):
    path = _write_tfvars(tmp_path, drop="role_arn")
    with pytest.raises(ConfigError, match=r"role_arn: required, no value set"):
        load_env(path)


def test_duplicated_tfvars_key_is_rejected_with_its_line(tmp_path):
    path = _write_tfvars(tmp_path, append='\nuser_id = "again"\n')
    line = len(path.read_text().splitlines())
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:{line},1-8: Attribute redefined.*user_id"):
        load_env(path)


def test_pipeline_names_default_from_the_data_set_and_the_contract(tmp_path):
    import json
    from pipeline_scripts.contracts import PIPELINES
    from pipeline_scripts.config import PROJECT_ROOT
    dataset = json.loads((PROJECT_ROOT / "scripts" / "dataset_schema.json").read_text())["name"]
    env = load_env(DEFAULT_ENV_FILE)
    assert env.pipeline_names == {k: f"{dataset}-{p.name_suffix}" for k, p in PIPELINES.items()}
    assert env.model_package_group_name == f"{dataset}-models"
    path = _write_tfvars(tmp_path, append='\npipeline_names = { inference = "my-scoring" }\nmodel_package_group_name = "grp"\n')
    env = load_env(path)
    assert env.pipeline_name("inference") == "my-scoring" and env.pipeline_name("training") == f"{dataset}-training"
    assert env.model_package_group_name == "grp"
    bad = _write_tfvars(tmp_path, append='\npipeline_names = { scoring = "x" }\n')
    with pytest.raises(ConfigError, match="pipeline_names keys must be pipeline keys of contracts/pipelines.json"):
        load_env(bad)


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
