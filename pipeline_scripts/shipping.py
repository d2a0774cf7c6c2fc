"""How the template's code, schema and tags reach AWS: content-addressed uploads under the project prefix,
encrypted with the project key.

Every step script imports ``steplib`` (scripts/steplib). Training jobs get it with their code
(:func:`upload_training_code` packs scripts/), the model gets it in model.tar.gz (train.py copies it to code/).
Processing jobs get it as one more ProcessingInput: a single steplib.zip, mounted under STEPLIB_MOUNT and put
on PYTHONPATH (Python imports packages from a zip on its path: zipimport, no extraction, no pip): the stock
scikit-learn image runs the script with plain python3, and each job fetches one object instead of one per
module. The zip is reproducible and its key content-addressed, so the pipeline definition stays the same from
build to build. (SDK 3.27's FrameworkProcessor would ship it too, but it re-uploads sourcedir.tar.gz under a
new timestamped job name at every build and wraps the script in a generated bash runproc.sh.)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from steplib.schema import SchemaError
from steplib.schema import load_schema as load_dataset_schema

from pipeline_scripts.config import PROJECT_ROOT, PipelineConfig
from pipeline_scripts.errors import ConfigError
from pipeline_scripts.sdk_adapter import sessions_of

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

SCRIPTS_DIR = PROJECT_ROOT / "scripts"
SCHEMA_FILE = SCRIPTS_DIR / "dataset_schema.json"
TAGS_FILE = PROJECT_ROOT / "tags.json"
PROCESSING = "/opt/ml/processing"
STEPLIB_DIR = SCRIPTS_DIR / "steplib"
STEPLIB_MOUNT = f"{PROCESSING}/input/steplib"
STEPLIB_ZIP = "steplib.zip"
STEPLIB_PATH = f"{STEPLIB_MOUNT}/{STEPLIB_ZIP}"  # the jobs' PYTHONPATH


def script(name: str) -> str:
    """The path of a step script, checked at build time."""
    path = SCRIPTS_DIR / name
    if not path.is_file():
        raise ConfigError(f"{path}: step script not found")
    return str(path)


def steplib_files() -> list[Path]:
    return sorted(p for p in STEPLIB_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix in (".py", ".json"))


def steplib_contents() -> dict[str, bytes]:
    """The step library as the jobs import it: archive name (steplib/...) -> bytes, sorted."""
    return {f"steplib/{p.relative_to(STEPLIB_DIR).as_posix()}": p.read_bytes() for p in steplib_files()}


def steplib_zip(contents: dict[str, bytes]) -> bytes:
    """``contents`` as the entries of a zip, in order, with fixed timestamps and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def upload_steplib(cfg: PipelineConfig, session: PipelineSession) -> str:
    """Upload steplib.zip (content-addressed key), once per build session; the S3 prefix the jobs mount."""
    sessions = sessions_of(session, cfg.env.region)
    if "steplib" in sessions.uploaded:
        return sessions.uploaded["steplib"]
    contents = steplib_contents()
    # the key digests the files, not the zip's bytes (those depend on the machine's zlib); the same digest as
    # when the files were uploaded one by one (name without "steplib/", NUL, bytes)
    digest = hashlib.sha256(b"".join(name.removeprefix("steplib/").encode() + b"\0" + data
                                     for name, data in contents.items())).hexdigest()[:16]
    folder = cfg.env.s3_uri("code", "steplib", digest)
    sessions.put_object(f"{folder}/{STEPLIB_ZIP}", steplib_zip(contents), encryption_args(cfg))
    sessions.uploaded["steplib"] = folder
    return folder


def encryption_args(cfg: PipelineConfig) -> dict[str, str]:
    """Server-side encryption for what the scripts upload: the project key when set, else SSE-S3."""
    if cfg.env.kms_key:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": cfg.env.kms_key}
    return {"ServerSideEncryption": "AES256"}


def upload_schema(cfg: PipelineConfig, session: PipelineSession | None = None) -> str:
    """Upload the data set schema once per content (content-addressed key) and return its S3 URI."""
    try:  # validated here, at upsert, not first inside a job (steplib.schema is the one reader)
        load_dataset_schema(str(SCHEMA_FILE))
    except SchemaError as exc:
        raise ConfigError(str(exc)) from exc
    body = SCHEMA_FILE.read_bytes()
    folder = cfg.env.s3_uri("code", "schema", hashlib.sha256(body).hexdigest()[:16])
    sessions_of(session, cfg.env.region).put_object(f"{folder}/{SCHEMA_FILE.name}", body, encryption_args(cfg))
    return folder


def source_archive(directory: Path) -> bytes:
    """``directory`` as a reproducible sourcedir.tar.gz: sorted entries, no timestamps or owners,
    no caches, so the same code gives the same bytes (and the same content-addressed key)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if path.is_dir() or any(part.startswith(".") or part == "__pycache__" for part in relative.parts) \
                    or path.suffix == ".pyc":
                continue
            info = tarfile.TarInfo(str(relative))
            data = path.read_bytes()
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_training_code(cfg: PipelineConfig, session: PipelineSession, directory: Path = SCRIPTS_DIR) -> str:
    """The training code as one content-addressed sourcedir.tar.gz under the project prefix,
    encrypted with the project key (the tuning job's sagemaker_submit_directory)."""
    body = source_archive(directory)
    uri = cfg.env.s3_uri("code", "training", hashlib.sha256(body).hexdigest()[:16], "sourcedir.tar.gz")
    return sessions_of(session).put_object(uri, body, encryption_args(cfg))


def tags() -> list[dict[str, str]]:
    """tags.json, applied to pipelines here and to every Terraform resource via default_tags."""
    if not TAGS_FILE.is_file():
        return []
    data = json.loads(TAGS_FILE.read_text())
    return [{"Key": k, "Value": str(v)} for k, v in sorted(data.items())]
