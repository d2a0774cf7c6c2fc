"""Notification Lambda: SageMaker pipeline / step / model package events -> SNS.

Accepts the raw EventBridge events documented by AWS ("SageMaker Model Building Pipeline
Execution Status Change", "... Execution Step Status Change", "SageMaker Model Package State
Change"). Environment:
  SNS_TOPIC_ARN               topic to publish to (required)
  CUSTOM_NOTIFICATION_CONFIG  JSON list of {"step_name", "step_status", "step_custom_message"}
  IDEMPOTENCY_TABLE           DynamoDB table (hash key "idempotency_key") that suppresses
                              duplicates; unset = in-process memory (offline runtime only)
  IDEMPOTENCY_TTL_HOURS       how long an event id is remembered (default 168)

Errors are never swallowed: an SNS failure raises (Lambda retries the async invocation,
then the event lands in the DLQ); a malformed event raises InvalidEventError.
"""

import json
import logging
import os
import time
from urllib.parse import quote, urlparse

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

PIPELINE_STATUS = "SageMaker Model Building Pipeline Execution Status Change"
STEP_STATUS = "SageMaker Model Building Pipeline Execution Step Status Change"
MODEL_PACKAGE_STATE = "SageMaker Model Package State Change"

DATA_QUALITY_STEP = "DataQualityCheckStep"
MODEL_QUALITY_STEP = "ModelQualityCalcStep"
BREACH_MARKER = "ModelQualityBreach"
SUMMARY_FILE = "summary.json"
MAX_LISTED_VIOLATIONS = 20
SNS_SUBJECT_MAX = 100
LEASE_SECONDS = 300  # a crashed invocation's claim expires after this, so a retry can notify


class InvalidEventError(ValueError):
    """The event is not one this function understands; nothing was published."""


# ---------------------------------------------------------------- configuration
def _custom_config():
    raw = os.environ.get("CUSTOM_NOTIFICATION_CONFIG", "[]") or "[]"
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"CUSTOM_NOTIFICATION_CONFIG is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ValueError("CUSTOM_NOTIFICATION_CONFIG must be a JSON list")
    config = {}
    for i, entry in enumerate(entries):
        missing = [k for k in ("step_name", "step_status", "step_custom_message") if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"CUSTOM_NOTIFICATION_CONFIG entry {i} lacks {', '.join(missing)}")
        config[(entry["step_name"], entry["step_status"])] = entry["step_custom_message"]
    return config


def _client(service):
    return boto3.client(service, region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))


# ---------------------------------------------------------------- idempotency
class IdempotencyStore:
    """Claim an event key once. DynamoDB conditional put when a table is configured.

    The claim is a lease: status IN_PROGRESS until the publish succeeded (then DONE). A failed
    publish releases the claim so the Lambda retry can notify; a claim left by a crashed run
    expires after LEASE_SECONDS.
    """

    _memory = {}  # offline runtime without a table: one process, one memory

    def __init__(self, table=None, ttl_hours=None):
        self.table = table if table is not None else os.environ.get("IDEMPOTENCY_TABLE", "")
        self.ttl_seconds = int(float(ttl_hours if ttl_hours is not None else os.environ.get("IDEMPOTENCY_TTL_HOURS", "168")) * 3600)
        if not self.table:
            logger.warning("IDEMPOTENCY_TABLE is not set: duplicate suppression is per process only")

    def claim(self, key):
        now = int(time.time())
        if not self.table:
            entry = self._memory.get(key)
            if entry and (entry["status"] == "DONE" or entry["lease_until"] > now):
                return False
            self._memory[key] = {"status": "IN_PROGRESS", "lease_until": now + LEASE_SECONDS}
            return True
        try:
            _client("dynamodb").put_item(
                TableName=self.table,
                Item={
                    "idempotency_key": {"S": key},
                    "status": {"S": "IN_PROGRESS"},
                    "lease_until": {"N": str(now + LEASE_SECONDS)},
                    "expires_at": {"N": str(now + self.ttl_seconds)},
                },
                ConditionExpression="attribute_not_exists(idempotency_key) OR (#s = :in_progress AND lease_until < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":in_progress": {"S": "IN_PROGRESS"}, ":now": {"N": str(now)}},
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def complete(self, key):
        if not self.table:
            self._memory[key] = {"status": "DONE", "lease_until": 0}
            return
        _client("dynamodb").update_item(
            TableName=self.table,
            Key={"idempotency_key": {"S": key}},
            UpdateExpression="SET #s = :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": {"S": "DONE"}},
        )

    def release(self, key):
        if not self.table:
            self._memory.pop(key, None)
            return
        _client("dynamodb").delete_item(TableName=self.table, Key={"idempotency_key": {"S": key}})


