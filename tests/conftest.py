"""Test-wide guards: fake AWS credentials, moto for every AWS call, and no network.

Nothing in the suite may reach AWS or the internet; a connection to anything but the
loopback interface fails the test that tried it, naming the address.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))
# steplib (scripts/steplib) is installed by pyproject; this keeps a venv made before that importable too
if str(PROJECT_ROOT / "scripts") not in sys.path:
    sys.path.append(str(PROJECT_ROOT / "scripts"))

# Set before any boto3/sagemaker import: a real profile or endpoint must never be picked up.
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    # SDK v3 checks the role with IAM SimulatePrincipalPolicy, which moto does not emulate
    "SAGEMAKER_VALIDATE_ROLE": "false",
    "SAGEMAKER_USER_CONFIG_OVERRIDE": str(PROJECT_ROOT / "pipeline_scripts" / "sagemaker_config.yaml"),
})

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address):  # noqa: ANN001
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        if host not in ("localhost", "::1") and not host.startswith("127."):
            raise ConnectionRefusedError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    socket.socket.connect = _loopback_only
    yield
    socket.socket.connect = _real_connect


_GC_CALLBACKS = list(gc.callbacks)


def _default_collector() -> None:
    if gc.callbacks != _GC_CALLBACKS:
        gc.callbacks[:] = _GC_CALLBACKS
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _collector_as_found():
    """An sm-local command installs its garbage-collector policy for the rest of its process
    (local_runtime/gcpolicy.py); tests run with the default collector whatever ran in-process before them
    (module-scoped fixtures included)."""
    _default_collector()
    yield
    _default_collector()


@pytest.fixture
def aws():
    """An isolated moto account for one test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT


# ---------------------------------------------------------------- data from the current schema
# Tests that need data generate it from scripts/dataset_schema.json with tools/synth.py (seeded), so the suite
# passes for any data set the schema describes. Only tests about the shipped files read data/.
SCHEMA_PATH = PROJECT_ROOT / "scripts" / "dataset_schema.json"


@pytest.fixture(scope="session")
def schema():
    """The current data set's schema (steplib.schema.DatasetSchema, validated)."""
    from tools import synth

    return synth.load_schema(SCHEMA_PATH)


@pytest.fixture(scope="session")
def synth():
    """tools/synth.py: generate(schema, n, seed, drift=..., missing=...), write_split, write_csv, apply_drift."""
    from tools import synth as module

    return module


@pytest.fixture
def make_dataset(schema, synth, tmp_path):
    """make_dataset(n=400, inference_rows=80, seed=3, missing=0.0, drift=False, out=None) -> the folder with
    training-data.csv, inference-data.csv and ground-truth.csv in the project's convention, generated from
    the current schema (the scored batch comes from another seed; drift=True drifts only the scored batch)."""

    def make(n=400, inference_rows=80, seed=3, missing=0.0, drift=False, out=None, **scales):
        out = Path(out or tmp_path / f"data-{seed}{'-drift' if drift else ''}")
        synth.write_split(synth.generate(schema, n, seed, missing=missing, **scales), schema, out, training=True)
        scored = synth.generate(schema, inference_rows, seed + 1, missing=missing, drift=drift, **scales)
        synth.write_split(scored, schema, out, training=False)
        return out

    return make


# ---------------------------------------------------------------- the offline runtime
@pytest.fixture
def offline_runtime(tmp_path):
    """offline_runtime(bucket=None, **runtime_kwargs) -> a context manager: this repository's offline runtime on a
    fresh, unpersisted workspace under tmp_path, with `bucket` (default: the tfvars' project bucket) created as
    Terraform's prerequisites would have it."""

    @contextlib.contextmanager
    def open_runtime(bucket: str | None = None, **kwargs):
        from local_runtime.runtime import Runtime

        with Runtime(repo_root=PROJECT_ROOT, workspace=tmp_path / "ws", quiet=True, persist=False, **kwargs) as rt:
            rt.aws.s3.create_bucket(Bucket=bucket or rt.bucket)
            yield rt

    return open_runtime


def run_steps(rt, pipeline: str, role: str, steps: list) -> dict:
    """Upserts a pipeline of these definition steps, runs one execution to its end, returns its record."""
    rt.aws.sm.create_pipeline(PipelineName=pipeline, RoleArn=role, PipelineDefinition=json.dumps(
        {"Version": "2020-12-01", "Parameters": [], "Steps": steps}))
    rt.start_execution(pipeline)
    rt.pump()
    return rt.workspace.load_execution(rt.executions_run[-1])


@pytest.fixture(name="run_steps")
def _run_steps():
    """run_steps(rt, pipeline, role, steps) -> the execution record (see conftest.run_steps)."""
    return run_steps
