"""EventBridge as in the cloud: rules/targets from events.tf, matched by moto, dispatched through a queue.

Matching: moto 5.2.5 does not implement TestEventPattern. Every rule is put into moto's EventBridge (PutRule
validates its pattern) and every event goes through PutEvents (which validates the entry); the rules it matches
are then found with moto's own matcher: embedded, the pattern object moto parsed at PutRule is asked directly
(one API call per event); against AWS_ENDPOINT_URL, each rule gets an SQS "matcher" queue as its target and the
queues receiving the event tell which rules matched. Targets then run here: Lambda functions in-process
(lambdas.py), SageMaker pipelines as local executions. Work items go through a FIFO queue that `pump()` drains,
so chains of events never recurse.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import re
import uuid

from .constants import ACCOUNT, region
from .errors import DefinitionError, TerraformError
from .event_patterns import validate_event_pattern


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(detail_type: str, source: str, detail: dict, resources: list) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source, "account": ACCOUNT,
            "time": now_iso(), "region": region(), "resources": resources, "detail": detail}


# --------------------------------------------------------------- input transformer
_PATH = re.compile(r"^\$(\.[A-Za-z0-9_\-]+|\[\d+\])*$")


def json_path(event: dict, path: str):
    """JSONPath-lite for input_paths: $, $.a.b, $.a[0]. Missing -> None (EventBridge leaves it empty)."""
    if not _PATH.match(path):
        raise TerraformError(f"input_paths: unsupported JSONPath {path!r} (supported: $.a.b and [n])")
    cur = event
    for tok in re.findall(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]", path):
        name, idx = tok
        if idx:
            cur = cur[int(idx)] if isinstance(cur, list) and int(idx) < len(cur) else None
        else:
            cur = cur.get(name) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


# Predefined variables (EventBridge User Guide, "Amazon EventBridge input transformation",
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html): reserved, so an
# input_paths entry may not use these names; aws.events.event and aws.events.event.json "can only be used
# as the value of a JSON field, as their content is not escaped".
_RESERVED = ("aws.events.rule-arn", "aws.events.rule-name", "aws.events.event.ingestion-time",
             "aws.events.event", "aws.events.event.json")
_JSON_ONLY = ("aws.events.event", "aws.events.event.json")


def apply_input_transformer(event: dict, input_paths: dict, template: str, rule: "Rule | None" = None,
                            rule_arn: str | None = None):
    """EventBridge semantics: <name> inside quotes inserts the raw string value; outside quotes inserts JSON.
    Result is parsed as JSON when it is JSON, else returned as the string (Lambda gets either)."""
    reserved = sorted(set(input_paths or {}) & set(_RESERVED))
    if reserved:
        raise TerraformError(f"input_paths: {', '.join(reserved)} is a reserved variable name (EventBridge predefined variable)")
    values = {k: json_path(event, p) for k, p in (input_paths or {}).items()}
    predefined = {"aws.events.rule-name": rule.name if rule else None, "aws.events.rule-arn": rule_arn,
                  "aws.events.event.ingestion-time": event.get("time"),
                  "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
                  "aws.events.event.json": event}
    out, i = [], 0
    in_string = False
    while i < len(template):
        c = template[i]
        if c == '"' and (i == 0 or template[i - 1] != "\\"):
            in_string = not in_string
            out.append(c)
            i += 1
            continue
        m = re.match(r"<([A-Za-z0-9_.\-]+)>", template[i:])
        if m:
            name = m.group(1)
            if name in _RESERVED:
                if name in _JSON_ONLY and in_string:
                    raise TerraformError(f"input_template: <{name}> can only be used as the value of a JSON field, "
                                         "not inside a string")
                v = predefined[name]
            elif name in values:
                v = values[name]
            else:
                out.append(m.group(0))  # not a declared path: EventBridge leaves text as is
                i += len(m.group(0))
                continue
            if in_string:
                s = v if isinstance(v, str) else ("" if v is None else json.dumps(v))
                out.append(json.dumps(s)[1:-1])
            else:
                out.append("null" if v is None else json.dumps(v))
            i += len(m.group(0))
            continue
        out.append(c)
        i += 1
    text = "".join(out)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --------------------------------------------------------------- rules
class Rule:
    def __init__(self, resource: str, name: str, pattern: dict, bus: str, enabled: bool):
        self.resource, self.name, self.pattern, self.bus, self.enabled = resource, name, pattern, bus, enabled
        self.targets: list[dict] = []
        self.queue_url = None


def load_rules(tf) -> list[Rule]:
    rules = {}
    schedules = set()  # names of schedule-only rules: they do not fire locally, nor do their targets
    for res, body in tf.resources.get("aws_cloudwatch_event_rule", {}).items():
        if not tf.enabled("aws_cloudwatch_event_rule", res):
            continue
        where = f"{body['__file__']}: aws_cloudwatch_event_rule.{res}"
        if "event_pattern" not in body:
            if "schedule_expression" in body:
                schedules.add(tf.attr("aws_cloudwatch_event_rule", res, "name") or res)
                continue
            raise TerraformError(f"{where}: no event_pattern")
        pattern = tf.attr("aws_cloudwatch_event_rule", res, "event_pattern")
        text = pattern if isinstance(pattern, str) else None
        if isinstance(pattern, str):
            try:
                pattern = json.loads(pattern)
            except json.JSONDecodeError as exc:
                raise TerraformError(f"{where}: event_pattern is not valid JSON: {exc}") from exc
        validate_event_pattern(pattern, where, text)  # what PutRule refuses and moto accepts
        name = tf.attr("aws_cloudwatch_event_rule", res, "name") or res
        state = tf.attr("aws_cloudwatch_event_rule", res, "state", "ENABLED")
        enabled = tf.attr("aws_cloudwatch_event_rule", res, "is_enabled", True) and state != "DISABLED"
        bus = tf.attr("aws_cloudwatch_event_rule", res, "event_bus_name", "default") or "default"
        rules[res] = Rule(res, name, pattern, bus, bool(enabled))
    by_name = {r.name: r for r in rules.values()}
    for res, body in tf.resources.get("aws_cloudwatch_event_target", {}).items():
        if not tf.enabled("aws_cloudwatch_event_target", res):
            continue
        where = f"{body['__file__']}: aws_cloudwatch_event_target.{res}"
        rule_name = tf.attr("aws_cloudwatch_event_target", res, "rule")
        rule = by_name.get(rule_name)
        if rule is None and rule_name in schedules:
            continue
        if rule is None:
            raise TerraformError(f"{where}: rule {rule_name!r} is not an aws_cloudwatch_event_rule in the Terraform files")
        target = {"resource": res, "arn": tf.attr("aws_cloudwatch_event_target", res, "arn"), "where": where}
        it = body.get("input_transformer")
        if it:
            it = tf.eval(it[0] if isinstance(it, list) else it, where)
            target["input_paths"] = it.get("input_paths") or {}
            target["input_template"] = it.get("input_template")
        if "input" in body:
            target["input"] = tf.attr("aws_cloudwatch_event_target", res, "input")
        if "input_path" in body:
            target["input_path"] = tf.attr("aws_cloudwatch_event_target", res, "input_path")
        spt = body.get("sagemaker_pipeline_target")
        if spt:
            spt = tf.eval(spt[0] if isinstance(spt, list) else spt, where)
            plist = spt.get("pipeline_parameter_list") or []
            target["pipeline_parameters"] = {p["name"]: p["value"] for p in (plist if isinstance(plist, list) else [plist])}
        rule.targets.append(target)
    return list(rules.values())


class EventBus:
    def __init__(self, rt, rules: list[Rule]):
        self.rt = rt
        self.rules = [r for r in rules if r.enabled]
        self.queue: collections.deque = collections.deque()
        self.dead_letters: list[dict] = []
        self._setup()

    def _setup(self):
        ev = self.rt.aws.client("events")
        buses = {b["Name"] for b in ev.list_event_buses().get("EventBuses", [])}
        for r in self.rules:
            if r.bus not in buses:
                ev.create_event_bus(Name=r.bus)
                buses.add(r.bus)
            ev.put_rule(Name=r.name, EventPattern=json.dumps(r.pattern), EventBusName=r.bus, State="ENABLED")
            if self.rt.aws.embedded:
                continue  # matched in-process with the pattern moto parsed (_matched_in_process)
            sqs = self.rt.aws.client("sqs")
            qname = "sm-local-match-" + re.sub(r"[^A-Za-z0-9_-]", "-", r.name)[:60]
            r.queue_url = sqs.create_queue(QueueName=qname)["QueueUrl"]
            qarn = sqs.get_queue_attributes(QueueUrl=r.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            ev.put_targets(Rule=r.name, EventBusName=r.bus, Targets=[{"Id": "sm-local-matcher", "Arn": qarn}])

    def put(self, event: dict) -> None:
        self.queue.append(("event", event))

    def enqueue(self, item) -> None:
        self.queue.append(item)

    def matching_rules(self, event: dict) -> list[tuple[Rule, dict]]:
        """Send the event through moto's EventBridge; return (rule, delivered event) for each match."""
        ev = self.rt.aws.client("events")
        buses = sorted({r.bus for r in self.rules}) or ["default"]
        for bus in buses:
            resp = ev.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                           "Detail": json.dumps(event["detail"]), "Resources": event.get("resources", []),
                                           "EventBusName": bus}])
            if resp.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge rejected event {event['detail-type']}: {resp['Entries']}")
        if self.rt.aws.embedded:
            return self._matched_in_process(event)
        sqs = self.rt.aws.client("sqs")
        matched = []
        for r in self.rules:
            msgs = sqs.receive_message(QueueUrl=r.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            for m in msgs:
                sqs.delete_message(QueueUrl=r.queue_url, ReceiptHandle=m["ReceiptHandle"])
            if msgs:
                delivered = json.loads(msgs[0]["Body"])
                # keep our ids/times: moto re-stamps them
                delivered.update({k: event[k] for k in ("id", "time", "account", "region")})
                matched.append((r, delivered))
        return matched

    def _matched_in_process(self, event: dict) -> list[tuple[Rule, dict]]:
        """The rules whose pattern, as moto parsed it at PutRule, matches the event: the matcher PutEvents runs
        for a rule's targets, asked directly instead of through a matcher queue per rule (same verdicts, ~10
        API calls fewer per event). The rule sees the event as a target receives it (JSON, our id and time)."""
        from moto.events.models import events_backends

        backend = events_backends[ACCOUNT][region()]
        delivered = json.loads(json.dumps(event))
        matched = []
        for r in self.rules:
            rule = backend.describe_rule(r.name, r.bus)
            if rule.state == "ENABLED" and rule.event_pattern.matches_event(delivered):
                matched.append((r, json.loads(json.dumps(delivered))))
        return matched

    def pump(self, max_items: int = 10000) -> int:
        n = 0
        while self.queue:
            n += 1
            if n > max_items:
                raise RuntimeError(f"event pump exceeded {max_items} items: an event loop between rules and targets?")
            kind, *payload = self.queue.popleft()
            if kind == "event":
                self._dispatch(payload[0])
            elif kind == "start":
                self._start(*payload)
            elif kind == "retry":
                self.rt.retry_execution(*payload)
            else:
                raise ValueError(f"unknown work item {kind}")
        return n

    def _start(self, pipeline: str, parameters: dict, trigger: dict, execution_arn: str | None = None) -> None:
        try:
            self.rt.execute_pipeline(pipeline, parameters, trigger, execution_arn)
        except DefinitionError as exc:
            if trigger.get("type") != "EventBridge":
                raise
            # EventBridge cannot start a pipeline that does not exist: after its retries the event
            # goes to the target's dead-letter queue. Record it there and go on, as the cloud would.
            letter = {"rule": trigger.get("rule"), "pipeline": pipeline, "error": str(exc), "trigger": trigger}
            self.dead_letters.append(letter)
            self.rt.workspace.append_jsonl("dead_letters.jsonl", letter)
            self.rt.say(f"  !! rule {trigger.get('rule')}: cannot start pipeline {pipeline}: {exc} "
                        "(event sent to the target's dead-letter queue)")

    def _dispatch(self, event: dict) -> None:
        matched = self.matching_rules(event)
        self.rt.workspace.append_jsonl("events.jsonl", {"event": event, "matched_rules": [r.name for r, _ in matched]})
        for rule, delivered in matched:
            for target in rule.targets:
                self._invoke(rule, target, delivered)

    def _invoke(self, rule: Rule, target: dict, event: dict) -> None:
        payload = event
        if "input_template" in target:
            payload = apply_input_transformer(event, target.get("input_paths"), target["input_template"], rule,
                                              f"arn:aws:events:{event.get('region', 'us-east-1')}:{ACCOUNT}:rule/{rule.name}")
        elif "input" in target:
            payload = json.loads(target["input"])
        elif "input_path" in target:
            payload = json_path(event, target["input_path"])
        arn = target["arn"]
        service = arn.split(":")[2] if arn.startswith("arn:") else ""
        if service == "lambda":
            self.rt.lambdas.invoke(arn, payload, rule.name)
        elif service == "sagemaker" and ":pipeline/" in arn:
            pipeline = arn.split(":pipeline/", 1)[1].split("/")[0]
            params = dict(target.get("pipeline_parameters") or {})
            self.rt.say(f"  -> rule {rule.name}: start pipeline {pipeline}" + (f" {params}" if params else ""))
            self.enqueue(("start", pipeline, params, {"type": "EventBridge", "rule": rule.name,
                                                       "event": event.get("detail-type")}))
        else:
            raise TerraformError(f"{target['where']}: target {arn} is not supported locally (Lambda function or SageMaker pipeline)")
