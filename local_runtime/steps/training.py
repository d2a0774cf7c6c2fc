"""Training step (SDK v3 ModelTrainer convention) run as SageMaker would, without the bash drivers.

Channels land in /opt/ml/input/data/<channel>; the entry script named by sm_drivers/sourcecode.json (or the
legacy sagemaker_program hyperparameter) runs as `python <entry> --<hp> <value> ...` from the code dir;
SM_MODEL_DIR is packaged as <S3OutputPath>/<job>/output/model.tar.gz after success only.
"""
from __future__ import annotations

import json
import re
import sys
import tarfile
import time
from pathlib import Path

from ..aws import download_prefix, get_file, split_s3, upload_file
from ..constants import sagemaker_arn
from ..errors import StepFailure
from .base import StepContext
from .common import max_runtime
from .job import Job

_DRIVER_CHANNELS = ("code", "sm_drivers")


def _hp_value(v) -> str:
    # Same as the SDK drivers' safe_deserialize/safe_serialize: JSON strings lose their quotes.
    if isinstance(v, str):
        try:
            d = json.loads(v)
        except ValueError:
            return v
        return d if isinstance(d, str) else json.dumps(d)
    return json.dumps(v)


def _stage_code(s3, root: Path, channels: dict, hps: dict) -> tuple[Path, str]:
    code_dir = root / "input" / "data" / "code"
    entry = None
    sc = root / "input" / "data" / "sm_drivers" / "sourcecode.json"
    if sc.exists():
        spec = json.loads(sc.read_text() or "{}")
        if spec.get("command"):
            raise StepFailure(f"SourceCode.command {spec['command']!r} is not supported locally; use entry_script")
        entry = spec.get("entry_script")
    entry = entry or _hp_value(hps.get("sagemaker_program", "")) or None
    if "code" not in channels:
        submit = _hp_value(hps.get("sagemaker_submit_directory", "")) if hps.get("sagemaker_submit_directory") else None
        if not submit:
            raise StepFailure("training job has neither a 'code' channel nor sagemaker_submit_directory")
        _fetch_code(s3, submit, code_dir)
    if not entry:
        raise StepFailure("training job names no entry script (sm_drivers/sourcecode.json entry_script or sagemaker_program)")
    if not (code_dir / entry).exists():
        raise StepFailure(f"ClientError: entry script {entry!r} not found in the code channel {code_dir}")
    return code_dir, entry


def _fetch_code(s3, uri: str, dest: Path) -> None:
    """S3 code location: a prefix, a single file, or sourcedir.tar.gz (extracted)."""
    dest.mkdir(parents=True, exist_ok=True)
    if uri.endswith(".tar.gz"):
        bucket, key = split_s3(uri)
        tmp = dest.parent / "sourcedir.tar.gz"
        get_file(s3, bucket, key, tmp)
        with tarfile.open(tmp) as tar:
            tar.extractall(dest, filter="data")
        tmp.unlink()
    else:
        download_prefix(s3, uri, dest)


def parse_metrics(log_text: str, definitions: list) -> dict:
    """MetricDefinitions regexes over the job log; the last match wins (as CloudWatch's final value)."""
    out = {}
    for d in definitions or []:
        try:
            rx = re.compile(d["Regex"])
        except re.error as exc:
            raise StepFailure(f"metric {d.get('Name')!r}: invalid Regex {d.get('Regex')!r}: {exc}") from exc
        vals = []
        for m in rx.finditer(log_text):
            try:
                vals.append(float(m.group(1)))
            except (IndexError, ValueError):
                continue
        if vals:
            out[d["Name"]] = vals[-1]
    return out


