"""Processing step: stage ProcessingInputs, run the script container with sys.executable, upload outputs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..aws import download_prefix, upload_dir
from ..errors import StepFailure
from .base import StepContext
from .common import exit_message, max_runtime, python_command, relocate
from .job import Job


def run_processing_job(ctx: StepContext, args: dict, job_name: str, extra_env: dict | None = None,
                       entrypoint_override: Callable[[Path], list[str]] | None = None) -> dict:
    """Runs one processing job on ClusterConfig.InstanceCount local "instances" (parallel processes, each with
    its own /opt/ml and resourceconfig.json); returns its describe-shaped record. Raises StepFailure (outputs
    not uploaded). entrypoint_override(root) builds the command for an instance whose /opt/ml is root."""
    job = Job(ctx, "processing", job_name, dict(args, ProcessingJobName=job_name))
    s3 = ctx.aws.s3
    hosts = job.hosts(((args.get("ProcessingResources") or {}).get("ClusterConfig") or {}).get("InstanceCount", 1))
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    app = args.get("AppSpecification", {})
    roots = {}
    for i, host in enumerate(hosts):
        root = roots[host] = job.host_root(host, hosts)
        (root / "output").mkdir(exist_ok=True)
        for inp in args.get("ProcessingInputs", []):
            s3in = inp.get("S3Input")
            if not s3in:
                raise StepFailure(f"ProcessingInput {inp.get('InputName')!r}: only S3Input is supported locally")
            sharded = s3in.get("S3DataDistributionType", "FullyReplicated") == "ShardedByS3Key"
            try:
                download_prefix(s3, s3in["S3Uri"], relocate(s3in["LocalPath"], root), s3in.get("S3DataType"),
                                shard=(i, len(hosts)) if sharded else None)
            except (FileNotFoundError, ValueError) as exc:
                raise StepFailure(f"ClientError: ProcessingInput {inp.get('InputName')!r}: {exc}") from exc
        for out in outputs:
            if "S3Output" in out:
                Path(relocate(out["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)

    def run_host(host: str) -> int:
        root = roots[host]
        cmd = entrypoint_override(root) if entrypoint_override else python_command(
            app.get("ContainerEntrypoint") or [], app.get("ContainerArguments") or [], root)
        env = dict(args.get("Environment") or {})
        env.update(extra_env or {})
        env["SM_CONTAINER_ROOT"] = str(root)
        if env.get("PYTHONPATH"):  # read by the interpreter itself: its /opt/ml entries point into this host's root
            env["PYTHONPATH"] = ":".join(relocate(p, root) for p in env["PYTHONPATH"].split(":"))
        return job.run(cmd, env, root.parent.parent, timeout=max_runtime(args), log_path=job.host_log(host, hosts))

    codes = dict(zip(hosts, job.run_instances(run_host, hosts)))
    record = job.base_record(
        ProcessingInputs=args.get("ProcessingInputs", []),
        ProcessingOutputConfig=args.get("ProcessingOutputConfig", {"Outputs": []}),
        AppSpecification=app, Environment=args.get("Environment", {}), RoleArn=args.get("RoleArn"),
        ProcessingResources=args.get("ProcessingResources"))
    if len(hosts) > 1:
        record["LocalHosts"] = {h: {"root": str(roots[h]), "log": str(job.host_log(h, hosts)), "exit_code": codes[h]}
                                for h in hosts}
    failed = [h for h in hosts if codes[h] != 0]
    if failed:
        first = failed[0]
        # "If multiple containers exit with an ExitMessage, the content ... from each processing container is
        # concatenated, then truncated to 1 KB" (byoc-metadata page)
        message = "".join(exit_message("processing", roots[h]).get("ExitMessage", "") for h in hosts)[:1024]
        extra = {"ExitMessage": message} if message else {}
        job.fail(record, codes[first], root=roots[first], log_path=job.host_log(first, hosts), extra=extra)
    # Upload only after success, so a failed job never replaces good outputs.
    for out in outputs:
        s3out = out.get("S3Output")
        if s3out:
            seen: dict[str, str] = {}
            for host in hosts:
                local = Path(relocate(s3out["LocalPath"], roots[host]))
                for f in sorted(p for p in local.rglob("*") if p.is_file()):
                    rel = f.relative_to(local).as_posix()
                    if rel in seen:  # AWS would silently keep one of them: a lost result, refused here
                        job.fail(record, 1, root=roots[host], log_path=job.host_log(host, hosts), extra={
                            "FailureReason": f"ClientError: output {out.get('OutputName')!r}: {seen[rel]} and {host} "
                                             f"both wrote {rel}; instances must write distinct file names"})
                    seen[rel] = host
            for host in hosts:
                upload_dir(s3, relocate(s3out["LocalPath"], roots[host]), s3out["S3Uri"],
                           (args.get("ProcessingOutputConfig") or {}).get("KmsKeyId"))
    message = "".join(exit_message("processing", roots[h]).get("ExitMessage", "") for h in hosts)[:1024]
    if message:
        record["ExitMessage"] = message
    return job.complete(record)
