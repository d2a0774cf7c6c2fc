"""AWS behaviour the offline runtime reproduces, each test citing the AWS page it follows."""
import importlib.util
import json
import textwrap
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, NoRegionError

ROOT = Path(__file__).resolve().parents[2]
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab"


# ---------------------------------------------------------------- S3 bucket policies with conditions
@pytest.fixture
def policed_bucket():
    """A bucket carrying the documented "require SSE-KMS with this key" policy, in the runtime's moto."""
    from moto import mock_aws

    from local_runtime.emulation import Patches, require_sse_kms_policy

    with mock_aws():
        patches = Patches({"policed-bucket": require_sse_kms_policy("policed-bucket", KEY)}).install()
        try:
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="policed-bucket")
            yield s3
        finally:
            patches.close()


def _denied(call):
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    return info.value.response["Error"]["Message"]


def test_bucket_policy_denies_uploads_without_the_project_kms_key(policed_bucket, tmp_path):
    """Bucket policy condition keys s3:x-amz-server-side-encryption and ...-aws-kms-key-id, as in
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html (Requiring SSE-KMS) and
    https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_examples_s3.html:
    a PutObject without the header, with SSE-S3 or with another key is denied, with the key it is allowed.
    moto stores policies but ignores Condition; the runtime evaluates it for every upload path."""
    s3 = policed_bucket
    assert "DenyUploadsWithoutSseKms" in _denied(lambda: s3.put_object(Bucket="policed-bucket", Key="a", Body=b"x"))
    _denied(lambda: s3.put_object(Bucket="policed-bucket", Key="a", Body=b"x", ServerSideEncryption="AES256"))
    assert "DenyUploadsWithAnotherKey" in _denied(lambda: s3.put_object(
        Bucket="policed-bucket", Key="a", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=OTHER_KEY))
    _denied(lambda: s3.put_object(Bucket="policed-bucket", Key="a", Body=b"x", ServerSideEncryption="aws:kms"))
    s3.put_object(Bucket="policed-bucket", Key="a", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=KEY)
    assert s3.head_object(Bucket="policed-bucket", Key="a")["ServerSideEncryption"] == "aws:kms"
    # copies and multipart uploads are PutObject requests too
    _denied(lambda: s3.copy_object(Bucket="policed-bucket", Key="b", CopySource={"Bucket": "policed-bucket", "Key": "a"}))
    big = tmp_path / "big.bin"
    big.write_bytes(b"0" * (6 * 1024 * 1024))
    from boto3.s3.transfer import TransferConfig
    multipart = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    from boto3.exceptions import S3UploadFailedError
    with pytest.raises(S3UploadFailedError, match="AccessDenied"):
        s3.upload_file(str(big), "policed-bucket", "big", Config=multipart)
    s3.upload_file(str(big), "policed-bucket", "big", Config=multipart,
                   ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY})
    assert s3.head_object(Bucket="policed-bucket", Key="big")["ContentLength"] == big.stat().st_size


