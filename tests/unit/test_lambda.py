"""Notification and deploy-trigger Lambdas against moto (SNS -> SQS to read what was published)."""

import http.server
import importlib
import json
import logging
import sys
import threading
import urllib.parse
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from steplib import artifacts

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "code" / "lambda_function"))

from aws_samples import doc_model_package, doc_pipeline_status, doc_step_status  # noqa: E402  (documented samples)

notification = importlib.import_module("notification")
deploy_trigger = importlib.import_module("deploy_trigger")

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "mlops-test-bucket"


def _dev_custom_config():
    """CUSTOM_NOTIFICATION_CONFIG exactly as lambda.tf sets it for dev (steps resolved from roles)."""
    from pipeline_scripts import tfmodule
    module = tfmodule.load(ROOT, ROOT / "env_files" / "dev_env.tfvars")
    (fn,) = [b for b in module.instances("aws_lambda_function") if b["__tfmeta"]["path"] == 'aws_lambda_function.this["notification"]']
    return fn["environment"]["variables"]["CUSTOM_NOTIFICATION_CONFIG"]


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        sns, sqs, ddb = boto3.client("sns"), boto3.client("sqs"), boto3.client("dynamodb")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        ddb.create_table(TableName="idem", KeySchema=[{"AttributeName": "idempotency_key", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "idempotency_key", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("SNS_TOPIC_ARN", topic)
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idem")
        monkeypatch.setenv("CUSTOM_NOTIFICATION_CONFIG", _dev_custom_config())

        def published():
            msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            for m in msgs:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            return [json.loads(m["Body"]) for m in msgs]

        yield published


def _job_with_output(name: str, step: str, output: str, file: str, body: str | None) -> str:
    """A processing job as the batch-inference step `step` creates it, its output `file` in S3 (unless None)."""
    prefix = f"abalone/artifacts/abalone-batch-inference/abc123/{step}/output"
    boto3.client("sagemaker").create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
        AppSpecification={"ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"},
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm",
        ProcessingOutputConfig={"Outputs": [{"OutputName": output, "S3Output": {
            "S3Uri": f"s3://{BUCKET}/{prefix}", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
    )
    if body is not None:
        boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/{file}", Body=body.encode())
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}"


def _dq_job(summary=None, name="pipelines-abc123-dataqualitycheckstep-x1"):
    """A processing job as the DataQualityCheckStep creates it, its summary.json in S3."""
    body = summary if summary is None or isinstance(summary, str) else json.dumps(summary)
    return _job_with_output(name, "DataQualityCheckStep", "data_quality", "summary.json", body)


# ---------------------------------------------------------------- notification: the execution digest
CONTRACTS = json.loads((ROOT / "contracts" / "pipelines.json").read_text())
ROLES = CONTRACTS["steps"]
INF_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/abalone-batch-inference"


class Ctx:
    """What Lambda passes as context (Powertools reads the remaining time from it)."""
    function_name, aws_request_id = "notification", "req-1"
    memory_limit_in_mb, invoked_function_arn = 256, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:notification"

    def __init__(self, remaining_ms=60000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


@pytest.fixture
def contract_env(monkeypatch):
    """The environment lambda.tf sets from contracts/pipelines.json (names resolved as Terraform does)."""
    names = {"training": "abalone-training", "training_hpo": "abalone-training-hpo", "inference": "abalone-batch-inference"}
    monkeypatch.setenv("CONTRACT_STEPS", json.dumps(ROLES))
    monkeypatch.setenv("CONTRACT_MARKERS", json.dumps(CONTRACTS["markers"]))
    monkeypatch.setenv("CONTRACT_ARTIFACTS", json.dumps(artifacts.files()))  # as contracts.tf/lambda.tf pass it
    monkeypatch.setenv("CONTRACT_PIPELINES", json.dumps({k: {"name": names[k], "started_by": v["started_by"]}
                                                         for k, v in CONTRACTS["pipelines"].items()}))
    monkeypatch.setenv("ENVIRONMENT", "dev")


def _execution(steps, execution_id="p4jn9xou8a8s"):
    """An execution record the way the runtime keeps it; moto_ext serves it as ListPipelineExecutionSteps."""
    from local_runtime import moto_ext
    arn = f"{INF_ARN}/execution/{execution_id}"
    rec = {"PipelineExecutionArn": arn, "StepOrder": [s["StepName"] for s in steps],
           "Steps": {s["StepName"]: dict({"StartTime": "2026-01-15T08:00:00Z", "EndTime": "2026-01-15T08:01:00Z"}, **s)
                     for s in steps}}
    moto_ext.install(lambda a: rec if a == arn else None)
    return rec


def _mq_job(doc, name="pipelines-abc123-modelqualitycalcstep-x1"):
    return _job_with_output(name, "ModelQualityCalcStep", "model_quality", "model_quality.json", json.dumps(doc))


def test_clean_run_is_quiet_unless_configured(aws, contract_env, monkeypatch):
    _execution([{"StepName": ROLES["training"], "StepStatus": "Succeeded"}])
    event = doc_pipeline_status("abalone-batch-inference", "Succeeded")
    assert notification.lambda_handler(event, Ctx())["status"] == "skipped"
    assert aws() == []
    monkeypatch.setenv("NOTIFY_CLEAN_RUNS", "true")
    assert notification.lambda_handler(event, Ctx())["status"] == "published"
    (msg,) = aws()
    assert msg["Subject"] == "[dev] abalone-batch-inference SUCCEEDED"
    assert "#/pipelines/abalone-batch-inference/executions/p4jn9xou8a8s" in msg["Message"]


def test_breach_digest_has_the_signal_in_the_subject(aws, contract_env, monkeypatch):
    """Drifted batch with a model-quality breach: one digest naming the failed step with its real reason,
    drift columns by distance (rounded), MSE against the threshold, and the per-step custom message."""
    summary = {"violation_count": 3, "row_count": 417, "violations": [
        {"feature_name": "length", "constraint_check_type": "baseline_drift_check", "description": "d",
         "distance": 0.1234567891234, "threshold": 0.1},
        {"feature_name": "sex", "constraint_check_type": "baseline_drift_check", "description": "d",
         "distance": 0.31274, "threshold": 0.1},
        {"feature_name": "sex", "constraint_check_type": "data_type_check", "description": "bad type"}]}
    dq_arn = _dq_job(summary)
    prefix = "abalone/artifacts/abalone-batch-inference/abc123/DataQualityCheckStep/output"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/statistics.json", Body=json.dumps(
        {"features": [{"name": "sex"}, {"name": "length"}, {"name": "rings"}]}).encode())
    mq_arn = _mq_job({"regression_metrics": {"mse": {"value": 6.71934}, "r2": {"value": 0.4123}},
                      "threshold": {"metric": "mse", "value": 5.5}})
    breach = f"{CONTRACTS['markers']['model_quality_breach']}: mse=6.71934 exceeds threshold=5.5"
    _execution([{"StepName": ROLES["data_quality_check"], "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": dq_arn}}},
                {"StepName": ROLES["model_quality"], "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": mq_arn}}},
                {"StepName": ROLES["mse_threshold_fail"], "StepStatus": "Failed", "FailureReason": breach,
                 "Metadata": {"Fail": {"ErrorMessage": breach}}}])
    monkeypatch.setenv("CUSTOM_NOTIFICATION_CONFIG", json.dumps([{"step_name": ROLES["mse_threshold_fail"],
                       "step_status": "Failed", "step_custom_message": "HPO retraining starts automatically."}]))
    step_event = doc_step_status("abalone-batch-inference", ROLES["mse_threshold_fail"], "Failed", breach)
    assert notification.lambda_handler(step_event, Ctx())["status"] == "skipped"  # folded into the digest
    event = doc_pipeline_status("abalone-batch-inference", "Failed")
    event["detail"]["failureReason"] = "Step failure: One or multiple steps failed."
    notification.lambda_handler(event, Ctx())
    (msg,) = aws()
    assert msg["Subject"] == "[dev] abalone-batch-inference FAILED · drift 2/3 · MSE 6.72 > 5.5 · abalone-training-hpo requested"
    body = msg["Message"]
    assert f"Failed step: {ROLES['mse_threshold_fail']}: {breach}" in body
    assert body.index("sex: baseline_drift_check distance 0.313 > 0.1") < body.index("length: baseline_drift_check distance 0.123")
    assert "0.1234567891234" not in body and "Model quality: MSE 6.72 > 5.5 (r2 0.412) — BREACH" in body
    assert f"{ROLES['mse_threshold_fail']} Failed: HPO retraining starts automatically." in body  # per-step message kept


