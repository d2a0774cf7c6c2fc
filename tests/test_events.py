"""Event routing in events.tf, checked against AWS's documented sample events.

Patterns are read from events.tf with python-hcl2 (as the offline runtime does), the
${var.X} interpolations are filled from each env file, and the result is run through moto's
EventBridge matcher. moto 5.2.5 does not implement the TestEventPattern API
(events.test_event_pattern raises NotImplementedError), so the matcher class that moto's
put_events routing uses is called directly, and one end-to-end test routes events through
put_rule/put_targets/put_events to an SQS target.

Sample events: awsdocs/amazon-sagemaker-developer-guide doc_source/automating-sagemaker-with-eventbridge.md
(pipeline execution, pipeline step, model package state change) and awsdocs/amazon-s3-userguide
doc_source/ev-events.md (Object Created), with names replaced by this project's.
"""

import copy
import json
import os
import re
import textwrap
from pathlib import Path

import boto3
import hcl2
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

ROOT = Path(__file__).resolve().parent.parent
ENV_FILES = sorted((ROOT / "env_files").glob("*_env.tfvars"))
OPTS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
ALLOWED_FILTERS = {"prefix", "suffix", "wildcard", "equals-ignore-case", "anything-but", "exists", "numeric", "cidr"}
ACCOUNT, REGION = "123456789012", "us-east-1"


# ---------------------------------------------------------------- loading events.tf
def _load(path):
    with open(path) as fh:
        return hcl2.load(fh, serialization_options=OPTS)


def _variable_defaults():
    defaults = {}
    for block in _load(ROOT / "variables.tf").get("variable", []):
        for name, body in block.items():
            if "default" in body:
                defaults[name] = body["default"]
    return defaults


def load_tfvars(path):
    values = _variable_defaults()
    values.update(_load(path))
    return values


def _heredoc_body(raw):
    """python-hcl2 keeps heredocs as '<<-TAG\\n...\\nTAG'; return the dedented body."""
    match = re.match(r"^<<-?(\w+)\n(.*)\n\s*\1\s*$", raw, re.S)
    assert match, f"events.tf: expected a heredoc, got {raw[:60]!r}"
    return textwrap.dedent(match.group(2))


def _substitute(text, tfvars, where):
    def repl(m):
        name = m.group(1)
        assert name in tfvars, f"events.tf {where}: ${{var.{name}}} has no value in the env file"
        return str(tfvars[name])

    out = re.sub(r"\$\{var\.([A-Za-z0-9_]+)\}", repl, text)
    leftover = re.findall(r"\$\{[^}]*\}", out)
    assert not leftover, f"events.tf {where}: only ${{var.X}} interpolations are allowed in patterns, found {leftover}"
    return out


def _eval_count(expr, tfvars):
    """Evaluate the simple count forms used in events.tf: var.X (==|!=) "" joined by &&, ? 1 : 0 / ? 0 : 1."""
    if expr is None:
        return 1
    if isinstance(expr, int):
        return expr
    m = re.fullmatch(r"\$\{(.*)\s\?\s*([01])\s*:\s*([01])\}", expr.strip())
    assert m, f"events.tf: unsupported count expression {expr}"
    cond, yes, no = m.groups()
    result = True
    for part in cond.split("&&"):
        pm = re.fullmatch(r'\s*var\.(\w+)\s*(==|!=)\s*""\s*', part)
        assert pm, f"events.tf: unsupported count condition {part!r}"
        empty = tfvars[pm.group(1)] == ""
        result = result and (empty if pm.group(2) == "==" else not empty)
    return int(yes) if result else int(no)


def load_rules(tfvars):
    """{rule name: {"enabled", "pattern" (dict or None), "schedule", "targets": [...]}}"""
    doc = _load(ROOT / "events.tf")
    rules, targets = {}, {}
    for block in doc.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                if rtype == "aws_cloudwatch_event_rule":
                    pattern = None
                    if "event_pattern" in body:
                        text = _substitute(_heredoc_body(body["event_pattern"]), tfvars, name)
                        try:
                            pattern = json.loads(text)
                        except json.JSONDecodeError as exc:
                            pytest.fail(f"events.tf rule {name}: event_pattern is not valid JSON: {exc}")
                    rules[name] = {
                        "enabled": _eval_count(body.get("count"), tfvars),
                        "pattern": pattern,
                        "schedule": body.get("schedule_expression"),
                        "targets": [],
                    }
                elif rtype == "aws_cloudwatch_event_target":
                    targets[name] = body
    for name, body in targets.items():
        rule_ref = re.search(r"aws_cloudwatch_event_rule\.(\w+)", body["rule"]).group(1)
        assert rule_ref in rules, f"events.tf target {name} references unknown rule {rule_ref}"
        rules[rule_ref]["targets"].append({"name": name, **body})
    return rules


