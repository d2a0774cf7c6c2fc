"""Event routing in events.tf, checked against AWS's documented sample events.

events.tf is evaluated with each env file by pipeline_scripts.tfmodule (tfparse, the reader the
offline runtime and config use): for_each and count expanded, jsonencode() patterns built, the
contract (contracts/pipelines.json) and the data set name applied. The patterns then run through moto's
EventBridge matcher. moto 5.2.5 does not implement the TestEventPattern API
(events.test_event_pattern raises NotImplementedError), so the matcher class that moto's
put_events routing uses is called directly, and one end-to-end test routes events through
put_rule/put_targets/put_events to an SQS target.

The sample events are AWS's documented ones (tests/aws_samples.py names their pages).
"""

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from pipeline_scripts import tfmodule
from pipeline_scripts.contracts import MARKERS, PIPELINES, STEPS

from aws_samples import REGION, doc_fail_step, doc_model_package, doc_object_created, doc_pipeline_status, doc_step_status

ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((ROOT / "env_files").glob("*_env.tfvars"))
ALLOWED_FILTERS = {"prefix", "suffix", "wildcard", "equals-ignore-case", "anything-but", "exists", "numeric", "cidr"}


# ---------------------------------------------------------------- loading events.tf
class Loaded:
    def __init__(self, env_file):
        self.module = tfmodule.load(ROOT, env_file)
        self.vars = self.module.values
        self.names = self.module.locals["pipeline_names"]
        self.group = self.module.locals["model_package_group_name"]


def load_rules(loaded):
    """{instance name: {"pattern" (dict or None), "schedule", "name", "targets": [...]}}"""
    module = loaded.module
    rules = {}
    for block in module.instances("aws_cloudwatch_event_rule"):
        name = block["__tfmeta"]["path"].split(".", 1)[1]
        pattern = block.get("event_pattern")
        if pattern is not None:
            try:
                pattern = json.loads(pattern)
            except (TypeError, json.JSONDecodeError) as exc:
                pytest.fail(f"events.tf rule {name}: event_pattern is not valid JSON: {exc}")
        rules[name] = {"pattern": pattern, "schedule": block.get("schedule_expression"), "name": block["name"],
                       "targets": []}
    by_name = {r["name"]: r for r in rules.values()}
    for block in module.instances("aws_cloudwatch_event_target"):
        assert block["rule"] in by_name, f"target {block['__tfmeta']['path']} references unknown rule {block['rule']}"
        target = dict(block, arn_block=module.by_id(block.get("arn")))
        by_name[block["rule"]]["targets"].append(target)
    return rules


def matches(pattern, event):
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)


# ---------------------------------------------------------------- documented sample events
# ---------------------------------------------------------------- fixtures
@pytest.fixture(params=ENV_FILES, ids=lambda p: p.name)
def env(request):
    loaded = Loaded(request.param)
    return loaded, load_rules(loaded)


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


def _starter(target):
    return target["arn_block"] and target["arn_block"]["__tfmeta"]["path"] == 'aws_lambda_function.this["start_pipeline"]'


def test_training_and_inference_data_arrival(env):
    """S3 sample: https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html (Object Created)."""
    loaded, rules = env
    tfvars = loaded.vars
    bucket, prefix = tfvars["bucket_name"], tfvars["bucket_prefix"]
    train_key = f"{prefix}/{tfvars['bucket_train_prefix']}/training-data.csv"
    inf_key = f"{prefix}/{tfvars['bucket_inf_prefix']}/input/inference-data.csv"
    gt_key = f"{prefix}/{tfvars['bucket_inf_prefix']}/ground-truth/ground-truth.csv"
    train, inf = rules['data_arrival["training"]']["pattern"], rules['data_arrival["inference"]']["pattern"]

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