def test_prediction_drift_is_reported_apart_from_the_features(aws, contract_env):
    """The predictions are checked against the version's own prediction baseline by their own step: the digest
    names that drift on its own and never counts the prediction among the drifted features."""
    dq_arn = _dq_job({"violation_count": 0, "row_count": 300, "violations": []})
    pd_arn = _job_with_output("pipelines-abc123-predictiondriftcheckstep-x1", "PredictionDriftCheckStep",
                              "prediction_drift", "summary.json", json.dumps({"violation_count": 1, "row_count": 300,
                              "violations": [{"feature_name": "prediction", "constraint_check_type": "baseline_drift_check",
                                              "description": "d", "distance": 0.41, "threshold": 0.1}]}))
    _execution([{"StepName": ROLES["data_quality_check"], "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": dq_arn}}},
                {"StepName": ROLES["prediction_drift_check"], "StepStatus": "Succeeded",
                 "Metadata": {"ProcessingJob": {"Arn": pd_arn}}}])
    notification.lambda_handler(doc_pipeline_status("abalone-batch-inference", "Succeeded"), Ctx())
    (msg,) = aws()  # a drift is worth a mail even on a clean run
    assert msg["Subject"] == "[dev] abalone-batch-inference SUCCEEDED · prediction drift"
    assert "Data quality: no violation (300 rows checked)." in msg["Message"]
    assert "Prediction drift: 1 violation(s) (300 rows checked)" in msg["Message"]
    assert "prediction: baseline_drift_check distance 0.41 > 0.1" in msg["Message"]


