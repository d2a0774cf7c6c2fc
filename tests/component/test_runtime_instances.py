"""Multi-instance emulation: InstanceCount > 1 runs one local process per instance, each with the /opt/ml and
resourceconfig.json a SageMaker instance sees, over its share of the input."""
import io
import json
import tarfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sm-local-instances"
ROLE = "arn:aws:iam::123456789012:role/sm-local-tests"

SHARDS = textwrap.dedent('''
    import json, os
    root = os.environ["SM_CONTAINER_ROOT"]
    cfg = json.load(open(root + "/config/resourceconfig.json"))
    host = cfg["current_host"]
    seen = {name: sorted(os.listdir(f"{root}/processing/{name}")) for name in ("sharded", "replicated")}
    json.dump(dict(cfg, seen=seen), open(f"{root}/processing/out/{host}.json", "w"))
''')
SERVE = textwrap.dedent('''
    import numpy as np
    def model_fn(model_dir):
        return None
    def input_fn(body, content_type):
        return np.loadtxt(body.splitlines(), delimiter=",", ndmin=2)
    def predict_fn(data, model):
        return data[:, 0] + 1
    def output_fn(prediction, accept):
        return "\\n".join(f"{v:g}" for v in prediction)
''')


def _input(name, prefix, distribution):
    return {"InputName": name, "S3Input": {"S3Uri": f"s3://{BUCKET}/{prefix}", "LocalPath": f"/opt/ml/processing/{name}",
                                           "S3DataType": "S3Prefix", "S3InputMode": "File",
                                           "S3DataDistributionType": distribution}}


def _run(offline_runtime, run_steps, steps, setup):
    with offline_runtime(BUCKET) as rt:
        setup(rt)
        rec = run_steps(rt, "instances", ROLE, steps)
        outputs = {}
        for obj in rt.aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents", []):
            outputs[obj["Key"]] = rt.aws.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
        return rec, outputs


def test_processing_instances_get_sharded_and_replicated_inputs_and_their_resource_config(offline_runtime, run_steps):
    """ProcessingS3Input.S3DataDistributionType: ShardedByS3Key gives each instance a subset of the objects,
    FullyReplicated all of them (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html);
    every instance reads /opt/ml/config/resourceconfig.json with current_host and hosts
    (https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html)."""
    def setup(rt):
        rt.aws.s3.put_object(Bucket=BUCKET, Key="code/shards.py", Body=SHARDS.encode())
        for i in range(5):
            rt.aws.s3.put_object(Bucket=BUCKET, Key=f"data/part-{i}.csv", Body=f"{i}\n".encode())
    step = {"Name": "Shards", "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": "local/python",
                             "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/shards.py"]},
        "RoleArn": ROLE,
        "ProcessingInputs": [_input("code", "code/shards.py", "FullyReplicated"), _input("sharded", "data/", "ShardedByS3Key"),
                             _input("replicated", "data/", "FullyReplicated")],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/out", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]}}}
    rec, outputs = _run(offline_runtime, run_steps, [step], setup)
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
    hosts = {k.rsplit("/", 1)[-1][:-5]: json.loads(v) for k, v in outputs.items()}
    assert sorted(hosts) == ["algo-1", "algo-2"]
    everything = [f"part-{i}.csv" for i in range(5)]
    shards = []
    for host, seen in hosts.items():
        assert seen["current_host"] == host and seen["hosts"] == ["algo-1", "algo-2"]
        assert seen["seen"]["replicated"] == everything
        shards.append(seen["seen"]["sharded"])
    assert sorted(shards[0] + shards[1]) == everything and not set(shards[0]) & set(shards[1]) and all(shards)


def test_batch_transform_spreads_objects_across_instances(offline_runtime, run_steps):
    """Batch transform with InstanceCount > 1 distributes whole S3 objects among the instances
    (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html); every object is scored once."""
    def setup(rt):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = SERVE.encode()
            info = tarfile.TarInfo("code/serve.py")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        rt.aws.s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=buf.getvalue())
        for i in range(3):
            rt.aws.s3.put_object(Bucket=BUCKET, Key=f"batch/part-{i}.csv", Body=f"{i}\n{i + 10}\n".encode())
        rt.aws.sm.create_model(ModelName="echo", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "local/sklearn", "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}})
    step = {"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": "echo", "BatchStrategy": "MultiRecord",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out", "AssembleWith": "Line", "Accept": "text/csv"},
        "TransformResources": {"InstanceCount": 2, "InstanceType": "ml.m5.large"}}}
    rec, outputs = _run(offline_runtime, run_steps, [step], setup)
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec["Steps"]["Score"].get("FailureReason")
    assert outputs == {f"out/part-{i}.csv.out": f"{i + 1}\n{i + 11}\n" for i in range(3)}
    job_dir = Path(rec["Steps"]["Score"]["Properties"]["LocalJobDir"])
    assert sorted(p.name for p in job_dir.glob("records-*.json")) == ["records-algo-1.json", "records-algo-2.json"]