def test_policy_conditions_follow_iam_semantics():
    """IAM condition operators (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
    a negated string operator matches an absent key, ...IfExists matches when the key is absent, Null tests presence."""
    from local_runtime.emulation import denied_by
    null = {"Statement": [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
                           "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}]}
    assert denied_by(null, "s3:PutObject", "arn:aws:s3:::b/k", {}) is not None
    assert denied_by(null, "s3:PutObject", "arn:aws:s3:::b/k", {"s3:x-amz-server-side-encryption": "AES256"}) is None
    if_exists = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*", "Condition": {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]}
    assert denied_by(if_exists, "s3:PutObject", "arn:aws:s3:::b/k", {}) is not None
    assert denied_by(if_exists, "s3:PutObject", "arn:aws:s3:::b/k", {"s3:x-amz-server-side-encryption": "aws:kms"}) is None
    assert denied_by(if_exists, "s3:PutObject", "arn:aws:s3:::other/k", {}) is None  # another bucket
    unknown = {"Statement": [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
                              "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}
    assert denied_by(unknown, "s3:PutObject", "arn:aws:s3:::b/k", {}) is not None  # stricter reading


# ---------------------------------------------------------------- region
def test_no_region_is_botocores_no_region_error(monkeypatch, tmp_path):
    """With no region configured the SDK raises NoRegionError ("You must specify a region",
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html); the runtime never defaults one."""
    from local_runtime import constants
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(NoRegionError):
        constants.region()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert constants.sagemaker_arn("pipeline", "p") == "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p"


# ---------------------------------------------------------------- batch transform record assembly
MODEL = textwrap.dedent('''
    import numpy as np
    class Echo:
        def predict(self, X):
            return X[:, 0] * 2
    def model_fn(model_dir):
        return Echo()
    def input_fn(body, content_type):
        return np.loadtxt(body.splitlines(), delimiter=",", ndmin=2)
    def output_fn(prediction, accept):
        return "".join(f"{v:g}\\n" for v in prediction)   # every record ends with its own newline
''')


def _transform(tmp_path, lines, **spec):
    spec_mod = importlib.util.spec_from_file_location(
        "transform_worker", ROOT / "local_runtime" / "steps" / "transform_worker.py")
    worker = importlib.util.module_from_spec(spec_mod)
    spec_mod.loader.exec_module(worker)
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "serve.py").write_text(MODEL)
    src, dst = tmp_path / "in.csv", tmp_path / "in.csv.out"
    src.write_text("".join(f"{x}\n" for x in lines))
    full = dict({"model_dir": str(tmp_path), "code_dir": str(code), "program": "serve.py",
                 "files": [[str(src), str(dst)]], "max_payload_mb": 6, "strategy": "MultiRecord",
                 "split_type": "Line", "content_type": "text/csv", "accept": "text/csv", "assemble_with": "Line",
                 "report": str(tmp_path / "records.json")}, **spec)
    (tmp_path / "spec.json").write_text(json.dumps(full))
    worker.main(str(tmp_path / "spec.json"))
    return dst.read_bytes()


def test_assemble_with_line_adds_a_newline_after_every_response_and_strips_nothing(tmp_path):
    """TransformOutput.AssembleWith: "To add a newline character at the end of every transformed record, specify
    Line" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html). A MultiRecord
    mini-batch is one response, so an output_fn that already ends records with a newline yields a blank line
    after it, exactly what the next step receives on AWS."""
    assert _transform(tmp_path, [1, 2, 3]) == b"2\n4\n6\n\n"
    assert _transform(tmp_path, [1, 2, 3], strategy="SingleRecord") == b"2\n\n4\n\n6\n\n"
    assert _transform(tmp_path, [1, 2, 3], assemble_with="None") == b"2\n4\n6\n"  # "concatenate ... in binary"


def test_max_payload_bounds_mini_batches_and_whole_object_requests(tmp_path):
    """CreateTransformJob.MaxPayloadInMB: a MultiRecord mini-batch holds as many records as fit; a record larger
    than the payload, or (SplitType None) an object larger than it, fails the job
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html)."""
    rows = [1] * 300_000  # 600,000 bytes of input
    out = _transform(tmp_path, rows, max_payload_mb=0.25)  # 262,144-byte mini-batches: 3 requests
    assert out.count(b"\n\n") == 3 and out.count(b"2\n") == 300_000
    with pytest.raises(ValueError, match="MaxPayloadInMB"):
        _transform(tmp_path, rows, split_type="None", max_payload_mb=0.25)
    with pytest.raises(ValueError, match="MaxPayloadInMB"):
        _transform(tmp_path, ["1" * 2048], max_payload_mb=0.001)


# predict_fn leaves its process id beside the input, so a test can see which worker served each request
PID_MODEL = MODEL.replace("def model_fn(model_dir):", textwrap.dedent("""\
    import os, time
    def predict_fn(data, model):
        time.sleep(0.2)  # a request long enough for the next one to arrive while it runs
        open(os.path.join(os.environ["PIDS_DIR"], f"{os.getpid()}-{data[0, 0]:g}"), "w").close()
        return model.predict(data)
    def model_fn(model_dir):"""))
assert PID_MODEL != MODEL


def _transform_as_a_process(tmp_path, lines, concurrency, max_payload_mb):
    """transform_worker.py as the runtime starts it: its own interpreter, the spec file as argument."""
    import os
    import subprocess
    import sys

    run = tmp_path / f"c{concurrency}"
    (run / "code").mkdir(parents=True)
    (run / "pids").mkdir()
    (run / "code" / "serve.py").write_text(PID_MODEL)
    src, dst = run / "in.csv", run / "in.csv.out"
    src.write_text("".join(f"{x}\n" for x in lines))
    (run / "spec.json").write_text(json.dumps({
        "model_dir": str(run), "code_dir": str(run / "code"), "program": "serve.py", "files": [[str(src), str(dst)]],
        "max_payload_mb": max_payload_mb, "strategy": "MultiRecord", "split_type": "Line", "content_type": "text/csv",
        "accept": "text/csv", "assemble_with": "Line", "report": str(run / "records.json"),
        "failure_file": str(run / "message"), "concurrency": concurrency}))
    done = subprocess.run([sys.executable, str(ROOT / "local_runtime" / "steps" / "transform_worker.py"),
                           str(run / "spec.json")], env=dict(os.environ, PIDS_DIR=str(run / "pids")),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pids = {name.split("-")[0] for name in os.listdir(run / "pids")}
    return dst.read_bytes(), pids, json.loads((run / "records.json").read_text())


def test_max_concurrent_transforms_serves_requests_at_once_and_assembles_them_in_input_order(tmp_path):
    """MaxConcurrentTransforms: "the maximum number of parallel requests that can be sent to each instance"
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html); the output object
    keeps the input's record order whatever order the responses come back in."""
    rows = list(range(1, 40001))  # 8 mini-batches of 0.03 MB
    one, one_pid, one_counts = _transform_as_a_process(tmp_path, rows, concurrency=1, max_payload_mb=0.03)
    two, two_pids, two_counts = _transform_as_a_process(tmp_path, rows, concurrency=2, max_payload_mb=0.03)
    assert two == one and one_counts == two_counts == {"in.csv": {"records_in": 40000, "records_out": 40000}}
    assert one.split(b"\n\n")[0].split(b"\n")[:3] == [b"2", b"4", b"6"]
    assert len(one_pid) == 1 and len(two_pids) == 2  # one process, then two serving workers


def test_serving_concurrency_is_max_concurrent_transforms_capped_by_workers_and_cores(monkeypatch):
    from local_runtime.steps.transform import serving_concurrency

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert serving_concurrency(None, {}, 1) == 1 and serving_concurrency(0, {}, 1) == 1  # the API's default
    assert serving_concurrency(4, {}, 1) == 4
    assert serving_concurrency(4, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, 1) == 2  # the model server's workers
    assert serving_concurrency(16, {}, 1) == 8 and serving_concurrency(4, {}, 4) == 2  # the cores per instance


def test_batch_transform_default_output_has_one_prediction_per_line(tmp_path):
    """The template's own output_fn separates records, so AssembleWith=Line gives exactly one line per record."""
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    body = train.output_fn([1.5, 2.0, 3.25], "text/csv") + "\n"  # + the newline Line assembly appends
    assert body.splitlines() == ["1.5", "2.0", "3.25"] and "\n\n" not in body


# ---------------------------------------------------------------- job failure semantics
BUCKET = "sm-local-semantics"
ROLE = "arn:aws:iam::123456789012:role/sm-local-tests"
PROCESS = textwrap.dedent('''
    import os, sys
    root = os.environ["SM_CONTAINER_ROOT"]
    os.makedirs(root + "/output", exist_ok=True)
    open(root + "/output/message", "w").write(sys.argv[1] * 1500)
    sys.exit(int(sys.argv[2]))
''')
TRAIN = textwrap.dedent('''
    import os, sys
    root = os.environ["SM_CONTAINER_ROOT"]
    open(root + "/output/failure", "w").write("F" * 1500)
    open(root + "/output/message", "w").write("not read for training jobs")
    sys.exit(2)
''')


def _processing_step(name, letter, code):
    return {"Name": name, "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": "local/python", "ContainerArguments": [letter, str(code)],
                             "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/process.py"]},
        "RoleArn": ROLE,
        "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": f"s3://{BUCKET}/code/process.py",
                                                               "LocalPath": "/opt/ml/processing/input/code",
                                                               "S3DataType": "S3Prefix", "S3InputMode": "File"}}]}}


