"""Everything of ours that reaches into the SageMaker Python SDK, in one place.

Written for SageMaker Python SDK ``SDK_VERSION`` (requirements.lock). Each patch or workaround below says
which SDK behaviour it changes, is opt-in (a caller asks for it), and has a test in
tests/unit/test_sdk_adapter.py proving the SDK still behaves as documented with it on. That test fails
when the locked SDK version changes, so a human re-reads this file against the new SDK first.

* :func:`load_sdk` prepares the process (defaults file, region) and imports the SDK.
* :func:`check_sdk_config_once` (opt-in speed patch): the SDK validates its whole config JSON Schema at
  every config lookup; validate each distinct config once instead. Invalid configs are still rejected.
* :class:`Sessions` / :func:`open_sessions` / :func:`shared_boto3_sessions` (opt-in speed trick, no
  patch): the boto3 session and clients of one command, shared by its builds.
* :func:`image_uri` (speed trick, no patch): the SDK's image lookup, cached per process.
* :func:`check_job_network_config` (workaround): the form of NetworkConfig a QualityCheckStep needs.

Nothing here imports the SDK at module level: importing it creates boto3 clients, so the command line is
parsed (``--help`` works with no AWS configuration) and the region known before :func:`load_sdk` runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import weakref
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session

from pipeline_scripts.errors import AwsCallBlocked

if TYPE_CHECKING:
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.workflow.pipeline_context import PipelineSession

SDK_VERSION = "3.27.0"  # the SDK these patches were written for and tested against
SDK_CONFIG_FILE = Path(__file__).with_name("sagemaker_config.yaml")
SDK_CONFIG_ENV = "SAGEMAKER_USER_CONFIG_OVERRIDE"


def load_sdk(region: str) -> None:
    """Prepare this process for the SageMaker SDK, then import it. Idempotent; explicit, so that
    importing a pipeline script changes nothing.

    * The SDK reads its defaults file from SAGEMAKER_USER_CONFIG_OVERRIDE whenever it builds a
      Session of its own; ours opts out of telemetry (builds never phone home from CI or offline).
      A file the caller already points at is kept.
    * The SDK needs a region in the environment, not only in the session it is given: importing it
      creates boto3 clients (``sagemaker/ai_registry/air_hub.py``) and every ProcessingStep builds
      a throwaway ``LocalSession`` from ``boto3.Session()``; without a region both raise. The
      command's region (the tfvars' aws_region) fills in when the environment names none.
    """
    os.environ.setdefault(SDK_CONFIG_ENV, str(SDK_CONFIG_FILE))
    if botocore.session.get_session().get_config_variable("region") is None:
        os.environ["AWS_DEFAULT_REGION"] = region
    import sagemaker.core.workflow.pipeline_context  # noqa: F401  (the import that needs a region)


# --- patch: the SDK config is validated once per distinct config ------------------------------------
# SDK 3.27 calls ``jsonschema.validate(config, SCHEMA)`` at every config lookup, dozens per build; nearly all
# of the ~0.1 s each (measured on 2 cores) is re-checking the 16 kB schema itself against the meta-schema. The SDK has no switch for
# it. Every place that holds a reference to a validator, as of SDK_VERSION (the test lists the SDK's sources
# and fails on a new one):
VALIDATOR_SITES = (
    ("sagemaker.core.config.config", "validate_sagemaker_config"),  # the definition load_sagemaker_config calls
    ("sagemaker.core.config", "validate_sagemaker_config"),  # the package's re-export
    ("sagemaker.core.helper.session_helper", "validate_sagemaker_config"),  # imported by name: Session.__init__
    ("sagemaker.core.local.local_session", "validate_sagemaker_config"),  # imported by name: LocalSession
    ("sagemaker.core.utils.intelligent_defaults_helper", "validate_sagemaker_config"),  # its own copy
    ("sagemaker.core.config.config_manager", "SageMakerConfig.validate_sagemaker_config"),  # common_utils' lookups
)
_config_validator: Any = None


def check_sdk_config_once() -> Any:
    """Replace the SDK's config validator at every site of VALIDATOR_SITES by one that checks each distinct
    config once per process. Same verdicts: a config that fails keeps failing (failures are never
    remembered), with jsonschema's best-match error as before. Idempotent; returns the validator."""
    global _config_validator
    if _config_validator is not None:
        return _config_validator
    import importlib

    import jsonschema
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    validator = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    validator.check_schema(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    checker = validator(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    valid: set[str] = set()

    def validate_sagemaker_config(sagemaker_config: dict | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in valid:
            error = jsonschema.exceptions.best_match(checker.iter_errors(sagemaker_config))
            if error is not None:
                raise error
            valid.add(key)

    for module_name, attribute in VALIDATOR_SITES:
        owner = importlib.import_module(module_name)
        if "." in attribute:  # a staticmethod of a class
            class_name, attribute = attribute.split(".")
            setattr(getattr(owner, class_name), attribute, staticmethod(validate_sagemaker_config))
        else:
            setattr(owner, attribute, validate_sagemaker_config)
    _config_validator = validate_sagemaker_config
    return validate_sagemaker_config


@lru_cache(maxsize=None)
def sdk_defaults(path: str) -> dict:
    """The SDK defaults (the file at ``path`` merged over the admin file), read and validated once
    per process and handed to every session, instead of each SDK Session reading the files again."""
    from sagemaker.core.config.config import load_sagemaker_config

    return load_sagemaker_config()


# --- the sessions of one command -------------------------------------------------------------------

class Sessions:
    """The AWS sessions of one build: one boto3 Session, whose clients are created once and shared,
    and one PipelineSession built on it. With ``definition_only`` (``--definition-out``) nothing
    reaches AWS: every API call raises :class:`AwsCallBlocked` before it is signed, uploads return
    the URI they would write to, and the bucket is not looked up.

    ``uploaded`` remembers content-addressed uploads of this build (the step library goes up once)."""

    def __init__(self, region: str, definition_only: bool = False, boto: boto3.Session | None = None,
                 clients: dict[str, Any] | None = None):
        self.region = region
        self.definition_only = definition_only
        self.boto = boto or boto3.Session(region_name=region)
        self.pipeline: PipelineSession | None = None
        self.blocked_calls: list[str] = []
        self.uploaded: dict[str, str] = {}
        self._clients: dict[str, Any] = {} if clients is None else clients
        if definition_only:
            # before-call runs ahead of credential lookup and signing: no credentials, no IMDS probe
            self.boto.events.register("before-call", self._block)
            # the SDK checks a role with iam:SimulatePrincipalPolicy; that is for a deploy, not here
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"

    def _block(self, model: Any, **_: Any) -> None:
        call = f"{model.service_model.service_name}.{model.name}"
        self.blocked_calls.append(call)
        raise AwsCallBlocked(f"{call}: --definition-out builds the definition without calling AWS")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.boto.client(service)
        return self._clients[service]

    def open_pipeline_session(self, bucket: str, prefix: str) -> PipelineSession:
        load_sdk(self.region)
        cls = _definition_only_session_class() if self.definition_only else _pipeline_session_class()
        self.pipeline = cls(boto_session=self.boto, sagemaker_client=self.client("sagemaker"),
                            default_bucket=bucket, default_bucket_prefix=prefix,
                            sagemaker_config=sdk_defaults(os.environ[SDK_CONFIG_ENV]))
        _OPENED[self.pipeline] = self  # the builders get the PipelineSession only (sessions_of)
        return self.pipeline

    def put_object(self, uri: str, body: bytes, encryption: dict[str, str]) -> str:
        if not self.definition_only:
            bucket, key = uri[len("s3://"):].split("/", 1)
            self.client("s3").put_object(Bucket=bucket, Key=key, Body=body, **encryption)
        return uri


# PipelineSession -> the Sessions that opened it; weak, so a finished build's sessions go with it (no
# attribute of ours on the SDK's object)
_OPENED: weakref.WeakKeyDictionary[Any, Sessions] = weakref.WeakKeyDictionary()


def _pipeline_session_class() -> type:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession


@lru_cache(maxsize=None)
def _definition_only_session_class() -> type:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class DefinitionOnlySession(PipelineSession):
        """Records step arguments like a PipelineSession, with the S3 side planned, not performed:
        the same URIs as an upsert, no bucket lookup, no upload (overrides of SDK_VERSION's methods)."""

        def default_bucket(self) -> str:
            return self._default_bucket_name_override

        def upload_data(self, path: str, bucket: str | None = None, key_prefix: str = "data",
                        callback: Any = None, extra_args: Any = None) -> str:
            bucket, key_prefix = self.determine_bucket_and_prefix(
                bucket=bucket, key_prefix=key_prefix, sagemaker_session=self)
            uri = f"s3://{bucket}/{key_prefix}"
            return uri if os.path.isdir(path) else f"{uri}/{os.path.basename(path)}"

        def upload_string_as_file_body(self, body: str, bucket: str, key: str, kms_key: str | None = None) -> str:
            return f"s3://{bucket}/{key}"

    return DefinitionOnlySession


class _SharedSessions:
    """region -> the first Sessions opened while sharing is on. A process-wide setting, not a ContextVar:
    the offline runtime opens it once and runs builds on its worker threads, which a ContextVar would not reach."""

    def __init__(self) -> None:
        self.by_region: dict[str, Sessions] | None = None
        self.depth = 0


_SHARED = _SharedSessions()


@contextlib.contextmanager
def shared_boto3_sessions() -> Iterator[None]:
    """Builds opened inside share one boto3 Session per region and its clients: a command that runs several
    builds in one process (the offline runtime's demo, upserts and approval deploys) decodes botocore's service
    models once instead of once per build. Each build still gets its own PipelineSession (its recorded steps
    and uploads are its own); ``--definition-out`` builds never share (their session refuses every AWS call).
    Open it where the AWS endpoint is settled (the runtime: inside its moto context): the sessions belong to
    it. Nested uses share the outer one."""
    _SHARED.depth += 1
    if _SHARED.by_region is None:
        _SHARED.by_region = {}
    try:
        yield
    finally:
        _SHARED.depth -= 1
        if _SHARED.depth == 0:
            _SHARED.by_region = None


def open_sessions(region: str, bucket: str, prefix: str, definition_only: bool = False) -> Sessions:
    shared = _SHARED.by_region
    if shared is None or definition_only:
        sessions = Sessions(region=region, definition_only=definition_only)
    else:
        first = shared.get(region) or shared.setdefault(region, Sessions(region=region))
        sessions = Sessions(region=region, boto=first.boto, clients=first._clients)
    sessions.open_pipeline_session(bucket, prefix)
    return sessions


def sessions_of(session: PipelineSession | None, region: str | None = None) -> Sessions:
    """The Sessions a PipelineSession was opened from; a PipelineSession made elsewhere lends its
    boto3 session; no session at all gives a new one in ``region``."""
    if session is None:
        return Sessions(region=region or boto3.Session().region_name)
    found = _OPENED.get(session)
    if found is None:
        found = Sessions(region=session.boto_region_name, boto=session.boto_session)
        found.pipeline = session
        _OPENED[session] = found
    return found


# --- speed trick: image URIs cached per process ----------------------------------------------------

@lru_cache(maxsize=None)
def image_uri(framework: str, region: str, version: str, py_version: str, instance_type: str) -> str:
    """The SDK's answer, once per process for the same arguments: every call reads botocore's endpoints
    file again (~0.1 s) to name the region's partition, a dozen times per build. An unknown version
    raises ValueError, and a failure is not cached (lru_cache keeps only returned values)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(framework, region=region, version=version, py_version=py_version,
                               instance_type=instance_type)


# --- workaround: a QualityCheckStep's NetworkConfig --------------------------------------------------

def check_job_network_config(network: NetworkConfig) -> Any:
    """``network`` in the form a check job needs: the SDK copies the object itself into the request
    (sagemaker/mlops/workflow/_check_job_request.py, SDK_VERSION), where CreateProcessingJob wants the
    NetworkConfig dict; the object returned is both."""
    from sagemaker.core.network import NetworkConfig

    class RequestNetworkConfig(dict, NetworkConfig):
        def __init__(self, *args: Any, **kwargs: Any):  # dict's signature: the SDK rebuilds dicts by type
            dict.__init__(self, *args, **kwargs)
            vpc = self.get("VpcConfig", {})
            NetworkConfig.__init__(self, enable_network_isolation=self.get("EnableNetworkIsolation", False),
                                   security_group_ids=vpc.get("SecurityGroupIds"), subnets=vpc.get("Subnets"),
                                   encrypt_inter_container_traffic=self.get("EnableInterContainerTrafficEncryption"))

    return RequestNetworkConfig(network._to_request_dict())