def matches(pattern, event):
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)


# ---------------------------------------------------------------- documented sample events
def pipeline_arn(name):
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name}"


def doc_pipeline_status(pipeline, status="Succeeded"):
    arn = pipeline_arn(pipeline)
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73kd93ir",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-03-15T16:10:11Z",
        "region": REGION,
        "resources": [arn, f"{arn}/execution/p4jn9xou8a8s"],
        "detail": {
            "pipelineExecutionDisplayName": "SomeDisplayName",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": "2021-03-15T16:03:13Z",
            "executionEndTime": "2021-03-15T16:10:10Z",
            "pipelineExecutionDescription": "SomeDescription",
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/p4jn9xou8a8s",
        },
    }


def doc_step_status(pipeline, step="myprocessingstep1", status="Succeeded", failure_reason=None):
    arn = pipeline_arn(pipeline)
    event = {
        "version": "0",
        "id": "ea37ccbb-5e2b-05e9-4073-1daazc940304",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-03-15T16:10:10Z",
        "region": REGION,
        "resources": [arn, f"{arn}/execution/p4jn9xou8a8s"],
        "detail": {
            "metadata": {"processingJob": {"arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-p4jn9xou8a8s-myprocessingstep1-tmgxry49ug"}},
            "stepStartTime": "2021-03-15T16:03:14Z",
            "stepEndTime": "2021-03-15T16:10:09Z",
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": status,
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/p4jn9xou8a8s",
        },
    }
    # Documented: "If the value of currentStepStatus is Failed, the event contains the failureReason field".
    if failure_reason is not None:
        event["detail"]["failureReason"] = failure_reason
    return event


def doc_model_package(group, approval="Rejected"):
    # The documented sample repeats "source" (once as a list); the duplicate is dropped here.
    arn = f"arn:aws:sagemaker:us-east-2:{ACCOUNT}:model-package/{group}/2"
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-02-24T17:00:14Z",
        "region": "us-east-2",
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 2,
            "ModelPackageArn": arn,
            "CreationTime": "2021-02-24T17:00:14Z",
            "ModelPackageStatus": "Completed",
            "CertifyForMarketplace": False,
            "ModelApprovalStatus": approval,
            "MetadataProperties": {"GeneratedBy": f"arn:aws:sagemaker:us-east-2:{ACCOUNT}:pipeline/{group}/execution/4r83jejmhorv"},
            "LastModifiedTime": "2021-02-24T17:00:14Z",
        },
    }


def doc_object_created(bucket, key, detail_type="Object Created"):
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2021-11-12T00:00:00Z",
        "region": "ca-central-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                       "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


# ---------------------------------------------------------------- fixtures
@pytest.fixture(params=ENV_FILES, ids=lambda p: p.name)
def env(request):
    tfvars = load_tfvars(request.param)
    return tfvars, load_rules(tfvars)


def test_env_files_exist():
    names = {p.name for p in ENV_FILES}
    assert {"dev_env.tfvars", "staging_env.tfvars", "prod_env.tfvars"} <= names


def _walk_filters(node, where):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$or":
                for alt in value:
                    _walk_filters(alt, where)
            else:
                _walk_filters(value, f"{where}.{key}")
    elif isinstance(node, list):
        assert node, f"{where}: empty match list never matches"
        for item in node:
            if isinstance(item, dict):
                assert len(item) == 1 and set(item) <= ALLOWED_FILTERS, f"{where}: unknown filter {item}"
            else:
                assert isinstance(item, (str, int, float, bool)) or item is None, f"{where}: bad value {item!r}"
    else:
        pytest.fail(f"{where}: leaf must be a list, got {node!r}")


def test_every_pattern_is_valid_json_with_known_filters(env):
    _, rules = env
    assert rules, "events.tf defines no rules"
    for name, rule in rules.items():
        assert (rule["pattern"] is None) != (rule["schedule"] is None), f"rule {name}: needs exactly one of event_pattern/schedule_expression"
        if rule["pattern"] is not None:
            _walk_filters(rule["pattern"], name)
            assert rule["pattern"].get("source"), f"rule {name}: pattern must pin source"
        assert rule["targets"], f"rule {name}: has no target"


