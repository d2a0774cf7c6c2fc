"""AWS access for the runtime: boto3 clients against an embedded moto (default) or AWS_ENDPOINT_URL.

Embedded moto (`mock_aws`) lives as long as one command. So that `sm-local approve` or `retry` in a later
command sees the same registry, buckets and pipelines, the state we need is snapshotted to
<workspace>/aws/ at the end of a command and replayed into the fresh moto at the start of the next.
With AWS_ENDPOINT_URL set (e.g. a `moto_server` on 127.0.0.1), state lives in that server and no snapshot is used.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from .workspace import atomic_write_bytes, atomic_write_json, read_json

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def prepare_environment(repo_root: Path, workspace_root: Path | None = None) -> None:
    """Fake credentials + SDK switches; must run before `sagemaker` is imported (no network, no IAM calls)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]
    if not os.environ.get("AWS_ENDPOINT_URL") or not os.environ.get("AWS_ACCESS_KEY_ID"):
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    if "SAGEMAKER_USER_CONFIG_OVERRIDE" not in os.environ:
        cfg = Path(repo_root) / "pipeline_scripts" / "sagemaker_config.yaml"
        if not cfg.exists():
            # Fallback until/unless the lead's config exists: telemetry off is the only setting we need.
            cfg = Path(workspace_root or repo_root / ".local-sagemaker") / "sagemaker_config.yaml"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text('SchemaVersion: "1.0"\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n')
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(cfg)


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


class Aws:
    """Holds the moto context (when embedded) and boto3 clients."""

    def __init__(self):
        self._mock = None
        self._clients = {}

    def __enter__(self):
        if not endpoint_url():
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()
        return self

    def __exit__(self, *exc):
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._clients.clear()

    @property
    def embedded(self) -> bool:
        return self._mock is not None

    def client(self, name: str):
        if name not in self._clients:
            import boto3

            # boto3 honours AWS_ENDPOINT_URL itself; passing it explicitly keeps that visible here.
            self._clients[name] = boto3.client(name, region_name=os.environ["AWS_DEFAULT_REGION"],
                                               endpoint_url=endpoint_url())
        return self._clients[name]

    @property
    def s3(self):
        return self.client("s3")

    @property
    def sm(self):
        return self.client("sagemaker")


