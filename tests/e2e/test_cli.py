"""sm-local's command line: exit codes (user errors vs bugs), --json listings, the emulated bucket (ls/rm/download),
closed pipes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_help_documents_exit_codes_and_every_command(capsys):
    from local_runtime import cli
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for code in ("0  done", "1  an execution", "2  bad input", "3  upsert"):
        assert code in out
    for command in ("studio", "report", "logs", "ls", "rm", "download", "executions", "versions"):
        assert command in out


@pytest.fixture(scope="module")
def bucket_ws(tmp_path_factory):
    from local_runtime import cli
    ws = tmp_path_factory.mktemp("cli") / "ws"
    assert cli.main(["--workspace", str(ws), "upsert", "training"]) == 0
    return ws


def test_ls_rm_download_on_the_emulated_bucket(bucket_ws, tmp_path, capsys):
    """One bad upload can be listed and removed without wiping the workspace (`make clean-local`)."""
    from local_runtime import cli
    ws = ["--workspace", str(bucket_ws)]
    src = tmp_path / "notes.csv"
    src.write_text("a,b\n1,2\n")
    assert cli.main([*ws, "upload", str(src), "scratch/notes.csv"]) == 0  # no rule matches: nothing starts
    capsys.readouterr()
    assert cli.main([*ws, "ls", "scratch/", "--json"]) == 0
    (obj,) = json.loads(capsys.readouterr().out)
    assert obj["key"] == "scratch/notes.csv" and obj["size"] == 8
    assert cli.main([*ws, "download", "scratch/notes.csv", str(tmp_path / "back.csv")]) == 0
    assert (tmp_path / "back.csv").read_text() == "a,b\n1,2\n"
    assert cli.main([*ws, "rm", "scratch/notes.csv"]) == 0
    capsys.readouterr()
    assert cli.main([*ws, "ls", "scratch/", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main([*ws, "rm", "scratch/notes.csv"]) == 2  # gone: a clear error, not a silent no-op
    err = capsys.readouterr().err
    assert err.startswith("sm-local: error:") and "Traceback" not in err


def test_listings_have_json(bucket_ws, capsys):
    from local_runtime import cli
    ws = ["--workspace", str(bucket_ws)]
    for command in ("executions", "versions", "notifications"):
        assert cli.main([*ws, command, "--json"]) == 0
        assert isinstance(json.loads(capsys.readouterr().out), list)


def test_report_and_logs_of_unknown_executions_are_one_line_errors(bucket_ws, capsys):
    from local_runtime import cli
    ws = ["--workspace", str(bucket_ws)]
    for argv in (["report", "nosuch"], ["logs", "nosuch"], ["report", "latest"]):
        assert cli.main([*ws, *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sm-local: error:") and "Traceback" not in err



def _one_execution(tmp_path) -> Path:
    ws = tmp_path / "ws"
    (ws / "executions").mkdir(parents=True)
    (ws / "executions" / "e1.json").write_text(json.dumps({
        "PipelineName": "p", "PipelineExecutionId": "e1", "PipelineExecutionStatus": "Succeeded",
        "StepOrder": ["Check"], "Steps": {"Check": {"StepName": "Check", "StepType": "Condition",
                                                    "StepStatus": "Succeeded", "Properties": {"Outcome": "True"}}}}))
    return ws


@pytest.mark.parametrize("argv, expected", [
    (["logs", "e1", "NoSuchStep"], "execution e1 has no step 'NoSuchStep' (steps: Check)"),
    (["steps", "nosuch"], "no execution 'nosuch'"),
    (["retry", "e1"], "execution e1 is Succeeded; only Failed executions can be retried"),
    (["run", "training", "--param", "nokv"], "--param expects K=V, got 'nokv'"),
])
def test_user_errors_exit_2_with_a_message_naming_the_value(tmp_path, capsys, argv, expected):
    from local_runtime import cli
    assert cli.main(["--workspace", str(_one_execution(tmp_path)), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sm-local: error: ") and expected in err and "Traceback" not in err


@pytest.mark.parametrize("ref", ["abalone-models", "abalone-models/latest"])
def test_a_malformed_model_package_reference_is_a_user_error(bucket_ws, capsys, ref):
    from local_runtime import cli
    assert cli.main(["--workspace", str(bucket_ws), "approve", ref]) == 2
    err = capsys.readouterr().err
    assert f"model package {ref!r}: give an ARN or <group>/<version>" in err and "Traceback" not in err


def test_build_user_errors_keep_their_exit_code(tmp_path, monkeypatch, capsys):
    """pipeline_scripts' UserError family: its message, its exit code (NoApprovedModelError: 3)."""
    from pipeline_scripts.errors import NoApprovedModelError

    from local_runtime import cli

    def no_model(args):
        raise NoApprovedModelError("no Approved version in abalone-models")
    monkeypatch.setattr(cli, "_run", no_model)
    assert cli.main(["--workspace", str(tmp_path / "ws"), "executions"]) == 3
    assert capsys.readouterr().err == "sm-local: error: no Approved version in abalone-models\n"


