"""Static checks of the Terraform configuration (python-hcl2), checkov, fmt, Lambda packaging."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hcl2
import pytest

ROOT = Path(__file__).resolve().parent.parent
TF_FILES = sorted(ROOT.glob("*.tf"))
ENV_FILES = sorted((ROOT / "env_files").glob("*_env.tfvars"))
OPTS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def _load(path):
    with open(path) as fh:
        try:
            return hcl2.load(fh, serialization_options=OPTS)
        except Exception as exc:  # report which file does not parse
            pytest.fail(f"{path.name}: not valid HCL: {exc}")


def _blocks(kind):
    """[(file, type_or_name, name_or_None, body)] for resource/data/variable/output blocks."""
    found = []
    for path in TF_FILES:
        for block in _load(path).get(kind, []):
            for key, body in block.items():
                if kind in ("resource", "data"):
                    for name, inner in body.items():
                        found.append((path.name, key, name, inner))
                else:
                    found.append((path.name, key, None, body))
    return found


def _resources(rtype):
    return {name: body for _, t, name, body in _blocks("resource") if t == rtype}


VARIABLES = {name: body for _, name, _, body in _blocks("variable")}


def test_required_files_exist():
    for name in ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "events.tf", "lambda.tf", "sns.tf", "tags.json"):
        assert (ROOT / name).is_file(), f"{name} is missing"


def test_versions_and_backend():
    tf = _load(ROOT / "versions.tf")["terraform"][0]
    assert re.fullmatch(r">=\s*1\.(6|[7-9]|\d\d)(\.\d+)?", tf["required_version"]), tf["required_version"]
    aws = tf["required_providers"][0]["aws"] if isinstance(tf["required_providers"], list) else tf["required_providers"]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~>\s*[56]\.\d+(\.\d+)?", aws["version"]), aws["version"]
    backend = tf["backend"][0] if isinstance(tf["backend"], list) else tf["backend"]
    assert "http" in backend, "state must live in GitLab-managed (http) backend"


def test_default_tags_come_from_tags_json():
    tags = json.loads((ROOT / "tags.json").read_text())
    assert isinstance(tags, dict) and tags and all(isinstance(v, str) and v for v in tags.values())
    provider = _load(ROOT / "main.tf")["provider"][0]["aws"]
    assert 'jsondecode(file("${path.module}/tags.json"))' in str(provider["default_tags"])


def test_every_used_variable_is_declared():
    used = {}
    for path in TF_FILES:
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        for name in re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", code):
            used.setdefault(name, path.name)
    missing = {n: f for n, f in used.items() if n not in VARIABLES}
    assert not missing, f"undeclared variables (name: first file): {missing}"


def test_every_variable_is_typed_and_described():
    for name, body in VARIABLES.items():
        assert body.get("type"), f"variables.tf: {name} has no type"
        assert len(body.get("description", "")) > 10, f"variables.tf: {name} has no useful description"
    # Values that can be wrong in a way Terraform would not notice until apply are validated.
    for name in ("role_arn", "kms_key", "subnet_id", "sg_id", "bucket_name", "accuracy_mse_threshold", "environment",
                 "gitlab_trigger_token_secret_arn", "gitlab_api_url", "lambda_runtime", "pipeline_train",
                 "pipeline_trainwhpo", "pipeline_inf", "model_package_group_name", "email_recipient",
                 "training_schedule_expression", "inference_schedule_expression", "custom_notification_config"):
        assert VARIABLES[name].get("validation"), f"variables.tf: {name} needs a validation block"


def _check_type(tf_type, value, where):
    tf_type = tf_type.strip()
    if tf_type.startswith("${") and tf_type.endswith("}"):
        tf_type = tf_type[2:-1].strip()
    if tf_type == "string":
        assert isinstance(value, str), f"{where}: expected string, got {value!r}"
    elif tf_type == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: expected number, got {value!r}"
    elif tf_type == "bool":
        assert isinstance(value, bool), f"{where}: expected bool, got {value!r}"
    elif tf_type.startswith("list(") or tf_type.startswith("set("):
        assert isinstance(value, list), f"{where}: expected list, got {value!r}"
        inner = tf_type[tf_type.index("(") + 1:-1]
        for i, item in enumerate(value):
            _check_type(inner, item, f"{where}[{i}]")
    elif tf_type.startswith("object("):
        assert isinstance(value, dict), f"{where}: expected object, got {value!r}"
        fields = dict(re.findall(r"(\w+)\s*=\s*(\w+)", tf_type))
        assert set(value) == set(fields), f"{where}: keys {sorted(value)} != declared {sorted(fields)}"
        for key, ftype in fields.items():
            _check_type(ftype, value[key], f"{where}.{key}")
    else:
        pytest.fail(f"{where}: test does not know type {tf_type}")


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_tfvars_keys_are_declared_with_compatible_types(env_file):
    values = _load(env_file)
    undeclared = sorted(set(values) - set(VARIABLES))
    assert not undeclared, f"{env_file.name}: keys not declared in variables.tf: {undeclared}"
    required = sorted(n for n, b in VARIABLES.items() if "default" not in b and n not in values)
    assert not required, f"{env_file.name}: required variables without value: {required}"
    for key, value in values.items():
        _check_type(VARIABLES[key]["type"], value, f"{env_file.name}: {key}")
    assert values["environment"] == env_file.name.split("_")[0], f"{env_file.name}: environment does not match file name"
    assert values["accuracy_mse_threshold"] > 0


def test_env_files_share_the_same_keys():
    keys = {p.name: set(_load(p)) for p in ENV_FILES}
    assert {"dev_env.tfvars", "staging_env.tfvars", "prod_env.tfvars"} <= set(keys)
    reference = keys["dev_env.tfvars"]
    for name, k in keys.items():
        assert k == reference, f"{name} differs from dev_env.tfvars: {sorted(k ^ reference)}"


def test_lambdas_are_hardened():
    lambdas = _resources("aws_lambda_function")
    assert set(lambdas) == {"notification", "deploy_trigger"}
    assert VARIABLES["lambda_runtime"]["default"] in ("python3.12", "python3.13")
    for name, fn in lambdas.items():
        assert fn["runtime"] == "${var.lambda_runtime}", name
        assert fn["tracing_config"][0]["mode"] == "Active", name
        assert fn["kms_key_arn"] == "${aws_kms_key.this.arn}", name
        assert fn["vpc_config"][0]["subnet_ids"] == ["${var.subnet_id}"], name
        assert "sqs_queue.dlq" in fn["dead_letter_config"][0]["target_arn"], name
        assert "reserved_concurrent_executions" in fn, name
        module, handler = fn["handler"].split(".")
        source = (ROOT / "code" / "lambda_function" / f"{module}.py").read_text()
        assert f"def {handler}(event, context)" in source, f"{name}: handler {fn['handler']} not found"
    env = lambdas["notification"]["environment"][0]["variables"]
    assert {"SNS_TOPIC_ARN", "CUSTOM_NOTIFICATION_CONFIG", "IDEMPOTENCY_TABLE"} <= set(env)
    assert env["CUSTOM_NOTIFICATION_CONFIG"] == "${jsonencode(var.custom_notification_config)}"
    for tf in TF_FILES:
        assert "python3.9" not in tf.read_text(), f"{tf.name} still mentions python3.9"


def test_step_custom_message_is_used_end_to_end():
    # The original sample's Lambda read step_msg while the variable defined step_custom_message.
    for path in list(ROOT.glob("*.tf")) + list((ROOT / "code" / "lambda_function").glob("*.py")) + ENV_FILES:
        assert "step_msg" not in path.read_text(), f"{path.name} mentions step_msg"
    assert '"step_custom_message"' in (ROOT / "code" / "lambda_function" / "notification.py").read_text()


def test_encryption_everywhere():
    assert _resources("aws_sns_topic")["notifications"]["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    assert _resources("aws_sqs_queue")["dlq"]["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    for name, lg in _resources("aws_cloudwatch_log_group").items():
        assert lg["kms_key_id"] == "${aws_kms_key.this.arn}", name
    table = _resources("aws_dynamodb_table")["idempotency"]
    assert table["server_side_encryption"][0]["kms_key_arn"] == "${aws_kms_key.this.arn}"
    assert _resources("aws_kms_key")["this"]["enable_key_rotation"] is True
    assert _resources("aws_s3_bucket_notification")["eventbridge"]["eventbridge"] is True


def test_least_privilege_iam():
    text = "\n".join(p.read_text() for p in TF_FILES)
    # No service-wide wildcards like "sns:*" (the sample's events role); kms:* only in the key policy root statement.
    wildcards = set(re.findall(r'"([a-z0-9-]+):\*"', text))
    assert wildcards <= {"kms"}, f"service-wide wildcard actions: {wildcards}"
    assert text.count('"kms:*"') == 1
    policy = _resources("aws_iam_role_policy")["events_start_pipelines"]["policy"]
    assert '"sagemaker:StartPipelineExecution"' in policy and "values(local.pipeline_arns)" in policy
    assert "sns:" not in policy
    # Every Resource "*" statement is one whose API has no resource-level permissions.
    for m in re.finditer(r'resources\s*=\s*\["\*"\]', text):
        preceding = text[max(0, m.start() - 400):m.start()]
        assert ("xray:" in preceding) or ("kms" in preceding.lower()), f"unjustified Resource * near: {preceding[-120:]}"


def test_checkov_passes():
    if not CHECKOV.exists():
        if os.environ.get("REQUIRE_CHECKOV") == "1":
            pytest.fail(f"REQUIRE_CHECKOV=1 but {CHECKOV} is missing (create it: python3 -m venv .venv-checkov && "
                        ".venv-checkov/bin/pip install checkov==3.3.30)")
        pytest.skip(f"{CHECKOV} not installed")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(ROOT), "--framework", "terraform", "--quiet", "--compact", "-o", "json",
         "--skip-path", ".venv", "--skip-path", ".venv-checkov", "--skip-path", "build"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not print JSON (exit {proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    reports = report if isinstance(report, list) else [report]
    failed = []
    for r in reports:
        summary = r.get("summary", r)
        assert summary.get("parsing_errors", 0) == 0, f"checkov parsing errors: {summary}"
        for check in (r.get("results") or {}).get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['resource']} ({check['file_path']})")
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    # Every skip carries a reason.
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                assert re.search(r"checkov:skip=CKV2?_AWS_\d+:\s*\S.{10,}", line), f"{path.name}: skip without reason: {line.strip()}"


def test_terraform_fmt():
    binary = shutil.which("terraform") or shutil.which("tofu")
    if not binary:
        pytest.skip("no terraform/tofu binary on PATH (not installable from PyPI/npm/Debian; CI validate job runs fmt)")
    proc = subprocess.run([binary, "fmt", "-check", "-recursive", "-diff", str(ROOT)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull), cwd=ROOT)
    # .venv folders hold no .tf files; fmt only looks at *.tf and *.tfvars.
    assert proc.returncode == 0, f"terraform fmt -check failed:\n{proc.stdout}{proc.stderr}"


def test_lambda_zip_is_reproducible(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"{i}" / "lambda.zip"
        subprocess.run([sys.executable, str(ROOT / "tools" / "build_lambda.py"), "--out", str(out)], check=True,
                       capture_output=True, text=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1], "two builds of the same sources differ"
    with zipfile.ZipFile(tmp_path / "0" / "lambda.zip") as zf:
        names = zf.namelist()
        assert names == sorted(names) and {"notification.py", "deploy_trigger.py"} <= set(names)
        assert {zi.date_time for zi in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
