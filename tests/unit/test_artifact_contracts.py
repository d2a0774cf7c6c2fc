"""scripts/steplib/artifacts.json: the files steps hand each other, declared once and read and written through
scripts/steplib/artifacts.py (the steps, pipeline_scripts, the runtime; the Lambdas get the names from lambda.tf)."""
import json
import re
from pathlib import Path

import jsonschema
import pytest
from steplib import InputError, artifacts

ROOT = Path(__file__).resolve().parents[2]
DECLARED = json.loads((ROOT / "scripts" / "steplib" / "artifacts.json").read_text())
STEPS = json.loads((ROOT / "contracts" / "pipelines.json").read_text())["steps"]


def test_every_artifact_names_its_step_and_file_and_its_schema_is_valid():
    for kind, spec in DECLARED["artifacts"].items():
        assert spec["written_by"] in STEPS, kind
        assert spec["file"] and not spec["file"].startswith("/"), kind
        if "schema" in spec:
            jsonschema.Draft7Validator.check_schema({**spec["schema"], "definitions": DECLARED["definitions"]})


def test_the_file_names_are_written_once():
    """No step, builder, runtime module or Lambda spells an artifact's file name itself (the data-quality
    engine's own Model Monitor files, statistics/constraints/summary, are its format, read through here too)."""
    names = {spec["file"] for spec in DECLARED["artifacts"].values()
             if not spec["file"].endswith(("statistics.json", "constraints.json", "summary.json"))}
    literal = re.compile("[\"'](" + "|".join(re.escape(n) for n in names) + ")[\"']")
    found = [f"{p.relative_to(ROOT)}:{i}" for folder in ("scripts", "pipeline_scripts", "local_runtime", "code", "tools")
             for p in (ROOT / folder).rglob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
             if literal.search(line) and p.name != "artifacts.py"]  # its docstring shows an example
    assert found == []


def test_a_document_of_the_wrong_shape_is_refused_naming_the_file(tmp_path):
    with pytest.raises(InputError, match=r"ground_truth.json: not a ground_truth document .* at 'available'"):
        artifacts.write("ground_truth", str(tmp_path), {"available": "yes", "rows": 1, "batches": [], "labelled": [],
                                                        "quarantined": False, "note": ""})
    assert not (tmp_path / "ground_truth.json").exists()  # nothing half-valid is handed on
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_quality.json").write_text(json.dumps({
        "ground_truth": {"available": True}, "threshold": {"metric": "mse", "value": 5.5, "passed": True},
        "regression_metrics": {"mse": {"value": 4.0}}}))  # rmse, mae and r2 missing
    with pytest.raises(InputError, match=r"m/model_quality.json: not a model_quality document .*'rmse' is a required"):
        artifacts.read("model_quality", str(tmp_path))


def test_a_complete_document_round_trips_and_a_nested_channel_is_found(tmp_path):
    metrics = {k: {"value": v, "standard_deviation": 0.1} for k, v in (("mse", 4.0), ("rmse", 2.0), ("mae", 1.5), ("r2", 0.5))}
    doc = {"ground_truth": {"available": True, "rows": 3}, "regression_metrics": metrics,
           "threshold": {"metric": "mse", "value": 5.5, "passed": True}}
    artifacts.write("model_quality", str(tmp_path / "out" / "nested"), doc)
    assert artifacts.read("model_quality", str(tmp_path / "out")) == doc
    assert artifacts.read("evaluation", str(tmp_path), required=False) is None
    with pytest.raises(InputError, match="no evaluation.json .*written by the evaluation step"):
        artifacts.read("evaluation", str(tmp_path))
