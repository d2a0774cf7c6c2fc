"""The pipeline starter Lambda (code/lambda_function/start_pipeline.py) against moto, fed the
documented sample events: S3 Object Created (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)
and SageMaker pipeline step status change
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html),
wrapped as the events.tf input transformer wraps them ({"pipeline": key, "event": <aws.events.event.json>})."""

import importlib
import json
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "code" / "lambda_function"))
start_pipeline = importlib.import_module("start_pipeline")
from aws_samples import doc_object_created, doc_step_status  # noqa: E402

CONTRACT = {"inference": {"name": "p-inf", "started_by": {"data_arrival": "inference_input", "object_parameter": "InputObjectKey"}},
            "training": {"name": "p-train", "started_by": {"data_arrival": "training"}},
            "training_hpo": {"name": "p-hpo", "started_by": {"breach_of": "inference"}}}
DEFINITION = json.dumps({"Version": "2020-12-01", "Parameters": [{"Name": "InputObjectKey", "Type": "String", "DefaultValue": ""}],
                         "Steps": []})


@pytest.fixture
def sm(monkeypatch):
    for k, v in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "CONTRACT_PIPELINES": json.dumps(CONTRACT)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SNS_TOPIC_ARN", raising=False)
    with mock_aws():
        client = boto3.client("sagemaker")
        for p in CONTRACT.values():
            client.create_pipeline(PipelineName=p["name"], PipelineDefinition=DEFINITION,
                                   RoleArn="arn:aws:iam::123456789012:role/r")
        yield client


def _calls(monkeypatch, sm_client):
    calls = []
    real = sm_client.start_pipeline_execution

    def spy(**kw):
        calls.append(kw)
        return real(**kw)
    monkeypatch.setattr(start_pipeline.boto3, "client", lambda name, **kw: sm_client if name == "sagemaker" else boto3.client(name))
    monkeypatch.setattr(sm_client, "start_pipeline_execution", spy)
    return calls


def test_data_arrival_passes_the_object_and_a_token_per_object_version(sm, monkeypatch):
    calls = _calls(monkeypatch, sm)
    event = doc_object_created("bkt", "abalone/inference/input/batch-7.csv")
    out = start_pipeline.lambda_handler({"pipeline": "inference", "event": event}, None)
    assert out["started"] and out["parameters"] == {"InputObjectKey": "abalone/inference/input/batch-7.csv"}
    again = start_pipeline.lambda_handler({"pipeline": "inference", "event": dict(event, id="redelivered")}, None)
    assert calls[0]["ClientRequestToken"] == calls[1]["ClientRequestToken"]  # same object version, same token
    assert 32 <= len(calls[0]["ClientRequestToken"]) <= 128  # botocore IdempotencyToken bounds
    newer = json.loads(json.dumps(event))
    newer["detail"]["object"]["version-id"] = "v2"
    start_pipeline.lambda_handler({"pipeline": "inference", "event": newer}, None)
    assert calls[2]["ClientRequestToken"] != calls[0]["ClientRequestToken"]
    # no version-id (unversioned bucket): the etag identifies the content
    unversioned = json.loads(json.dumps(event))
    del unversioned["detail"]["object"]["version-id"]
    start_pipeline.lambda_handler({"pipeline": "training", "event": unversioned}, None)
    assert calls[3]["PipelineParameters"] == [] and calls[3]["PipelineName"] == "p-train"
    assert again["execution_arn"].startswith("arn:aws:sagemaker:")


def test_breach_starts_at_most_one_hpo_execution(sm, monkeypatch):
    calls = _calls(monkeypatch, sm)
    breach = doc_step_status("p-inf", "ModelQualityCalcStep", "Failed", "ModelQualityBreach: mse=9")
    first = start_pipeline.lambda_handler({"pipeline": "training_hpo", "event": breach}, None)
    assert first["started"] and calls[0]["PipelineName"] == "p-hpo"
    # the HPO execution is running (SageMaker sets the status; moto's backend is told directly)
    from moto.sagemaker.models import sagemaker_backends
    pipe = sagemaker_backends["123456789012"]["us-east-1"].pipelines["p-hpo"]
    pipe.pipeline_executions[first["execution_arn"]].pipeline_execution_status = "Executing"
    # a second breach while it runs is skipped, not started
    other = json.loads(json.dumps(breach))
    other["detail"]["pipelineExecutionArn"] += "x"
    second = start_pipeline.lambda_handler({"pipeline": "training_hpo", "event": other}, None)
    assert second == {"started": False, "pipeline": "p-hpo", "reason": "already running", "running": first["execution_arn"]}
    assert len(calls) == 1
    pipe.pipeline_executions[first["execution_arn"]].pipeline_execution_status = "Succeeded"
    assert start_pipeline.lambda_handler({"pipeline": "training_hpo", "event": other}, None)["started"]


@pytest.mark.parametrize("payload, match", [
    ({"pipeline": "inference"}, "expected"),
    ({"pipeline": "nope", "event": {"source": "aws.s3"}}, "not in CONTRACT_PIPELINES"),
    ({"pipeline": "training_hpo", "event": doc_object_created("b", "k")}, "is not started by aws.s3"),
])
def test_events_it_does_not_understand_start_nothing(sm, monkeypatch, payload, match):
    calls = _calls(monkeypatch, sm)
    with pytest.raises(start_pipeline.InvalidEventError, match=match):
        start_pipeline.lambda_handler(payload, None)
    assert calls == []
