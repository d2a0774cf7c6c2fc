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


def failure_fields(kind: str, root: Path, log_path: Path, returncode: int) -> dict:
    """FailureReason (and ExitMessage for processing jobs) of a failed job, from /opt/ml/output/message or
    /opt/ml/output/failure, else the last log line."""
    fields = {"FailureReason": failure_reason(root, log_path, returncode)}
    if kind == "processing":
        fields["ExitMessage"] = fields["FailureReason"]
    return fields


def failure_reason(root: Path, log_path: Path, returncode: int) -> str:
    """SageMaker surfaces /opt/ml/output/message (or /opt/ml/output/failure) as FailureReason."""
    for name in ("message", "failure"):
        msg = root / "output" / name
        if msg.exists() and msg.read_text().strip():
            return msg.read_text().strip()[:1024]
    lines = [l for l in log_path.read_text(errors="replace").splitlines() if l.strip()] if log_path.exists() else []
    last = lines[-1].strip() if lines else "no output"
    if returncode == -9:
        return f"ClientError: job exceeded its MaxRuntimeInSeconds; last log line: {last}"[:1024]
    return f"AlgorithmError: exit code {returncode}: {last}"[:1024]


def max_runtime(args: dict) -> float | None:
    v = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    return float(v) if v else None
