"""HPO retraining reads only feedback that passes the schema, and one bad batch never blocks it: the training
preprocessing (run as the container runs it) skips each bad feedback batch with a line naming file, line,
column and value, trains on the good ones, and lists the skipped ones in preprocessing.json. The user's own
training data stays strict, and a constant target is refused. Schema and data are made up here."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SCHEMA = {  # the target in the middle, with the range the import would record; one feature without a range
    "name": "toy-feedback", "target": "y",
    "columns": [
        {"name": "colour", "type": "categorical", "categories": ["red", "blue"]},
        {"name": "y", "type": "float", "min": 0, "max": 100},
        {"name": "x", "type": "float"},
    ],
}
FEEDBACK = "/opt/ml/processing/input/feedback"


def rows(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    colour = rng.choice(["red", "blue"], n)
    y = 20 + 4 * x + np.where(colour == "red", 5, 0) + rng.normal(0, 1, n)
    return [[c, f"{v:.3f}", f"{u:.3f}"] for c, v, u in zip(colour, y, x)]


def text(rows_):
    return "".join(",".join(r) + "\n" for r in rows_)


def stage(root, training):
    for rel, content in (("processing/input/data/training.csv", training),
                         ("processing/input/schema/dataset_schema.json", json.dumps(SCHEMA))):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)


def feedback_batch(root, execution, created, name, content: bytes):
    """One execution's feedback as the inference pipeline writes it: data/<name> + manifest.json."""
    folder = root / "processing/input/feedback" / execution
    (folder / "data").mkdir(parents=True)
    (folder / "data" / name).write_bytes(content)
    (folder / "manifest.json").write_text(json.dumps({"execution": execution, "created": created, "batches": [
        {"batch": name, "rows": content.count(b"\n"), "sha256": hashlib.sha256(content).hexdigest()}]}))
    return str(folder / "data" / name)


def run(root, *args):
    env = {**os.environ, "SM_CONTAINER_ROOT": str(root)}
    return subprocess.run([sys.executable, str(SCRIPTS / "preprocess_training.py"), *args], env=env,
                          capture_output=True, text=True, timeout=180)


def labels_used(root):
    out = root / "processing/output"
    return {line.split(",")[0] for s in ("train", "validation", "test")
            for line in (out / s / f"{s}.csv").read_text().splitlines()}


def test_bad_feedback_batches_are_skipped_and_named_while_training_uses_the_good_ones(tmp_path):
    root = tmp_path / "opt/ml"
    stage(root, text(rows(200, 1)))
    good = rows(3, 2)
    good[0][1], good[1][1], good[2][1] = "99.5", "98.25", "97.125"  # recognisable labels
    bad = {  # batch name: (content, what the skip line must say)
        "huge-label.csv": (text(good[:1]) + "red,1e300,2.0\n", "line 2: value '1e300' in column 'y' is outside"),
        "out-of-range.csv": (text(good[:1]) + "blue,150,2.0\n", "line 2: value '150' in column 'y' is outside"),
        "text-label.csv": ("red,abc,2.0\n", "line 1: non-numeric value 'abc' in numeric column 'y'"),
        "unknown-colour.csv": ("green,50,2.0\n", "line 1: unknown category 'green' in column 'colour'"),
        "huge-feature.csv": ("red,50,1e300\n", "line 1: value 1e+300 in column 'x' overflows"),
        "infinite.csv": ("red,50,inf\n", "line 1: non-finite value 'inf' in column 'x'"),
        "short-row.csv": ("red,50\n", "line 1: expected 3 columns"),
    }
    paths = {name: feedback_batch(root, f"e{i}", f"2026-01-0{i + 1}T00:00:00Z", name, content.encode())
             for i, (name, (content, _)) in enumerate(bad.items())}
    feedback_batch(root, "e7", "2026-01-08T00:00:00Z", "good-1.csv", text(good[:2]).encode())
    feedback_batch(root, "e8", "2026-01-09T00:00:00Z", "good-2.csv", text(good[2:]).encode())
    unreadable = feedback_batch(root, "e9", "2026-01-10T00:00:00Z", "latin1.csv", "r\xe9d,50,2.0\n".encode("latin-1"))

    proc = run(root, "--feedback-dir", FEEDBACK, "--feedback-window", "10")
    assert proc.returncode == 0, proc.stderr
    for name, (_, expected) in bad.items():
        line = next(l for l in proc.stdout.splitlines() if l.startswith(f"feedback: SKIPPED {paths[name]}"))
        assert line.startswith(f"feedback: SKIPPED {paths[name]}: {expected}"), line
        assert line.endswith("(training continues without this batch)"), line
    assert f"feedback: SKIPPED {unreadable}" in proc.stdout and "not UTF-8" in proc.stdout
    assert "feedback: 2 batch(es) used, 8 skipped" in proc.stdout

    report = json.loads((root / "processing/output/preprocessor/preprocessing.json").read_text())
    assert report["feedback"]["batches_used"] == 2 and report["feedback"]["batches_skipped"] == 8
    assert {s["file"] for s in report["feedback"]["skipped"]} == {*paths.values(), unreadable}
    assert report["rows_used"] == 203  # the training rows and the good batches' three rows
    assert {"99.5", "98.25", "97.125"} <= labels_used(root)  # the good feedback is trained on
    assert not any(float(v) > 100 for v in labels_used(root))


def test_only_bad_feedback_still_trains_on_the_training_data(tmp_path):
    root = tmp_path / "opt/ml"
    stage(root, text(rows(100, 3)))
    path = feedback_batch(root, "e1", "2026-01-01T00:00:00Z", "b.csv", b"red,1e300,2.0\n")
    proc = run(root, "--feedback-dir", FEEDBACK)
    assert proc.returncode == 0, proc.stderr
    assert f"feedback: SKIPPED {path}" in proc.stdout
    report = json.loads((root / "processing/output/preprocessor/preprocessing.json").read_text())
    assert report["rows_used"] == 100 and report["feedback"]["batches_used"] == 0


@pytest.mark.parametrize("cell,expected", [
    ("1e300", "line 5: value '1e300' in column 'y' is outside the schema range [0, 100]"),
    ("-3", "line 5: value '-3' in column 'y' is outside the schema range [0, 100]"),
    ("abc", "line 5: non-numeric value 'abc' in numeric column 'y'"),
])
def test_the_training_data_itself_stays_strict(tmp_path, cell, expected):
    root = tmp_path / "opt/ml"
    data = rows(20, 4)
    data[4][1] = cell
    stage(root, text(data))
    proc = run(root)
    assert proc.returncode != 0
    assert f"training.csv: {expected}" in (root / "output/message").read_text()


def test_a_constant_target_is_refused_naming_the_file_and_the_value(tmp_path):
    root = tmp_path / "opt/ml"
    data = rows(50, 5)
    for r in data:
        r[1] = "7"
    stage(root, text(data))
    proc = run(root)
    assert proc.returncode != 0
    message = (root / "output/message").read_text()
    assert "training.csv: every label of the target 'y' is 7.0 (50 rows)" in message
    assert "constant target" in message
