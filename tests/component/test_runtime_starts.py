"""Offline runtime: data arrival goes through the starter Lambda as in the cloud, and
StartPipelineExecution's ClientRequestToken (honoured by local_runtime/emulation.py) makes a
redelivered S3 event start nothing.

"ClientRequestToken: A unique, case-sensitive identifier that you provide to ensure the idempotency
of the operation. An idempotent operation completes no more than once."
(SageMaker API Reference, StartPipelineExecution:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StartPipelineExecution.html)
The S3 event is AWS's documented sample (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html),
routed by the events.tf rules (input transformer: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html).
"""
import json
from pathlib import Path

from aws_samples import doc_object_created

ROOT = Path(__file__).resolve().parents[2]
EMPTY = {"Version": "2020-12-01", "Parameters": [], "Steps": []}


def _runtime(tmp_path):
    from local_runtime.runtime import Runtime
    return Runtime(repo_root=ROOT, workspace=tmp_path / "ws", env_file=ROOT / "env_files" / "dev_env.tfvars", quiet=True)


def test_redelivered_object_event_starts_one_execution(tmp_path):
    with _runtime(tmp_path) as rt:
        name = rt.tf.pipeline_names["training"]
        rt.aws.sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(EMPTY),
                                  RoleArn="arn:aws:iam::123456789012:role/r")
        v = rt.tf.vars
        event = doc_object_created(v["bucket_name"], f"{v['bucket_prefix']}/{v['bucket_train_prefix']}/a.csv")
        event["region"], event["account"] = "us-east-1", "123456789012"
        for delivery in ("first", "again"):  # S3 and EventBridge deliver at least once
            rt.emit(dict(event, id=delivery))
            rt.pump()
        runs = [e for e in rt.workspace.list_executions() if e["PipelineName"] == name]
        assert len(runs) == 1 and runs[0]["Trigger"]["type"] == "StartPipelineExecution"
        assert runs[0]["Trigger"]["rule"] == rt.tf.resources["aws_cloudwatch_event_rule"]['data_arrival["training"]']["name"]
        listed = rt.aws.sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
        assert len(listed) == 1
        calls = [json.loads(l) for l in (tmp_path / "ws" / "lambda_invocations.jsonl").read_text().splitlines()]
        starts = [c for c in calls if c["function"].endswith("start-pipeline")]
        assert len(starts) == 2 and starts[0]["result"]["execution_arn"] == starts[1]["result"]["execution_arn"]
        # a new version of the object is new data: it starts its own execution
        newer = json.loads(json.dumps(event))
        newer["detail"]["object"]["version-id"] = "v2"
        rt.emit(dict(newer, id="third"))
        rt.pump()
        assert len([e for e in rt.workspace.list_executions() if e["PipelineName"] == name]) == 2