def _run(offline_runtime, run_steps, steps):
    with offline_runtime(BUCKET) as rt:
        rt.aws.s3.put_object(Bucket=BUCKET, Key="code/process.py", Body=PROCESS.encode())
        rt.aws.s3.put_object(Bucket=BUCKET, Key="code/train.py", Body=TRAIN.encode())
        rec = run_steps(rt, "semantics", ROLE, steps)
        described = {}
        for name, st in rec["Steps"].items():
            props = st.get("Properties") or {}
            if props.get("ProcessingJobName"):
                described[name] = rt.aws.sm.describe_processing_job(ProcessingJobName=props["ProcessingJobName"])
            if props.get("TrainingJobName"):
                described[name] = rt.aws.sm.describe_training_job(TrainingJobName=props["TrainingJobName"])
        return rec, described


def test_processing_exit_message_is_the_first_kb_of_the_message_file_and_failure_reason_stays_generic(offline_runtime, run_steps, monkeypatch):
    """DescribeProcessingJob: after any terminal status "the ExitMessage field ... contains the first 1 KB of"
    /opt/ml/output/message (https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html); a failed
    script container's FailureReason is "AlgorithmError: See job logs for more information" (asserted by AWS's
    sagemaker-spark-container integration test test_spark_app_error). The pipeline step carries the job's reason."""
    rec, described = _run(offline_runtime, run_steps, [_processing_step("Ok", "a", 0),
                                                        dict(_processing_step("Breaks", "b", 3), DependsOn=["Ok"])])
    ok, broken = described["Ok"], described["Breaks"]
    assert ok["ProcessingJobStatus"] == "Completed" and ok["ExitMessage"] == "a" * 1024 and "FailureReason" not in ok
    assert broken["ProcessingJobStatus"] == "Failed"
    assert broken["FailureReason"] == "AlgorithmError: See job logs for more information"
    assert broken["ExitMessage"] == "b" * 1024
    step = rec["Steps"]["Breaks"]
    assert step["FailureReason"] == broken["FailureReason"]
    assert step["Metadata"]["ProcessingJob"]["Arn"] == broken["ProcessingJobArn"]
    assert rec["FailureReason"] == "Step failure: One or multiple steps failed."


