"""The skeleton every SageMaker job shares (processing, training, transform): name and ARN, the Create* record
in the AWS emulation, a fresh /opt/ml under the job's folder, the container process and its log, and the end
of the job as SageMaker reports it (status, FailureReason, ExitMessage), outputs uploaded after success only."""
from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from ..constants import sagemaker_arn
from ..errors import StepFailure
from .base import StepContext, StepResult
from .common import exit_message, failure_fields, run_process

_KIND = {  # kind -> (ARN resource, metadata key, status key, end-time key)
    "processing": ("processing-job", "ProcessingJob", "ProcessingJobStatus", "ProcessingEndTime"),
    "training": ("training-job", "TrainingJob", "TrainingJobStatus", "TrainingEndTime"),
    "transform": ("transform-job", "TransformJob", "TransformJobStatus", "TransformEndTime"),
}


_T = TypeVar("_T")


class Job:
    def __init__(self, ctx: StepContext, kind: str, name: str, request: dict, *, step_metadata: bool = True):
        resource, self._meta_key, self._status_key, self._end_key = _KIND[kind]
        self.ctx, self.kind, self.name = ctx, kind, name
        self.arn = sagemaker_arn(resource, name)
        if step_metadata:  # a tuning step's trials are not the step's own job
            ctx.metadata[self._meta_key] = {"Arn": self.arn}
        ctx.jobs.record(kind, request)
        self.dir = ctx.workspace.job_dir(name)
        self.root = self.dir / "opt" / "ml"
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.log_path = self.dir / "logs.txt"
        self.started = time.time()

    def hosts(self, count) -> list[str]:
        n = int(count or 1)
        if n < 1:
            raise StepFailure(f"InstanceCount must be at least 1, got {count!r}")
        return [f"algo-{i}" for i in range(1, n + 1)]

    def host_root(self, host: str, hosts: list[str]) -> Path:
        """/opt/ml of one instance, with /opt/ml/config/resourceconfig.json as SageMaker writes it
        (https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html)."""
        root = self.root if len(hosts) == 1 else self.dir / host / "opt" / "ml"
        if root != self.root:
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
        (root / "config").mkdir(exist_ok=True)
        (root / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": host, "hosts": hosts, "network_interface_name": "eth0"}))
        return root

    def host_log(self, host: str, hosts: list[str]) -> Path:
        return self.log_path if host == hosts[0] else self.dir / f"logs-{host}.txt"

    def run_instances(self, run_one: Callable[[_T], int], instances: Iterable[_T]) -> list[int]:
        """Runs run_one for every instance at once (each local instance is its own process); exit codes in order."""
        instances = list(instances)
        if len(instances) <= 1:
            return [run_one(i) for i in instances]
        with ThreadPoolExecutor(max_workers=len(instances)) as pool:
            return list(pool.map(run_one, instances))

    def run(self, cmd: list[str], env: dict, cwd: Path, timeout: float | None = None,
            log_path: Path | None = None) -> int:
        return run_process(cmd, env, cwd, log_path or self.log_path, timeout=timeout)

    def base_record(self, **fields) -> dict:
        """The describe record's common part: <Kind>JobName, <Kind>JobArn, <Kind>StartTime, the local folders,
        then the kind's own fields."""
        kind = self._meta_key.removesuffix("Job")
        return {f"{kind}JobName": self.name, f"{kind}JobArn": self.arn, f"{kind}StartTime": self.started,
                "LocalJobDir": str(self.dir), "LogFile": str(self.log_path), **fields}

    def fail(self, record: dict, returncode: int, root: Path | None = None, log_path: Path | None = None,
             extra: dict | None = None):
        """End the job as Failed with SageMaker's FailureReason/ExitMessage for this job kind; raises StepFailure."""
        fields = failure_fields(self.kind, root or self.root, log_path or self.log_path, returncode)
        fields.update(extra or {})
        record.update(fields)
        record[self._status_key] = "Failed"
        if self.kind == "training":
            record["SecondaryStatus"] = "Failed"
        record[self._end_key] = time.time()
        self.ctx.jobs.finish(self.kind, self.name, record)
        raise StepFailure(fields["FailureReason"], properties=record)

    def complete(self, record: dict, root: Path | None = None) -> dict:
        if "ExitMessage" not in record:
            record.update(exit_message(self.kind, root or self.root))  # ExitMessage on every terminal status
        record[self._status_key] = "Completed"
        if self.kind == "training":
            record["SecondaryStatus"] = "Completed"
        record.setdefault(self._end_key, time.time())
        self.ctx.jobs.finish(self.kind, self.name, record)
        return record


class JobStepHandler:
    """A step that is one job: its properties are the job's describe record, its metadata the job's ARN under
    the kind's key, as ListPipelineExecutionSteps shows it. run_job(ctx, args, job_name) returns the record."""

    def __init__(self, step_type: str, kind: str, run_job: Callable[[StepContext, dict, str], dict]):
        self.step_types = (step_type,)
        self._meta_key = _KIND[kind][1]
        self._run_job = run_job

    def run(self, ctx: StepContext) -> StepResult:
        record = self._run_job(ctx, ctx.args, ctx.job_name())
        return StepResult(record, {self._meta_key: {"Arn": record[f"{self._meta_key}Arn"]}})
