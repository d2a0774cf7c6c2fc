"""Transform step: fetch the model (describe_model -> ModelDataUrl + SAGEMAKER_PROGRAM/SUBMIT_DIRECTORY),
run transform_worker.py in its own interpreter, upload <input file>.out after success only."""
from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

from ..aws import download_prefix, get_file, split_s3, upload_file
from ..errors import StepFailure
from .base import StepContext
from .common import relocate
from .job import Job
from .registry import resolve_container
from .training import _fetch_code


def serving_concurrency(max_concurrent, env: dict, busy_instances: int) -> int:
    """Requests in flight per instance: MaxConcurrentTransforms (0 or unset: 1, the API's default when the
    container serves no execution-parameters, as the scikit-learn one does not), no more than the model server's
    workers (SAGEMAKER_MODEL_SERVER_WORKERS when the model sets it) nor this machine's cores per running
    instance (an ml.* instance brings cores of its own; here the instances share these)."""
    wanted = int(max_concurrent or 0) or 1
    workers = env.get("SAGEMAKER_MODEL_SERVER_WORKERS")
    if workers and str(workers).isdigit() and int(workers) > 0:
        wanted = min(wanted, int(workers))
    return max(1, min(wanted, (os.cpu_count() or 1) // max(1, busy_instances)))


def run_transform_job(ctx: StepContext, args: dict, job_name: str) -> dict:
    model_name = args.get("ModelName")
    job = Job(ctx, "transform", job_name, dict(args, TransformJobName=job_name))
    s3 = ctx.aws.s3
    try:
        model = ctx.aws.sm.describe_model(ModelName=model_name)
    except Exception as exc:
        raise StepFailure(f"ClientError: model {model_name!r} not found: {exc}") from exc
    containers = model.get("Containers") or [model.get("PrimaryContainer")]
    container = resolve_container(ctx.aws.sm, containers[0])
    env = dict(container.get("Environment") or {})
    env.update(args.get("Environment") or {})
    program = env.get("SAGEMAKER_PROGRAM")
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if not program or not submit:
        raise StepFailure(f"model {model_name}: container Environment needs SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY "
                          f"(scikit-learn serving convention), got {sorted(env)}")
    dp = args.get("DataProcessing") or {}
    if dp.get("InputFilter", "$") != "$" or dp.get("OutputFilter", "$") != "$" or dp.get("JoinSource", "None") != "None":
        raise StepFailure(f"DataProcessing {dp} is not supported locally")
    job_dir, root = job.dir, job.root
    (root / "model").mkdir(parents=True)
    (root / "output").mkdir()
    bucket, key = split_s3(container["ModelDataUrl"])
    tar_path = job_dir / "model.tar.gz"
    try:
        get_file(s3, bucket, key, tar_path)
    except Exception as exc:
        raise StepFailure(f"ClientError: cannot read ModelDataUrl {container['ModelDataUrl']}: {exc}") from exc
    with tarfile.open(tar_path) as tar:
        tar.extractall(root / "model", filter="data")
    if submit.startswith("/opt/ml/"):
        # Code packed inside model.tar.gz (e.g. /opt/ml/model/code), as the serving container reads it.
        code_dir = Path(relocate(submit, root))
        if not (code_dir / program).exists():
            inside = sorted(p.name for p in (root / "model").iterdir())
            raise StepFailure(f"ClientError: SAGEMAKER_SUBMIT_DIRECTORY={submit} but {program} is not there: model.tar.gz "
                              f"({container['ModelDataUrl']}) contains {inside}; pack the code under code/ in the model "
                              "archive or point SAGEMAKER_SUBMIT_DIRECTORY at an S3 prefix/sourcedir.tar.gz")
    else:
        code_dir = root / "code"
        _fetch_code(s3, submit, code_dir)
    tin = args.get("TransformInput") or {}
    src = (tin.get("DataSource") or {}).get("S3DataSource") or {}
    if tin.get("CompressionType", "None") not in ("None", None):
        raise StepFailure(f"TransformInput.CompressionType {tin['CompressionType']!r} is not supported locally")
    in_dir = job_dir / "input"
    try:
        files = download_prefix(s3, src["S3Uri"], in_dir, src.get("S3DataType"))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise StepFailure(f"ClientError: TransformInput: {exc}") from exc
    out_dir = job_dir / "output"
    pairs = []
    for f in sorted(files):
        rel = f.relative_to(in_dir)
        dst = out_dir / (str(rel) + ".out")
        dst.parent.mkdir(parents=True, exist_ok=True)
        pairs.append((str(f), str(dst)))
    tout = args.get("TransformOutput") or {}
    # "batch transform distributes the S3 objects among the instances": whole objects, never split
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html); each instance serves its share.
    hosts = job.hosts((args.get("TransformResources") or {}).get("InstanceCount", 1))
    worker = Path(__file__).with_name("transform_worker.py")
    concurrency = serving_concurrency(args.get("MaxConcurrentTransforms"), env, min(len(hosts), len(pairs)) or 1)
    runs = []
    for i, host in enumerate(hosts):
        share = pairs[i::len(hosts)]
        if not share:
            continue  # fewer objects than instances: this one idles
        host_root = job.host_root(host, hosts)
        (host_root / "output").mkdir(exist_ok=True)
        spec = {
            "model_dir": str(root / "model"), "code_dir": str(code_dir), "program": program, "files": share,
            "max_payload_mb": args.get("MaxPayloadInMB", 6), "strategy": args.get("BatchStrategy", "MultiRecord"),
            "split_type": tin.get("SplitType", "None"), "content_type": tin.get("ContentType"),
            "accept": tout.get("Accept"), "assemble_with": tout.get("AssembleWith", "None"),
            "report": str(job_dir / f"records-{host}.json"), "failure_file": str(host_root / "output" / "message"),
            "concurrency": concurrency,
        }
        spec_path = job_dir / f"spec-{host}.json"
        spec_path.write_text(json.dumps(spec, indent=1))
        run_env = dict(env, SM_CONTAINER_ROOT=str(host_root), SM_MODEL_DIR=str(root / "model"), PYTHONPATH=str(code_dir))
        runs.append((host, host_root, [sys.executable, str(worker), str(spec_path)], run_env))

    def run_host(item) -> int:
        host, _, cmd, run_env = item
        return job.run(cmd, run_env, code_dir, log_path=job.host_log(host, hosts))

    codes = job.run_instances(run_host, runs)
    record = job.base_record(
        ModelName=model_name, TransformInput=tin, TransformOutput=tout, TransformResources=args.get("TransformResources"),
        BatchStrategy=args.get("BatchStrategy", "MultiRecord"), MaxPayloadInMB=args.get("MaxPayloadInMB", 6))
    for (host, host_root, _, _), rc in zip(runs, codes):
        if rc != 0:
            job.fail(record, rc, root=host_root, log_path=job.host_log(host, hosts))
    out_uri = tout.get("S3OutputPath", "").rstrip("/")
    for _, dst in pairs:
        rel = Path(dst).relative_to(out_dir).as_posix()
        upload_file(s3, dst, f"{out_uri}/{rel}", tout.get("KmsKeyId"))
    counts = {}
    for host, *_ in runs:
        counts.update(json.loads((job_dir / f"records-{host}.json").read_text()))
    record["RecordCounts"] = counts
    return job.complete(record)