def test_failed_step_without_a_fail_message_reports_the_step_reason(aws, contract_env):
    _execution([{"StepName": ROLES["training_preprocess"], "StepStatus": "Failed",
                 "FailureReason": "AlgorithmError: bad column 'x' at line 3"}])
    notification.lambda_handler(doc_pipeline_status("abalone-batch-inference", "Failed"), Ctx())
    (msg,) = aws()
    assert msg["Subject"].startswith("[dev] abalone-batch-inference FAILED")
    assert f"Failed step: {ROLES['training_preprocess']}: AlgorithmError: bad column 'x' at line 3" in msg["Message"]


def test_a_huge_reason_and_custom_message_still_arrive_within_snss_limit(aws, contract_env, monkeypatch):
    """A 300 KB failure reason and a 300 KB custom message: the digest still goes out (SNS refuses a message over
    256 KB), the failed step's reason first and cut with a note, the custom message after it, the console link
    last."""
    reason = "AlgorithmError: " + "r" * 300_000
    _execution([{"StepName": ROLES["training_preprocess"], "StepStatus": "Failed", "FailureReason": reason}])
    monkeypatch.setenv("CUSTOM_NOTIFICATION_CONFIG", json.dumps([{"step_name": ROLES["training_preprocess"],
                       "step_status": "Failed", "step_custom_message": "c" * 300_000}]))
    notification.lambda_handler(doc_pipeline_status("abalone-batch-inference", "Failed"), Ctx())
    (msg,) = aws()
    body = msg["Message"]
    assert len(body.encode()) <= notification.SNS_MESSAGE_MAX_BYTES
    failed = f"Failed step: {ROLES['training_preprocess']}: AlgorithmError: rrr"
    custom = f"{ROLES['training_preprocess']} Failed: ccc"
    assert failed in body and custom in body and body.index(failed) < body.index(custom)
    assert body.count("more characters]") == 2 and body.splitlines()[-1].startswith("Console: https://")


