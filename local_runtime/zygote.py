"""The zygote of container.py: import the step scripts' libraries once, fork a child per job.

Run as ``python -m local_runtime.zygote``; reads job requests from stdin (JSON lines), answers on
stdout. Single-threaded by design: forking a process with threads is unsafe.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import sys

# What the template's step scripts import.
PRELOAD = ["numpy", "pandas", "joblib", "sklearn.compose", "sklearn.preprocessing", "sklearn.model_selection",
           "sklearn.ensemble", "sklearn.svm", "sklearn.metrics"]


def _child(request: dict, replies: int) -> None:
    """Become the job's process: its log as stdout/stderr, its env, cwd and argv; run the script."""
    import runpy
    import traceback

    os.close(replies)
    signal.set_wakeup_fd(-1)  # the zygote's child-exit wake-up is not the job's
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in _WAKE_FDS:
        os.close(fd)
    log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    script = request["argv"][0]
    sys.argv = list(request["argv"])
    # As a fresh interpreter would: the script's folder first, then PYTHONPATH (the job's libraries)
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[0:0] = [os.path.dirname(os.path.abspath(script)), *extra]
    # A container has only what its image and the job's inputs bring: the venv's editable-install finders
    # (they would resolve steplib or pipeline_scripts from the repository) are not part of it.
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:  # sys.exit("message"): printed, exit status 1, as the interpreter does
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - the job's crash, in its log as an interpreter would print it
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code & 0xFF)


_WAKE_FDS: tuple[int, ...] = ()


def _reply(out, message: dict) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    # The preloaded libraries live as long as every job: out of the children's collections, and their pages
    # stay shared with the children instead of being copied when a collection touches them (CPython's gc.freeze
    # documentation, "before fork").
    gc.freeze()
    replies = os.dup(1)
    out = os.fdopen(replies, "w", buffering=1)
    # A child's exit wakes the select below at once (SIGCHLD through a wake-up pipe), so a job's end is
    # reported when it happens rather than at the next poll.
    global _WAKE_FDS
    wake_r, wake_w = _WAKE_FDS = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running: dict[int, int] = {}  # pid -> job id
    stdin_open = True
    buffer = ""
    while stdin_open or running:
        ready, _, _ = select.select([0, wake_r] if stdin_open else [wake_r], [], [], 1.0)
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 4096):
                        break
                except BlockingIOError:
                    break
        if stdin_open:
            if 0 in ready:
                chunk = os.read(0, 65536).decode()
                if not chunk:
                    stdin_open = False
                buffer += chunk
                while "\n" in buffer:
                    line, buffer = buffer.split("\n", 1)
                    request = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        _child(request, replies)
                    running[pid] = request["id"]
                    _reply(out, {"id": request["id"], "pid": pid})
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            job_id = running.pop(pid, None)
            if job_id is not None:
                _reply(out, {"id": job_id, "exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
