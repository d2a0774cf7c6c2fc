"""Account and region of the emulated AWS, written once.

The account is moto's default account (every ARN the runtime makes names it). The region is never
defaulted: like botocore, a command with no region configured fails with ``NoRegionError``.
"""
from __future__ import annotations

import os

ACCOUNT = "123456789012"  # moto's DEFAULT_ACCOUNT_ID; moto files everything it emulates under it


def region() -> str:
    """The configured region, read as botocore reads it (AWS_DEFAULT_REGION, then the profile).

    Raises botocore's NoRegionError when none is configured: the runtime never picks a region silently."""
    value = os.environ.get("AWS_DEFAULT_REGION")
    if not value:
        import botocore.session
        value = botocore.session.get_session().get_config_variable("region")
    if not value:
        from botocore.exceptions import NoRegionError
        raise NoRegionError()
    return value


def sagemaker_arn(resource: str, name: str) -> str:
    """arn:aws:sagemaker:<region>:<account>:<resource>/<name> (resource e.g. processing-job, pipeline)."""
    return f"arn:aws:sagemaker:{region()}:{ACCOUNT}:{resource}/{name}"
