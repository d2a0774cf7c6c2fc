"""Where a template keeps the parts the generic runtime needs, read from ``[tool.sm-local]`` in its pyproject.toml.

The runtime core (executor, step handlers, AWS adapter, event routing) names no template file, step or variable;
everything template-specific arrives through this one table, read once at start:

    [tool.sm-local]
    env_file = "env_files/dev_env.tfvars"            # default tfvars the Terraform files are resolved with
    terraform_dir = "."                              # *.tf with the EventBridge rules, Lambdas, SNS topics
    quality_check_engine = "scripts/data_quality.py" # stands in for Model Monitor's analyzer container
    sdk_config = "pipeline_scripts/sagemaker_config.yaml"  # SAGEMAKER_USER_CONFIG_OVERRIDE for in-process SDK use
    lambda_code_dir = "code/lambda_function"         # Lambda code when no archive_file names a source_dir
    dataset_schema = "scripts/dataset_schema.json"   # the data set (its target labels the report's predictions)
    region_variable = "aws_region"                   # tfvars variable CI exports as AWS_DEFAULT_REGION
    bucket_variable = "bucket_name"                  # the project bucket (uploads, bucket policy)
    kms_key_variable = "kms_key"                     # the project key every upload into the bucket must use
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import ConfigurationError

TABLE = "sm-local"


@dataclass(frozen=True)
class RuntimeConfig:
    root: Path
    env_file: Path
    terraform_dir: Path
    quality_check_engine: Path | None = None
    sdk_config: Path | None = None
    lambda_code_dir: Path | None = None
    dataset_schema: Path | None = None
    region_variable: str | None = None
    bucket_variable: str | None = None
    kms_key_variable: str | None = None

    @classmethod
    def load(cls, root: Path) -> "RuntimeConfig":
        root = Path(root).resolve()
        path = root / "pyproject.toml"
        table = _table(path) if path.exists() else None
        if table is None:
            raise ConfigurationError(f"{path}: no [tool.{TABLE}] table; it tells the offline runtime where the "
                                     "template keeps its Terraform files, tfvars and engines")
        unknown = sorted(set(table) - set(_PATHS) - set(_NAMES))
        if unknown:
            raise ConfigurationError(f"{path}: [tool.{TABLE}] has unknown key(s) {', '.join(unknown)} "
                                     f"(known: {', '.join(_PATHS + _NAMES)})")
        for key, value in table.items():
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{path}: [tool.{TABLE}] {key} must be a non-empty string, got {value!r}")
        paths = {k: (root / table[k]) for k in _PATHS if k in table}
        for key in ("env_file", "terraform_dir"):
            if key not in paths:
                raise ConfigurationError(f"{path}: [tool.{TABLE}] needs {key}")
        return cls(root=root, **paths, **{k: table[k] for k in _NAMES if k in table})


# The table's keys are the fields: paths (relative to the template root) and names of Terraform variables.
_PATHS = tuple(f.name for f in fields(RuntimeConfig) if f.name != "root" and f.type.startswith("Path"))
_NAMES = tuple(f.name for f in fields(RuntimeConfig) if f.type.startswith("str"))


def _table(path: Path) -> dict | None:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
    return (data.get("tool") or {}).get(TABLE)


def find_root(start: Path | None = None) -> Path:
    """SM_LOCAL_REPO, else the nearest directory upwards whose pyproject.toml has a [tool.sm-local] table."""
    env = os.environ.get("SM_LOCAL_REPO")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        candidate = p / "pyproject.toml"
        if candidate.exists() and _table(candidate) is not None:
            return p
    package_root = Path(__file__).resolve().parents[1]  # an editable install run from elsewhere
    if (package_root / "pyproject.toml").exists() and _table(package_root / "pyproject.toml") is not None:
        return package_root
    raise ConfigurationError(f"no pyproject.toml with a [tool.{TABLE}] table in {here} or above; run from the "
                             "template's checkout or set SM_LOCAL_REPO")