def test_a_digest_of_too_many_lines_keeps_the_first_and_the_console_link_and_says_what_it_left_out():
    body = "\n".join([f"line {i}: " + "x" * 3_000 for i in range(200)] + ["Console: https://console.example"])
    fitted = notification.fit_message(body)
    lines = fitted.splitlines()
    assert len(fitted.encode()) <= notification.SNS_MESSAGE_MAX_BYTES < len(body.encode())
    kept = [line for line in lines if line.startswith("line ")]
    assert [line.split(":")[0] for line in kept] == [f"line {i}" for i in range(len(kept))]  # a prefix, in order
    assert lines[-2] == (f"[digest cut to SNS's 256 KB message limit: {200 - len(kept)} more line(s) left out; "
                         "the console has everything]")
    assert lines[-1] == "Console: https://console.example"
    assert notification.fit_message("short\nbody") == "short\nbody"  # what fits is left alone


def test_unknown_execution_is_said_not_hidden(aws, contract_env):
    from local_runtime import moto_ext
    moto_ext.install(lambda arn: None)
    notification.lambda_handler(doc_pipeline_status("abalone-batch-inference", "Succeeded"), Ctx())
    (msg,) = aws()
    assert "Steps unavailable: ResourceNotFound" in msg["Message"]


def _register(group, version_metrics):
    """Versions in moto's registry, each with its evaluation.json (ModelMetrics) in S3."""
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arns = []
    for i, (mse, status) in enumerate(version_metrics, 1):
        key = f"eval/{i}/evaluation.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"regression_metrics": {"mse": {"value": mse}}}).encode())
        arn = sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=status,
            InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/m/{i}.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"}}},
        )["ModelPackageArn"]
        arns.append(arn)
    return arns


def _package_event(arn, status, event_id="844e2571-85d4-695f-b930-0153b71dcb42"):
    desc = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    detail = json.loads(json.dumps({k: v for k, v in desc.items() if k != "ResponseMetadata"}, default=str))
    detail["ModelApprovalStatus"] = status
    return {"version": "0", "id": event_id, "detail-type": "SageMaker Model Package State Change",
            "source": "aws.sagemaker", "account": ACCOUNT, "region": REGION, "resources": [arn], "detail": detail}


def test_registration_mail_compares_with_serving_and_says_how_to_approve(aws, contract_env):
    serving, new = _register("abalone-models", [(4.5012, "Approved"), (3.9371, "PendingManualApproval")])
    notification.lambda_handler(_package_event(new, "PendingManualApproval"), Ctx())
    (msg,) = aws()
    assert msg["Subject"] == "[dev] abalone-models v2 awaits approval · MSE 3.94 vs 4.5 serving"
    body = msg["Message"]
    assert "Metrics: mse 3.94" in body and "Serving version 1: mse 4.5 -> 3.94" in body
    assert f"aws sagemaker update-model-package --model-package-arn {new} --model-approval-status Approved" in body
    assert "sm-local approve abalone-models/2" in body and "#/model-registry/abalone-models" in body


def test_approval_is_quiet_rejection_is_mailed(aws, contract_env):
    (arn,) = _register("abalone-models", [(4.5, "Approved")])
    assert notification.lambda_handler(_package_event(arn, "Approved"), Ctx())["status"] == "skipped"
    notification.lambda_handler(_package_event(arn, "Rejected", "other-id"), Ctx())
    (msg,) = aws()
    assert msg["Subject"].startswith("[dev] abalone-models v1 Rejected")


# ---------------------------------------------------------------- idempotency (Powertools semantics), errors
def test_duplicate_event_publishes_once(aws, contract_env, monkeypatch):
    monkeypatch.setenv("NOTIFY_CLEAN_RUNS", "true")
    _execution([{"StepName": ROLES["training"], "StepStatus": "Succeeded"}])
    event = doc_pipeline_status("abalone-batch-inference", "Succeeded")
    first = notification.lambda_handler(event, Ctx())
    second = notification.lambda_handler(json.loads(json.dumps(event)), Ctx())
    assert first["status"] == "published" and second == first  # the stored result, nothing re-sent
    assert len(aws()) == 1
    (item,) = boto3.client("dynamodb").scan(TableName="idem")["Items"]
    assert item["status"]["S"] == "COMPLETED" and int(item["expires_at"]["N"]) > 0


