"""Every step name and marker of contracts/pipelines.json is written once more at most (issue 8).

contracts/pipelines.json is the single source; code refers to a step by its role (``STEPS["model_quality"]``, Terraform's
``local.contracts.steps.model_quality``), so renaming a step is a one-line change. A name may appear in one
other file (e.g. a builder's comment), never in two, and never in the offline runtime (``local_runtime/``),
which must stay generic. Tests and documentation pages are not counted: they describe the contract.

In Python files only strings and comments count: an SDK class that happens to share a step's name
(``sagemaker.mlops.workflow.TrainingStep``) is an identifier, not a retyped step name.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_FILE = ROOT / "contracts" / "pipelines.json"
CONTRACTS = json.loads(CONTRACTS_FILE.read_text())
NOT_COUNTED = ("tests/", "docs/")
NOT_COUNTED_FILES = {"contracts/pipelines.json", "README.md"}


def _source_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [f for f in listed
            if not f.startswith(NOT_COUNTED) and f not in NOT_COUNTED_FILES and (ROOT / f).is_file()
            and not f.endswith((".csv", ".png", ".lock"))]


def _written_text(path: Path) -> str:
    """What a person wrote as text: a Python file's strings and comments, any other file whole."""
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return text
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return "\n".join(t.string for t in tokens if t.type in (tokenize.STRING, tokenize.COMMENT))


def files_naming(names: list[str], files: list[str], root: Path = ROOT) -> dict[str, list[str]]:
    patterns = {n: re.compile(rf"\b{re.escape(n)}\b") for n in names}
    found: dict[str, list[str]] = {n: [] for n in names}
    for f in files:
        text = _written_text(root / f)
        for n, rx in patterns.items():
            if rx.search(text):
                found[n].append(f)
    return found


def _contract_names() -> list[str]:
    return sorted(set(CONTRACTS["steps"].values()) | set(CONTRACTS["markers"].values()))


def test_each_step_name_and_marker_is_written_in_at_most_one_file_besides_contracts_json():
    found = files_naming(_contract_names(), _source_files())
    retyped = {n: fs for n, fs in found.items() if len(fs) > 1}
    assert not retyped, ("refer to these by their contracts/pipelines.json role (pipeline_scripts.contracts.STEPS/MARKERS, "
                         f"Terraform local.contracts) instead of retyping them: {retyped}")


def test_the_offline_runtime_names_no_step_or_marker():
    found = files_naming(_contract_names(), [f for f in _source_files() if f.startswith("local_runtime/")])
    named = {n: fs for n, fs in found.items() if fs}
    assert not named, f"local_runtime/ must read these from the contract, not spell them: {named}"


def test_the_check_counts_text_not_identifiers(tmp_path):
    """The rule's own reader: a name in a docstring, comment or shell script counts; an identifier does not."""
    step = CONTRACTS["steps"]["training"]
    (tmp_path / "builder.py").write_text(f"from sdk import {step}\n\nclass {step}Like({step}):\n    pass\n")
    (tmp_path / "script.py").write_text(f'"""{step}: fit the model."""\n')
    (tmp_path / "comment.py").write_text(f"x = 1  # written by {step}\n")
    (tmp_path / "tool.sh").write_text(f"echo {step}\n")
    found = files_naming([step], ["builder.py", "script.py", "comment.py", "tool.sh"], root=tmp_path)
    assert found == {step: ["script.py", "comment.py", "tool.sh"]}


def test_pipeline_aliases_resolve_to_their_key_and_never_collide(tmp_path):
    from pipeline_scripts import contracts

    loaded = contracts.load(CONTRACTS_FILE)
    for key, pipeline in loaded.pipelines.items():
        assert [loaded.pipeline_key(n) for n in (key, *pipeline.aliases)] == [key] * (1 + len(pipeline.aliases))
    assert loaded.pipeline_key("no-such-pipeline") is None
    clash = dict(CONTRACTS, pipelines={k: dict(v, aliases=[next(iter(CONTRACTS["pipelines"]))])
                                       for k, v in CONTRACTS["pipelines"].items()})
    (tmp_path / "pipelines.json").write_text(json.dumps(clash))
    with pytest.raises(ValueError, match="name more than one pipeline"):
        contracts.load(tmp_path / "pipelines.json")
