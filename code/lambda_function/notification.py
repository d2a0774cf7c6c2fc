"""Notification Lambda: one digest per pipeline execution, one mail per registered model version -> SNS.

Accepts the raw EventBridge events documented by AWS:
- "SageMaker Model Building Pipeline Execution Status Change" (terminal status): the digest. The signal is
  in the subject, e.g. "[dev] abalone-batch-inference FAILED · drift 9/9 · MSE 6.72 > 5.5 · HPO started
  <id>". The body names the failed step with its real reason (a Fail step's message; a job's ExitMessage
  read with DescribeProcessingJob, since the pipeline's own FailureReason is generic), the drifted features
  and, apart from them, drift of the predictions against the version's own prediction baseline,
  model quality against its threshold, the per-step custom messages, and links to the report and the console.
  Clean runs (succeeded, no drift, no breach) are quiet unless NOTIFY_CLEAN_RUNS=true.
- "... Execution Step Status Change": folded into the execution's digest (nothing published per step).
- "SageMaker Model Package State Change": a registration (PendingManualApproval) mail with the version's
  metrics, the comparison with the serving (latest Approved) version and the exact approve command and
  console link; a rejection mail. Approvals are quiet unless NOTIFY_CLEAN_RUNS=true (the deploy follows).

Environment:
  SNS_TOPIC_ARN               topic to publish to (required)
  ENVIRONMENT                 dev / staging / prod, shown in the subject
  NOTIFY_CLEAN_RUNS           "true" also mails clean runs and approvals (tfvars notify_clean_runs)
  CUSTOM_NOTIFICATION_CONFIG  JSON list of {"step_name", "step_status", "step_custom_message"}
  CONTRACT_ARTIFACTS          {kind: file} of scripts/steplib/artifacts.json (the step outputs read), set by Terraform
  CONTRACT_STEPS / CONTRACT_MARKERS / CONTRACT_PIPELINES  contracts/pipelines.json parts, set by Terraform; without
                              them the digest lists steps generically (step names are never spelled here)
  IDEMPOTENCY_TABLE, IDEMPOTENCY_TTL_HOURS  duplicate suppression (see idempotency.py)

Errors are never swallowed: an SNS failure raises (Lambda retries the async invocation, then the event
lands in the DLQ); a malformed event raises InvalidEventError. Figures that cannot be read are said in the
message, never silently left out.
"""

import json
import logging
import os
from urllib.parse import quote, urlparse

import boto3
from botocore.exceptions import ClientError

from idempotency import once  # beside this file in the package

logger = logging.getLogger()
logger.setLevel(logging.INFO)

PIPELINE_STATUS = "SageMaker Model Building Pipeline Execution Status Change"
STEP_STATUS = "SageMaker Model Building Pipeline Execution Step Status Change"
MODEL_PACKAGE_STATE = "SageMaker Model Package State Change"
MAX_LISTED_VIOLATIONS = 20
SNS_SUBJECT_MAX = 100
# SNS Publish: "The Message parameter ... maximum size is 256 KB" (262,144 bytes of UTF-8; moto counts characters,
# the stricter bytes are counted here). Each line is cut first, so no single long text (a failure reason, a
# custom message) can push the others out; then whole lines from the end, keeping the console link.
SNS_MESSAGE_MAX_BYTES = 262_144
MAX_LINE_CHARS = 4_000
SEP = " · "


class InvalidEventError(ValueError):
    """The event is not one this function understands; nothing was published."""


# ---------------------------------------------------------------- configuration
def _json_env(name, default):
    raw = os.environ.get(name, "") or ""
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from exc


def _custom_config():
    entries = _json_env("CUSTOM_NOTIFICATION_CONFIG", [])
    if not isinstance(entries, list):
        raise ValueError("CUSTOM_NOTIFICATION_CONFIG must be a JSON list")
    config = {}
    for i, entry in enumerate(entries):
        missing = [k for k in ("step_name", "step_status", "step_custom_message") if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"CUSTOM_NOTIFICATION_CONFIG entry {i} lacks {', '.join(missing)}")
        config[(entry["step_name"], entry["step_status"])] = entry["step_custom_message"]
    return config


