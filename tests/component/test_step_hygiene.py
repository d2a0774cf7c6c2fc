"""Missing values, unknown categories, target scale and data hygiene in the step scripts, on data generated
from a schema made up here (target not last, numeric category labels, ranges) -- not Abalone's columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

SCHEMA = {
    "name": "toy-prices",
    "columns": [
        {"name": "grade", "type": "categorical", "categories": [3, 4, 5, 6, 8], "unknown_category": "most_frequent"},
        {"name": "price", "type": "float"},
        {"name": "colour", "type": "categorical", "categories": ["red", "blue", "green"], "unknown_category": "ignore"},
        {"name": "width", "type": "float", "min": 0, "max": 100},
        {"name": "kind", "type": "categorical", "categories": ["a", "b"]},
        {"name": "height", "type": "int"},
    ],
    "target": "price",
}


def generate(n, seed, scale=1.0):
    """Rows in schema order; price depends on every feature. ``scale`` multiplies the target."""
    rng = np.random.default_rng(seed)
    grade = rng.choice([3, 4, 5, 6, 8], n)
    colour = rng.choice(["red", "blue", "green"], n)
    width = rng.uniform(0, 100, n)
    kind = rng.choice(["a", "b"], n)
    height = rng.integers(1, 50, n)
    price = (20 * grade + 0.5 * width + 3 * height + np.where(colour == "red", 30, 0) + np.where(kind == "a", -15, 0)
             + rng.normal(0, 5, n)) * scale
    return [[str(g), f"{p:.3f}", c, f"{w:.3f}", k, str(h)]
            for g, p, c, w, k, h in zip(grade, price, colour, width, kind, height)]


def to_csv(rows):
    return "".join(",".join(r) + "\n" for r in rows)


def run(script, root, args=(), env=None):
    full_env = {**os.environ, "SM_CONTAINER_ROOT": str(root), **(env or {})}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=full_env, capture_output=True,
                          text=True, timeout=180)


def message(root):
    return (root / "output" / "message").read_text()


def stage(root, text, name="data.csv", schema=SCHEMA):
    data = root / "processing/input/data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.iterdir():
        old.unlink()
    (data / name).write_text(text)
    (root / "processing/input/schema").mkdir(parents=True, exist_ok=True)
    (root / "processing/input/schema/dataset_schema.json").write_text(json.dumps(schema))


def train_model(root, out):
    env = {"SM_MODEL_DIR": str(root / "model"),
           **{f"SM_CHANNEL_{k.upper()}": str(out / k) for k in ("train", "validation", "preprocessor")}}
    proc = run("train.py", root, ["--n_estimators", "30"], env)
    assert proc.returncode == 0, proc.stderr
    archive = root / "processing/model/model.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted((root / "model").iterdir()):
            tar.add(p, arcname=p.name)
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Training data with missing features, missing targets and duplicate rows, through preprocessing and training."""
    root = tmp_path_factory.mktemp("hygiene") / "opt/ml"
    rows = generate(300, 1)
    rows[5][0] = ""        # missing categorical (numeric labels)
    rows[6][3] = "NA"      # missing numeric
    rows[7][2] = "?"       # missing categorical (string labels)
    rows[8][1] = ""        # missing target: dropped, counted
    rows[9][1] = "NA"
    rows += [list(rows[10]), list(rows[11]), list(rows[10])]  # 3 exact duplicates
    stage(root, to_csv(rows) + "\n\n")  # trailing blank lines are fine
    pre = run("preprocess_training.py", root)
    assert pre.returncode == 0, pre.stderr
    out = root / "processing/output"
    tr = train_model(root, out)
    return {"root": root, "out": out, "pre_log": pre.stdout, "train_log": tr.stdout}


def test_cleaning_is_counted_and_reported(trained):
    out = trained["out"]
    report = json.loads((out / "preprocessor/preprocessing.json").read_text())
    assert report["rows_read"] == 303
    assert report["rows_missing_target_dropped"] == 2 and report["duplicate_rows_dropped"] == 3
    assert report["rows_used"] == 298
    assert report["missing_values"] == {"grade": 1, "colour": 1, "width": 1, "price": 2}
    assert sum(report[f"{s}_rows"] for s in ("train", "validation", "test")) == 298
    log = trained["pre_log"]
    assert "dropped 2 row(s) with a missing target 'price'" in log and "line 9" in log
    assert "dropped 3 exact duplicate row(s)" in log
    assert "missing values in column 'width': 1 (imputed" in log


