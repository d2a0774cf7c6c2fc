"""Drift on the right baselines, through the step scripts as the containers run them (SM_CONTAINER_ROOT).

Feature drift is checked on the features only, against the training features' baseline; the model's outputs
against a baseline of its own predictions on the held-out test split (evaluate.py). The data set is one the
template has never seen and the shape that raised a false alarm on every clean batch before: a non-negative,
zero-inflated target, whose predictions are narrower than the labels and may fall below zero.
"""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
SCHEMA = {"name": "zero-inflated", "target": "visits",
          "columns": [{"name": "region", "type": "categorical", "categories": ["north", "south", "east"]},
                      {"name": "age", "type": "float"}, {"name": "income", "type": "float"},
                      {"name": "visits", "type": "float", "min": 0}]}


def rows(n, seed, age_shift=0.0):
    """Most people make no visit; the others a skewed count that grows with age and income."""
    r = np.random.default_rng(seed)
    region = r.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    age = r.normal(45 + age_shift, 12, n)
    income = r.lognormal(3, 0.4, n)
    visits_any = r.random(n) < 1 / (1 + np.exp(-(age - 55) / 8))
    visits = np.where(visits_any, r.gamma(2.0, 1 + 0.05 * income + 0.08 * np.maximum(age - 30, 0)), 0.0)
    return pd.DataFrame({"region": region, "age": age.round(2), "income": income.round(2), "visits": visits.round(2)})


def run(script, root, args=(), env=None):
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SM_CONTAINER_ROOT": str(root), **(env or {})})
    assert proc.returncode == 0, f"{script}: {proc.stderr[-2000:]}"
    return proc


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def csv_text(frame):
    return frame.to_csv(header=False, index=False)


