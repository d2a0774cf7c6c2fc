"""Processing step: stage ProcessingInputs, run the script container with sys.executable, upload outputs."""
from __future__ import annotations

from pathlib import Path

from ..aws import download_prefix, upload_dir
from ..errors import StepFailure
from .base import StepContext, StepResult
from .common import max_runtime, python_command, relocate
from .job import Job


def run_processing_job(ctx: StepContext, args: dict, job_name: str, extra_env: dict | None = None,
                       entrypoint_override: list[str] | None = None) -> dict:
    """Runs one processing job; returns its describe-shaped record. Raises StepFailure (outputs not uploaded)."""
    job = Job(ctx, "processing", job_name, dict(args, ProcessingJobName=job_name))
    root, s3 = job.root, ctx.aws.s3
    (root / "output").mkdir()
    for inp in args.get("ProcessingInputs", []):
        s3in = inp.get("S3Input")
        if not s3in:
            raise StepFailure(f"ProcessingInput {inp.get('InputName')!r}: only S3Input is supported locally")
        try:
            download_prefix(s3, s3in["S3Uri"], relocate(s3in["LocalPath"], root), s3in.get("S3DataType"))
        except (FileNotFoundError, ValueError) as exc:
            raise StepFailure(f"ClientError: ProcessingInput {inp.get('InputName')!r}: {exc}") from exc
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for out in outputs:
        if "S3Output" in out:
            Path(relocate(out["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
    app = args.get("AppSpecification", {})
    cmd = entrypoint_override or python_command(app.get("ContainerEntrypoint") or [], app.get("ContainerArguments") or [], root)
    env = dict(args.get("Environment") or {})
    env.update(extra_env or {})
    env["SM_CONTAINER_ROOT"] = str(root)
    if env.get("PYTHONPATH"):  # read by the interpreter itself: its /opt/ml entries point into this job's root
        env["PYTHONPATH"] = ":".join(relocate(p, root) for p in env["PYTHONPATH"].split(":"))
    rc = job.run(cmd, env, job.dir, timeout=max_runtime(args))
    record = dict(job.base_record(),
                  ProcessingJobName=job_name, ProcessingJobArn=job.arn, ProcessingInputs=args.get("ProcessingInputs", []),
                  ProcessingOutputConfig=args.get("ProcessingOutputConfig", {"Outputs": []}),
                  AppSpecification=app, Environment=args.get("Environment", {}), RoleArn=args.get("RoleArn"),
                  ProcessingResources=args.get("ProcessingResources"), ProcessingStartTime=job.started)
    if rc != 0:
        job.fail(record, rc)
    # Upload only after success, so a failed job never replaces good outputs.
    for out in outputs:
        s3out = out.get("S3Output")
        if s3out:
            upload_dir(s3, relocate(s3out["LocalPath"], root), s3out["S3Uri"],
                       (args.get("ProcessingOutputConfig") or {}).get("KmsKeyId"))
    return job.complete(record)


class ProcessingHandler:
    step_types = ("Processing",)

    def run(self, ctx: StepContext) -> StepResult:
        record = run_processing_job(ctx, ctx.args, ctx.job_name())
        return StepResult(record, {"ProcessingJob": {"Arn": record["ProcessingJobArn"]}})
