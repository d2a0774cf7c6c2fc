"""Pipeline starter Lambda: an EventBridge event -> one idempotent StartPipelineExecution.

Input (the input_transformer of events.tf): {"pipeline": "<contract key>", "event": <original event>}
where the event is either
  * S3 "Object Created" (data arrival): the execution processes exactly that object. When the
    contract names started_by.object_parameter, the object's key is passed as that pipeline
    parameter. ClientRequestToken = sha256(bucket, key, version-id or etag): SageMaker runs one
    execution per token, so a redelivered event (EventBridge and S3 deliver at least once) or a
    Lambda retry does not start a second execution for the same object version.
  * SageMaker "Pipeline Execution Step Status Change" (a model-quality breach matched by events.tf):
    ClientRequestToken = sha256(breached execution ARN, step); and at most one execution of the
    breach-started pipeline runs at a time: if one is Executing or Stopping, the start is skipped,
    logged and (when SNS_TOPIC_ARN is set) notified. The function's reserved concurrency is 1
    (lambda.tf), so the check and the start do not interleave with another invocation.

Environment (lambda.tf, from contracts/pipelines.json):
  CONTRACT_PIPELINES  JSON {key: {"name": <pipeline name>, "started_by": {...}}}
  SNS_TOPIC_ARN       optional topic for "start skipped" notices

Errors raise (Lambda retries the async invocation, then the event goes to the DLQ); an event this
function does not understand raises InvalidEventError and starts nothing.
"""

import hashlib
import json
import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

S3_OBJECT_CREATED = "Object Created"
STEP_STATUS = "SageMaker Model Building Pipeline Execution Step Status Change"
RUNNING = ("Executing", "Stopping")


class InvalidEventError(ValueError):
    """The input is not one this function understands; nothing was started."""


def _contract_pipelines():
    raw = os.environ.get("CONTRACT_PIPELINES")
    if not raw:
        raise ValueError("CONTRACT_PIPELINES is not set (lambda.tf sets it from contracts/pipelines.json)")
    try:
        pipelines = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"CONTRACT_PIPELINES is not valid JSON: {exc}") from exc
    if not isinstance(pipelines, dict) or not all(isinstance(p, dict) and p.get("name") for p in pipelines.values()):
        raise ValueError("CONTRACT_PIPELINES must map pipeline keys to {name, started_by}")
    return pipelines


def request_token(*parts):
    """SageMaker's ClientRequestToken (IdempotencyToken: 32-128 characters): 64 hex characters."""
    return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()


def _s3_start(detail, started_by):
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    key = obj.get("key")
    # version-id exists on versioned buckets; the etag identifies the content otherwise.
    identity = obj.get("version-id") or obj.get("etag")
    if not bucket or not key or not identity:
        raise InvalidEventError("S3 Object Created event without detail.bucket.name, detail.object.key and "
                                "detail.object.version-id or etag")
    parameters = []
    if started_by.get("object_parameter"):
        parameters.append({"Name": started_by["object_parameter"], "Value": key})
    return (request_token("s3", bucket, key, identity), parameters,
            f"data arrival s3://{bucket}/{key} ({'version ' + obj['version-id'] if obj.get('version-id') else 'etag ' + obj['etag']})")


def _running_execution(sm, pipeline):
    for page in sm.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline):
        for summary in page.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionStatus") in RUNNING:
                return summary["PipelineExecutionArn"]
    return None


def _notify(subject, message):
    topic = os.environ.get("SNS_TOPIC_ARN")
    if topic:
        boto3.client("sns").publish(TopicArn=topic, Subject=subject[:100], Message=message)


def lambda_handler(event, context):
    if not isinstance(event, dict) or not isinstance(event.get("event"), dict) or not event.get("pipeline"):
        raise InvalidEventError('expected {"pipeline": <contract key>, "event": <EventBridge event>}')
    pipelines = _contract_pipelines()
    key = event["pipeline"]
    if key not in pipelines:
        raise InvalidEventError(f"pipeline {key!r} is not in CONTRACT_PIPELINES ({', '.join(sorted(pipelines))})")
    contract = pipelines[key]
    name, started_by = contract["name"], contract.get("started_by") or {}
    original = event["event"]
    detail, detail_type = original.get("detail") or {}, original.get("detail-type")
    sm = boto3.client("sagemaker")

    if original.get("source") == "aws.s3" and detail_type == S3_OBJECT_CREATED and started_by.get("data_arrival"):
        token, parameters, description = _s3_start(detail, started_by)
    elif original.get("source") == "aws.sagemaker" and detail_type == STEP_STATUS and started_by.get("breach_of"):
        breached = detail.get("pipelineExecutionArn")
        if not breached or not detail.get("stepName"):
            raise InvalidEventError("step status event without detail.pipelineExecutionArn and detail.stepName")
        token, parameters = request_token("breach", breached, detail["stepName"]), []
        description = f"quality breach in {breached} ({detail['stepName']})"
        running = _running_execution(sm, name)
        if running:
            message = (f"{name} was not started for the {description}: execution {running} is still running "
                       "(at most one at a time). Its result covers the latest labelled data it read; start it "
                       "again by hand if this breach needs its own run.")
            logger.warning(message)
            _notify(f"[{os.environ.get('ENVIRONMENT', '')}] {name} start skipped", message)
            return {"started": False, "pipeline": name, "reason": "already running", "running": running}
    else:
        raise InvalidEventError(f"pipeline {key!r} is not started by {original.get('source')} {detail_type!r} events "
                                f"(contract started_by: {json.dumps(started_by)})")

    response = sm.start_pipeline_execution(
        PipelineName=name, ClientRequestToken=token, PipelineParameters=parameters,
        PipelineExecutionDescription=f"Started by event {original.get('id', '?')}: {description}"[:3072])
    arn = response["PipelineExecutionArn"]
    logger.info("started %s for %s: %s (token %s)", name, description, arn, token)
    return {"started": True, "pipeline": name, "execution_arn": arn, "token": token,
            "parameters": {p["Name"]: p["Value"] for p in parameters}}