def test_every_started_pipeline_of_the_contract_has_its_rule_and_goes_through_the_starter(env):
    """One rule per contract started_by entry (for_each over contracts/pipelines.json), each targeting the
    starter Lambda with {"pipeline": <key>, "event": <aws.events.event.json>}."""
    _, rules = env
    expected = {f'data_arrival["{k}"]': k for k, p in PIPELINES.items() if p.started_by.get("data_arrival")}
    expected.update({f'model_quality_breach["{k}"]': k for k, p in PIPELINES.items() if p.started_by.get("breach_of")})
    assert expected and set(expected) <= set(rules)
    for rule, key in expected.items():
        (target,) = rules[rule]["targets"]
        assert _starter(target), f"{rule} must target the starter Lambda"
        template = target["input_transformer"]["input_template"]
        assert json.loads(template.replace("<aws.events.event.json>", "{}")) == {"pipeline": key, "event": {}}
        assert target["dead_letter_config"]["arn"], rule
        assert target["retry_policy"]["maximum_retry_attempts"] > 0


def test_hpo_retraining_only_on_a_real_breach(env):
    """The breach is the FailStep ModelQualityBreachFail (reached only when mse > threshold); any failure of
    ModelQualityCalcStep, whatever its reason says, is a crash. Step status sample:
    https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html"""
    loaded, rules = env
    (key,) = [k for k, p in PIPELINES.items() if p.started_by.get("breach_of")]
    rule = rules[f'model_quality_breach["{key}"]']["pattern"]
    inf = loaded.names[PIPELINES[key].started_by["breach_of"]]
    fail_step, marker = STEPS[PIPELINES[key].started_by["breach_step"]], MARKERS["model_quality_breach"]
    assert fail_step == STEPS["model_quality_breach"]
    breach_message = f"{marker}: mse=7.1 > threshold=5.5 on batch abalone/inference/input/b.csv; HPO retraining starts"
    assert matches(rule, doc_fail_step(inf, fail_step, breach_message))
    # AWS does not document failureReason for a Fail step: the rule must not depend on it
    assert matches(rule, doc_fail_step(inf, fail_step))
    assert matches(rule, doc_fail_step(inf, fail_step, "Step failure: One or multiple steps failed."))
    # AWS-shaped crashes of the model-quality job: generic FailureReason, even with the marker somewhere in it
    for reason in ("AlgorithmError: See job logs for more information",
                   f"ClientError: AlgorithmError: {marker}: mse=7.1 exceeds threshold=5.5", None):
        assert not matches(rule, doc_step_status(inf, STEPS["model_quality"], "Failed", reason)), reason
    assert not matches(rule, doc_step_status(inf, STEPS["model_quality"], "Succeeded"))
    assert not matches(rule, doc_fail_step(inf, STEPS["feedback_quarantined"], "FeedbackQuarantined: x"))
    assert not matches(rule, doc_step_status(inf, fail_step, "Executing"))
    # the same step name in another pipeline does not retrain
    assert not matches(rule, doc_fail_step(loaded.names["training"], fail_step, breach_message))
    # SageMaker lower-cases pipeline names in ARNs: the suffix match ignores case.
    assert matches(rule, doc_fail_step(inf.upper(), fail_step, breach_message))


def test_notification_rules(env):
    """Pipeline/step/model package samples: https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html"""
    loaded, rules = env
    pipelines = list(loaded.names.values())
    assert len(pipelines) == len(PIPELINES)
    status, step = rules['state_change["pipeline_status"]']["pattern"], rules['state_change["step_status"]']["pattern"]
    for name in pipelines:
        for s in ("Succeeded", "Failed", "Stopped"):
            assert matches(status, doc_pipeline_status(name, s)), (name, s)
        assert not matches(status, doc_pipeline_status(name, "Executing"))
        assert matches(step, doc_step_status(name, STEPS["data_quality_check"], "Succeeded"))
        assert matches(step, doc_step_status(name, STEPS["training"], "Failed", "boom"))
        assert not matches(step, doc_step_status(name, STEPS["training"], "Executing"))
        assert not matches(status, doc_step_status(name, STEPS["training"], "Failed", "boom"))
        assert not matches(step, doc_pipeline_status(name, "Failed"))
    assert not matches(status, doc_pipeline_status("myPipeline-123"))  # the unmodified doc sample: not ours
    assert not matches(step, doc_step_status("myPipeline-123"))
    pkg = rules['state_change["model_package_status"]']["pattern"]
    assert matches(pkg, doc_model_package(loaded.group, "Approved"))
    assert matches(pkg, doc_model_package(loaded.group, "Rejected"))
    assert not matches(pkg, doc_model_package("versionedmp-p-idy6c3e1fiqj"))
    for rule in ("pipeline_status", "step_status", "model_package_status"):
        (target,) = rules[f'state_change["{rule}"]']["targets"]
        assert target["arn_block"]["__tfmeta"]["path"] == 'aws_lambda_function.this["notification"]'
        # The Lambda needs the raw event (id for deduplication, metadata for the report).
        assert "input_transformer" not in target