@pytest.mark.parametrize("bug", [KeyError("PipelineExecutionId"), ValueError("too many values to unpack")])
def test_a_bug_of_ours_is_not_reported_as_bad_input(tmp_path, monkeypatch, capsys, bug):
    """A KeyError or ValueError from our own code propagates with its traceback (exit 1), not as exit 2."""
    from local_runtime import cli, views

    def broken(ws, rec):
        raise bug
    monkeypatch.setattr(views, "execution_row", broken)
    with pytest.raises(type(bug)) as raised:
        cli.main(["--workspace", str(_one_execution(tmp_path)), "executions"])
    assert raised.value is bug
    assert "sm-local: error" not in capsys.readouterr().err


def test_a_bug_of_ours_ends_in_a_traceback_and_exit_1(tmp_path):
    code = ("import sys; from local_runtime import cli, views\n"
            "def broken(ws, rec): raise KeyError('PipelineExecutionId')\n"
            "views.execution_row = broken\n"
            f"sys.exit(cli.main(['--workspace', {str(_one_execution(tmp_path))!r}, 'executions']))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "KeyError: 'PipelineExecutionId'" in res.stderr
    assert "sm-local: error" not in res.stderr

def test_closed_pipe_ends_quietly(tmp_path):
    """`sm-local steps --json | head -1`: no BrokenPipe traceback; 141 = 128 + SIGPIPE like other tools."""
    ws = tmp_path / "ws"
    (ws / "executions").mkdir(parents=True)
    steps = {f"Step{i}": {"StepName": f"Step{i}", "StepType": "Condition", "StepStatus": "Succeeded",
                          "Properties": {"Outcome": "True", "Padding": "x" * 2000}} for i in range(200)}
    (ws / "executions" / "big.json").write_text(json.dumps({
        "PipelineName": "p", "PipelineExecutionId": "big", "PipelineExecutionStatus": "Succeeded",
        "StepOrder": list(steps), "Steps": steps}))
    cmd = f"{sys.executable} -m local_runtime --workspace {ws} steps big --json | head -1"
    res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert res.stdout.strip() == "{"
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr
    assert res.returncode == 141


def test_a_failed_steps_exit_message_is_shown_beside_its_failure_reason(tmp_path, capsys):
    """AWS keeps a processing job's FailureReason generic; the line naming the bad value is the job's ExitMessage
    (DescribeProcessingJob), which `steps` and `executions` show as a console would."""
    from local_runtime import cli
    ws = tmp_path / "ws"
    generic = "AlgorithmError: See job logs for more information"
    message = "inference-data.csv line 51: unknown category 'X' in column 'sex'"
    (ws / "executions").mkdir(parents=True)
    (ws / "executions" / "e1.json").write_text(json.dumps({
        "PipelineName": "p", "PipelineExecutionId": "e1", "PipelineExecutionStatus": "Failed", "FailureReason": generic,
        "StepOrder": ["Prep"], "Steps": {"Prep": {
            "StepName": "Prep", "StepType": "Processing", "StepStatus": "Failed", "FailureReason": generic,
            "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/j1"}}}}}))
    (ws / "jobs" / "j1").mkdir(parents=True)
    (ws / "jobs" / "j1" / "job.json").write_text(json.dumps({
        "ProcessingJobStatus": "Failed", "FailureReason": generic, "ExitMessage": message + "\n"}))
    assert cli.main(["--workspace", str(ws), "steps", "e1"]) == 0
    out = capsys.readouterr().out
    assert f"reason: {generic}\n      exit message: {message}\n" in out
    assert cli.main(["--workspace", str(ws), "executions"]) == 0
    out = capsys.readouterr().out
    assert f"Prep: {generic}" in out and f"exit message: {message}" in out


def test_an_empty_workspace_points_at_the_demos(tmp_path, monkeypatch, capsys):
    """After `make demo`, the default workspace is empty: the commands say where the demo's workspace is."""
    from local_runtime import cli
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--workspace", "ws", "executions"]) == 0
    assert capsys.readouterr().out == f"no executions in {tmp_path / 'ws'}\n"  # no demo here: nothing to add
    _one_execution(tmp_path / "demo-output").rename(tmp_path / "demo-output" / "workspace")  # where the demo writes
    assert cli.main(["--workspace", "ws", "executions"]) == 0
    assert capsys.readouterr().out == (
        f"no executions in {tmp_path / 'ws'}; `make demo` wrote its workspace to demo-output/workspace: "
        "add --workspace demo-output/workspace (or `make studio WORKSPACE=demo-output/workspace`)\n")
