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

    def generation(self) -> dict | None:
        """Write counters of the embedded moto (None with an endpoint: then nothing can be skipped)."""
        return dict(self._patches.generation) if self._patches is not None else None

    def client(self, name: str):
        if name not in self._clients:
            import boto3

            from .service_constraints import install

            # boto3 honours AWS_ENDPOINT_URL itself; passing it explicitly keeps that visible here. Every request
            # is checked against the service's own constraints first (moto checks almost none of them).
            self._clients[name] = install(boto3.client(name, region_name=region(), endpoint_url=endpoint_url()))
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


def download_prefix(s3, uri: str, dest: Path, data_type: str = "S3Prefix",
                    shard: tuple[int, int] | None = None) -> list[Path]:
    """Stage S3 objects like SageMaker File mode: an exact key lands as its file name, a prefix keeps
    relative paths below the prefix. Raises when nothing matches (SageMaker fails the job likewise).

    shard=(i, n): S3DataDistributionType ShardedByS3Key on instance i of n: this instance gets every n-th object
    of the sorted key list (AWS documents "a subset"; with fewer objects than instances some get none)."""
    bucket, prefix = split_s3(uri)
    if data_type not in ("S3Prefix", None):
        raise ValueError(f"S3DataType {data_type!r} is not supported by the local runtime (only S3Prefix): {uri}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    keys = sorted(k for k in list_keys(s3, bucket, prefix) if not k.endswith("/"))
    if not keys:
        raise FileNotFoundError(f"no S3 objects under {uri}")
    if shard is not None:
        keys = keys[shard[0]::shard[1]]
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
        get_file(s3, bucket, key, target)
        out.append(target)
    return out


# One GET or PUT per object. boto3's download_file/upload_file start a transfer manager and its thread pool on
# every call (~6 and ~4 ms against the embedded moto; a demo moves several hundred small objects); multipart only
# pays from MULTIPART_BYTES on, where upload_file takes over (SageMaker uploads large outputs in parts too).
MULTIPART_BYTES = 64 * 1024 * 1024


def get_file(s3, bucket: str, key: str, path: Path | str) -> None:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with open(path, "wb") as out:
        for chunk in body.iter_chunks(1024 * 1024):
            out.write(chunk)


def put_file(s3, path: Path | str, bucket: str, key: str, extra: dict | None = None) -> None:
    if os.path.getsize(path) >= MULTIPART_BYTES:
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
        return
    with open(path, "rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, **(extra or {}))


def job_output_encryption(kms_key_id: str | None) -> dict:
    """How SageMaker writes a job's outputs: SSE-KMS with the job's KmsKeyId, else with the account's default
    aws/s3 key (documented for training and transform output; assumed for processing, the stricter reading)."""
    extra = {"ServerSideEncryption": "aws:kms"}
    if kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    return extra


def upload_file(s3, path: Path | str, uri: str, kms_key_id: str | None = None) -> str:
    bucket, key = split_s3(uri)
    put_file(s3, path, bucket, key, job_output_encryption(kms_key_id))
    return uri


def upload_dir(s3, src: Path, uri: str, kms_key_id: str | None = None) -> list[str]:
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/")
    uploaded = []
    for path in sorted(Path(src).rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(src).as_posix()}" if prefix else path.relative_to(src).as_posix()
            put_file(s3, path, bucket, key, job_output_encryption(kms_key_id))
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
        self._saved_generation: dict = {}
        self._saved_models = None
        self._index = None

    def save(self, aws: Aws, models: dict) -> None:
        """Write what changed since the last save (every part is rewritten atomically, blobs only when new)."""
        generation = aws.generation() or {}
        if generation.get("s3") is None or generation.get("s3") != self._saved_generation.get("s3"):
            self._save_s3(aws)
        if generation.get("sagemaker") is None or generation.get("sagemaker") != self._saved_generation.get("sagemaker"):
            self._save_sagemaker(aws)
        if models != self._saved_models:
            atomic_write_json(self.root / "models.json", models)
            self._saved_models = json.loads(json.dumps(models, default=str))
        self._saved_generation = generation

    def _objects(self, aws: Aws):
        """(bucket, key, etag, read, sse, kms key) of every object; with an embedded moto straight from its backend
        (no HTTP round trip per object: checkpoints run after every step)."""
        if aws.embedded:
            from moto.s3.models import s3_backends

            backend = s3_backends[ACCOUNT]["global"]
            for name, bucket in list(backend.buckets.items()):
                yield name, None, None, None, None, None
                for key_name, key in list(bucket.keys.items()):
                    if key is None or not hasattr(key, "value"):
                        continue
                    yield (name, key_name, key.etag, (lambda k=key: k.value), getattr(key, "encryption", None),
                           getattr(key, "kms_key_id", None))
            return
        s3 = aws.s3
        for b in s3.list_buckets().get("Buckets", []):
            yield b["Name"], None, None, None, None, None
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b["Name"]):
                for o in page.get("Contents", []):
                    def read(bucket=b["Name"], key=o["Key"]):
                        got = s3.get_object(Bucket=bucket, Key=key)
                        return got["Body"].read()
                    yield b["Name"], o["Key"], o["ETag"], read, None, None  # encryption: head_object when saved

    def _save_s3(self, aws: Aws) -> None:
        index_path = self.root / "s3_index.json"
        old_index = self._index if self._index is not None else read_json(index_path, {})
        index = {}
        for bucket, key, etag, read, sse, kms in self._objects(aws):
            if key is None:
                index.setdefault(f"{bucket}/", {"bucket": bucket, "key": None})
                continue
            ident = f"{bucket}/{key}"
            blob = self.root / "s3" / hashlib.sha1(ident.encode()).hexdigest()
            entry = old_index.get(ident, {})
            if entry.get("etag") != etag or not blob.exists():
                atomic_write_bytes(blob, read())
                if not aws.embedded:
                    head = aws.s3.head_object(Bucket=bucket, Key=key)
                    sse, kms = head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")
                entry = {"sse": sse, "kms_key": kms}
            index[ident] = {"bucket": bucket, "key": key, "etag": etag, "blob": blob.name,
                            "sse": entry.get("sse"), "kms_key": entry.get("kms_key")}
        if index != old_index:
            atomic_write_json(index_path, index)
        self._index = index

    def _save_sagemaker(self, aws: Aws) -> None:
        sm = aws.sm
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

    def _restore_s3_backend(self, index: dict) -> None:
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT]["global"]
        for entry in index.values():
            if entry["bucket"] not in backend.buckets:
                backend.create_bucket(entry["bucket"], region())
            if entry.get("key"):
                backend.put_object(entry["bucket"], entry["key"], (self.root / "s3" / entry["blob"]).read_bytes(),
                                   encryption=entry.get("sse"), kms_key_id=entry.get("kms_key"))

    def _restore_s3_api(self, s3, index: dict) -> None:
        made = set()
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

    def restore(self, aws: Aws) -> dict:
        """Replay into a fresh embedded moto; returns the saved CreateModel records."""
        s3, sm = aws.s3, aws.sm
        from .emulation import trusted

        index = read_json(self.root / "s3_index.json", {})
        with trusted():  # replaying saved objects is not an upload: bucket policies do not apply
            if aws.embedded:
                self._restore_s3_backend(index)
            else:
                self._restore_s3_api(s3, index)
        self._index = index
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

