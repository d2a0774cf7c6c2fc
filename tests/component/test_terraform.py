"""Static checks of the Terraform configuration (read with tfparse through pipeline_scripts.tfmodule,
as config and the offline runtime read it), terraform init/validate/plan offline, checkov, fmt,
Lambda packaging."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from steplib import artifacts

from pipeline_scripts import tfmodule
from pipeline_scripts.config import ConfigError, load_env
from pipeline_scripts.contracts import PIPELINES, STEPS
from tools.terraform_offline import MIRROR, terraform_env

ROOT = Path(__file__).resolve().parents[2]
TF_FILES = sorted(ROOT.glob("*.tf"))
ENV_FILES = sorted((ROOT / "env_files").glob("*_env.tfvars"))
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
PROD = tfmodule.load(ROOT, ROOT / "env_files" / "prod_env.tfvars")
DEV = tfmodule.load(ROOT, ROOT / "env_files" / "dev_env.tfvars")
VARIABLES = PROD.declarations


def _resources(rtype, module=PROD):
    return {b["__tfmeta"]["path"].split(".", 1)[1]: b for b in module.instances(rtype)}


def _ref(module, value):
    """The address of the block a reference points at."""
    block = module.by_id(value)
    return block["__tfmeta"]["path"] if block else None


def test_required_files_exist():
    for name in ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "events.tf", "lambda.tf", "sns.tf", "tags.json"):
        assert (ROOT / name).is_file(), f"{name} is missing"


def test_versions_and_backend():
    text = (ROOT / "versions.tf").read_text()
    # validations that refer to locals (contracts/tfvars_rules.json, contracts/pipelines.json) need Terraform 1.9
    assert re.search(r'required_version = ">= 1\.(9|\d\d)', text)
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text)
    # provider 5.100 is what the offline validate test runs; no provider-6-only attribute is used
    assert re.search(r'version\s*=\s*"~> 5\.100"', text)
    assert "aws_region.current.region" not in "\n".join(p.read_text() for p in TF_FILES)
    assert re.search(r'backend "http" \{\}', text), "state must live in GitLab-managed (http) backend"


def test_default_tags_come_from_tags_json():
    tags = json.loads((ROOT / "tags.json").read_text())
    assert isinstance(tags, dict) and tags and all(isinstance(v, str) and v for v in tags.values())
    assert 'jsondecode(file("${path.module}/tags.json"))' in (ROOT / "main.tf").read_text()
    (provider,) = PROD.blocks["provider"]
    assert provider["default_tags"]["tags"] == dict(tags, Environment="prod", Owner=PROD.values["user_id"])


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
                 "gitlab_trigger_token_secret_arn", "gitlab_api_url", "lambda_runtime", "pipeline_names",
                 "model_package_group_name", "email_recipient", "pipeline_schedules", "custom_notification_config"):
        assert VARIABLES[name].get("validation"), f"variables.tf: {name} needs a validation block"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_files_pass_variables_tf(env_file):
    module = tfmodule.load(ROOT, env_file)
    assert module.validation_errors() == []
    assert module.values["environment"] == env_file.name.split("_")[0], f"{env_file.name}: environment does not match file name"


def test_env_files_share_the_same_keys():
    from pipeline_scripts.config import _tfvars_keys
    keys = {p.name: set(_tfvars_keys(p)) for p in ENV_FILES}
    assert {"dev_env.tfvars", "staging_env.tfvars", "prod_env.tfvars"} <= set(keys)
    reference = keys["dev_env.tfvars"]
    for name, k in keys.items():
        assert k == reference, f"{name} differs from dev_env.tfvars: {sorted(k ^ reference)}"


def test_step_names_are_written_in_contracts_json_only():
    """A step name appears in contracts/pipelines.json and in no Terraform or tfvars file (they use roles)."""
    for path in TF_FILES + ENV_FILES:
        text = path.read_text()
        for name in STEPS.values():
            assert name not in text, f"{path.name} spells step name {name}"
    env = json.loads(_resources("aws_lambda_function")['this["notification"]']["environment"]["variables"]["CUSTOM_NOTIFICATION_CONFIG"])
    assert {c["step_name"] for c in env} <= set(STEPS.values()) and env


def test_lambdas_are_hardened():
    lambdas = {name.split('"')[1]: fn for name, fn in _resources("aws_lambda_function").items()}
    assert set(_resources("aws_lambda_function")) == {f'this["{key}"]' for key in lambdas}
    assert set(lambdas) == {"notification", "deploy_trigger", "start_pipeline"}
    assert set(_resources("aws_lambda_function", DEV)) == {'this["notification"]', 'this["start_pipeline"]'}
    assert VARIABLES["lambda_runtime"]["default"] in ("python3.12", "python3.13")
    log_groups = _resources("aws_cloudwatch_log_group")
    for name, fn in lambdas.items():
        assert fn["runtime"] == PROD.values["lambda_runtime"], name
        assert fn["tracing_config"]["mode"] == "Active", name
        assert _ref(PROD, fn["kms_key_arn"]) == "aws_kms_key.this", name
        assert fn["vpc_config"]["subnet_ids"] == [PROD.values["subnet_id"]], name
        assert _ref(PROD, fn["dead_letter_config"]["target_arn"]) == "aws_sqs_queue.dlq", name
        assert _ref(PROD, fn["role"]) == f'aws_iam_role.lambda["{name}"]', name
        assert fn["logging_config"]["log_group"] == log_groups[f'lambda["{name}"]']["name"] == f"/aws/lambda/{fn['function_name']}"
        assert "reserved_concurrent_executions" in fn, name
        module, handler = fn["handler"].split(".")
        assert module == name, f"{name}: the handler module is the function's key"
        source = (ROOT / "code" / "lambda_function" / f"{module}.py").read_text()
        assert f"def {handler}(event, context)" in source, f"{name}: handler {fn['handler']} not found"
    env = lambdas["notification"]["environment"]["variables"]
    assert {"SNS_TOPIC_ARN", "CUSTOM_NOTIFICATION_CONFIG", "IDEMPOTENCY_TABLE"} <= set(env)
    # the contract as the Lambdas see it (names documented in contracts/pipelines.json's _comment)
    assert json.loads(env["CONTRACT_STEPS"]) == dict(STEPS)
    assert json.loads(env["CONTRACT_ARTIFACTS"]) == artifacts.files()  # the step outputs' names, as the steps write them
    pipelines = json.loads(env["CONTRACT_PIPELINES"])
    assert set(pipelines) == set(PIPELINES) and all(p["name"] == PROD.locals["pipeline_names"][k] for k, p in pipelines.items())
    assert lambdas["start_pipeline"]["environment"]["variables"]["CONTRACT_PIPELINES"] == env["CONTRACT_PIPELINES"]
    # one start at a time (the breach check and the start cannot interleave), one deploy trigger at a time
    # Reserving fails the apply on accounts whose concurrency quota is below 100 + the reservation (new accounts
    # may have 10, https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html): by default
    # nothing is reserved (-1); lambda_reserved_concurrency > 0 reserves it for the notification function
    # and 1 for the starter and the deploy trigger.
    assert PROD.values["lambda_reserved_concurrency"] == 0
    assert {lambdas[k]["reserved_concurrent_executions"] for k in ("start_pipeline", "deploy_trigger", "notification")} == {-1}
    for tf in TF_FILES:
        assert "python3.9" not in tf.read_text(), f"{tf.name} still mentions python3.9"


def test_every_lambda_role_grants_its_function_only_what_it_needs():
    """Each function has its own role (VPC access, its own policy); every policy writes the function's own log
    group, the DLQ, the stack key and X-Ray, and adds only its own statements (lambda.tf policy_statements)."""
    statements = PROD.locals["lambda_policy_statements"]
    roles, policies = _resources("aws_iam_role"), _resources("aws_iam_role_policy")
    attachments = _resources("aws_iam_role_policy_attachment")
    for name, fn in _resources("aws_lambda_function").items():
        key = name.split('"')[1]
        assert _ref(PROD, policies[f'lambda["{key}"]']["role"]) == f'aws_iam_role.lambda["{key}"]'
        assert attachments[f'lambda_vpc["{key}"]']["policy_arn"].endswith(":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
        assert roles[f'lambda["{key}"]']["name"].endswith(f"-{key.replace('_', '-')}-lambda")
        sids = [s["sid"] for s in statements[key]]
        assert len(sids) == len(set(sids)), f"{key}: duplicate statement ids {sids}"
        assert sids[0] == "Logs" and sids[-3:] == ["DeadLetterQueue", "StackKey", "XRay"], sids
        (logs,) = [s for s in statements[key] if s["sid"] == "Logs"]
        assert [_ref(PROD, r.split(":")[0]) for r in logs["resources"]] == [f'aws_cloudwatch_log_group.lambda["{key}"]']
    # (the trigger token's action depends on the partition, a data source tfparse leaves unknown: None)
    actions = {key: {a for s in sts for a in s["actions"] or []} for key, sts in statements.items()}
    # Only the starter starts pipelines, only the notification Lambda reads job outputs, only the deploy
    # trigger reads the GitLab token.
    assert {k for k, a in actions.items() if "sagemaker:StartPipelineExecution" in a} == {"start_pipeline"}
    assert {k for k, a in actions.items() if "s3:GetObject" in a} == {"notification"}
    assert {k for k, sts in statements.items() if "ReadTriggerToken" in {s["sid"] for s in sts}} == {"deploy_trigger"}


def test_step_custom_message_is_used_end_to_end():
    # The original sample's Lambda read step_msg while the variable defined step_custom_message.
    for path in list(ROOT.glob("*.tf")) + list((ROOT / "code" / "lambda_function").glob("*.py")) + ENV_FILES:
        assert "step_msg" not in path.read_text(), f"{path.name} mentions step_msg"
    assert '"step_custom_message"' in (ROOT / "code" / "lambda_function" / "notification.py").read_text()


def test_encryption_everywhere():
    assert _ref(PROD, _resources("aws_sns_topic")["notifications"]["kms_master_key_id"]) == "aws_kms_key.this"
    assert _ref(PROD, _resources("aws_sqs_queue")["dlq"]["kms_master_key_id"]) == "aws_kms_key.this"
    for name, lg in _resources("aws_cloudwatch_log_group").items():
        assert _ref(PROD, lg["kms_key_id"]) == "aws_kms_key.this", name
    table = _resources("aws_dynamodb_table")["idempotency"]
    assert _ref(PROD, table["server_side_encryption"]["kms_key_arn"]) == "aws_kms_key.this"
    assert _resources("aws_kms_key")["this"]["enable_key_rotation"] is True
    assert _resources("aws_s3_bucket_notification")["eventbridge"]["eventbridge"] is True


def test_dlq_alarm_notifies():
    """A message in the DLQ is an event lost to its target: an alarm publishes to the SNS topic."""
    (alarm,) = _resources("aws_cloudwatch_metric_alarm").values()
    assert alarm["namespace"] == "AWS/SQS" and alarm["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["threshold"] == 0 and alarm["comparison_operator"] == "GreaterThanThreshold"
    assert alarm["dimensions"]["QueueName"] == _resources("aws_sqs_queue")["dlq"]["name"]
    assert [_ref(PROD, a) for a in alarm["alarm_actions"]] == ["aws_sns_topic.notifications"]
    kms = (ROOT / "kms.tf").read_text()
    assert "cloudwatch.amazonaws.com" in kms, "CloudWatch must be allowed to use the topic's KMS key"


def test_least_privilege_iam():
    text = "\n".join(p.read_text() for p in TF_FILES)
    # No service-wide wildcards like "sns:*" (the sample's events role); kms:* only in the key policy root statement.
    wildcards = set(re.findall(r'"([a-z0-9-]+):\*"', text))
    assert wildcards <= {"kms"}, f"service-wide wildcard actions: {wildcards}"
    assert text.count('"kms:*"') == 1
    # The events role exists only for schedules and may start only the scheduled pipelines.
    # (its policy's ARNs need the account id, a data source tfparse leaves unknown: checked in the text)
    assert "events_start_pipelines[0]" in _resources("aws_iam_role_policy")
    events_policy = (ROOT / "iam.tf").read_text().split('data "aws_iam_policy_document" "events_start_pipelines"')[1]
    assert 'actions   = ["sagemaker:StartPipelineExecution"]' in events_policy
    assert "for key in keys(var.pipeline_schedules) : local.pipeline_arns[key]" in events_policy
    assert "events_start_pipelines[0]" not in _resources("aws_iam_role_policy", DEV)  # dev has no schedule
    # The starter Lambda may start only the event-started pipelines and list only the breach-started ones.
    starter = PROD.locals["lambda_policy_statements"]["start_pipeline"]
    assert [a for s in starter for a in s["actions"] if a.startswith("sagemaker:")] == [
        "sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"]
    entry = (ROOT / "lambda.tf").read_text().split("      start_pipeline = {")[1].split("      deploy_trigger = {")[0]
    assert "local.starter_rules" in entry and "local.breach_starts" in entry
    # Every Resource "*" statement is one whose API has no resource-level permissions.
    for m in re.finditer(r'resources\s*=\s*\["\*"\]', text):
        preceding = text[max(0, m.start() - 400):m.start()]
        assert ("xray:" in preceding) or ("kms" in preceding.lower()), f"unjustified Resource * near: {preceding[-120:]}"


def test_state_moves_point_from_old_to_declared_addresses():
    """migrations.tf moves the state of the resources the for_each refactor renamed: every source address is
    no longer declared, every destination is (terraform validate checks the syntax, not this)."""
    declared = set()
    for path in TF_FILES:
        declared |= {f"{t}.{n}" for t, n in re.findall(r'^resource "(\w+)" "(\w+)"', path.read_text(), re.M)}
    moves = re.findall(r"moved \{\s*from = ([\w.]+)(\[[^\]]+\])?\s*to\s*= ([\w.]+)(\[[^\]]+\])?\s*\}",
                       (ROOT / "migrations.tf").read_text())
    assert moves
    for src, _, dst, key in moves:
        assert src not in declared, f"moved from {src}, which is still declared"
        assert dst in declared, f"moved to {dst}{key}, which is not declared"


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
    # The project's Terraform is the module at the root and the tfvars in env_files/ (every tracked *.tf and
    # *.tfvars). Not -recursive: files the runtime generates under ignored folders (demo-output/, the
    # workspace's tfvars copy for the offline GitLab stand-in) are not source, and `make demo` before
    # `make test` must not fail the check.
    for target in (ROOT, ROOT / "env_files"):
        proc = subprocess.run([binary, "fmt", "-check", "-diff", str(target)], capture_output=True, text=True,
                              timeout=60, env=dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull), cwd=ROOT)
        assert proc.returncode == 0, f"terraform fmt -check failed in {target}:\n{proc.stdout}{proc.stderr}"


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


# ---------------------------------------------------------------- terraform itself, offline
TERRAFORM = shutil.which("terraform")
CONTRACT_FILES = ("contracts/pipelines.json", "contracts/tfvars_rules.json",  # what contracts.tf and variables.tf read
                  "scripts/steplib/artifacts.json")

def _module_copy(dest: Path, files) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, target)
    return dest


def _terraform(args, cwd, tmp_path):
    return subprocess.run([TERRAFORM, *args], cwd=cwd, env=terraform_env(tmp_path, cwd), capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(not TERRAFORM or not MIRROR.is_dir(),
                    reason="needs the terraform binary and the aws provider in a filesystem mirror "
                           "(TF_PROVIDER_MIRROR, default /opt/tf-plugins); CI's validate job runs the same checks")
def test_terraform_init_and_validate_offline(tmp_path):
    """terraform init -backend=false + validate against the provider version versions.tf allows (5.100 in
    the mirror): every attribute and block the module uses exists in that provider."""
    files = [p.name for p in TF_FILES] + [*CONTRACT_FILES, "tags.json", "scripts/dataset_schema.json"]
    mod = _module_copy(tmp_path / "mod", files)
    init = _terraform(["init", "-backend=false", "-input=false"], mod, tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    assert (mod / ".terraform.lock.hcl").is_file(), "init writes the lock file CI carries from plan to apply"
    validate = _terraform(["validate", "-no-color"], mod, tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr


BAD_TFVARS = {
    "empty kms_key": ('kms_key = ""', "kms_key"),
    "kms alias ARN": ('kms_key = "arn:aws:kms:us-east-1:123456789012:alias/my-key"', "kms_key"),
    "environment qa": ('environment = "qa"', "environment"),
    "duplicated key": ('user_id = "again"\nuser_id = "twice"', "user_id"),
    "cron out of range": ('pipeline_schedules = { training = "cron(99 99 * * ? *)" }', "pipeline_schedules"),
    "rate of zero": ('pipeline_schedules = { inference = "rate(0 minutes)" }', "pipeline_schedules"),
    "no recipient": ("email_recipient = []", "email_recipient"),
}


@pytest.mark.parametrize("case", sorted(BAD_TFVARS))
def test_tfvars_rules_are_enforced_identically_by_terraform_and_python(case, tmp_path):
    """One source (variables.tf validations reading contracts/tfvars_rules.json): config.py rejects what `terraform plan`
    rejects. The Terraform half plans the providerless part of the module (variables.tf + contracts.tf)."""
    line, key = BAD_TFVARS[case]
    text = (ROOT / "env_files" / "dev_env.tfvars").read_text()
    first = line.split(" =")[0]
    if case != "duplicated key":
        text = re.sub(rf"(?m)^{first}\s*=.*$", "", text)
    tfvars = tmp_path / "bad.tfvars"
    tfvars.write_text(text + "\n" + line + "\n")
    with pytest.raises(ConfigError, match=key):
        load_env(tfvars)
    if not TERRAFORM:
        pytest.skip("Python side checked; no terraform binary for the Terraform side")
    mod = _module_copy(tmp_path / "vars", ["variables.tf", "contracts.tf", *CONTRACT_FILES, "scripts/dataset_schema.json"])
    good = _terraform(["plan", "-input=false", "-no-color", f"-var-file={ROOT / 'env_files' / 'dev_env.tfvars'}"], mod, tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _terraform(["plan", "-input=false", "-no-color", f"-var-file={tfvars}"], mod, tmp_path)
    assert bad.returncode != 0 and key in bad.stderr, bad.stdout + bad.stderr