def _steps():
    return _json_env("CONTRACT_STEPS", {})


def _markers():
    return _json_env("CONTRACT_MARKERS", {})


def _pipelines():
    return _json_env("CONTRACT_PIPELINES", {})


def _artifact(kind):
    """The file name of a step output (scripts/steplib/artifacts.json, passed as CONTRACT_ARTIFACTS by lambda.tf)."""
    files = _json_env("CONTRACT_ARTIFACTS", {})
    if kind not in files:
        raise ValueError(f"CONTRACT_ARTIFACTS (lambda.tf, from scripts/steplib/artifacts.json) names no {kind!r} artifact")
    return files[kind]


def _client(service):
    return boto3.client(service, region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))


def _notify_clean():
    return os.environ.get("NOTIFY_CLEAN_RUNS", "false").strip().lower() == "true"


# ---------------------------------------------------------------- helpers
def _require(mapping, key, where):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if value in (None, ""):
        raise InvalidEventError(f"{where} lacks '{key}'")
    return value


def _pipeline_name(pipeline_arn):
    return pipeline_arn.split(":pipeline/", 1)[-1].split("/", 1)[0]


def _execution_id(execution_arn):
    return execution_arn.rsplit("/execution/", 1)[-1] if "/execution/" in execution_arn else execution_arn


def _region(event, arn=""):
    if event.get("region"):
        return event["region"]
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else os.environ.get("AWS_REGION", "us-east-1")


