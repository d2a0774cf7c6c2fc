"""Warm "containers": step scripts run in processes forked from a zygote that has already
imported numpy, pandas and scikit-learn.

A SageMaker job starts a fresh container; locally a fresh interpreter per job spent most of a
short job importing the scientific stack (~1.5 s each, dozens of jobs per demo). The zygote
(``python -m local_runtime.zygote``, started once per runtime process) imports them and then forks
one child per job. A child keeps the isolation of a new process (own environment, working
directory, argv, file descriptors; nothing leaks between jobs) without paying the imports again.
The zygote is a plain interpreter of its own, so nothing of the caller's ``__main__`` is re-run.

Protocol (JSON lines): request ``{"id", "argv", "env", "cwd", "log"}`` on the zygote's stdin;
replies ``{"id", "pid"}`` when the job starts and ``{"id", "exit"}`` when it ends.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading

TIMEOUT_EXIT = -9


class Zygote:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._waiters: dict[int, dict] = {}
        self._next_id = 0

    def _ensure_running(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ)
            env.setdefault("OMP_NUM_THREADS", "1")  # BLAS reads it when the zygote imports numpy
            package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
            self._proc = subprocess.Popen([sys.executable, "-m", "local_runtime.zygote"], env=env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            threading.Thread(target=self._read_replies, args=(self._proc,), daemon=True).start()
        return self._proc

    def _read_replies(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            reply = json.loads(line)
            with self._lock:
                waiter = self._waiters.get(reply["id"])
            if waiter is None:
                continue
            if "pid" in reply:
                waiter["pid"] = reply["pid"]
            if "exit" in reply:
                waiter["exit"] = reply["exit"]
                waiter["done"].set()
        with self._lock:  # the zygote died: every job still waiting has failed
            for waiter in self._waiters.values():
                waiter.setdefault("exit", 1)
                waiter["done"].set()

    def run(self, argv: list[str], env: dict[str, str], cwd: str, log_path: str, timeout: float | None) -> int:
        with self._lock:
            proc = self._ensure_running()
            self._next_id += 1
            job_id = self._next_id
            waiter: dict = {"done": threading.Event()}
            self._waiters[job_id] = waiter
            proc.stdin.write(json.dumps({"id": job_id, "argv": argv, "env": env, "cwd": cwd, "log": log_path}) + "\n")
            proc.stdin.flush()
        try:
            if not waiter["done"].wait(timeout):
                if "pid" in waiter:
                    try:
                        os.kill(waiter["pid"], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                waiter["done"].wait(30)
                return TIMEOUT_EXIT
            return int(waiter["exit"])
        finally:
            with self._lock:
                self._waiters.pop(job_id, None)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


_zygote = Zygote()
atexit.register(_zygote.close)


def warm_up() -> None:
    """Start the zygote now, so that its imports (numpy, pandas, scikit-learn: seconds of CPU) run on another
    core while the caller does its own work (the runtime: Terraform, moto, the upserts) instead of delaying the
    first job. Idempotent; a no-op where the platform cannot fork."""
    if hasattr(os, "fork"):
        with _zygote._lock:
            _zygote._ensure_running()


def run_script(argv: list[str], env: dict[str, str], cwd: str, log_path: str, timeout: float | None) -> int | None:
    """Run ``python argv[0] argv[1:]`` with exactly ``env``; its exit code (TIMEOUT_EXIT on timeout).

    None where the platform cannot fork; the caller then starts an interpreter per job."""
    if not hasattr(os, "fork"):
        return None
    return _zygote.run(argv, env, cwd, log_path, timeout)
