"""The narrow services a step handler and the executor are given (instead of the whole Runtime).

- ``Aws``              boto3 clients (aws.py)
- ``Workspace``        on-disk state (workspace.py)
- ``EventPublisher``   puts events on the EventBridge bus (SageMaker's status-change events)
- ``JobRecorder``      files SageMaker jobs in the AWS emulation so Describe* answers as SageMaker would
- ``ExecutionStore``   persists execution records (workspace + moto's execution record)
- ``ModelStore``       CreateModel requests, kept for the next command's replay
- ``ExecutionObserver`` hears step/execution/tuning progress (console output, UIs); never changes anything
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .constants import ACCOUNT, region
from .workspace import Workspace, atomic_write_json


class EventPublisher(Protocol):
    def publish(self, event: dict) -> None: ...


class ExecutionObserver:
    """Progress of executions, told to whoever listens. Every hook is a no-op here; override what you need."""

    def execution_started(self, execution: dict) -> None: ...

    def step_started(self, execution: dict, step: dict) -> None: ...

    def step_finished(self, execution: dict, step: dict) -> None: ...

    def execution_finished(self, execution: dict) -> None: ...

    def tuning_trial(self, execution: dict, step_name: str, trial: "TuningTrial") -> None: ...


@dataclass(frozen=True)
class TuningTrial:
    """One finished training job of a tuning step: trial ``number`` of ``total``."""
    number: int
    total: int
    job_name: str
    status: str                 # Completed | Failed
    objective_metric: str | None
    objective: float | None     # this trial's objective value (None when it failed or logged none)
    best_so_far: float | None   # best objective among the trials finished so far
    hyperparameters: dict


class ModelStore(dict):
    """CreateModel requests by model name (moto forgets them between commands; the snapshot replays them)."""


class JobRecorder:
    """SageMaker jobs as the Describe* APIs show them.

    ``record`` files the Create* request in the AWS emulation; ``finish`` writes the final describe-shaped record
    to the job's folder and, with an embedded moto, sets status, FailureReason and ExitMessage on moto's job record
    (moto has no API for that: SageMaker sets them itself), so DescribeProcessingJob/DescribeTrainingJob/
    DescribeTransformJob return what the runtime recorded."""

    _FIELDS = {"processing": ("processing_jobs", "ProcessingJobStatus", "processing_job_status"),
               "training": ("training_jobs", "TrainingJobStatus", "training_job_status"),
               "transform": ("transform_jobs", "TransformJobStatus", "transform_job_status")}

    def __init__(self, aws, workspace: Workspace):
        self.aws, self.workspace = aws, workspace

    def record(self, kind: str, request: dict) -> None:
        sm = self.aws.sm
        req = {k: v for k, v in request.items() if k not in ("LocalJobDir", "LogFile")}
        if kind == "processing":
            sm.create_processing_job(**req)
        elif kind == "training":
            req.pop("TuningJobArn", None)
            sm.create_training_job(**req)
        elif kind == "transform":
            sm.create_transform_job(**req)
        else:
            raise ValueError(f"unknown job kind {kind!r}")

    def finish(self, kind: str, name: str, record: dict) -> None:
        self.workspace.job_dir(name)  # the folder, if the job made none
        atomic_write_json(self.workspace.job_record(name), dict(record, JobKind=kind))
        if self.aws.embedded:
            self._patch_moto(kind, name, record)

    def _patch_moto(self, kind: str, name: str, record: dict) -> None:
        from moto.sagemaker.models import sagemaker_backends
        table, status_key, status_attr = self._FIELDS[kind]
        backend = sagemaker_backends[ACCOUNT][region()]
        job = getattr(backend, table, {}).get(name)
        if job is None:
            return
        setattr(job, status_attr, record.get(status_key))
        for key, attr in (("FailureReason", "failure_reason"), ("ExitMessage", "exit_message")):
            if record.get(key):
                setattr(job, attr, record[key])


class ExecutionStore:
    """Execution records: the workspace file (atomic) and moto's execution (status, FailureReason)."""

    def __init__(self, aws, workspace: Workspace, checkpoint=None):
        self.aws, self.workspace = aws, workspace
        self._checkpoint = checkpoint

    def save(self, rec: dict) -> None:
        self.workspace.save_execution({k: v for k, v in rec.items() if not k.startswith("_")})
        self._sync_moto(rec)

    def checkpoint(self) -> None:
        """Everything a finished step changed in the emulated AWS, persisted (crash safety)."""
        if self._checkpoint is not None:
            self._checkpoint()

    def _sync_moto(self, rec: dict) -> None:
        """moto has no API to set an execution's status/FailureReason (SageMaker sets them itself), so in embedded
        mode the record in moto's backend is updated directly; describe_pipeline_execution then tells the truth."""
        if not (self.aws and self.aws.embedded and rec.get("PipelineExecutionStatus")):
            return
        from moto.sagemaker.models import sagemaker_backends
        backend = sagemaker_backends[ACCOUNT][region()]
        pipe = backend.pipelines.get(rec["PipelineName"])
        ex = pipe.pipeline_executions.get(rec["PipelineExecutionArn"]) if pipe else None
        if ex is not None:
            ex.pipeline_execution_status = rec["PipelineExecutionStatus"]
            ex.pipeline_execution_failure_reason = rec.get("FailureReason")



@dataclass
class Services:
    """Everything the executor and the step handlers may use, and nothing else."""
    aws: object                      # aws.Aws
    workspace: Workspace
    jobs: JobRecorder
    events: EventPublisher
    store: ExecutionStore
    models: ModelStore
    observer: ExecutionObserver
    quality_check_engine: object = None  # Path of the engine that stands in for Model Monitor's analyzer, or None