def test_transformed_splits_are_finite_and_complete(trained):
    out = trained["out"]
    for split in ("train", "validation", "test"):
        data = np.loadtxt(out / split / f"{split}.csv", delimiter=",")
        assert np.isfinite(data).all()
        # target, grade 5+1, colour 3+1, kind 2+1 one-hot levels (+ missing), width and height
        assert data.shape[1] == 1 + 6 + 4 + 3 + 2
    train = np.loadtxt(out / "train/train.csv", delimiter=",")
    baseline = (out / "baseline/baseline.csv").read_text().splitlines()
    assert baseline[0] == "grade,colour,width,kind,height"  # the train split's features: drift watches the inputs
    assert len(baseline) - 1 == len(train)


def inference(root, text, name="batch.csv"):
    data = root / "processing/input/data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.iterdir():
        old.unlink()
    (data / name).write_text(text)
    proc = run("preprocess_inference.py", root)
    out = root / "processing/output/transformed" / name / "part-00000-of-00001.csv"
    return proc, (np.loadtxt(out, delimiter=",", ndmin=2) if proc.returncode == 0 else None)


def features_of(rows):
    return [r[:1] + r[2:] for r in rows]  # drop the target (second column)


def test_inference_imputes_missing_and_applies_unknown_category_policies(trained):
    root = trained["root"]
    rows = features_of(generate(4, 9))
    rows[0][0] = "7"       # grade: unknown -> most frequent of the train split
    rows[1][1] = "purple"  # colour: unknown -> ignored (all zeros)
    rows[2][2] = ""        # width missing -> median
    rows[3][0] = "4.0"     # numeric label written as a float is the same category
    proc, x = inference(root, to_csv(rows) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert x.shape == (4, 15) and np.isfinite(x).all()
    most = json.loads((trained["out"] / "preprocessor/preprocessing.json").read_text())["most_frequent"]["grade"]
    assert x[0, :6].tolist() == [1.0 if g == most else 0.0 for g in ("3", "4", "5", "6", "8", "__missing__")]
    assert x[1, 6:10].tolist() == [0, 0, 0, 0]
    assert x[3, 1] == 1.0
    assert "unseen categories in column 'grade': 1 row(s), values ['7']; replaced by the most frequent" in proc.stdout
    assert "WARNING unseen categories in column 'colour': 1 row(s)" in proc.stdout


@pytest.mark.parametrize("text, expected", [
    ("3,red,10,c,5\n", "line 1: unknown category 'c' in column 'kind'"),           # policy error
    ("3,red,10,a,5\n\n3,red,10,a,5\n", "line 2: empty line"),
    ("grade,colour,width,kind,height\n3,red,10,a,5\n", "line 1 looks like a header row"),
    ("3,red,101,a,5\n", "line 1: value '101' in column 'width' is outside the schema range [0, 100]"),
    ("3,red,10,a,1e300\n", "line 1: value 1e+300 in column 'height' overflows"),
    ("3,red,10,a,inf\n", "line 1: non-finite value 'inf' in column 'height'"),
])
def test_inference_refusals_name_file_line_column_value(trained, text, expected):
    proc, _ = inference(trained["root"], text)
    assert proc.returncode != 0
    assert "batch.csv" in message(trained["root"]) and expected in message(trained["root"])


def test_training_refuses_overflowing_values(tmp_path):
    root = tmp_path / "opt/ml"
    rows = generate(50, 2)
    rows[20][5] = "1e300"
    stage(root, to_csv(rows))
    proc = run("preprocess_training.py", root)
    assert proc.returncode != 0
    assert "data.csv: line 21: value 1e+300 in column 'height' overflows the standardization" in message(root)


def test_training_missing_values_refused_when_the_schema_says_error(tmp_path):
    root = tmp_path / "opt/ml"
    rows = generate(50, 3)
    rows[4][3] = ""
    stage(root, to_csv(rows), schema={**SCHEMA, "missing_values": {"features": "error"}})
    proc = run("preprocess_training.py", root)
    assert proc.returncode != 0
    assert "data.csv: line 5: missing value in numeric column 'width'" in message(root)


def test_default_model_does_not_depend_on_the_target_scale(tmp_path):
    """The regressor sees a standardized target: the same data in other units scores the same, relatively."""
    scores = []
    for scale in (1.0, 1000.0):
        root = tmp_path / f"scale{int(scale)}" / "opt/ml"
        stage(root, to_csv(generate(400, 5, scale)))
        assert run("preprocess_training.py", root).returncode == 0
        log = train_model(root, root / "processing/output").stdout
        mse = float(log.split("validation:mse=")[1].split()[0])
        scores.append(mse / scale**2)
    assert scores[1] == pytest.approx(scores[0], rel=0.05)