# ---------------------------------------------------------------- helpers
def _require(mapping, key, where):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if value in (None, ""):
        raise InvalidEventError(f"{where} lacks '{key}'")
    return value


def _pipeline_name(pipeline_arn):
    # arn:aws:sagemaker:<region>:<account>:pipeline/<name>
    return pipeline_arn.split(":pipeline/", 1)[-1].split("/", 1)[0]


def _execution_id(execution_arn):
    # arn:...:pipeline/<name>/execution/<id>
    return execution_arn.rsplit("/execution/", 1)[-1] if "/execution/" in execution_arn else execution_arn


def _region(event, arn=""):
    if event.get("region"):
        return event["region"]
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else os.environ.get("AWS_REGION", "us-east-1")


def console_link(region, pipeline_name=None, execution_id=None, processing_job=None, model_package_group=None):
    base = f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#"
    if processing_job:
        return f"{base}/processing-jobs/{quote(processing_job)}"
    if model_package_group:
        return f"{base}/model-registry/{quote(model_package_group)}"
    if execution_id:
        return f"{base}/pipelines/{quote(pipeline_name)}/executions/{quote(execution_id)}"
    return f"{base}/pipelines/{quote(pipeline_name)}"


def _job_arn(metadata):
    for value in (metadata or {}).values():
        if isinstance(value, dict) and value.get("arn"):
            return value["arn"]
    return None


def _processing_job_name(metadata):
    job = (metadata or {}).get("processingJob") or {}
    arn = job.get("arn")
    return arn.rsplit("/", 1)[-1] if arn else None


