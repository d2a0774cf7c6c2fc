"""Warm "containers": step scripts run in processes forked from a server that has already
imported numpy, pandas and scikit-learn.

A SageMaker job starts a fresh container; locally a fresh interpreter per job spent most of a
short job importing the scientific stack (~1.5 s each, dozens of jobs per demo). Forking from a
preloaded server keeps the isolation of a new process (own environment, working directory,
argv, file descriptors; nothing leaks between jobs) without paying the imports again.

Only stdlib imports here: the forked child imports this module to find its entry function.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading

# What the template's step scripts import; preloaded once in the fork server.
PRELOAD = ["numpy", "pandas", "joblib", "sklearn.compose", "sklearn.preprocessing", "sklearn.model_selection",
           "sklearn.ensemble", "sklearn.svm", "sklearn.metrics"]
TIMEOUT_EXIT = -9

_lock = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None


def _fork_context() -> multiprocessing.context.BaseContext | None:
    global _context
    with _lock:
        if _context is None and "forkserver" in multiprocessing.get_all_start_methods():
            _context = multiprocessing.get_context("forkserver")
            _context.set_forkserver_preload(PRELOAD)
        return _context


def _container_main(argv: list[str], env: dict[str, str], cwd: str, log_path: str) -> None:
    """Child side: become the job's process, run the script as __main__, exit with its code."""
    import runpy
    import traceback

    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    script = argv[0]
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:  # sys.exit("message"): printed to stderr, exit status 1, as the interpreter does
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - the job's crash, reported in its log like an interpreter would
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def run_script(argv: list[str], env: dict[str, str], cwd: str, log_path: str, timeout: float | None) -> int:
    """Run ``python argv[0] argv[1:]`` with exactly ``env``; return its exit code (TIMEOUT_EXIT on timeout).

    Returns None when this platform has no fork server; the caller then starts an interpreter.
    """
    context = _fork_context()
    if context is None:
        return None  # type: ignore[return-value]
    process = context.Process(target=_container_main, args=(argv, env, cwd, log_path), daemon=True)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return TIMEOUT_EXIT
    return process.exitcode if process.exitcode is not None else 1