def run_training_job(ctx: StepContext, args: dict, job_name: str, tuning_job: str | None = None,
                     cpus: int | None = None) -> dict:
    """One training job. ``cpus``: the cores this job may use when several share the machine (a tuning step's
    parallel trials, each an instance of its own on AWS): libraries that size their thread pools from the CPU
    count (joblib's n_jobs=-1) then use their share instead of oversubscribing, as a container's CPU quota
    would make them."""
    job = Job(ctx, "training", job_name, dict(args, TrainingJobName=job_name), step_metadata=tuning_job is None)
    root, s3 = job.root, ctx.aws.s3
    for sub in ("model", "output/data", "input/config", "code"):
        (root / sub).mkdir(parents=True)
    hps = dict(args.get("HyperParameters") or {})
    channels = {}
    for ch in args.get("InputDataConfig", []):
        name = ch["ChannelName"]
        src = ch.get("DataSource", {}).get("S3DataSource")
        if not src:
            raise StepFailure(f"channel {name!r}: only S3DataSource is supported locally")
        dest = root / "input" / "data" / name
        try:
            download_prefix(s3, src["S3Uri"], dest, src.get("S3DataType"))
        except (FileNotFoundError, ValueError) as exc:
            raise StepFailure(f"ClientError: channel {name!r}: {exc}") from exc
        channels[name] = dest
    code_dir, entry = _stage_code(s3, root, channels, hps)
    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    cli = []
    for k, v in user_hps.items():
        cli += [f"--{k}", _hp_value(v)]
    data_channels = [c for c in channels if c not in _DRIVER_CHANNELS]
    env = dict(args.get("Environment") or {})
    env.update({
        "SM_CONTAINER_ROOT": str(root), "SM_MODEL_DIR": str(root / "model"), "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_OUTPUT_DIR": str(root / "output"), "SM_INPUT_DIR": str(root / "input"), "SM_CHANNELS": json.dumps(data_channels),
        "SM_HPS": json.dumps({k: _hp_value(v) for k, v in user_hps.items()}), "SM_ENTRY_SCRIPT": entry,
        "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": json.dumps(["algo-1"]), "TRAINING_JOB_NAME": job_name,
        "SM_TRAINING_ENV": json.dumps({"job_name": job_name, "hyperparameters": user_hps}),
    })
    for c in channels:
        env[f"SM_CHANNEL_{c.upper()}"] = str(channels[c])
    for k, v in user_hps.items():
        env[f"SM_HP_{k.upper()}"] = _hp_value(v)
    env["PYTHONPATH"] = str(code_dir)
    if cpus is not None:
        env["LOKY_MAX_CPU_COUNT"] = str(cpus)  # joblib's cpu_count() (the loky and threading backends) reads it
    rc = job.run([sys.executable, entry] + cli, env, code_dir, timeout=max_runtime(args))
    log_text = job.log_path.read_text(errors="replace")
    metrics = parse_metrics(log_text, args.get("AlgorithmSpecification", {}).get("MetricDefinitions"))
    out_path = args.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
    record = job.base_record(
        HyperParameters=hps, AlgorithmSpecification=args.get("AlgorithmSpecification"),
        InputDataConfig=args.get("InputDataConfig"), OutputDataConfig=args.get("OutputDataConfig"),
        ResourceConfig=args.get("ResourceConfig"), StoppingCondition=args.get("StoppingCondition"),
        RoleArn=args.get("RoleArn"), TrainingEndTime=time.time(),
        FinalMetricDataList=[{"MetricName": k, "Value": v, "Timestamp": time.time()} for k, v in metrics.items()])
    if tuning_job:
        record["TuningJobArn"] = sagemaker_arn("hyper-parameter-tuning-job", tuning_job)
    if rc != 0:
        job.fail(record, rc)
    if not out_path.startswith("s3://"):
        raise StepFailure(f"OutputDataConfig.S3OutputPath must be an S3 URI, got {out_path!r}")
    model_uri = f"{out_path}/{job_name}/output/model.tar.gz"
    tar_path = job.dir / "model.tar.gz"
    tmp = job.dir / ".model.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        for p in sorted((root / "model").iterdir()):
            tar.add(p, arcname=p.name)
    tmp.replace(tar_path)
    kms = (args.get("OutputDataConfig") or {}).get("KmsKeyId")
    upload_file(s3, tar_path, model_uri, kms)
    out_data = root / "output" / "data"
    if any(out_data.iterdir()):
        otmp = job.dir / "output.tar.gz"
        with tarfile.open(otmp, "w:gz", compresslevel=1) as tar:
            for p in sorted(out_data.iterdir()):
                tar.add(p, arcname=p.name)
        upload_file(s3, otmp, f"{out_path}/{job_name}/output/output.tar.gz", kms)
    record["ModelArtifacts"] = {"S3ModelArtifacts": model_uri}
    return job.complete(record)
