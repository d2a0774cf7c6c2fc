"""One boto3 Session and one PipelineSession per command, and the SDK's config checked once.

A pipeline build used to open a new boto3 Session in every helper (each decodes the SageMaker
service model again) and the SDK re-checked its config JSON Schema at every lookup (issue 13:
158 boto3 clients, 21 SDK Sessions, seconds of JSON decoding per demo).
"""

from __future__ import annotations

import collections
import traceback
from pathlib import Path
from unittest import mock

import boto3
import botocore.loaders
import jsonschema
import pytest

from pipeline_scripts import cli, sdk_adapter, training_pipeline
from pipeline_scripts.config import load_pipeline_config


@pytest.fixture
def bucket(aws):
    cfg = load_pipeline_config("training")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    return cfg


def _not_ours() -> bool:
    """Sessions the SDK makes for itself: a throwaway LocalSession in every ProcessingStep (to read
    a method name, sagemaker/mlops/workflow/steps.py), module-level ones when a SDK module is first
    imported (sagemaker/core/jumpstart/constants.py), and moto's."""
    files = [frame.filename for frame in traceback.extract_stack()]
    return any("local_session.py" in f or "importlib._bootstrap" in f or "/moto/" in f for f in files)


def test_one_boto3_session_one_pipeline_session_and_each_client_once(bucket):
    from sagemaker.core.helper.session_helper import Session as SdkSession

    sessions, sdk_sessions, models = [], [], collections.Counter()
    real_boto3_init, real_sdk_init = boto3.session.Session.__init__, SdkSession.__init__
    real_load_file = botocore.loaders.JSONFileLoader.load_file

    def boto3_init(self, *args, **kwargs):
        if not _not_ours():
            sessions.append(self)
        real_boto3_init(self, *args, **kwargs)

    def sdk_init(self, *args, **kwargs):
        if not _not_ours():
            sdk_sessions.append(type(self).__name__)
        real_sdk_init(self, *args, **kwargs)

    def load_file(self, file_path, *args, **kwargs):
        if not _not_ours():
            models[Path(file_path).parent.parent.name, Path(file_path).name] += 1
        return real_load_file(self, file_path, *args, **kwargs)

    with mock.patch.object(boto3.session.Session, "__init__", boto3_init), \
            mock.patch.object(SdkSession, "__init__", sdk_init), \
            mock.patch.object(botocore.loaders.JSONFileLoader, "load_file", load_file):
        assert training_pipeline.main(["--no-upload"]) == 0  # build, upsert, registry check
    assert len(sessions) == 1
    assert sdk_sessions == ["PipelineSession"]
    # the SageMaker API model (the largest JSON botocore decodes) is read once for the command:
    # every client of the build and the upsert comes from the one session and its loader cache
    assert models["sagemaker", "service-2"] == 1


def test_the_sdk_config_schema_is_checked_once_per_build(bucket):
    sdk_adapter.load_sdk("us-east-1")
    sdk_adapter.check_sdk_config_once()  # what every builder command turns on (cli.run_cli)
    real = jsonschema.validators.Draft202012Validator.check_schema
    with mock.patch.object(jsonschema.validators.Draft202012Validator, "check_schema", side_effect=real) as check:
        cfg = load_pipeline_config("training")
        training_pipeline.build(cfg, cli.make_session(cfg)).definition()
    # one check of the session's own config (the SDK's Session.__init__ holds the unshimmed
    # validator); without the shim: dozens per build, ~0.4 s each
    assert check.call_count <= 1


def test_builds_of_one_command_share_one_boto3_session_and_its_clients(bucket):
    """A command that runs several builds in one process (the offline runtime: upserts, approval deploys)
    opens one boto3 Session per region for all of them; each build keeps its own PipelineSession."""
    from pipeline_scripts import training_hpo_pipeline

    sessions, models = [], collections.Counter()
    real_boto3_init, real_load_file = boto3.session.Session.__init__, botocore.loaders.JSONFileLoader.load_file

    def boto3_init(self, *args, **kwargs):
        if not _not_ours():
            sessions.append(self)
        real_boto3_init(self, *args, **kwargs)

    def load_file(self, file_path, *args, **kwargs):
        if not _not_ours():
            models[Path(file_path).parent.parent.name, Path(file_path).name] += 1
        return real_load_file(self, file_path, *args, **kwargs)

    cfg = load_pipeline_config("training")
    with mock.patch.object(boto3.session.Session, "__init__", boto3_init), \
            mock.patch.object(botocore.loaders.JSONFileLoader, "load_file", load_file):
        with sdk_adapter.shared_boto3_sessions():
            assert training_pipeline.main(["--no-upload"]) == 0
            assert training_hpo_pipeline.main(["--no-upload"]) == 0
            first, second = cli.open_sessions(cfg), cli.open_sessions(cfg)
            assert first.boto is second.boto and first.client("s3") is second.client("s3")
            assert first.pipeline is not second.pipeline
            assert len(sessions) == 1 and models["sagemaker", "service-2"] == 1  # 2 builds + 2 sessions
            assert cli.open_sessions(cfg, definition_only=True).boto is not first.boto  # never shared
        assert cli.open_sessions(cfg).boto is not first.boto  # closed: the next command starts afresh


def test_an_unknown_image_version_fails_every_time(tmp_path):
    """The image URI is looked up once per process for the same arguments; a failure is never remembered."""
    for _ in range(2):
        with pytest.raises(ValueError):
            sdk_adapter.image_uri("sklearn", "us-east-1", "99.9-9", "py3", "ml.m5.xlarge")
    assert sdk_adapter.image_uri("sklearn", "us-east-1", "1.2-1", "py3", "ml.m5.xlarge").endswith(":1.2-1-cpu-py3")