def test_training_and_inference_data_arrival(env):
    tfvars, rules = env
    bucket, prefix = tfvars["bucket_name"], tfvars["bucket_prefix"]
    train_key = f"{prefix}/{tfvars['bucket_train_prefix']}/training-data.csv"
    inf_key = f"{prefix}/{tfvars['bucket_inf_prefix']}/input/inference-data.csv"
    gt_key = f"{prefix}/{tfvars['bucket_inf_prefix']}/ground-truth/ground-truth.csv"
    train, inf = rules["training_data_arrival"]["pattern"], rules["inference_data_arrival"]["pattern"]

    assert matches(train, doc_object_created(bucket, train_key))
    assert not matches(inf, doc_object_created(bucket, train_key))
    assert matches(inf, doc_object_created(bucket, inf_key))
    assert not matches(train, doc_object_created(bucket, inf_key))
    # Ground truth lands first and must not start anything; nor code/artifacts uploads.
    for key in (gt_key, f"{prefix}/code/train.py", f"{prefix}/artifacts/x/y.csv", f"{tfvars['bucket_train_prefix']}/training-data.csv"):
        assert not matches(train, doc_object_created(bucket, key)), key
        assert not matches(inf, doc_object_created(bucket, key)), key
    # Other bucket, deletions and CloudTrail-style events do not trigger.
    assert not matches(train, doc_object_created("other-bucket", train_key))
    assert not matches(train, doc_object_created(bucket, train_key, detail_type="Object Deleted"))
    cloudtrail = doc_object_created(bucket, train_key, detail_type="AWS API Call via CloudTrail")
    assert not matches(train, cloudtrail)


def test_data_arrival_targets_are_the_pipelines(env):
    _, rules = env
    expected = {"training_data_arrival": "train", "inference_data_arrival": "inf", "model_quality_breach": "trainwhpo"}
    for rule, key in expected.items():
        (target,) = rules[rule]["targets"]
        assert target["arn"] == f"${{local.pipeline_arns.{key}}}", f"{rule} must target pipeline {key}"
        assert "sagemaker_pipeline_target" in target, f"{rule}: target needs sagemaker_pipeline_target"
        assert "events_start_pipelines" in target["role_arn"]
        assert "dlq" in target["dead_letter_config"][0]["arn"]


def test_hpo_retraining_only_on_a_real_breach(env):
    tfvars, rules = env
    rule = rules["model_quality_breach"]["pattern"]
    inf = tfvars["pipeline_inf"]
    breach = doc_step_status(inf, "ModelQualityCalcStep", "Failed",
                             "ClientError: AlgorithmError: ModelQualityBreach: mse=7.1 exceeds threshold=5.5")
    crash = doc_step_status(inf, "ModelQualityCalcStep", "Failed",
                            "ClientError: AlgorithmError: ValueError: model_quality_input.csv has no prediction column")
    no_reason = doc_step_status(inf, "ModelQualityCalcStep", "Failed")
    assert matches(rule, breach)
    assert not matches(rule, crash)
    assert not matches(rule, no_reason)
    assert not matches(rule, doc_step_status(inf, "ModelQualityCalcStep", "Succeeded"))
    assert not matches(rule, doc_step_status(inf, "DataQualityCheckStep", "Failed", "ModelQualityBreach: copied text"))
    # Same step name in another pipeline (e.g. a training pipeline) does not retrain.
    assert not matches(rule, doc_step_status(tfvars["pipeline_train"], "ModelQualityCalcStep", "Failed", "ModelQualityBreach: x"))
    # SageMaker lower-cases pipeline names in ARNs: the suffix match ignores case.
    assert matches(rule, doc_step_status(inf.upper(), "ModelQualityCalcStep", "Failed", "ModelQualityBreach: mse=9"))


