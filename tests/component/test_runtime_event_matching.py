"""The runtime's EventBridge matching (local_runtime/events.py) against moto's own routing.

Embedded, the runtime asks the pattern moto parsed at PutRule directly instead of routing each event to an
SQS matcher queue per rule. These tests hold it to the route AWS documents (rule -> target delivery through
put_rule/put_targets/put_events, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html) on
AWS's documented sample events (tests/unit/test_events.py names their pages): the same rules match, the target
gets the same event, and a rule disabled through the API (DisableRule) delivers nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_samples import doc_fail_step, doc_model_package, doc_object_created, doc_pipeline_status, doc_step_status

from pipeline_scripts.contracts import MARKERS, STEPS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rt(tmp_path):
    from local_runtime.runtime import Runtime

    with Runtime(repo_root=ROOT, workspace=tmp_path / "ws", quiet=True, persist=False) as runtime:
        yield runtime


def _samples(rt) -> list[dict]:
    names, v = rt.tf.pipeline_names, rt.tf.vars
    prefix = v["bucket_prefix"]
    return [
        doc_object_created(v["bucket_name"], f"{prefix}/{v['bucket_train_prefix']}/training-data.csv"),
        doc_object_created(v["bucket_name"], f"{prefix}/{v['bucket_inf_prefix']}/input/batch.csv"),
        doc_object_created(v["bucket_name"], f"{prefix}/elsewhere/batch.csv"),
        doc_pipeline_status(names["training"], "Succeeded"),
        doc_pipeline_status(names["inference"], "Failed"),
        doc_step_status(names["inference"], STEPS["model_quality"], "Failed", "AlgorithmError: See job logs"),
        doc_fail_step(names["inference"], STEPS["model_quality_breach"], f"{MARKERS['model_quality_breach']}: mse=9 > 5"),
        doc_model_package(rt.tf.model_package_group_name, "Approved"),
        doc_model_package(rt.tf.model_package_group_name, "Rejected"),
    ]


def _routed_through_sqs(rt, event: dict) -> dict[str, dict]:
    """{rule name: delivered event} as moto's put_events delivers it to an SQS target of each rule."""
    ev, sqs = rt.aws.client("events"), rt.aws.client("sqs")
    queues = {}
    for r in rt.bus.rules:
        url = sqs.create_queue(QueueName=f"check-{abs(hash(r.name))}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        ev.put_targets(Rule=r.name, EventBusName=r.bus, Targets=[{"Id": "check", "Arn": arn}])
        queues[r.name] = url
    try:
        for bus in sorted({r.bus for r in rt.bus.rules}):
            ev.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                    "Detail": json.dumps(event["detail"]), "Resources": event["resources"],
                                    "EventBusName": bus}])
        routed = {}
        for name, url in queues.items():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                routed[name] = json.loads(m["Body"])
        return routed
    finally:
        for r in rt.bus.rules:
            ev.remove_targets(Rule=r.name, EventBusName=r.bus, Ids=["check"])
            sqs.delete_queue(QueueUrl=queues[r.name])


def test_the_same_rules_match_as_through_moto_routing_and_targets_get_the_same_event(rt):
    assert rt.aws.embedded
    some_matched = 0
    for event in _samples(rt):
        matched = {rule.name: delivered for rule, delivered in rt.bus.matching_rules(event)}
        routed = _routed_through_sqs(rt, event)
        assert set(matched) == set(routed), event["detail-type"]
        for name, delivered in matched.items():
            # moto re-stamps id, time, account and region; the runtime keeps the event's own, as delivered by AWS
            own = ("id", "time", "account", "region")
            assert {k: v for k, v in delivered.items() if k not in own} == \
                   {k: v for k, v in routed[name].items() if k not in own}
            assert {k: delivered[k] for k in own} == {k: event[k] for k in own}
        some_matched += bool(matched)
    assert some_matched >= 5  # the samples exercise the data-arrival, breach, notification and approval rules


def test_a_rule_disabled_through_the_api_no_longer_matches(rt):
    """A DISABLED rule "does not match any events" (EventBridge API Reference, DisableRule,
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DisableRule.html). moto 5.2.5's put_events
    still delivers to a disabled rule's targets; the runtime's matcher checks the rule's state as AWS does."""
    event = doc_object_created(rt.tf.vars["bucket_name"],
                               f"{rt.tf.vars['bucket_prefix']}/{rt.tf.vars['bucket_train_prefix']}/training-data.csv")
    (rule, _), *_ = rt.bus.matching_rules(event)
    rt.aws.client("events").disable_rule(Name=rule.name, EventBusName=rule.bus)
    assert rule.name not in {r.name for r, _ in rt.bus.matching_rules(event)}


def test_a_malformed_event_is_still_rejected_by_put_events(rt):
    event = doc_pipeline_status(rt.tf.pipeline_names["training"])
    event["source"] = ""
    with pytest.raises(RuntimeError, match="EventBridge rejected"):
        rt.bus.matching_rules(event)
