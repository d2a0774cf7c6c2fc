"""Shared helpers of the step executors: job dirs, subprocess runs, failure reasons."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .. import container
from ..errors import StepFailure


def relocate(path: str, root: Path) -> str:
    """container_path() of the contract: /opt/ml/... -> <job dir>/opt/ml/..."""
    return str(root) + path[len("/opt/ml"):] if isinstance(path, str) and path.startswith("/opt/ml") else path


def python_command(entrypoint: list[str], arguments: list[str], root: Path) -> list[str]:
    if not entrypoint:
        raise StepFailure("ContainerEntrypoint is empty: the local runtime runs script containers only")
    exe = entrypoint[0]
    if os.path.basename(exe) not in ("python", "python3") and not re.fullmatch(r"python3(\.\d+)?", os.path.basename(exe)):
        raise StepFailure(f"unsupported container entrypoint {entrypoint!r}: the local runtime runs python scripts only")
    return [sys.executable] + [relocate(a, root) for a in list(entrypoint[1:]) + list(arguments or [])]


def run_process(cmd: list[str], env: dict, cwd: Path, log_path: Path, timeout: float | None = None) -> int:
    """Run a container process; stdout+stderr go to log_path (kept as the job's CloudWatch log).

    Python scripts run in a warm process forked from a preloaded server (container.py); anything
    else, or a platform without a fork server, starts a fresh process."""
    full_env = dict(os.environ)
    full_env.update({k: str(v) for k, v in env.items()})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    full_env.setdefault("OMP_NUM_THREADS", "1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if cmd and cmd[0] == sys.executable and len(cmd) > 1:
        code = container.run_script(cmd[1:], full_env, str(cwd), str(log_path), timeout)
        if code is not None:
            return code
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.run(cmd, env=full_env, cwd=str(cwd), stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            return container.TIMEOUT_EXIT
    return proc.returncode


# AWS keeps a processing job's FailureReason generic and puts /opt/ml/output/message into ExitMessage
# (DescribeProcessingJob); the template therefore signals a model-quality breach through a FailStep.
GENERIC_ALGORITHM_ERROR = "AlgorithmError: See job logs for more information"


def _read_utf8(path: Path, limit: int) -> str | None:
    """The first `limit` characters of a container's message file; None when absent or empty.
    Raises UnicodeDecodeError when it is not UTF-8 (AWS then fails the job with a ClientError)."""
    if not path.exists():
        return None
    text = path.read_bytes().decode("utf-8")
    return text[:limit] if text.strip() else None


def exit_message(kind: str, root: Path) -> dict:
    """Processing jobs, on any terminal status: "the ExitMessage field in DescribeProcessingJob contains the first
    1 KB of" /opt/ml/output/message (https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html)."""
    if kind != "processing":
        return {}
    try:
        text = _read_utf8(root / "output" / "message", 1024)
    except UnicodeDecodeError:
        return {}
    return {"ExitMessage": text} if text is not None else {}


def failure_fields(kind: str, root: Path, log_path: Path, returncode: int) -> dict:
    """FailureReason (and ExitMessage) of a failed job, as SageMaker reports them:
    - training: the first 1024 characters of /opt/ml/output/failure
      (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html), else generic;
    - processing: generic "AlgorithmError: See job logs for more information" (the wording AWS's own
      sagemaker-spark-container integration tests assert), the container's message in ExitMessage;
    - a message file that is not UTF-8 fails the job with a ClientError (byoc-metadata page);
    - transform: the serving stack's error (local: the worker's message), else generic.
    Where AWS documents no wording (timeouts, no failure file) the generic text is used: nothing from the logs
    leaks into the reason, as on AWS."""
    if returncode == -9:
        return {"FailureReason": "ClientError: the job exceeded its StoppingCondition.MaxRuntimeInSeconds"}
    source = {"training": "failure", "processing": "message", "transform": "message"}[kind]
    try:
        text = _read_utf8(root / "output" / source, 1024)
    except UnicodeDecodeError:
        return {"FailureReason": f"ClientError: /opt/ml/output/{source} is not UTF-8 encoded"}
    if kind == "processing":
        return dict(exit_message(kind, root), FailureReason=GENERIC_ALGORITHM_ERROR)
    if kind == "training" and text is None:  # the template's scripts also write .../message; AWS ignores it there
        return {"FailureReason": GENERIC_ALGORITHM_ERROR}
    return {"FailureReason": (text or GENERIC_ALGORITHM_ERROR).strip()}


def max_runtime(args: dict) -> float | None:
    v = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    return float(v) if v else None