def test_model_approval_deploy_trigger(env):
    """Model package sample: https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html"""
    loaded, rules = env
    tfvars = loaded.vars
    enabled = all(tfvars[k] != "" for k in ("gitlab_project_id", "gitlab_api_url", "gitlab_trigger_token_secret_arn"))
    assert ('state_change["model_approved"]' in rules) == enabled
    if not enabled:
        return
    rule = rules['state_change["model_approved"]']
    group = loaded.group
    assert matches(rule["pattern"], doc_model_package(group, "Approved"))
    # the documented sample is Rejected: routed too, the Lambda rolls back when the rejected version served
    assert matches(rule["pattern"], doc_model_package(group, "Rejected"))
    assert not matches(rule["pattern"], doc_model_package(group, "PendingManualApproval"))
    assert not matches(rule["pattern"], doc_model_package("another-group", "Approved"))
    (target,) = rule["targets"]
    assert target["arn_block"]["__tfmeta"]["path"] == 'aws_lambda_function.this["deploy_trigger"]'
    paths = target["input_transformer"]["input_paths"]
    assert paths["package_arn"] == "$.detail.ModelPackageArn" and paths["event_id"] == "$.id"


def test_schedules_are_optional(env):
    loaded, rules = env
    schedules = loaded.vars["pipeline_schedules"]
    found = {n: r for n, r in rules.items() if r["schedule"]}
    assert set(found) == {f'schedule["{k}"]' for k in schedules}
    for key, expr in schedules.items():
        assert found[f'schedule["{key}"]']["schedule"] == expr
        assert re.fullmatch(r"(cron|rate)\(.+\)", expr)


def test_prod_enables_schedule_and_deploy_trigger():
    prod = load_rules(Loaded(ROOT / "env_files" / "prod_env.tfvars"))
    assert 'schedule["inference"]' in prod and 'state_change["model_approved"]' in prod
    dev = load_rules(Loaded(ROOT / "env_files" / "dev_env.tfvars"))
    assert 'state_change["model_approved"]' not in dev and not any(r["schedule"] for r in dev.values())


def test_moto_eventbridge_routes_breach_but_not_crash(monkeypatch):
    """End to end through moto: put_rule/put_targets/put_events with an SQS target."""
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(k, v)
    loaded = Loaded(ROOT / "env_files" / "dev_env.tfvars")
    rules = load_rules(loaded)
    inf = loaded.names["inference"]
    (breach_rule,) = [r for n, r in rules.items() if n.startswith("model_quality_breach[")]
    marker, step = MARKERS["model_quality_breach"], STEPS["model_quality"]
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="hpo")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="breach", EventPattern=json.dumps(breach_rule["pattern"]))
        events.put_targets(Rule="breach", Targets=[{"Id": "q", "Arn": queue_arn}])
        entries = []
        for ev in (doc_fail_step(inf, STEPS["model_quality_breach"], f"{marker}: mse=7.1 > threshold=5.5"),
                   doc_step_status(inf, step, "Failed", "AlgorithmError: See job logs for more information")):
            entries.append({"Source": ev["source"], "DetailType": ev["detail-type"], "Detail": json.dumps(ev["detail"]),
                            "Resources": ev["resources"]})
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        steps = [json.loads(m["Body"])["detail"]["stepName"] for m in msgs]
        assert steps == [STEPS["model_quality_breach"]]
