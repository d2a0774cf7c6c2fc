"""The files steps hand each other: names and JSON shapes from steplib/artifacts.json, read and written here.

    artifacts.file("model_quality")                  -> "model_quality.json"
    artifacts.write("model_quality", out_dir, doc)   validates, then writes out_dir/model_quality.json
    artifacts.read("ground_truth", in_dir)           finds the file under in_dir (a channel may nest it), validates

The declaration is package data of the step library (scripts/steplib/artifacts.json, listed in
contracts/README.md beside the other contracts), so it travels wherever steplib does: steplib.zip in the
jobs, the installed package in CI. A document that does not match its schema is an InputError naming the
file: a step never hands on, or reads, a shape the next one cannot use.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from .errors import InputError

CONTRACT_FILE = "artifacts.json"  # package data beside this module: it ships in steplib.zip and the installed package


@lru_cache(maxsize=None)
def contract() -> dict:
    from importlib.resources import files
    return json.loads(files(__package__).joinpath(CONTRACT_FILE).read_text(encoding="utf-8"))


def _spec(kind: str) -> dict:
    try:
        return contract()["artifacts"][kind]
    except KeyError:
        raise KeyError(f"steplib/artifacts.json declares no artifact {kind!r}") from None


def file(kind: str) -> str:
    """The artifact's file name (a path relative to its step's output folder)."""
    return _spec(kind)["file"]


def columns(kind: str) -> list[str]:
    """The header of a CSV artifact, as its writer writes it and its reader expects it."""
    return list(_spec(kind)["columns"])


def files() -> dict[str, str]:
    """{kind: file} of every artifact (what the Lambdas get as CONTRACT_ARTIFACTS)."""
    return {kind: spec["file"] for kind, spec in contract()["artifacts"].items()}


def validate(kind: str, doc: Any, where: str) -> None:
    """Refuse a document that does not have its declared shape. The stock SageMaker scikit-learn image may
    lack jsonschema: there the top-level required keys are checked, the rest was proven by the tests."""
    schema = _spec(kind).get("schema")
    if schema is None:
        return
    try:
        import jsonschema
    except ImportError:
        missing = [k for k in schema.get("required", []) if not isinstance(doc, dict) or k not in doc]
        if missing:
            raise InputError(f"{where}: not a {kind} document: missing {missing}") from None
        return
    validator = jsonschema.Draft7Validator({**schema, "definitions": contract().get("definitions", {})})
    error = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))), None)
    if error is not None:
        at = "/".join(map(str, error.absolute_path)) or "(top level)"
        raise InputError(f"{where}: not a {kind} document (steplib/artifacts.json): at '{at}': {error.message}")


def path(kind: str, directory: str) -> str:
    return os.path.join(directory, file(kind))


def write(kind: str, directory: str, doc: Any) -> str:
    """Validate and write a JSON artifact into its step's output folder; returns its path."""
    target = path(kind, directory)
    validate(kind, doc, target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as f:
        json.dump(doc, f, indent=2)
    return target


def find(kind: str, directory: str) -> str | None:
    """The artifact under ``directory``: at its declared place, else the first of its name in a subfolder
    (a channel may stage a step's output one level down)."""
    direct = path(kind, directory)
    if os.path.isfile(direct):
        return direct
    name = os.path.basename(file(kind))
    for folder, _, names in sorted(os.walk(directory)):
        if name in names:
            return os.path.join(folder, name)
    return None


def read(kind: str, directory: str, required: bool = True) -> Any:
    """A JSON artifact from a channel folder, validated; None when absent and not required."""
    found = find(kind, directory)
    if found is None:
        if required:
            raise InputError(f"{directory}: no {file(kind)} ({kind}, written by the {_spec(kind)['written_by']} step)")
        return None
    try:
        with open(found) as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise InputError(f"{found}: not valid JSON ({exc})") from None
    validate(kind, doc, found)
    return doc
