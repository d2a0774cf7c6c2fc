"""The SDK adapter's patches keep the SDK's behaviour: an invalid config is still rejected at every place the
SDK validates one, the patch reaches every such place of the locked SDK, and a new SDK version stops the suite
until a human has re-read pipeline_scripts/sdk_adapter.py."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path

import boto3
import jsonschema
import pytest

from pipeline_scripts import sdk_adapter

BAD_CONFIGS = [
    {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": "yes"}}}},
    {"SchemaVersion": "2.0"},
    {"SchemaVersion": "1.0", "SageMaker": {"NoSuchSection": {}}},
]


def _site(module_name: str, attribute: str):
    owner = importlib.import_module(module_name)
    for part in attribute.split("."):
        owner = getattr(owner, part)
    return owner


def test_the_locked_sdk_is_the_one_the_patches_were_written_for():
    installed = importlib.metadata.version("sagemaker")
    assert installed == sdk_adapter.SDK_VERSION, (
        f"sagemaker {installed} is installed, the SDK adapter was written for {sdk_adapter.SDK_VERSION}: re-read "
        "pipeline_scripts/sdk_adapter.py against the new SDK (validator sites, DefinitionOnlySession's overrides, "
        "the check job's NetworkConfig), then set SDK_VERSION")


def test_the_patch_reaches_every_place_the_sdk_holds_a_config_validator():
    """Every module of the installed SDK that defines or imports by name a validate_sagemaker_config is listed
    in VALIDATOR_SITES, so none keeps the SDK's own (a module that imported it before the patch would)."""
    root = Path(importlib.import_module("sagemaker").__file__).parent
    holders = set()
    for path in root.rglob("*.py"):
        if "tests" in path.parts:
            continue
        text = path.read_text(errors="replace")
        if re.search(r"def validate_sagemaker_config\b|import[^\n]*\bvalidate_sagemaker_config\b"
                     r"|^\s+validate_sagemaker_config,\s*$", text, re.M):
            holders.add(".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"))
    listed = {module for module, _ in sdk_adapter.VALIDATOR_SITES}
    assert holders and holders <= listed, f"not patched: {sorted(holders - listed)}"


def test_every_site_holds_the_patched_validator_and_still_rejects_an_invalid_config():
    validator = sdk_adapter.check_sdk_config_once()
    assert sdk_adapter.check_sdk_config_once() is validator  # idempotent
    good = sdk_adapter.sdk_defaults(str(sdk_adapter.SDK_CONFIG_FILE))
    for module_name, attribute in sdk_adapter.VALIDATOR_SITES:
        site = _site(module_name, attribute)
        assert site is validator, f"{module_name}.{attribute} still holds the SDK's own validator"
        site(good)
        for bad in BAD_CONFIGS:
            for _ in range(2):  # a failure is never remembered as checked
                with pytest.raises(jsonschema.ValidationError):
                    site(bad)


@pytest.mark.parametrize("bad", BAD_CONFIGS)
def test_the_sdk_itself_still_refuses_an_invalid_config(bad, tmp_path, monkeypatch):
    """Through the SDK's own entry points, with the patch on: a Session given a bad config, the config manager,
    and a bad defaults file named by SAGEMAKER_USER_CONFIG_OVERRIDE."""
    sdk_adapter.load_sdk("us-east-1")
    sdk_adapter.check_sdk_config_once()
    import yaml
    from sagemaker.core.config.config import load_sagemaker_config
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    with pytest.raises(jsonschema.ValidationError):
        PipelineSession(boto_session=boto3.Session(region_name="us-east-1"), sagemaker_config=bad)
    with pytest.raises(jsonschema.ValidationError):
        SageMakerConfig.validate_sagemaker_config(bad)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(bad))
    monkeypatch.setenv(sdk_adapter.SDK_CONFIG_ENV, str(path))
    with pytest.raises(jsonschema.ValidationError):
        load_sagemaker_config()


def test_no_sdk_object_gets_attributes_of_ours(aws):
    """The builders reach the template's sessions through sessions_of, not through attributes set on the SDK's
    PipelineSession."""
    sessions = sdk_adapter.open_sessions("us-east-1", "bucket", "prefix", definition_only=True)
    session = sessions.pipeline
    before = dict(vars(session))
    assert sdk_adapter.sessions_of(session) is sessions
    assert vars(session) == before
    assert not any(isinstance(value, sdk_adapter.Sessions) for value in vars(session).values())


def test_the_check_job_network_config_is_both_a_network_config_and_its_request_dict():
    sdk_adapter.load_sdk("us-east-1")
    from sagemaker.core.network import NetworkConfig

    network = NetworkConfig(subnets=["subnet-1"], security_group_ids=["sg-1"], encrypt_inter_container_traffic=True)
    converted = sdk_adapter.check_job_network_config(network)
    assert isinstance(converted, NetworkConfig) and isinstance(converted, dict)
    assert dict(converted) == network._to_request_dict()
    assert converted._to_request_dict() == network._to_request_dict()
