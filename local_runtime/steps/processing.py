"""Processing step: stage ProcessingInputs, run the script container with sys.executable, upload outputs."""
from __future__ import annotations

import shutil
import time

from ..aws import download_prefix, upload_dir
from ..errors import StepFailure
from .common import StepContext, arn, failure_reason, max_runtime, python_command, relocate, run_process


def run_processing_job(ctx: StepContext, args: dict, job_name: str, extra_env: dict | None = None,
                       entrypoint_override: list[str] | None = None) -> dict:
    """Runs one processing job; returns its describe-shaped record. Raises StepFailure (outputs not uploaded)."""
    rt = ctx.rt
    job_arn = arn("processing-job", job_name)
    ctx.metadata.update({"ProcessingJob": {"Arn": job_arn}})
    request = dict(args, ProcessingJobName=job_name)
    rt.record_job("processing", request)
    job_dir = rt.workspace.job_dir(job_name)
    root = job_dir / "opt" / "ml"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "output").mkdir()
    started = time.time()
    for inp in args.get("ProcessingInputs", []):
        s3in = inp.get("S3Input")
        if not s3in:
            raise StepFailure(f"ProcessingInput {inp.get('InputName')!r}: only S3Input is supported locally")
        try:
            download_prefix(rt.aws.s3, s3in["S3Uri"], relocate(s3in["LocalPath"], root), s3in.get("S3DataType"))
        except (FileNotFoundError, ValueError) as exc:
            raise StepFailure(f"ClientError: ProcessingInput {inp.get('InputName')!r}: {exc}") from exc
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for out in outputs:
        if "S3Output" in out:
            from pathlib import Path
            Path(relocate(out["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
    app = args.get("AppSpecification", {})
    cmd = entrypoint_override or python_command(app.get("ContainerEntrypoint") or [], app.get("ContainerArguments") or [], root)
    env = dict(args.get("Environment") or {})
    env.update(extra_env or {})
    env["SM_CONTAINER_ROOT"] = str(root)
    if env.get("PYTHONPATH"):  # read by the interpreter itself: its /opt/ml entries point into this job's root
        env["PYTHONPATH"] = ":".join(relocate(p, root) for p in env["PYTHONPATH"].split(":"))
    log_path = job_dir / "logs.txt"
    rc = run_process(cmd, env, job_dir, log_path, timeout=max_runtime(args))
    record = {
        "ProcessingJobName": job_name, "ProcessingJobArn": job_arn, "ProcessingInputs": args.get("ProcessingInputs", []),
        "ProcessingOutputConfig": args.get("ProcessingOutputConfig", {"Outputs": []}),
        "AppSpecification": app, "Environment": args.get("Environment", {}), "RoleArn": args.get("RoleArn"),
        "ProcessingResources": args.get("ProcessingResources"), "ProcessingStartTime": started,
        "ProcessingEndTime": time.time(), "LocalJobDir": str(job_dir), "LogFile": str(log_path),
    }
    if rc != 0:
        reason = failure_reason(root, log_path, rc)
        record.update(ProcessingJobStatus="Failed", FailureReason=reason, ExitMessage=reason)
        rt.finish_job("processing", job_name, record)
        raise StepFailure(reason, properties=record)
    # Upload only after success, so a failed job never replaces good outputs.
    for out in outputs:
        s3out = out.get("S3Output")
        if s3out:
            upload_dir(rt.aws.s3, relocate(s3out["LocalPath"], root), s3out["S3Uri"])
    record["ProcessingJobStatus"] = "Completed"
    rt.finish_job("processing", job_name, record)
    return record


def run(ctx: StepContext):
    record = run_processing_job(ctx, ctx.args, ctx.job_name())
    return record, {"ProcessingJob": {"Arn": record["ProcessingJobArn"]}}
