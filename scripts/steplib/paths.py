"""Container paths: /opt/ml in SageMaker, relocated by SM_CONTAINER_ROOT in the offline runtime and tests."""

from __future__ import annotations

import os


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