def num(x, digits=3):
    """Round for people: 6.71934 -> 6.72, 0.31274 -> 0.313, 12345.6 -> 12,346."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}g}"


def console_link(region, pipeline_name=None, execution_id=None, processing_job=None, model_package_group=None):
    base = f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#"
    if processing_job:
        return f"{base}/processing-jobs/{quote(processing_job)}"
    if model_package_group:
        return f"{base}/model-registry/{quote(model_package_group)}"
    if execution_id:
        return f"{base}/pipelines/{quote(pipeline_name)}/executions/{quote(execution_id)}"
    return f"{base}/pipelines/{quote(pipeline_name)}"


def s3_console_link(uri):
    p = urlparse(uri)
    return f"https://s3.console.aws.amazon.com/s3/object/{p.netloc}?prefix={quote(p.path.lstrip('/'))}"


def _job(metadata):
    """(kind, name) of the job a step ran, from ListPipelineExecutionSteps metadata."""
    for kind in ("ProcessingJob", "TrainingJob", "TransformJob", "TuningJob"):
        arn = ((metadata or {}).get(kind) or {}).get("Arn")
        if arn:
            return kind, arn.rsplit("/", 1)[-1]
    return None, None


def list_steps(execution_arn):
    """(steps, None) or (None, reason) from ListPipelineExecutionSteps (all pages, oldest first)."""
    sm = _client("sagemaker")
    steps, token = [], None
    try:
        while True:
            kwargs = {"PipelineExecutionArn": execution_arn, "SortOrder": "Ascending"}
            if token:
                kwargs["NextToken"] = token
            page = sm.list_pipeline_execution_steps(**kwargs)
            steps.extend(page.get("PipelineExecutionSteps", []))
            token = page.get("NextToken")
            if not token:
                return steps, None
    except ClientError as exc:
        logger.error("ListPipelineExecutionSteps(%s) failed: %s", execution_arn, exc)
        return None, f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')}"


def step_failure(step):
    """The real reason a step failed: a Fail step's message, else the job's ExitMessage/FailureReason."""
    meta = step.get("Metadata") or {}
    fail = (meta.get("Fail") or {}).get("ErrorMessage")
    if fail:
        return fail
    kind, name = _job(meta)
    reason = None
    try:
        if kind == "ProcessingJob":
            job = _client("sagemaker").describe_processing_job(ProcessingJobName=name)
            reason = job.get("ExitMessage") or job.get("FailureReason")
        elif kind == "TrainingJob":
            reason = _client("sagemaker").describe_training_job(TrainingJobName=name).get("FailureReason")
        elif kind == "TransformJob":
            reason = _client("sagemaker").describe_transform_job(TransformJobName=name).get("FailureReason")
    except ClientError as exc:
        logger.error("describe %s %s failed: %s", kind, name, exc)
    return reason or step.get("FailureReason") or "no reason reported"


def read_job_output(job_name, filename):
    """(document, None) or (None, reason): a JSON file written at the root of one of the job's outputs."""
    job = _client("sagemaker").describe_processing_job(ProcessingJobName=job_name)
    s3 = _client("s3")
    tried = []
    for output in (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        uri = (output.get("S3Output") or {}).get("S3Uri")
        if not uri:
            continue
        p = urlparse(uri.rstrip("/") + "/" + filename)
        tried.append(f"s3://{p.netloc}/{p.path.lstrip('/')}")
        try:
            body = s3.get_object(Bucket=p.netloc, Key=p.path.lstrip("/"))["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                continue
            raise
        try:
            return json.loads(body), None
        except json.JSONDecodeError as exc:
            return None, f"{tried[-1]} is not valid JSON: {exc}"
    return None, f"{filename} not found in the outputs of processing job {job_name} (tried: {', '.join(tried) or 'no S3 outputs'})"


def job_output_uri(job_name, filename):
    """s3:// URI of filename in one of the job's outputs, or None."""
    job = _client("sagemaker").describe_processing_job(ProcessingJobName=job_name)
    s3 = _client("s3")
    for output in (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        uri = (output.get("S3Output") or {}).get("S3Uri")
        if not uri:
            continue
        p = urlparse(uri.rstrip("/") + "/" + filename)
        try:
            s3.head_object(Bucket=p.netloc, Key=p.path.lstrip("/"))
            return f"s3://{p.netloc}/{p.path.lstrip('/')}"
        except ClientError:
            continue
    return None


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
        return _digest(event, detail)
    if detail_type == STEP_STATUS:
        for key in ("pipelineArn", "pipelineExecutionArn", "stepName", "currentStepStatus"):
            _require(detail, key, "step status event detail")
        _custom_config()  # a broken configuration fails loudly on every event, not only at the digest
        return None  # folded into the execution's digest
    if detail_type == MODEL_PACKAGE_STATE:
        return _model_package_message(event, detail)
    raise InvalidEventError(f"unsupported detail-type {detail_type!r}")


def _data_quality(step, title="Data quality", unit="features", subject="drift"):
    """(subject part, body lines) of a data-quality check step: the features' check (drift 2/8), or, with
    title "Prediction drift", the check of the model's predictions against the version's own baseline,
    reported apart so that predictions never count as a drifted feature."""
    kind, job = _job(step.get("Metadata"))
    if step.get("StepStatus") != "Succeeded" or kind != "ProcessingJob":
        return None, []
    summary, problem = read_job_output(job, _artifact("data_quality_summary"))
    if summary is None or not isinstance(summary, dict) or "violation_count" not in summary:
        problem = problem or "summary.json lacks violation_count"
        logger.error("%s summary of %s unavailable: %s", title, job, problem)
        return f"{subject} ?", [f"{title}: figures unavailable: {problem}"]
    stats, _ = read_job_output(job, _artifact("data_quality_statistics"))
    features = [f.get("name") for f in (stats or {}).get("features", [])] if isinstance(stats, dict) else []
    violations = sorted(summary.get("violations") or [], key=lambda v: -(v.get("distance") or 0))
    drifted = sorted({v.get("feature_name") for v in violations})
    if not violations:
        return None, [f"{title}: no violation ({summary.get('row_count', 'n/a')} rows checked)."]
    if unit == "features":
        part = f"{subject} {len(drifted)}/{len(features)}" if features else f"{len(violations)} data-quality violations"
        head = f"in {len(drifted)} of {len(features) or '?'} {unit} "
    else:
        part, head = subject, ""
    lines = [f"{title}: {len(violations)} violation(s) {head}"
             f"({summary.get('row_count', 'n/a')} rows checked), largest distance first:"]
    for v in violations[:MAX_LISTED_VIOLATIONS]:
        figures = f" distance {num(v['distance'])} > {num(v.get('threshold'))}" if v.get("distance") is not None else ""
        lines.append(f"  - {v.get('feature_name')}: {v.get('constraint_check_type')}{figures}")
    if len(violations) > MAX_LISTED_VIOLATIONS:
        lines.append(f"  ... and {len(violations) - MAX_LISTED_VIOLATIONS} more (see the report)")
    return part, lines


def _model_quality(step):
    kind, job = _job(step.get("Metadata"))
    if kind != "ProcessingJob":
        return None, []
    doc, problem = read_job_output(job, _artifact("model_quality"))
    if doc is None:
        return None, [f"Model quality: figures unavailable: {problem}"] if step.get("StepStatus") == "Succeeded" else []
    mse = ((doc.get("regression_metrics") or {}).get("mse") or {}).get("value")
    thr = (doc.get("threshold") or {}).get("value")
    if mse is None:
        return None, [f"Model quality: not evaluated ({doc.get('ground_truth') or 'no metrics'})."]
    breach = thr is not None and mse > thr
    part = f"MSE {num(mse)} {'>' if breach else '≤'} {num(thr)}" if thr is not None else f"MSE {num(mse)}"
    others = ", ".join(f"{k} {num(v.get('value'))}" for k, v in (doc.get("regression_metrics") or {}).items()
                       if k != "mse" and isinstance(v, dict))
    return part, [f"Model quality: {part}" + (f" ({others})" if others else "") + (" — BREACH" if breach else "")]


def _retraining(pipeline, start_time, breached):
    """Subject part and line about the pipeline a breach of this one starts (contract started_by.breach_of)."""
    contract = _pipelines()
    mine = next((k for k, p in contract.items() if p.get("name", "").lower() == pipeline.lower()), None)
    target = next((p.get("name") for p in contract.values() if mine and (p.get("started_by") or {}).get("breach_of") == mine), None)
    if not (breached and target):
        return None, []
    try:
        execs = _client("sagemaker").list_pipeline_executions(PipelineName=target, SortBy="CreationTime",
                                                               SortOrder="Descending", MaxResults=10)
        started = [e for e in execs.get("PipelineExecutionSummaries", [])
                   if not start_time or _after(e.get("StartTime"), start_time)]
    except ClientError as exc:
        return f"{target} requested", [f"Retraining: {target} requested by the breach rule ({exc.response['Error']['Code']} listing it)."]
    if started:
        ex_id = _execution_id(started[-1]["PipelineExecutionArn"])
        return f"HPO started {ex_id}", [f"Retraining: {target} execution {ex_id} was started by the breach."]
    return f"{target} requested", [f"Retraining: the breach rule starts {target}."]


def _after(t, start_iso):
    import datetime as dt
    if t is None:
        return False
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    s = dt.datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    if s.tzinfo is None:
        s = s.replace(tzinfo=dt.timezone.utc)
    return t >= s


def _digest(event, detail):
    pipeline_arn = _require(detail, "pipelineArn", "pipeline status event detail")
    execution_arn = _require(detail, "pipelineExecutionArn", "pipeline status event detail")
    status = _require(detail, "currentPipelineExecutionStatus", "pipeline status event detail")
    if status not in ("Succeeded", "Failed", "Stopped"):
        return None
    pipeline, execution = _pipeline_name(pipeline_arn), _execution_id(execution_arn)
    region = _region(event, pipeline_arn)
    roles, markers, custom = _steps(), _markers(), _custom_config()
    steps, steps_problem = list_steps(execution_arn)
    parts, body, attention = [], [], status != "Succeeded"
    failed = [s for s in steps or [] if s.get("StepStatus") == "Failed"]
    breach_marker = markers.get("model_quality_breach")
    breached = False
    for s in failed:
        reason = step_failure(s)
        breached = breached or bool(breach_marker and breach_marker in reason)
        body.append(f"Failed step: {s.get('StepName')}: {reason}")
        kind, job = _job(s.get("Metadata"))
        if job:
            body.append(f"  job: {console_link(region, processing_job=job) if kind == 'ProcessingJob' else job}")
    if status == "Failed" and steps is not None and not failed:
        body.append(f"Failure reason: {detail.get('failureReason') or 'no failed step reported'}")
    by_name = {s.get("StepName"): s for s in steps or []}
    dq = by_name.get(roles.get("data_quality_check"))
    if dq:
        part, lines = _data_quality(dq)
        attention = attention or part is not None
        parts += [part] if part else []
        body += lines
    pd = by_name.get(roles.get("prediction_drift_check"))
    if pd:
        part, lines = _data_quality(pd, "Prediction drift", "predictions", "prediction drift")
        attention = attention or part is not None
        parts += [part] if part else []
        body += lines
    mq = by_name.get(roles.get("model_quality"))
    if mq:
        part, lines = _model_quality(mq)
        attention = attention or (part is not None and ">" in part)
        parts += [part] if part else []
        body += lines
    part, lines = _retraining(pipeline, detail.get("executionStartTime"), breached)
    parts += [part] if part else []
    body += lines
    for s in steps or []:
        msg = custom.get((s.get("StepName"), s.get("StepStatus")))
        if msg:
            body.append(f"{s.get('StepName')} {s.get('StepStatus')}: {msg}")
    if steps_problem:
        body.append(f"Steps unavailable: {steps_problem}")
        attention = True
    if not attention and not _notify_clean():
        logger.info("Clean run %s of %s: quiet (NOTIFY_CLEAN_RUNS is not true)", execution, pipeline)
        return None
    report = by_name.get(roles.get("report")) if roles.get("report") else None
    kind, job = _job((report or {}).get("Metadata"))
    if job:
        uri = job_output_uri(job, _artifact("report"))
        body.append(f"Report: {s3_console_link(uri) if uri else 'not written (see the report step)'}" + (f" ({uri})" if uri else ""))
    body.append(f"Console: {console_link(region, pipeline, execution)}")
    head = [f"Pipeline: {pipeline}", f"Execution: {execution} ({execution_arn})",
            f"Status: {status}  Started: {detail.get('executionStartTime', 'n/a')}  Ended: {detail.get('executionEndTime', 'n/a')}"]
    env = os.environ.get("ENVIRONMENT")
    subject = SEP.join([f"{'[' + env + '] ' if env else ''}{pipeline} {status.upper()}"] + parts)
    return subject, "\n".join(head + [""] + body)


def _package_metrics(desc):
    uri = (((desc.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
    if not uri:
        return {}, "no ModelMetrics.ModelQuality.Statistics"
    p = urlparse(uri)
    try:
        doc = json.loads(_client("s3").get_object(Bucket=p.netloc, Key=p.path.lstrip("/"))["Body"].read())
    except (ClientError, json.JSONDecodeError) as exc:
        return {}, f"cannot read {uri}: {exc}"
    m = doc.get("regression_metrics") or {}
    return {k: v.get("value") for k, v in m.items() if isinstance(v, dict) and isinstance(v.get("value"), (int, float))}, None


def _serving(group, exclude_arn):
    sm = _client("sagemaker")
    try:
        listed = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                        SortBy="CreationTime", SortOrder="Descending", MaxResults=10)
    except ClientError as exc:
        logger.error("ListModelPackages(%s) failed: %s", group, exc)
        return None
    for s in listed.get("ModelPackageSummaryList", []):
        if s["ModelPackageArn"] != exclude_arn:
            return sm.describe_model_package(ModelPackageName=s["ModelPackageArn"])
    return None


def _model_package_message(event, detail):
    group = _require(detail, "ModelPackageGroupName", "model package event detail")
    arn = _require(detail, "ModelPackageArn", "model package event detail")
    approval = detail.get("ModelApprovalStatus", "n/a")
    if approval == "Approved" and not _notify_clean():
        return None  # the deploy follows; quiet like a clean run
    version = detail.get("ModelPackageVersion", arn.rsplit("/", 1)[-1])
    region = _region(event, arn)
    env = os.environ.get("ENVIRONMENT")
    prefix = f"[{env}] " if env else ""
    lines = [f"Model package group: {group}", f"Version: {version} ({arn})", f"Approval status: {approval}"]
    generated_by = (detail.get("MetadataProperties") or {}).get("GeneratedBy")
    if generated_by:
        lines.append(f"Registered by: {generated_by}")
    metrics, problem = _package_metrics(detail)
    lines.append("Metrics: " + (", ".join(f"{k} {num(v)}" for k, v in metrics.items()) or f"unavailable ({problem})"))
    serving = _serving(group, arn)
    subject_extra = ""
    if serving:
        s_metrics, _ = _package_metrics(serving)
        diffs = ", ".join(f"{k} {num(s_metrics[k])} -> {num(v)}" for k, v in metrics.items() if k in s_metrics)
        lines.append(f"Serving version {serving.get('ModelPackageVersion')}: {diffs or 'no comparable metrics'}")
        if "mse" in metrics and "mse" in s_metrics:
            subject_extra = f"{SEP}MSE {num(metrics['mse'])} vs {num(s_metrics['mse'])} serving"
    else:
        lines.append("Serving version: none approved yet")
        if "mse" in metrics:
            subject_extra = f"{SEP}MSE {num(metrics['mse'])}"
    if approval == "PendingManualApproval":
        lines += ["", "To approve (the approval deploys it through the GitLab pipeline):",
                  f"  aws sagemaker update-model-package --model-package-arn {arn} --model-approval-status Approved",
                  f"  offline: .venv/bin/sm-local approve {group}/{version}   (or the Approve button of `sm-local studio`)",
                  f"  or SageMaker Studio: {console_link(region, model_package_group=group)}"]
        subject = f"{prefix}{group} v{version} awaits approval{subject_extra}"
    else:
        subject = f"{prefix}{group} v{version} {approval}{subject_extra}"
        lines.append(f"Console: {console_link(region, model_package_group=group)}")
        if approval == "Rejected":
            lines.append("If this version was serving, the deploy trigger redeploys the latest Approved version.")
    return subject, "\n".join(lines)


def fit_message(body: str, limit: int = SNS_MESSAGE_MAX_BYTES) -> str:
    """``body`` within SNS's message limit, saying what was cut: every line at most MAX_LINE_CHARS, then, if still
    too long, lines from the end (the last line, the console link, is kept)."""
    lines = [line if len(line) <= MAX_LINE_CHARS else
             f"{line[:MAX_LINE_CHARS]}... [cut: {len(line) - MAX_LINE_CHARS:,} more characters]" for line in body.split("\n")]
    if len("\n".join(lines).encode()) <= limit:
        return "\n".join(lines)
    last = lines.pop()
    note = "[digest cut to SNS's 256 KB message limit: {} more line(s) left out; the console has everything]"
    budget = limit - len(last.encode()) - len(note.format(len(lines)).encode()) - 2
    kept = []
    for line in lines:
        size = len(line.encode()) + 1
        if size > budget:
            break
        kept.append(line)
        budget -= size
    return "\n".join(kept + [note.format(len(lines) - len(kept)), last])


# ---------------------------------------------------------------- handler
def _publish(data):
    subject, body = data["subject"], fit_message(data["body"])
    response = _client("sns").publish(TopicArn=os.environ["SNS_TOPIC_ARN"], Subject=subject[:SNS_SUBJECT_MAX], Message=body)
    logger.info("Published %s for event %s", response.get("MessageId"), data["id"])
    return {"status": "published", "event_id": data["id"], "message_id": response.get("MessageId")}


def lambda_handler(event, context):
    if not os.environ.get("SNS_TOPIC_ARN"):
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
    return once(_publish, {"id": event_id, "subject": subject, "body": body}, context, "id")