def violations(folder):
    return json.loads((folder / "summary.json").read_text())["violations"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Training preprocessing, a model, evaluation (the prediction baseline) and the feature baseline."""
    root = tmp_path_factory.mktemp("zi") / "opt" / "ml"
    write(root / "processing/input/data/training-data.csv", csv_text(rows(1500, 0)))
    write(root / "processing/input/schema/dataset_schema.json", json.dumps(SCHEMA))
    run("preprocess_training.py", root)
    out = root / "processing/output"
    run("data_quality.py", root, ["baseline", "--input", str(out / "baseline"), "--output", str(root / "dq-baseline"),
                                  "--schema", str(root / "processing/input/schema/dataset_schema.json")])
    channels = {k: out / k for k in ("train", "validation", "preprocessor")}
    # a small forest: the baselines' logic is the same for every algorithm, and the default stack costs minutes here
    run("train.py", root, ["--algorithm", "random_forest", "--n_estimators", "40"], env={"SM_MODEL_DIR": str(root / "model"),
                               **{f"SM_CHANNEL_{k.upper()}": str(v) for k, v in channels.items()}})
    (root / "processing/model").mkdir(parents=True)
    with tarfile.open(root / "processing/model/model.tar.gz", "w:gz") as tar:
        for f in sorted((root / "model").iterdir()):
            tar.add(f, arcname=f.name)
    write(root / "processing/test/test.csv", (out / "test/test.csv").read_text())
    run("evaluate.py", root)
    return root


def score(trained, name, batch):
    """One batch through the inference preprocessing, the serving functions and the data-check preparation;
    then the data-quality check of its features and the prediction-drift check of its predictions."""
    root = trained.parent / name / "opt" / "ml"
    (root / "processing/model").mkdir(parents=True)
    (root / "processing/model/model.tar.gz").symlink_to(trained / "processing/model/model.tar.gz")
    features = csv_text(batch.drop(columns="visits"))
    write(root / "processing/input/data/b.csv", features)
    run("preprocess_inference.py", root)
    sys.path.insert(0, str(SCRIPTS))
    try:
        import train as serving
    finally:
        sys.path.remove(str(SCRIPTS))
    model = serving.model_fn(str(trained / "model"))
    part = (root / "processing/output/transformed/b.csv/part-00000-of-00001.csv").read_bytes()
    body = serving.output_fn(serving.predict_fn(serving.input_fn(part, "text/csv"), model), "text/csv")
    write(root / "processing/input/batch/b.csv", features)
    write(root / "processing/input/predictions/b.csv/part-00000-of-00001.csv.out", body)
    run("prepare_data_check.py", root, ["--object-key", "p/inference/input/b.csv", "--input-prefix", "p/inference/input"])
    out = root / "processing/output"
    dq, pb = trained / "dq-baseline", trained / "processing/evaluation/prediction-baseline"
    run("data_quality.py", root, ["check", "--input", str(out / "data_check"), "--output", str(root / "dq"),
                                  "--baseline-statistics", str(dq / "statistics.json"),
                                  "--baseline-constraints", str(dq / "constraints.json")])
    run("data_quality.py", root, ["check", "--input", str(out / "prediction_check"), "--output", str(root / "pd"),
                                  "--baseline-statistics", str(pb / "statistics.json"),
                                  "--baseline-constraints", str(pb / "constraints.json")])
    return root, [float(v) for v in body.splitlines()]


def test_a_clean_batch_of_a_zero_inflated_target_raises_no_violation(trained):
    batch = rows(1000, 1)
    root, predictions = score(trained, "clean", batch)
    assert violations(root / "dq") == [] and violations(root / "pd") == []
    # what the checks read: the features alone, and the predictions alone
    assert (root / "processing/output/data_check/data_check.csv").read_text().splitlines()[0] == "region,age,income"
    assert [float(v) for v in (root / "processing/output/prediction_check/predictions.csv").read_text().split()[1:]] \
        == pytest.approx(predictions)
    # The old set-up (predictions checked against the baseline of the training labels) flags this clean batch:
    # the labels' spike at zero is a shape the predictions never have. Without it this test would prove nothing.
    labels = pd.read_csv(trained / "processing/input/data/training-data.csv", header=None).iloc[:, 3]
    sys.path.insert(0, str(SCRIPTS))
    try:
        from steplib.dataquality.engine import run_check, run_values_baseline
    finally:
        sys.path.remove(str(SCRIPTS))
    run_values_baseline("prediction", labels.to_numpy(), str(root / "label-baseline"))
    constraints = json.loads((root / "label-baseline/constraints.json").read_text())
    constraints["features"][0]["num_constraints"]["is_non_negative"] = bool(labels.min() >= 0)  # as it was suggested
    (root / "label-baseline/constraints.json").write_text(json.dumps(constraints))
    old = run_check(str(root / "processing/output/prediction_check"), str(root / "label-baseline/statistics.json"),
                    str(root / "label-baseline/constraints.json"), str(root / "old"))
    assert old["violation_count"] >= 1


def test_a_drifted_batch_still_shows_feature_and_prediction_drift(trained):
    root, _ = score(trained, "drifted", rows(1000, 2, age_shift=15.0))
    assert {v["feature_name"] for v in violations(root / "dq")} == {"age"}  # only the feature that moved
    assert [v["feature_name"] for v in violations(root / "pd")] == ["prediction"]


def test_the_prediction_baseline_profiles_the_test_split_predictions(trained):
    evaluation = trained / "processing/evaluation"
    stats = json.loads((evaluation / "prediction-baseline/statistics.json").read_text())
    constraints = json.loads((evaluation / "prediction-baseline/constraints.json").read_text())
    test_rows = len((trained / "processing/test/test.csv").read_text().splitlines())
    assert stats["dataset"]["item_count"] == test_rows and [f["name"] for f in stats["features"]] == ["prediction"]
    # a model's outputs have no sign contract: a shift shows as distribution drift, not as a data-type violation
    assert constraints["features"][0]["num_constraints"]["is_non_negative"] is False
