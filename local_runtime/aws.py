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
from pathlib import Path
from urllib.parse import urlparse

from .constants import ACCOUNT, region  # noqa: F401  (ACCOUNT: re-exported for callers of this module)
from .workspace import atomic_write_bytes, atomic_write_json, read_json


def prepare_environment(sdk_config: Path | None = None) -> None:
    """Fake credentials + SDK switches for in-process SDK use (no network, no IAM calls). Called when a Runtime
    starts, never at import. The region must already be configured (constants.region raises NoRegionError)."""
    os.environ["AWS_REGION"] = region()
    if not os.environ.get("AWS_ENDPOINT_URL") or not os.environ.get("AWS_ACCESS_KEY_ID"):
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    if sdk_config is not None and "SAGEMAKER_USER_CONFIG_OVERRIDE" not in os.environ:
        if not Path(sdk_config).exists():
            from .errors import ConfigurationError
            raise ConfigurationError(f"sdk_config {sdk_config} ([tool.sm-local]) does not exist")
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(sdk_config)


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


class Aws:
    """Holds the moto context (when embedded) and boto3 clients."""

    def __init__(self, bucket_policies: dict | None = None, on_pipeline_start=None):
        self._mock = None
        self._patches = None
        self._clients = {}
        self._bucket_policies = bucket_policies or {}
        self._on_pipeline_start = on_pipeline_start

    def __enter__(self):
        if not endpoint_url():
            from moto import mock_aws

            from .emulation import Patches

            self._mock = mock_aws()
            self._mock.start()
            self._patches = Patches(self._bucket_policies, self._on_pipeline_start).install()
        return self

    def __exit__(self, *exc):
        if self._patches is not None:
            self._patches.close()
            self._patches = None
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
            self._clients[name] = boto3.client(name, region_name=region(), endpoint_url=endpoint_url())
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


def job_output_encryption(kms_key_id: str | None) -> dict:
    """How SageMaker writes a job's outputs: SSE-KMS with the job's KmsKeyId, else with the account's default
    aws/s3 key (documented for training and transform output; assumed for processing, the stricter reading)."""
    extra = {"ServerSideEncryption": "aws:kms"}
    if kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    return extra


def upload_file(s3, path: Path | str, uri: str, kms_key_id: str | None = None) -> str:
    bucket, key = split_s3(uri)
    s3.upload_file(str(path), bucket, key, ExtraArgs=job_output_encryption(kms_key_id))
    return uri


def upload_dir(s3, src: Path, uri: str, kms_key_id: str | None = None) -> list[str]:
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/")
    uploaded = []
    for path in sorted(Path(src).rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(src).as_posix()}" if prefix else path.relative_to(src).as_posix()
            s3.upload_file(str(path), bucket, key, ExtraArgs=job_output_encryption(kms_key_id))
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
                    entry = old_index.get(ident, {})
                    if entry.get("etag") != o["ETag"] or not blob.exists():
                        got = s3.get_object(Bucket=bucket, Key=o["Key"])
                        atomic_write_bytes(blob, got["Body"].read())
                        entry = {"sse": got.get("ServerSideEncryption"), "kms_key": got.get("SSEKMSKeyId")}
                    index[ident] = {"bucket": bucket, "key": o["Key"], "etag": o["ETag"], "blob": blob.name,
                                    "sse": entry.get("sse"), "kms_key": entry.get("kms_key")}
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
        from .emulation import trusted

        index = read_json(self.root / "s3_index.json", {})
        made = set()
        with trusted():  # replaying saved objects is not an upload: bucket policies do not apply
            for entry in index.values():
                if entry["bucket"] not in made:
                    s3.create_bucket(Bucket=entry["bucket"])
                    made.add(entry["bucket"])
                if entry.get("key"):
                    extra = {"ServerSideEncryption": entry["sse"]} if entry.get("sse") else {}
                    if entry.get("kms_key"):
                        extra["SSEKMSKeyId"] = entry["kms_key"]
                    s3.put_object(Bucket=entry["bucket"], Key=entry["key"],
                                  Body=(self.root / "s3" / entry["blob"]).read_bytes(), **extra)
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