def _read_data_quality_summary(job_name):
    """Return (summary dict, None) or (None, reason) for a DataQualityCheckStep job."""
    sagemaker = _client("sagemaker")
    s3 = _client("s3")
    job = sagemaker.describe_processing_job(ProcessingJobName=job_name)
    outputs = (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    # The check script writes summary.json at the root of /opt/ml/processing/output.
    outputs = sorted(outputs, key=lambda o: (o.get("S3Output") or {}).get("LocalPath", "").rstrip("/") != "/opt/ml/processing/output")
    tried = []
    for output in outputs:
        uri = (output.get("S3Output") or {}).get("S3Uri")
        if not uri:
            continue
        parsed = urlparse(uri.rstrip("/") + "/" + SUMMARY_FILE)
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        tried.append(f"s3://{bucket}/{key}")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                continue
            raise
        try:
            summary = json.loads(body)
        except json.JSONDecodeError as exc:
            return None, f"s3://{bucket}/{key} is not valid JSON: {exc}"
        if not isinstance(summary, dict) or "violation_count" not in summary:
            return None, f"s3://{bucket}/{key} lacks violation_count"
        return summary, None
    return None, f"{SUMMARY_FILE} not found in the outputs of processing job {job_name} (tried: {', '.join(tried) or 'no S3 outputs'})"


def _format_violations(summary):
    lines = [f"Data-quality violations: {summary.get('violation_count')} (rows checked: {summary.get('row_count', 'n/a')})"]
    violations = summary.get("violations") or []
    for v in violations[:MAX_LISTED_VIOLATIONS]:
        figures = []
        if v.get("distance") is not None:
            figures.append(f"distance={v['distance']}")
        if v.get("threshold") is not None:
            figures.append(f"threshold={v['threshold']}")
        extra = f" ({', '.join(figures)})" if figures else ""
        lines.append(f"  - {v.get('feature_name')}: {v.get('constraint_check_type')}{extra}: {v.get('description')}")
    if len(violations) > MAX_LISTED_VIOLATIONS:
        lines.append(f"  ... and {len(violations) - MAX_LISTED_VIOLATIONS} more (see the job output)")
    return lines


def _pipeline_failure_reason(execution_arn):
    try:
        desc = _client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    except ClientError as exc:
        logger.error("describe_pipeline_execution(%s) failed: %s", execution_arn, exc)
        return f"unavailable ({exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')})"
    return desc.get("FailureReason") or "not reported by SageMaker"


# ---------------------------------------------------------------- message builders
def build_message(event):
    """Return (subject, body) or None when the event needs no notification."""
    if not isinstance(event, dict):
        raise InvalidEventError(f"event must be a JSON object, got {type(event).__name__}")
    detail_type = _require(event, "detail-type", "event")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEventError("event lacks a 'detail' object")
    if detail_type == PIPELINE_STATUS:
        return _pipeline_message(event, detail)
    if detail_type == STEP_STATUS:
        return _step_message(event, detail)
    if detail_type == MODEL_PACKAGE_STATE:
        return _model_package_message(event, detail)
    raise InvalidEventError(f"unsupported detail-type {detail_type!r}")


def _pipeline_message(event, detail):
    pipeline_arn = _require(detail, "pipelineArn", "pipeline status event detail")
    execution_arn = _require(detail, "pipelineExecutionArn", "pipeline status event detail")
    status = _require(detail, "currentPipelineExecutionStatus", "pipeline status event detail")
    pipeline, execution = _pipeline_name(pipeline_arn), _execution_id(execution_arn)
    region = _region(event, pipeline_arn)
    lines = [
        f"Pipeline: {pipeline}",
        f"Execution: {execution} ({execution_arn})",
        f"Status: {status} (previous: {detail.get('previousPipelineExecutionStatus', 'n/a')})",
    ]
    if detail.get("pipelineExecutionDisplayName"):
        lines.append(f"Display name: {detail['pipelineExecutionDisplayName']}")
    if detail.get("executionStartTime") or detail.get("executionEndTime"):
        lines.append(f"Started: {detail.get('executionStartTime', 'n/a')}  Ended: {detail.get('executionEndTime', 'n/a')}")
    if status == "Failed":
        reason = detail.get("failureReason") or _pipeline_failure_reason(execution_arn)
        lines.append(f"Failure reason: {reason}")
    lines.append(f"Console: {console_link(region, pipeline, execution)}")
    return f"[{pipeline}] pipeline execution {status}", "\n".join(lines)


def _step_message(event, detail):
    pipeline_arn = _require(detail, "pipelineArn", "step status event detail")
    execution_arn = _require(detail, "pipelineExecutionArn", "step status event detail")
    step = _require(detail, "stepName", "step status event detail")
    status = _require(detail, "currentStepStatus", "step status event detail")
    custom = _custom_config().get((step, status))
    is_dq_success = step == DATA_QUALITY_STEP and status == "Succeeded"
    if status == "Succeeded" and not custom and not is_dq_success:
        return None  # routine success: not worth an e-mail
    if status not in ("Failed", "Succeeded", "Stopped") and not custom:
        return None
    pipeline, execution = _pipeline_name(pipeline_arn), _execution_id(execution_arn)
    region = _region(event, pipeline_arn)
    metadata = detail.get("metadata") or {}
    lines = [
        f"Pipeline: {pipeline}",
        f"Execution: {execution} ({execution_arn})",
        f"Step: {step} ({detail.get('stepType', 'n/a')})",
        f"Status: {status} (previous: {detail.get('previousStepStatus', 'n/a')})",
    ]
    job_arn = _job_arn(metadata)
    if job_arn:
        lines.append(f"Job: {job_arn}")
    if status == "Failed":
        reason = detail.get("failureReason") or "not reported in the event"
        lines.append(f"Failure reason: {reason}")
        if step == MODEL_QUALITY_STEP:
            if BREACH_MARKER in reason:
                lines.append("Model quality breach: the HPO retraining pipeline is started by EventBridge.")
            else:
                lines.append("Not a model quality breach (step crashed): no retraining was started.")
    if custom:
        lines.append("")
        lines.append(custom)
    if is_dq_success:
        job_name = _processing_job_name(metadata)
        if not job_name:
            lines.append("Data-quality figures unavailable: the event carries no processingJob ARN.")
            logger.error("DataQualityCheckStep event %s has no processingJob metadata", event.get("id"))
        else:
            summary, problem = _read_data_quality_summary(job_name)
            if summary is not None:
                lines.extend(_format_violations(summary))
            else:
                # Reported in the message itself and logged: the notification still goes out.
                lines.append(f"Data-quality figures unavailable: {problem}")
                logger.error("Data-quality summary of %s unavailable: %s", job_name, problem)
    job_name = _processing_job_name(metadata)
    link = console_link(region, pipeline, execution, processing_job=job_name) if job_name else console_link(region, pipeline, execution)
    lines.append(f"Console: {link}")
    if job_name:
        lines.append(f"Pipeline execution: {console_link(region, pipeline, execution)}")
    return f"[{pipeline}] {step} {status}", "\n".join(lines)


def _model_package_message(event, detail):
    group = _require(detail, "ModelPackageGroupName", "model package event detail")
    arn = _require(detail, "ModelPackageArn", "model package event detail")
    approval = detail.get("ModelApprovalStatus", "n/a")
    version = detail.get("ModelPackageVersion", arn.rsplit("/", 1)[-1])
    region = _region(event, arn)
    lines = [
        f"Model package group: {group}",
        f"Version: {version} ({arn})",
        f"Approval status: {approval}",
        f"Package status: {detail.get('ModelPackageStatus', 'n/a')}",
    ]
    generated_by = (detail.get("MetadataProperties") or {}).get("GeneratedBy")
    if generated_by:
        lines.append(f"Registered by: {generated_by}")
    lines.append(f"Console: {console_link(region, model_package_group=group)}")
    return f"[{group}] model package v{version} {approval}", "\n".join(lines)


# ---------------------------------------------------------------- handler
def lambda_handler(event, context):
    topic_arn = os.environ.get("SNS_TOPIC_ARN")
    if not topic_arn:
        raise RuntimeError("SNS_TOPIC_ARN is not set")
    try:
        built = build_message(event)
    except InvalidEventError as exc:
        logger.error("Rejected event %s: %s", (event or {}).get("id") if isinstance(event, dict) else None, exc)
        raise
    event_id = event.get("id")
    if built is None:
        logger.info("Event %s needs no notification", event_id)
        return {"status": "skipped", "event_id": event_id}
    if not event_id:
        raise InvalidEventError("event lacks 'id' (needed to suppress duplicate notifications)")
    subject, body = built
    store = IdempotencyStore()
    key = f"notification#{event_id}"
    if not store.claim(key):
        logger.info("Duplicate event %s: already notified", event_id)
        return {"status": "duplicate", "event_id": event_id}
    try:
        response = _client("sns").publish(TopicArn=topic_arn, Subject=subject[:SNS_SUBJECT_MAX], Message=body)
    except Exception:
        # Let the retry notify: drop the claim, then fail the invocation (retry, then DLQ).
        logger.exception("SNS publish failed for event %s", event_id)
        store.release(key)
        raise
    store.complete(key)
    logger.info("Published %s for event %s", response.get("MessageId"), event_id)
    return {"status": "published", "event_id": event_id, "message_id": response.get("MessageId")}
