"""The skeleton every SageMaker job shares (processing, training, transform): name and ARN, the Create* record
in the AWS emulation, a fresh /opt/ml under the job's folder, the container process and its log, and the end
of the job as SageMaker reports it (status, FailureReason, ExitMessage), outputs uploaded after success only."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..constants import sagemaker_arn
from ..errors import StepFailure
from .base import StepContext
from .common import exit_message, failure_fields, run_process

_KIND = {  # kind -> (ARN resource, metadata key, status key, end-time key)
    "processing": ("processing-job", "ProcessingJob", "ProcessingJobStatus", "ProcessingEndTime"),
    "training": ("training-job", "TrainingJob", "TrainingJobStatus", "TrainingEndTime"),
    "transform": ("transform-job", "TransformJob", "TransformJobStatus", "TransformEndTime"),
}


class Job:
    def __init__(self, ctx: StepContext, kind: str, name: str, request: dict, *, step_metadata: bool = True):
        resource, meta_key, self._status_key, self._end_key = _KIND[kind]
        self.ctx, self.kind, self.name = ctx, kind, name
        self.arn = sagemaker_arn(resource, name)
        if step_metadata:  # a tuning step's trials are not the step's own job
            ctx.metadata[meta_key] = {"Arn": self.arn}
        ctx.jobs.record(kind, request)
        self.dir = ctx.workspace.job_dir(name)
        self.root = self.dir / "opt" / "ml"
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.log_path = self.dir / "logs.txt"
        self.started = time.time()

    def run(self, cmd: list[str], env: dict, cwd: Path, timeout: float | None = None,
            root: Path | None = None, log_path: Path | None = None) -> int:
        return run_process(cmd, env, cwd, log_path or self.log_path, timeout=timeout)

    def base_record(self) -> dict:
        return {"LocalJobDir": str(self.dir), "LogFile": str(self.log_path)}

    def fail(self, record: dict, returncode: int, root: Path | None = None, log_path: Path | None = None):
        """End the job as Failed with SageMaker's FailureReason/ExitMessage for this job kind; raises StepFailure."""
        fields = failure_fields(self.kind, root or self.root, log_path or self.log_path, returncode)
        record.update(fields)
        record[self._status_key] = "Failed"
        if self.kind == "training":
            record["SecondaryStatus"] = "Failed"
        record[self._end_key] = time.time()
        self.ctx.jobs.finish(self.kind, self.name, record)
        raise StepFailure(fields["FailureReason"], properties=record)

    def complete(self, record: dict, root: Path | None = None) -> dict:
        record.update(exit_message(self.kind, root or self.root))  # ExitMessage on every terminal status
        record[self._status_key] = "Completed"
        if self.kind == "training":
            record["SecondaryStatus"] = "Completed"
        record.setdefault(self._end_key, time.time())
        self.ctx.jobs.finish(self.kind, self.name, record)
        return record
