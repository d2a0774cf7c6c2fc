"""Crash-safe runtime state: checkpoints after every step and upload, one command at a time per workspace,
interrupted executions recovered, corrupt state named in one line, retry rules, idempotent starts.

The pipelines here are hand-written definitions (the shape SageMaker's DescribePipeline returns), so the
tests exercise the runtime without building anything with the SDK."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sm-local-state-tests"
ROLE = "arn:aws:iam::123456789012:role/sm-local-tests"

SCRIPT = textwrap.dedent('''
    import os, pathlib, sys, time
    root = os.environ["SM_CONTAINER_ROOT"]
    gate = sys.argv[1]
    while os.path.exists(gate):   # the test holds the job here while it kills the command
        time.sleep(0.05)
    pathlib.Path(root, "processing/out/done.txt").write_text("done\\n")
''')


def definition(gate: Path) -> dict:
    return {"Version": "2020-12-01", "Parameters": [], "Steps": [{
        "Name": "Gate", "Type": "Processing", "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": "local/python",
                                 "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/gate.py"],
                                 "ContainerArguments": [str(gate)]},
            "RoleArn": ROLE,
            "ProcessingInputs": [{"InputName": "code", "S3Input": {
                "S3Uri": f"s3://{BUCKET}/code/gate.py", "LocalPath": "/opt/ml/processing/input/code",
                "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": f"s3://{BUCKET}/out", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
        }}]}


def setup_pipeline(rt, tmp: Path, name: str = "state-test") -> None:
    s3 = rt.aws.s3
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/gate.py", Body=SCRIPT.encode())
    rt.aws.sm.create_pipeline(PipelineName=name, RoleArn=ROLE,
                              PipelineDefinition=json.dumps(definition(tmp / "gate")))


def runtime(ws: Path, **kw):
    from local_runtime.runtime import Runtime
    return Runtime(repo_root=ROOT, workspace=ws, quiet=True, **kw)


KILLED_COMMAND = textwrap.dedent('''
    import sys
    sys.path.insert(0, {root!r})
    from local_runtime.runtime import Runtime
    with Runtime(repo_root={root!r}, workspace={ws!r}, quiet=True) as rt:
        rt.upload({data!r}, "uploads/data.csv", bucket={bucket!r})
        rt.start_execution("state-test")
        rt.pump()
''')


def test_kill_9_mid_step_loses_no_upload_and_retry_resumes_the_execution(tmp_path):
    """After `kill -9` of a command: its upload survives (checkpointed when made), the execution it left
    'Executing' is marked Failed by the next command, and `retry` runs it to the end."""
    ws, gate = tmp_path / "ws", tmp_path / "gate"
    with runtime(ws) as rt:
        setup_pipeline(rt, tmp_path)
    gate.write_text("hold")
    data = tmp_path / "data.csv"
    data.write_text("1,2\n")
    code = KILLED_COMMAND.format(root=str(ROOT), ws=str(ws), data=str(data), bucket=BUCKET)
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, env=dict(os.environ))
    try:
        deadline = time.time() + 120
        running = None
        while time.time() < deadline and running is None:
            for p in (ws / "executions").glob("*.json"):
                try:
                    rec = json.loads(p.read_text())
                except json.JSONDecodeError:
                    continue
                if (rec.get("Steps", {}).get("Gate") or {}).get("StepStatus") == "Executing":
                    running = rec
            time.sleep(0.1)
        assert running is not None, "the step never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command, its job and its zygote, as kill -9 of the group
        proc.wait()
    gate.unlink()
    with runtime(ws) as rt:
        rec = rt.workspace.load_execution(running["PipelineExecutionId"])
        assert rec["PipelineExecutionStatus"] == "Failed" and "retry" in rec["FailureReason"]
        assert rec["Steps"]["Gate"]["StepStatus"] == "Failed"
        kept = rt.aws.s3.get_object(Bucket=BUCKET, Key="uploads/data.csv")
        assert kept["Body"].read() == b"1,2\n" and kept["ServerSideEncryption"] == "aws:kms"  # encryption replayed too
        rt.bus.enqueue(("retry", rec["PipelineExecutionId"]))
        rt.pump()
        again = rt.workspace.load_execution(rec["PipelineExecutionId"])
        assert again["PipelineExecutionStatus"] == "Succeeded"
        assert rt.aws.s3.get_object(Bucket=BUCKET, Key="out/done.txt")["Body"].read() == b"done\n"


def test_retry_of_a_succeeded_execution_is_a_clear_error(tmp_path):
    from local_runtime.errors import StateError
    with runtime(tmp_path / "ws", persist=False) as rt:
        setup_pipeline(rt, tmp_path)
        rt.start_execution("state-test")
        rt.pump()
        exec_id = rt.executions_run[-1]
        assert rt.workspace.load_execution(exec_id)["PipelineExecutionStatus"] == "Succeeded"
        with pytest.raises(StateError, match=f"execution {exec_id} is Succeeded: only a Failed execution can be retried"):
            rt.retry_execution(exec_id)


def test_corrupt_state_file_is_one_error_line_naming_the_file(tmp_path, capsys):
    from local_runtime import cli
    ws = tmp_path / "ws"
    (ws / "executions").mkdir(parents=True)
    bad = ws / "executions" / "abc.json"
    bad.write_text('{"PipelineExecutionId": "abc", ')  # cut short, as a crash mid-write of a non-atomic writer would
    assert cli.main(["--workspace", str(ws), "executions"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "corrupt" in err[0]


def test_one_command_at_a_time_per_workspace(tmp_path):
    """A second command waits for the first to finish (the lock is the workspace's), so state is never
    overwritten by a concurrent writer."""
    ws = tmp_path / "ws"
    from local_runtime.workspace import Workspace
    holder = Workspace(ws)
    order = []
    code = textwrap.dedent(f'''
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from local_runtime.workspace import Workspace
        with Workspace({str(ws)!r}).exclusive(lambda m: print(m, flush=True)):
            print("second got the lock", flush=True)
    ''')
    with holder.exclusive():
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        first_line = proc.stdout.readline()
        order.append("first released")
    rest = proc.stdout.read()
    proc.wait()
    assert "waiting for another sm-local command" in first_line and str(os.getpid()) in first_line
    assert "second got the lock" in rest and order == ["first released"]


def test_start_pipeline_execution_is_idempotent_on_client_request_token(tmp_path):
    """SageMaker StartPipelineExecution: ClientRequestToken "ensures the idempotency of the operation. An
    idempotent operation completes no more than once."
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StartPipelineExecution.html)"""
    with runtime(tmp_path / "ws", persist=False) as rt:
        setup_pipeline(rt, tmp_path)
        sm = rt.aws.sm
        token = "a" * 32
        first = sm.start_pipeline_execution(PipelineName="state-test", ClientRequestToken=token)
        again = sm.start_pipeline_execution(PipelineName="state-test", ClientRequestToken=token)
        other = sm.start_pipeline_execution(PipelineName="state-test", ClientRequestToken="b" * 32)
        assert first["PipelineExecutionArn"] == again["PipelineExecutionArn"] != other["PipelineExecutionArn"]
        summaries = sm.list_pipeline_executions(PipelineName="state-test")["PipelineExecutionSummaries"]
        assert len(summaries) == 2
