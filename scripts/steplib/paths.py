"""Container paths: /opt/ml in SageMaker, relocated by SM_CONTAINER_ROOT in the offline runtime and tests."""

from __future__ import annotations

import json
import os

RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"


def container_path(path: str) -> str:
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


def list_files(directory: str, what: str = "input", suffix: str = "", required: bool = True) -> list[str]:
    """Every non-hidden file under ``directory`` in sorted path order (the order rows are read in)."""
    if not os.path.isdir(directory):
        if not required:
            return []
        from .errors import InputError
        raise InputError(f"{directory}: {what} directory does not exist")
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(directory) for n in names
                   if not n.startswith(".") and n.endswith(suffix))
    if not files and required:
        from .errors import InputError
        raise InputError(f"{directory}: no {what} files" + (f" (*{suffix})" if suffix else ""))
    return files


def current_host() -> tuple[str, list[str]]:
    """(this instance's host name, every host of the job) from the resource config SageMaker writes on each
    instance of a processing or training job (https://docs.aws.amazon.com/sagemaker/latest/dg/
    build-your-own-processing-container.html); one host "algo-1" without it (a script run by hand)."""
    path = container_path(RESOURCE_CONFIG)
    if not os.path.exists(path):
        return "algo-1", ["algo-1"]
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
        hosts = [str(h) for h in config["hosts"]]
        host = str(config["current_host"])
        if host not in hosts:
            raise KeyError(f"current_host {host!r} is not in hosts {hosts}")
        return host, hosts
    except (OSError, ValueError, KeyError, TypeError) as exc:
        from .errors import InputError
        raise InputError(f"{path} is not a SageMaker resource config (current_host, hosts): {exc}") from None
