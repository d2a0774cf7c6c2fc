"""On-disk backend state of the runtime (executions, steps, jobs, events, outbox) as JSON files.

Like moto's split of backend state and API responses: this module only stores; executor/CLI render.
Every write goes to a temp file first and is renamed into place, so a crash never leaves half a file.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

from .errors import NotFoundError, StateError

DEFAULT_WORKSPACE = ".local-sagemaker"
DEMO_OUTPUT = "demo-output"  # `sm-local demo` (make demo) writes here; its workspace is <output>/workspace


def demo_workspace_hint(root: Path) -> str:
    """Where the demo's workspace is, for a command that found ``root`` empty: after `make demo`, `sm-local` and
    `make studio` read the default workspace, not the demo's, and should say so instead of showing nothing."""
    demo = (Path(DEMO_OUTPUT) / "workspace").resolve()
    if demo == Path(root).resolve() or not any((demo / "executions").glob("*.json")):
        return ""
    shown = as_typed(demo)
    return (f"; `make demo` wrote its workspace to {shown}: add --workspace {shown} "
            f"(or `make studio WORKSPACE={shown}`)")


def as_typed(path: Path) -> Path:
    """``path`` as a user would type it from here: relative to the working directory when it lies below it."""
    path = Path(path).resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str, sort_keys=False) + "\n").encode())


def read_json(path: Path, default=None):
    path = Path(path)
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: corrupt state file, not valid JSON ({exc}); restore it or remove the "
                         "workspace to start afresh") from exc


class Workspace:
    """Directory layout:
    executions/<execution-id>.json   execution record incl. step records and properties
    jobs/<job-name>/                  job dirs (relocated /opt/ml, logs)
    events.jsonl                      every event emitted (and which rules matched)
    outbox/notifications.jsonl|.txt   SNS messages drained from the subscribed SQS queues
    aws/                              snapshot of moto state replayed by the next command (embedded moto only)
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("SM_LOCAL_WORKSPACE") or DEFAULT_WORKSPACE).resolve()
        for sub in ("executions", "jobs", "outbox", "aws"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self, announce=None):
        """One command at a time per workspace: an advisory lock on <workspace>/.lock held for the command.
        The kernel drops it when the holder dies (kill -9 included), so a crash never leaves it stuck."""
        path = self.root / ".lock"
        fh = open(path, "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                (announce or (lambda m: print(m, file=sys.stderr, flush=True)))(
                    f"waiting for another sm-local command on {self.root} (pid {holder}) to finish")
                fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    # executions
    def execution_path(self, execution_id: str) -> Path:
        return self.root / "executions" / f"{execution_id}.json"

    def save_execution(self, record: dict) -> None:
        with self._lock:
            atomic_write_json(self.execution_path(record["PipelineExecutionId"]), record)

    def load_execution(self, execution_id: str) -> dict:
        rec = read_json(self.execution_path(execution_id))
        if rec is None:
            known = ", ".join(sorted(e["PipelineExecutionId"] for e in self.list_executions())) or "none"
            raise NotFoundError(f"no execution {execution_id!r} in {self.root / 'executions'} (known: {known})")
        return rec

    def list_executions(self) -> list[dict]:
        recs = [read_json(p) for p in sorted((self.root / "executions").glob("*.json"))]
        return sorted((r for r in recs if r), key=lambda r: (r.get("StartTime") or "", r.get("Sequence", 0)))

    def next_sequence(self) -> int:
        return 1 + max((r.get("Sequence", 0) for r in self.list_executions()), default=0)

    # jobs
    def job_dir(self, job_name: str) -> Path:
        d = self.root / "jobs" / job_name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def job_record(self, job_name: str) -> Path:
        """The job's Describe*-shaped record (written when it ends; read without creating its folder)."""
        return self.root / "jobs" / job_name / "job.json"

    # append-only logs
    def append_jsonl(self, rel: str, obj) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(path, "a") as fh:
            fh.write(json.dumps(obj, default=str) + "\n")

    def read_jsonl(self, rel: str) -> list:
        path = self.root / rel
        if not path.exists():
            return []
        out = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise StateError(f"{path}:{n}: corrupt line, not valid JSON ({exc})") from exc
        return out

    def append_text(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(path, "a") as fh:
            fh.write(text)
