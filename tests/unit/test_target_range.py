"""The target's plausible range comes from the schema: tools/make_data.py derives it from the imported labels
(one observed span of margin each side, not across zero) and records it in the schema file, keeping any bound
the user declared. Schemas and files are the tests' own (tmp_path), except the last test, which is about data/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from steplib.schema import load_schema
from tools import make_data

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = {
    "name": "toy", "target": "price",
    "columns": [
        {"name": "colour", "type": "categorical", "categories": ["red", "blue"]},
        {"name": "price", "type": "float"},
        {"name": "width", "type": "float"},
    ],
}


@pytest.mark.parametrize("labels,declared,expected", [
    ([10, 30], (None, None), (0, 50)),            # span 20: 10-20 would cross zero, all labels >= 0
    ([100, 120], (None, None), (80, 140)),        # one span each side
    ([-5.5, -1.25], (None, None), (-9.8, 0)),     # all labels <= 0: not above zero; outward to 2 digits of span
    ([-3, 4.2], (None, None), (-10.2, 11.4)),     # both signs: a plain span each side
    ([0.123, 0.456], (None, None), (0, 0.79)),
    ([10, 30], (5, None), (5, 50)),               # a declared bound is kept, the other derived
    ([10, 30], (-1, 1000), (-1, 1000)),
    ([7, 7], (None, None), (None, None)),         # no spread: nothing derived
])
def test_target_range_rule(labels, declared, expected):
    assert make_data.target_range(labels, *declared) == expected


def run_import(tmp_path, schema, rows):
    src, schema_path = tmp_path / "mine.csv", tmp_path / "schema.json"
    src.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    schema_path.write_text(json.dumps(schema, indent=2))
    code = make_data.main(["import", "--from", str(src), "--schema", str(schema_path),
                           "--out-dir", str(tmp_path / "out"), "--holdout", "1"])
    return code, schema_path


def rows(labels):
    return [["red" if i % 2 else "blue", label, 1.5 + i] for i, label in enumerate(labels)]


def test_import_records_the_target_range_with_its_margin(tmp_path, capsys):
    code, path = run_import(tmp_path, SCHEMA, rows([12, 40, 25, 31, 18]))
    assert code == 0
    target = load_schema(str(path)).target_column
    assert (target.min, target.max) == (0, 68)  # 12..40: span 28 each side, not below 0
    assert "recorded the target 'price' range [0, 68]" in capsys.readouterr().out
    text = path.read_text()  # the shipped layout: one column per line, the other columns untouched
    assert '    {"name": "price", "type": "float", "min": 0, "max": 68},\n' in text
    assert '    {"name": "width", "type": "float"}\n' in text


@pytest.mark.parametrize("declared,expected", [({"min": 5, "max": 500}, (5, 500)), ({"min": 5}, (5, 68))])
def test_import_keeps_a_range_the_user_declared(tmp_path, capsys, declared, expected):
    schema = json.loads(json.dumps(SCHEMA))
    schema["columns"][1].update(declared)
    code, path = run_import(tmp_path, schema, rows([12, 40, 25, 31, 18]))
    assert code == 0
    target = load_schema(str(path)).target_column
    assert (target.min, target.max) == expected
    if len(declared) == 2:
        assert "kept as the schema declares it" in capsys.readouterr().out
        assert json.loads(path.read_text()) == schema  # not rewritten


def test_shipped_target_range_holds_every_label_of_data_and_of_the_demo_drift(tmp_path):
    """The demo's story needs its labels inside the range: out-of-range labels are quarantined, not scored."""
    from tools import demo_data

    schema = load_schema(str(ROOT / "scripts" / "dataset_schema.json"))
    target = schema.target_column
    if target.min is None and target.max is None or not (ROOT / "data" / "ground-truth.csv").exists():
        pytest.skip("the schema declares no target range, or data/ holds no scored batch")
    _, drift, later = demo_data.demo_batches(ROOT, tmp_path, ROOT / "env_files" / "dev_env.tfvars")
    files = [(ROOT / "data" / "training-data.csv", schema.target_index), (ROOT / "data" / "ground-truth.csv", 0),
             (drift / "ground-truth.csv", 0), (later / "ground-truth.csv", 0)]
    for path, index in files:
        with open(path, newline="") as f:
            labels = [float(r[index]) for r in csv.reader(f) if r and r[index] != ""]
        assert all(target.in_range(v) for v in labels), path
        # inside, not clipped onto a bound by the drift (that would flatten the story's shift)
        assert target.max is None or max(labels) < target.max, path
