"""The one reader of this template's Terraform (config, offline runtime and tests all use it).

tfparse (Cloud Custodian's binding of the HCL evaluator that Trivy/defsec run on Terraform's own
parser) loads the root module with an env file and evaluates it as Terraform would before apply:
variables from the tfvars (or their defaults), locals, functions (jsondecode(file(...)), try,
lookup, ...), for_each/count expanded into instances, and every `validation` condition evaluated.
What exists only after apply (resource ids and ARNs, data sources) comes back as a reference: an
id string pointing at the referenced block (see `Module.by_id`); local_runtime/terraform.py
resolves those the way AWS names things.

Variable values are read through a generated overlay: a temporary directory that links every
file of the module and adds one locals block `{<name> = var.<name>}` over the declared variables,
so the values are the ones Terraform's evaluator assigned (type conversion included). Which keys a
tfvars file sets (to reject undeclared ones, which Terraform would only warn about) is the one
thing tfparse does not report; python-hcl2's parser lists them, without evaluating anything.
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import tfparse

ROOT = Path(__file__).resolve().parent.parent
_VALUES_LOCAL = "sm_tfvars_values"
_TFVARS_NAME = "__tfvars_under_test.tfvars"


class TerraformConfigError(ValueError):
    """The Terraform module or an env file cannot be read, or breaks a rule of variables.tf."""


def _parse(root: Path, tfvars: str | None, shown: Path, tfvars_shown: Path | None) -> dict:
    try:
        return tfparse.load_from_path(str(root), vars_paths=[tfvars] if tfvars else [])
    except tfparse.ParseError as exc:
        text = str(exc).replace(str(root) + "/", "")
        if tfvars_shown is not None:
            text = text.replace(_TFVARS_NAME, str(tfvars_shown))
        raise TerraformConfigError(f"{tfvars_shown or shown}: {text}") from None


class Module:
    """The evaluated root module: blocks by type, variable declarations and values, locals."""

    def __init__(self, root: Path = ROOT, tfvars: Path | str | None = None):
        self.root = Path(root).resolve()
        self.tfvars = Path(tfvars).resolve() if tfvars else None
        if self.tfvars is not None and not self.tfvars.is_file():
            raise TerraformConfigError(f"{self.tfvars}: file not found")
        first = _parse(self.root, None, self.root, None)
        self.declarations = {v["__tfmeta"]["label"]: v for v in first.get("variable", [])}
        with tempfile.TemporaryDirectory(prefix="tfmodule-") as tmp:
            overlay = Path(tmp)
            for entry in self.root.iterdir():
                if entry.name not in (".git", _TFVARS_NAME):
                    os.symlink(entry, overlay / entry.name)
            body = "\n".join(f"    {name} = var.{name}" for name in sorted(self.declarations))
            (overlay / "zz_tfmodule_values.tf").write_text(f"locals {{\n  {_VALUES_LOCAL} = {{\n{body}\n  }}\n}}\n")
            if self.tfvars is not None:
                os.symlink(self.tfvars, overlay / _TFVARS_NAME)
            blocks = _parse(overlay, _TFVARS_NAME if self.tfvars else None, self.root, self.tfvars)
        self.blocks: dict[str, list[dict]] = blocks
        self.locals: dict[str, Any] = {}
        for block in blocks.get("locals", []):
            self.locals.update({k: v for k, v in block.items() if k not in ("__tfmeta", "id")})
        self.values: dict[str, Any] = self.locals.pop(_VALUES_LOCAL, {}) or {}
        self.variables = {v["__tfmeta"]["label"]: v for v in blocks.get("variable", [])}
        self._by_id = {}
        for kind, items in blocks.items():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "id" in item:
                    self._by_id[item["id"]] = item

    # ---------------------------------------------------------------- blocks
    def instances(self, rtype: str, kind: str = "resource") -> list[dict]:
        """Every instance of a resource (or data) type: for_each/count expanded, count = 0 absent."""
        return [b for b in self.blocks.get(rtype, []) if b.get("__tfmeta", {}).get("type") == kind]

    def by_id(self, ref: Any) -> dict | None:
        """The block a reference id points at (tfparse writes references to resources as their id)."""
        return self._by_id.get(ref) if isinstance(ref, str) else None

    # ---------------------------------------------------------------- variables
    def validation_errors(self, set_keys: set | None = None) -> list[str]:
        """variables.tf's rules as Terraform applies them: missing required values, values that
        cannot convert to the declared type, and every validation whose condition is not true.
        set_keys: the keys the tfvars sets, to tell "missing" from "not convertible"."""
        errors = []
        for name, decl in sorted(self.variables.items()):
            value = self.values.get(name)
            has_default = "default" in self.declarations.get(name, {})
            if value is None and set_keys is not None and name in set_keys:
                errors.append(f"{name}: the value set in {self.tfvars} does not convert to type {decl.get('type')}")
                continue
            if value is None and not has_default:
                errors.append(f"{name}: required, no value set (variables.tf declares it without default)")
                continue
            rules = decl.get("validation") or []
            for rule in rules if isinstance(rules, list) else [rules]:
                if rule.get("condition") is True:
                    continue
                if rule.get("condition") is None:
                    errors.append(f"{name}: value {value!r} does not convert to type {decl.get('type')}")
                    break
                errors.append(f"{name}: {rule.get('error_message') or 'invalid value'} (got {value!r})")
        return errors


@lru_cache(maxsize=16)
def _cached(root: str, tfvars: str | None, stamp: tuple) -> Module:
    return Module(Path(root), tfvars)


def load(root: Path | str = ROOT, tfvars: Path | str | None = None) -> Module:
    """Cached by file modification times, so repeated loads in one process are free."""
    root = Path(root).resolve()
    files = (sorted(root.glob("*.tf")) + sorted(root.glob("*.json")) + sorted(root.glob("contracts/*.json"))
             + [root / "scripts" / "dataset_schema.json"]
             + ([Path(tfvars)] if tfvars else []))
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())
    return _cached(str(root), str(Path(tfvars).resolve()) if tfvars else None, stamp)