def test_training_failure_reason_is_the_first_1024_characters_of_the_failure_file(offline_runtime, run_steps):
    """DescribeTrainingJob.FailureReason: "SageMaker AI returns the first 1024 characters from" /opt/ml/output/failure
    (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html)."""
    step = {"Name": "Train", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": "local/python", "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py", "sagemaker_submit_directory": f"s3://{BUCKET}/code/train.py"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"}, "RoleArn": ROLE,
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}}}
    rec, described = _run(offline_runtime, run_steps, [step])
    job = described["Train"]
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"] == "F" * 1024
    assert rec["Steps"]["Train"]["FailureReason"] == "F" * 1024


def test_the_project_bucket_denies_an_upload_without_the_project_key(tmp_path):
    """The project bucket is a prerequisite whose policy requires SSE-KMS with the tfvars key (README, Deploy to
    AWS); the runtime enforces it on every client in the process, so an upload AWS would reject fails here too."""
    from local_runtime.runtime import Runtime
    with Runtime(repo_root=ROOT, workspace=tmp_path / "ws", quiet=True, persist=False) as rt:
        rt.aws.s3.create_bucket(Bucket=rt.bucket)
        policy = json.loads(rt.aws.s3.get_bucket_policy(Bucket=rt.bucket)["Policy"])
        assert {st["Sid"] for st in policy["Statement"]} == {"DenyUploadsWithoutSseKms", "DenyUploadsWithAnotherKey"}
        other_client = boto3.Session().client("s3")  # e.g. one an SDK session creates
        _denied(lambda: other_client.put_object(Bucket=rt.bucket, Key="x", Body=b"1"))
        data = tmp_path / "d.csv"
        data.write_text("1\n")
        rt.upload(data, "abalone/elsewhere/d.csv")  # `sm-local upload` encrypts with the project key
        head = rt.aws.s3.head_object(Bucket=rt.bucket, Key="abalone/elsewhere/d.csv")
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == rt.kms_key


def test_update_model_package_changes_only_what_the_request_names():
    """UpdateModelPackage (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html):
    approving a version keeps its CustomerMetadataProperties (the prediction baseline the inference pipeline
    reads) and its ApprovalDescription; properties given are added key by key, and
    CustomerMetadataPropertiesToRemove removes them. moto 5.2 alone erases both on every update."""
    from moto import mock_aws

    from local_runtime.emulation import Patches

    with mock_aws():
        patches = Patches().install()
        try:
            sm = boto3.client("sagemaker", region_name="us-east-1")
            sm.create_model_package_group(ModelPackageGroupName="g")
            arn = sm.create_model_package(
                ModelPackageGroupName="g", CustomerMetadataProperties={"a": "1", "b": "2"},
                InferenceSpecification={"Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"}],
                                        "SupportedContentTypes": ["text/csv"],
                                        "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
            sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="ok")
            sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"b": "3", "c": "4"},
                                    CustomerMetadataPropertiesToRemove=["a"])
            d = sm.describe_model_package(ModelPackageName=arn)
            assert d["CustomerMetadataProperties"] == {"b": "3", "c": "4"}
            assert (d["ModelApprovalStatus"], d["ApprovalDescription"]) == ("Approved", "ok")
        finally:
            patches.close()