# ---------------------------------------------------------------- S3 helpers
def split_s3(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    p = urlparse(uri)
    return p.netloc, p.path.lstrip("/")


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def download_prefix(s3, uri: str, dest: Path, data_type: str = "S3Prefix") -> list[Path]:
    """Stage S3 objects like SageMaker File mode: an exact key lands as its file name, a prefix keeps
    relative paths below the prefix. Raises when nothing matches (SageMaker fails the job likewise)."""
    bucket, prefix = split_s3(uri)
    if data_type not in ("S3Prefix", None):
        raise ValueError(f"S3DataType {data_type!r} is not supported by the local runtime (only S3Prefix): {uri}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    keys = [k for k in list_keys(s3, bucket, prefix) if not k.endswith("/")]
    if not keys:
        raise FileNotFoundError(f"no S3 objects under {uri}")
    base_dir = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    out = []
    for key in keys:
        if key == prefix:
            rel = key.rsplit("/", 1)[-1]
        elif prefix == "" or prefix.endswith("/") or key[len(prefix)] == "/":
            rel = key[len(prefix):].lstrip("/")
        else:  # partial name match (prefix "a/train" matches "a/train.csv")
            rel = key[len(base_dir):]
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        out.append(target)
    return out


def upload_dir(s3, src: Path, uri: str) -> list[str]:
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/")
    uploaded = []
    for path in sorted(Path(src).rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(src).as_posix()}" if prefix else path.relative_to(src).as_posix()
            s3.upload_file(str(path), bucket, key)
            uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


def read_s3_text(s3, uri: str) -> str:
    bucket, key = split_s3(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


# ---------------------------------------------------------------- snapshot / replay of embedded moto
class Snapshot:
    """Persist the parts of moto state later commands need: S3 objects, pipelines, model registry, models."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def save(self, aws: Aws, models: dict) -> None:
        s3, sm = aws.s3, aws.sm
        index_path = self.root / "s3_index.json"
        old_index = read_json(index_path, {})
        index = {}
        for b in s3.list_buckets().get("Buckets", []):
            bucket = b["Name"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for o in page.get("Contents", []):
                    ident = f"{bucket}/{o['Key']}"
                    blob = self.root / "s3" / hashlib.sha1(ident.encode()).hexdigest()
                    index[ident] = {"bucket": bucket, "key": o["Key"], "etag": o["ETag"], "blob": blob.name}
                    if old_index.get(ident, {}).get("etag") != o["ETag"] or not blob.exists():
                        atomic_write_bytes(blob, s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            index.setdefault(f"{bucket}/", {"bucket": bucket, "key": None})
        atomic_write_json(index_path, index)
        pipelines = []
        for p in sm.list_pipelines().get("PipelineSummaries", []):
            d = sm.describe_pipeline(PipelineName=p["PipelineName"])
            pipelines.append({k: d.get(k) for k in ("PipelineName", "PipelineDefinition", "PipelineDescription",
                                                     "RoleArn", "PipelineDisplayName")})
        atomic_write_json(self.root / "pipelines.json", pipelines)
        groups, packages = [], []
        for g in sm.list_model_package_groups().get("ModelPackageGroupSummaryList", []):
            groups.append(g["ModelPackageGroupName"])
            summaries = sm.list_model_packages(ModelPackageGroupName=g["ModelPackageGroupName"],
                                               SortBy="CreationTime", SortOrder="Ascending")
            for s in summaries.get("ModelPackageSummaryList", []):
                d = sm.describe_model_package(ModelPackageName=s["ModelPackageArn"])
                packages.append({k: d.get(k) for k in (
                    "ModelPackageGroupName", "ModelPackageArn", "ModelPackageVersion", "InferenceSpecification",
                    "ModelApprovalStatus", "ModelMetrics", "DriftCheckBaselines", "CustomerMetadataProperties",
                    "ApprovalDescription", "MetadataProperties") if d.get(k) is not None})
        packages.sort(key=lambda p: (p["ModelPackageGroupName"], p.get("ModelPackageVersion", 0)))
        atomic_write_json(self.root / "registry.json", {"groups": groups, "packages": packages})
        atomic_write_json(self.root / "models.json", models)

    def restore(self, aws: Aws) -> dict:
        """Replay into a fresh embedded moto; returns the saved CreateModel records."""
        s3, sm = aws.s3, aws.sm
        index = read_json(self.root / "s3_index.json", {})
        made = set()
        for entry in index.values():
            if entry["bucket"] not in made:
                s3.create_bucket(Bucket=entry["bucket"])
                made.add(entry["bucket"])
            if entry.get("key"):
                s3.put_object(Bucket=entry["bucket"], Key=entry["key"],
                              Body=(self.root / "s3" / entry["blob"]).read_bytes())
        for p in read_json(self.root / "pipelines.json", []):
            sm.create_pipeline(**{k: v for k, v in p.items() if v is not None})
        reg = read_json(self.root / "registry.json", {"groups": [], "packages": []})
        for g in reg["groups"]:
            sm.create_model_package_group(ModelPackageGroupName=g)
        for p in reg["packages"]:
            kwargs = {k: v for k, v in p.items() if k not in ("ModelPackageArn", "ModelPackageVersion",
                                                              "ApprovalDescription")}
            arn = sm.create_model_package(**kwargs)["ModelPackageArn"]
            if arn != p["ModelPackageArn"]:
                raise RuntimeError(f"{self.root / 'registry.json'}: replay gave {arn}, expected {p['ModelPackageArn']}")
            if p.get("ApprovalDescription"):
                sm.update_model_package(ModelPackageArn=arn, ApprovalDescription=p["ApprovalDescription"],
                                        ModelApprovalStatus=p["ModelApprovalStatus"])
        models = read_json(self.root / "models.json", {})
        for name, req in models.items():
            sm.create_model(**req)
        return models


def log(msg: str) -> None:
    print(msg, file=sys.stdout, flush=True)
