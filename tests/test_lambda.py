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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "code" / "lambda_function"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_events import doc_model_package, doc_pipeline_status, doc_step_status  # noqa: E402  (documented samples)

notification = importlib.import_module("notification")
deploy_trigger = importlib.import_module("deploy_trigger")

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "mlops-test-bucket"


def _dev_custom_config():
    """CUSTOM_NOTIFICATION_CONFIG exactly as lambda.tf sets it for dev (steps resolved from roles)."""
    from pipeline_scripts import tfmodule
    module = tfmodule.load(ROOT, ROOT / "env_files" / "dev_env.tfvars")
    (fn,) = [b for b in module.instances("aws_lambda_function") if b["__tfmeta"]["path"].endswith(".notification")]
    return fn["environment"]["variables"]["CUSTOM_NOTIFICATION_CONFIG"]


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(k, v)
    notification.IdempotencyStore._memory.clear()
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


def _dq_job(summary=None, name="pipelines-abc123-dataqualitycheckstep-x1"):
    """A processing job as the DataQualityCheckStep creates it, its summary.json in S3."""
    prefix = f"abalone/artifacts/abalone-batch-inference/abc123/DataQualityCheckStep/output"
    boto3.client("sagemaker").create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
        AppSpecification={"ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"},
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm",
        ProcessingOutputConfig={"Outputs": [{"OutputName": "data_quality", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/{prefix}", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
    )
    if summary is not None:
        body = summary if isinstance(summary, str) else json.dumps(summary)
        boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/summary.json", Body=body.encode())
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}"


# ---------------------------------------------------------------- notification: event kinds
def test_pipeline_status_message(aws):
    result = notification.lambda_handler(doc_pipeline_status("abalone-training", "Succeeded"), None)
    assert result["status"] == "published"
    (msg,) = aws()
    assert msg["Subject"] == "[abalone-training] pipeline execution Succeeded"
    body = msg["Message"]
    for expected in ("Pipeline: abalone-training", "Execution: p4jn9xou8a8s", "Status: Succeeded",
                     "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines/abalone-training/executions/p4jn9xou8a8s"):
        assert expected in body


def test_pipeline_failure_carries_a_reason(aws):
    event = doc_pipeline_status("abalone-batch-inference", "Failed")
    notification.lambda_handler(event, None)
    (msg,) = aws()
    # No such execution in moto: the reason line says why it is unavailable instead of vanishing.
    assert "Failure reason: unavailable" in msg["Message"]
    event = doc_pipeline_status("abalone-batch-inference", "Failed")
    event["id"] = "other-id"
    event["detail"]["failureReason"] = "Step failure: One or multiple steps failed."
    notification.lambda_handler(event, None)
    (msg,) = aws()
    assert "Failure reason: Step failure: One or multiple steps failed." in msg["Message"]


def test_model_quality_breach_step_with_custom_message(aws):
    event = doc_step_status("abalone-batch-inference", "ModelQualityCalcStep", "Failed",
                            "AlgorithmError: ModelQualityBreach: mse=7.1 exceeds threshold=5.5")
    notification.lambda_handler(event, None)
    (msg,) = aws()
    body = msg["Message"]
    assert msg["Subject"] == "[abalone-batch-inference] ModelQualityCalcStep Failed"
    assert "Step: ModelQualityCalcStep" in body and "Status: Failed" in body
    assert "Failure reason: AlgorithmError: ModelQualityBreach: mse=7.1 exceeds threshold=5.5" in body
    assert "HPO retraining pipeline is started" in body
    # step_custom_message from env_files/dev_env.tfvars, end to end (the sample read step_msg).
    assert "on a threshold breach HPO retraining starts automatically" in body
    assert "#/processing-jobs/pipelines-p4jn9xou8a8s-myprocessingstep1-tmgxry49ug" in body


def test_model_quality_crash_says_no_retraining(aws):
    event = doc_step_status("abalone-batch-inference", "ModelQualityCalcStep", "Failed", "ValueError: no prediction column")
    notification.lambda_handler(event, None)
    (msg,) = aws()
    assert "Not a model quality breach" in msg["Message"]
    assert "HPO retraining pipeline is started" not in msg["Message"]


def test_data_quality_success_reports_violation_figures(aws):
    summary = {"violation_count": 2, "row_count": 417, "violations": [
        {"feature_name": "length", "constraint_check_type": "baseline_drift_check", "description": "drifted",
         "distance": 0.31, "threshold": 0.1},
        {"feature_name": "sex", "constraint_check_type": "data_type_check", "description": "bad type",
         "distance": None, "threshold": None}]}
    event = doc_step_status("abalone-batch-inference", "DataQualityCheckStep", "Succeeded")
    event["detail"]["metadata"]["processingJob"]["arn"] = _dq_job(summary)
    notification.lambda_handler(event, None)
    (msg,) = aws()
    body = msg["Message"]
    assert "Data-quality violations: 2 (rows checked: 417)" in body
    assert "length: baseline_drift_check (distance=0.31, threshold=0.1): drifted" in body
    assert "sex: data_type_check: bad type" in body
    assert "Data-quality check finished" in body  # custom message of the dev config


@pytest.mark.parametrize("summary,problem", [(None, "summary.json not found"), ("{not json", "is not valid JSON"),
                                             ({"rows": 1}, "lacks violation_count")])
def test_data_quality_summary_problems_are_reported_not_hidden(aws, caplog, summary, problem):
    event = doc_step_status("abalone-batch-inference", "DataQualityCheckStep", "Succeeded")
    event["detail"]["metadata"]["processingJob"]["arn"] = _dq_job(summary)
    with caplog.at_level(logging.ERROR):
        notification.lambda_handler(event, None)
    (msg,) = aws()
    assert "Data-quality figures unavailable" in msg["Message"] and problem in msg["Message"]
    assert problem in caplog.text


def test_routine_step_success_is_not_published(aws):
    result = notification.lambda_handler(doc_step_status("abalone-training", "TrainingStep", "Succeeded"), None)
    assert result["status"] == "skipped"
    assert aws() == []


def test_model_package_state_change(aws):
    notification.lambda_handler(doc_model_package("abalone-models", "Approved"), None)
    (msg,) = aws()
    assert msg["Subject"] == "[abalone-models] model package v2 Approved"
    assert "Approval status: Approved" in msg["Message"] and "#/model-registry/abalone-models" in msg["Message"]


# ---------------------------------------------------------------- idempotency, errors
def test_duplicate_event_publishes_once(aws):
    event = doc_pipeline_status("abalone-training", "Failed")
    event["detail"]["failureReason"] = "x"
    first = notification.lambda_handler(event, None)
    second = notification.lambda_handler(json.loads(json.dumps(event)), None)
    assert (first["status"], second["status"]) == ("published", "duplicate")
    assert len(aws()) == 1
    item = boto3.client("dynamodb").get_item(TableName="idem", Key={"idempotency_key": {"S": f"notification#{event['id']}"}})["Item"]
    assert item["status"]["S"] == "DONE" and int(item["expires_at"]["N"]) > int(item["lease_until"]["N"])


def test_duplicate_suppressed_in_memory_without_table(aws, monkeypatch):
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    event = doc_pipeline_status("abalone-training")
    notification.lambda_handler(event, None)
    assert notification.lambda_handler(event, None)["status"] == "duplicate"
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
        notification.lambda_handler(event, None)
    assert "Rejected event" in caplog.text and error in caplog.text
    assert aws() == []


def test_sns_failure_raises_and_a_retry_still_notifies(aws, monkeypatch):
    good_topic = notification.os.environ["SNS_TOPIC_ARN"]
    monkeypatch.setenv("SNS_TOPIC_ARN", f"arn:aws:sns:{REGION}:{ACCOUNT}:does-not-exist")
    event = doc_pipeline_status("abalone-training")
    with pytest.raises(ClientError):
        notification.lambda_handler(event, None)
    # The failed attempt released its claim: the async retry publishes.
    monkeypatch.setenv("SNS_TOPIC_ARN", good_topic)
    assert notification.lambda_handler(event, None)["status"] == "published"
    assert len(aws()) == 1


def test_bad_custom_config_fails_loudly(aws, monkeypatch):
    monkeypatch.setenv("CUSTOM_NOTIFICATION_CONFIG", json.dumps([{"step_name": "A", "step_status": "Failed", "step_msg": "old key"}]))
    with pytest.raises(ValueError, match="lacks step_custom_message"):
        notification.lambda_handler(doc_step_status("abalone-training", "A", "Failed", "x"), None)
    assert aws() == []


# ---------------------------------------------------------------- deploy trigger
class _GitLab(http.server.BaseHTTPRequestHandler):
    calls, status = [], 201

    def do_POST(self):  # noqa: N802 (http.server API)
        length = int(self.headers["Content-Length"])
        _GitLab.calls.append((self.path, dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))))
        self.send_response(_GitLab.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        body = {"id": 42, "web_url": "https://gitlab.example/p/-/pipelines/42"} if _GitLab.status == 201 else {"message": "404 Not Found"}
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def gitlab(aws, monkeypatch):
    _GitLab.calls, _GitLab.status = [], 201
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
    result = deploy_trigger.lambda_handler(doc_model_package("abalone-models", "Approved"), None)
    assert result["status"] == "triggered" and result["pipeline_id"] == 42
    ((path, form),) = gitlab.calls
    assert path == "/api/v4/projects/group%2Fproject/trigger/pipeline"
    assert form["token"] == "glptt-secret" and form["ref"] == "main"
    assert form["variables[MODEL_PACKAGE_ARN]"].endswith("model-package/abalone-models/2")
    assert form["variables[DEPLOY_ENVIRONMENT]"] == "prod"


def test_transformed_input_and_duplicates(gitlab):
    event = doc_model_package("abalone-models", "Approved")
    compact = {"event_id": event["id"], "model_package_group_name": "abalone-models",
               "model_package_arn": event["detail"]["ModelPackageArn"], "model_package_version": 2,
               "model_approval_status": "Approved"}
    assert deploy_trigger.lambda_handler(compact, None)["status"] == "triggered"
    assert deploy_trigger.lambda_handler(event, None)["status"] == "duplicate"
    assert len(gitlab.calls) == 1


def test_rejected_or_foreign_packages_do_not_deploy(gitlab):
    assert deploy_trigger.lambda_handler(doc_model_package("abalone-models", "Rejected"), None)["status"] == "ignored"
    assert deploy_trigger.lambda_handler(doc_model_package("other-group", "Approved"), None)["status"] == "ignored"
    assert gitlab.calls == []
    with pytest.raises(notification.InvalidEventError):
        deploy_trigger.lambda_handler({"detail-type": "Object Created", "detail": {}}, None)


def test_gitlab_error_raises_and_releases_claim(gitlab):
    gitlab.status = 404
    event = doc_model_package("abalone-models", "Approved")
    with pytest.raises(deploy_trigger.GitLabTriggerError, match="HTTP 404"):
        deploy_trigger.lambda_handler(event, None)
    gitlab.status = 201
    assert deploy_trigger.lambda_handler(event, None)["status"] == "triggered"


def test_token_from_ssm_and_https_enforced(aws, monkeypatch):
    boto3.client("ssm").put_parameter(Name="/mlops/gitlab-token", Value="glptt-ssm", Type="SecureString")
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/mlops/gitlab-token"
    assert deploy_trigger.read_trigger_token(arn) == "glptt-ssm"
    with pytest.raises(ValueError, match="must use https"):
        deploy_trigger.trigger_pipeline("http://gitlab.example.com/api/v4", "1", "t", "main", {})