def test_notification_rules(env):
    tfvars, rules = env
    pipelines = [tfvars["pipeline_train"], tfvars["pipeline_trainwhpo"], tfvars["pipeline_inf"]]
    status, step = rules["pipeline_status"]["pattern"], rules["step_status"]["pattern"]
    for name in pipelines:
        for s in ("Succeeded", "Failed", "Stopped"):
            assert matches(status, doc_pipeline_status(name, s)), (name, s)
        assert not matches(status, doc_pipeline_status(name, "Executing"))
        assert matches(step, doc_step_status(name, "DataQualityCheckStep", "Succeeded"))
        assert matches(step, doc_step_status(name, "TrainingStep", "Failed", "boom"))
        assert not matches(step, doc_step_status(name, "TrainingStep", "Executing"))
        assert not matches(status, doc_step_status(name, "TrainingStep", "Failed", "boom"))
        assert not matches(step, doc_pipeline_status(name, "Failed"))
    assert not matches(status, doc_pipeline_status("myPipeline-123"))  # the unmodified doc sample: not ours
    assert not matches(step, doc_step_status("myPipeline-123"))
    pkg = rules["model_package_status"]["pattern"]
    assert matches(pkg, doc_model_package(tfvars["model_package_group_name"], "Approved"))
    assert matches(pkg, doc_model_package(tfvars["model_package_group_name"], "Rejected"))
    assert not matches(pkg, doc_model_package("versionedmp-p-idy6c3e1fiqj"))
    for rule in ("pipeline_status", "step_status", "model_package_status"):
        (target,) = rules[rule]["targets"]
        assert target["arn"] == "${aws_lambda_function.notification.arn}"
        # The Lambda needs the raw event (id for deduplication, metadata for the report).
        assert "input_transformer" not in target


def test_model_approval_deploy_trigger(env):
    tfvars, rules = env
    rule = rules["model_approved"]
    enabled = all(tfvars[k] != "" for k in ("gitlab_project_id", "gitlab_api_url", "gitlab_trigger_token_secret_arn"))
    assert rule["enabled"] == int(enabled)
    group = tfvars["model_package_group_name"]
    assert matches(rule["pattern"], doc_model_package(group, "Approved"))
    # the documented sample is Rejected: routed too, the Lambda rolls back when the rejected version served
    assert matches(rule["pattern"], doc_model_package(group, "Rejected"))
    assert not matches(rule["pattern"], doc_model_package(group, "PendingManualApproval"))
    assert not matches(rule["pattern"], doc_model_package("another-group", "Approved"))
    (target,) = rule["targets"]
    assert target["arn"] == "${aws_lambda_function.deploy_trigger[0].arn}"
    paths = target["input_transformer"][0]["input_paths"]
    assert paths["package_arn"] == "$.detail.ModelPackageArn" and paths["event_id"] == "$.id"


def test_schedules_are_optional(env):
    tfvars, rules = env
    for rule, var in (("training_schedule", "training_schedule_expression"), ("inference_schedule", "inference_schedule_expression")):
        assert rules[rule]["enabled"] == (0 if tfvars[var] == "" else 1)
        assert rules[rule]["schedule"] == f"${{var.{var}}}"
        if tfvars[var]:
            assert re.fullmatch(r"(cron|rate)\(.+\)", tfvars[var])


def test_prod_enables_schedule_and_deploy_trigger():
    tfvars = load_tfvars(ROOT / "env_files" / "prod_env.tfvars")
    rules = load_rules(tfvars)
    assert rules["inference_schedule"]["enabled"] == 1
    assert rules["model_approved"]["enabled"] == 1
    dev = load_rules(load_tfvars(ROOT / "env_files" / "dev_env.tfvars"))
    assert dev["model_approved"]["enabled"] == 0 and dev["training_schedule"]["enabled"] == 0


def test_moto_eventbridge_routes_breach_but_not_crash(monkeypatch):
    """End to end through moto: put_rule/put_targets/put_events with an SQS target."""
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(k, v)
    tfvars = load_tfvars(ROOT / "env_files" / "dev_env.tfvars")
    rules = load_rules(tfvars)
    inf = tfvars["pipeline_inf"]
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="hpo")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="breach", EventPattern=json.dumps(rules["model_quality_breach"]["pattern"]))
        events.put_targets(Rule="breach", Targets=[{"Id": "q", "Arn": queue_arn}])
        entries = []
        for reason in ("ModelQualityBreach: mse=7.1 exceeds threshold=5.5", "ValueError: bad input"):
            ev = doc_step_status(inf, "ModelQualityCalcStep", "Failed", reason)
            entries.append({"Source": ev["source"], "DetailType": ev["detail-type"], "Detail": json.dumps(ev["detail"]),
                            "Resources": ev["resources"]})
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        reasons = [json.loads(m["Body"])["detail"]["failureReason"] for m in msgs]
        assert reasons == ["ModelQualityBreach: mse=7.1 exceeds threshold=5.5"]