def test_in_progress_duplicate_raises_so_the_retry_is_not_lost(aws, contract_env, monkeypatch):
    """Powertools semantics: a duplicate that arrives while the first invocation is still working raises
    IdempotencyAlreadyInProgressError (Lambda retries it later) instead of returning a silent 'duplicate'."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
    monkeypatch.setenv("NOTIFY_CLEAN_RUNS", "true")
    _execution([{"StepName": ROLES["training"], "StepStatus": "Succeeded"}])
    event = doc_pipeline_status("abalone-batch-inference", "Succeeded")
    seen = []
    real_publish = notification._publish

    def publish_while_a_duplicate_arrives(data):
        with pytest.raises(IdempotencyAlreadyInProgressError):
            notification.lambda_handler(json.loads(json.dumps(event)), Ctx())
        seen.append("duplicate raised")
        return real_publish(data)

    monkeypatch.setattr(notification, "_publish", publish_while_a_duplicate_arrives)
    assert notification.lambda_handler(event, Ctx(remaining_ms=60000))["status"] == "published"
    assert seen == ["duplicate raised"] and len(aws()) == 1


def test_a_killed_invocation_does_not_block_its_retry(aws, contract_env, monkeypatch):
    """A timed-out invocation leaves its INPROGRESS record; its in-progress expiry is the Lambda's remaining
    time, so the retry after that publishes (the old fixed 300 s lease outlived the 60 s timeout)."""
    import time
    monkeypatch.setenv("NOTIFY_CLEAN_RUNS", "true")
    _execution([{"StepName": ROLES["training"], "StepStatus": "Succeeded"}])
    event = doc_pipeline_status("abalone-batch-inference", "Succeeded")
    real_publish = notification._publish

    def killed(data):
        raise SystemExit("Task timed out")  # not an Exception: nothing cleans up, as when Lambda kills it

    monkeypatch.setattr(notification, "_publish", killed)
    with pytest.raises(SystemExit):
        notification.lambda_handler(event, Ctx(remaining_ms=500))
    (item,) = boto3.client("dynamodb").scan(TableName="idem")["Items"]
    assert item["status"]["S"] == "INPROGRESS"
    monkeypatch.setattr(notification, "_publish", real_publish)
    time.sleep(0.6)
    assert notification.lambda_handler(event, Ctx())["status"] == "published"
    assert len(aws()) == 1


@pytest.mark.parametrize("event,error", [
    ("not an event", "must be a JSON object"),
    ({"id": "1", "detail-type": "Object Created", "source": "aws.s3", "detail": {}}, "unsupported detail-type"),
    ({"id": "1", "detail-type": "SageMaker Model Building Pipeline Execution Status Change"}, "lacks a 'detail' object"),
    ({"id": "1", "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
      "detail": {"stepName": "X", "currentStepStatus": "Failed"}}, "lacks 'pipelineArn'"),
    ({"id": "1", "source": "aws.sagemaker", "detail": {}}, "lacks 'detail-type'"),
])
def test_malformed_events_are_rejected_clearly(aws, caplog, event, error):
    with caplog.at_level(logging.ERROR), pytest.raises(notification.InvalidEventError, match=error):
        notification.lambda_handler(event, Ctx())
    assert "Rejected event" in caplog.text and error in caplog.text
    assert aws() == []


def test_sns_failure_raises_and_a_retry_still_notifies(aws, contract_env, monkeypatch):
    monkeypatch.setenv("NOTIFY_CLEAN_RUNS", "true")
    _execution([{"StepName": ROLES["training"], "StepStatus": "Succeeded"}])
    good_topic = notification.os.environ["SNS_TOPIC_ARN"]
    monkeypatch.setenv("SNS_TOPIC_ARN", f"arn:aws:sns:{REGION}:{ACCOUNT}:does-not-exist")
    event = doc_pipeline_status("abalone-batch-inference")
    with pytest.raises(ClientError):
        notification.lambda_handler(event, Ctx())
    monkeypatch.setenv("SNS_TOPIC_ARN", good_topic)  # the failed attempt left no record: the retry publishes
    assert notification.lambda_handler(event, Ctx())["status"] == "published"
    assert len(aws()) == 1


def test_bad_custom_config_fails_loudly(aws, monkeypatch):
    monkeypatch.setenv("CUSTOM_NOTIFICATION_CONFIG", json.dumps([{"step_name": "A", "step_status": "Failed", "step_msg": "old key"}]))
    with pytest.raises(ValueError, match="lacks step_custom_message"):
        notification.lambda_handler(doc_step_status("abalone-training", "A", "Failed", "x"), Ctx())
    assert aws() == []


# ---------------------------------------------------------------- deploy trigger
class _GitLab(http.server.BaseHTTPRequestHandler):
    calls, status, body = [], 201, None

    def do_POST(self):  # noqa: N802 (http.server API)
        length = int(self.headers["Content-Length"])
        _GitLab.calls.append((self.path, dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))))
        self.send_response(_GitLab.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        body = {"id": 42, "web_url": "https://gitlab.example/p/-/pipelines/42"} if _GitLab.status == 201 else \
            (_GitLab.body or {"message": "404 Not Found"})
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def gitlab(aws, monkeypatch):
    _GitLab.calls, _GitLab.status, _GitLab.body = [], 201, None
    server = http.server.HTTPServer(("127.0.0.1", 0), _GitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = boto3.client("secretsmanager").create_secret(Name="gitlab-trigger", SecretString=json.dumps({"token": "glptt-secret"}))["ARN"]
    monkeypatch.setenv("GITLAB_API_URL", f"http://127.0.0.1:{server.server_port}/api/v4")
    monkeypatch.setenv("GITLAB_PROJECT_ID", "group/project")
    monkeypatch.setenv("GITLAB_TRIGGER_TOKEN_SECRET_ARN", secret)
    monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", "abalone-models")
    monkeypatch.setenv("DEPLOY_ENVIRONMENT", "prod")
    yield _GitLab
    server.shutdown()
    server.server_close()


def test_approval_triggers_gitlab_pipeline(gitlab):
    result = deploy_trigger.lambda_handler(doc_model_package("abalone-models", "Approved"), Ctx())
    assert result["status"] == "triggered" and result["pipeline_id"] == 42
    ((path, form),) = gitlab.calls
    assert path == "/api/v4/projects/group%2Fproject/trigger/pipeline"
    assert form["token"] == "glptt-secret" and form["ref"] == "main"
    assert form["inputs[model_package_arn]"].endswith("model-package/abalone-models/2")
    assert form["inputs[deploy_environment]"] == "prod" and form["inputs[deploy_reason]"] == "approval"
    assert not [k for k in form if k.startswith("variables[")], "new GitLab.com projects refuse pipeline variables"


def test_the_trigger_passes_the_inputs_gitlab_ci_declares(aws, monkeypatch, tmp_path):
    """The trigger API checks inputs against the project's spec:inputs (https://docs.gitlab.com/ci/inputs/):
    the stand-in reads the real .gitlab-ci.yml header, so a renamed input or a new option breaks this test as it
    would break the deploy in GitLab. Pipeline variables are refused as on a new GitLab.com project."""
    from local_runtime.gitlab_api import VARIABLES_REFUSED, GitLabAPI
    api = GitLabAPI(ROOT / ".gitlab-ci.yml", "group/project", tmp_path / "state").start()
    try:
        secret = boto3.client("secretsmanager").create_secret(Name="gitlab-trigger-real", SecretString=api.trigger_token)["ARN"]
        monkeypatch.setenv("GITLAB_API_URL", api.api_url)
        monkeypatch.setenv("GITLAB_PROJECT_ID", "group/project")
        monkeypatch.setenv("GITLAB_TRIGGER_TOKEN_SECRET_ARN", secret)
        monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", "abalone-models")
        monkeypatch.setenv("DEPLOY_ENVIRONMENT", "staging")
        result = deploy_trigger.lambda_handler(doc_model_package("abalone-models", "Approved"), Ctx())
        assert result["status"] == "triggered", result
        (pipeline,) = api.triggered
        assert pipeline["inputs"]["deploy_environment"] == "staging" and pipeline["inputs"]["destroy_environment"] == "none"
        assert pipeline["inputs"]["model_package_arn"] == result["model_package_arn"]
        with pytest.raises(deploy_trigger.GitLabTriggerError, match="not in the list of allowed options"):
            deploy_trigger.trigger_pipeline(api.api_url, "group/project", api.trigger_token, "main",
                                            {"deploy_environment": "qa"})
        status, body = api.handle("POST", "/api/v4/projects/group%2Fproject/trigger/pipeline", {},
                                  f"token={api.trigger_token}&ref=main&variables[X]=1".encode())
        assert status == 400 and body["message"]["base"] == [VARIABLES_REFUSED]
    finally:
        api.stop()


def test_a_refused_trigger_names_the_project_setting(gitlab):
    """GitLab answers "Insufficient permissions to set pipeline variables" when the project's minimum role for
    pipeline variables refuses the trigger (https://docs.gitlab.com/ci/variables/#restrict-pipeline-variables)."""
    gitlab.status, gitlab.body = 400, {"message": {"base": ["Insufficient permissions to set pipeline variables"]}}
    with pytest.raises(deploy_trigger.GitLabTriggerError, match="Minimum role to use pipeline variables"):
        deploy_trigger.lambda_handler(doc_model_package("abalone-models", "Approved"), Ctx())


def test_url_encoded_project_path_is_encoded_once(gitlab, monkeypatch):
    monkeypatch.setenv("GITLAB_PROJECT_ID", "group%2Fproject")  # the form variables.tf asks for
    deploy_trigger.lambda_handler(doc_model_package("abalone-models", "Approved"), Ctx())
    ((path, _),) = gitlab.calls
    assert path == "/api/v4/projects/group%2Fproject/trigger/pipeline"


def test_transformed_input_and_duplicates(gitlab):
    event = doc_model_package("abalone-models", "Approved")
    compact = {"event_id": event["id"], "model_package_group_name": "abalone-models",
               "model_package_arn": event["detail"]["ModelPackageArn"], "model_package_version": 2,
               "model_approval_status": "Approved"}
    first = deploy_trigger.lambda_handler(compact, Ctx())
    assert first["status"] == "triggered"
    assert deploy_trigger.lambda_handler(event, Ctx()) == first  # EventBridge duplicate: stored result
    assert len(gitlab.calls) == 1


def test_reapproval_after_rejection_deploys_again_and_rejecting_the_serving_version_rolls_back(gitlab):
    """v1 approved, v2 approved (serving) -> v2 rejected: redeploy (rebuilds around v1) -> v2 re-approved:
    deploy again (a new event, not a duplicate). Rejecting the older v1 redeploys nothing."""
    v1, v2 = _register("abalone-models", [(4.5, "Approved"), (4.1, "Approved")])
    sm = boto3.client("sagemaker")
    assert deploy_trigger.lambda_handler(_package_event(v2, "Approved", "e1"), Ctx())["status"] == "triggered"
    sm.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Rejected")
    rollback = deploy_trigger.lambda_handler(_package_event(v2, "Rejected", "e2"), Ctx())
    assert rollback["status"] == "triggered" and rollback["reason"] == "rollback"
    assert rollback["model_package_arn"] == v1 and gitlab.calls[-1][1]["inputs[model_package_arn]"] == v1
    sm.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Approved")
    assert deploy_trigger.lambda_handler(_package_event(v2, "Approved", "e3"), Ctx())["status"] == "triggered"
    sm.update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Rejected")
    assert deploy_trigger.lambda_handler(_package_event(v1, "Rejected", "e4"), Ctx())["status"] == "ignored"
    assert [f["inputs[deploy_reason]"] for _, f in gitlab.calls] == ["approval", "rollback", "approval"]
    assert [f["inputs[model_package_arn]"] for _, f in gitlab.calls] == [v2, v1, v2]


def test_rejecting_the_last_approved_version_withdraws_the_inference_pipeline(gitlab, caplog):
    """Nothing to roll back to: one deploy with deploy_reason withdraw and no model, so the build replaces the
    inference pipeline by one that refuses batches (the rejected model must not go on scoring)."""
    (v1,) = _register("abalone-models", [(4.5, "Rejected")])
    with caplog.at_level(logging.ERROR):
        result = deploy_trigger.lambda_handler(_package_event(v1, "Rejected", "e9"), Ctx())
    assert (result["status"], result["reason"], result["model_package_arn"]) == ("triggered", "withdraw", "")
    assert "withdrawing the inference pipeline until a version is approved" in caplog.text
    ((_, form),) = gitlab.calls
    assert form["inputs[deploy_reason]"] == "withdraw" and form["inputs[model_package_arn]"] == ""


def test_foreign_or_pending_packages_do_not_deploy(gitlab):
    assert deploy_trigger.lambda_handler(doc_model_package("other-group", "Approved"), Ctx())["status"] == "ignored"
    assert deploy_trigger.lambda_handler(doc_model_package("abalone-models", "PendingManualApproval"), Ctx())["status"] == "ignored"
    assert gitlab.calls == []
    with pytest.raises(notification.InvalidEventError):
        deploy_trigger.lambda_handler({"detail-type": "Object Created", "detail": {}}, Ctx())


def test_gitlab_error_raises_and_the_retry_deploys(gitlab):
    gitlab.status = 404
    event = doc_model_package("abalone-models", "Approved")
    with pytest.raises(deploy_trigger.GitLabTriggerError, match="HTTP 404"):
        deploy_trigger.lambda_handler(event, Ctx())
    gitlab.status = 201
    assert deploy_trigger.lambda_handler(event, Ctx())["status"] == "triggered"


def test_read_timeout_is_not_retried_into_a_second_deploy(gitlab, monkeypatch, caplog):
    """GitLab got the request but answered too late: the retry must not trigger a second pipeline."""
    import time
    monkeypatch.setattr(deploy_trigger, "HTTP_TIMEOUT_SECONDS", 0.3)
    real = _GitLab.do_POST

    def slow(self):
        time.sleep(0.8)
        real(self)

    monkeypatch.setattr(_GitLab, "do_POST", slow)
    event = doc_model_package("abalone-models", "Approved")
    with caplog.at_level(logging.ERROR):
        first = deploy_trigger.lambda_handler(event, Ctx())
    assert first["status"] == "uncertain" and f"TRIGGERED_BY_EVENT_ID={event['id']}" in caplog.text
    assert deploy_trigger.lambda_handler(event, Ctx()) == first  # the retry: no second call
    time.sleep(1)
    assert len(gitlab.calls) == 1


def test_token_from_ssm_and_https_enforced(aws, monkeypatch):
    boto3.client("ssm").put_parameter(Name="/mlops/gitlab-token", Value="glptt-ssm", Type="SecureString")
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/mlops/gitlab-token"
    assert deploy_trigger.read_trigger_token(arn) == "glptt-ssm"
    with pytest.raises(ValueError, match="must use https"):
        deploy_trigger.trigger_pipeline("http://gitlab.example.com/api/v4", "1", "t", "main", {})


def test_warm_invocations_reuse_the_idempotency_client(aws, contract_env, monkeypatch):
    """Lambda best practice ("Initialize SDK clients ... outside of the function handler",
    https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html): the idempotency store's DynamoDB client is
    made once per execution environment (and region), not once per invocation; deduplication is unchanged."""
    import idempotency

    monkeypatch.setenv("NOTIFY_CLEAN_RUNS", "true")
    _execution([{"StepName": ROLES["training"], "StepStatus": "Succeeded"}])
    event = doc_pipeline_status("abalone-batch-inference", "Succeeded")
    first = notification.lambda_handler(event, Ctx())
    client = idempotency._dynamodb()
    second = notification.lambda_handler(json.loads(json.dumps(event)), Ctx())
    assert idempotency._dynamodb() is client
    assert first["status"] == "published" and second == first and len(aws()) == 1  # still published once
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert idempotency._dynamodb() is not client  # another region, another client
