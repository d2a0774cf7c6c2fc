"""The SageMaker step scripts, run as subprocesses the way the containers run them (SM_CONTAINER_ROOT relocates
/opt/ml into tmp_path), on small data generated from the current schema (tools/synth.py), so they hold for any
data set scripts/dataset_schema.json describes."""

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
SCHEMA = SCRIPTS / "dataset_schema.json"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synth = _load("synth_for_steps", ROOT / "tools" / "synth.py")
train_module = _load("train_for_serving", SCRIPTS / "train.py")
SCHEMA_DICT = synth.load_schema(SCHEMA)  # steplib.schema's typed view
# what most tests below look at (the rest is read from SCHEMA_DICT where it is used)
NAMES = SCHEMA_DICT.names
T_INDEX = SCHEMA_DICT.target_index
CATEGORICAL = SCHEMA_DICT.categorical_features
NUMERIC = SCHEMA_DICT.numeric_features


def run(script, root, args=(), env=None):
    full_env = {**os.environ, "SM_CONTAINER_ROOT": str(root), **(env or {})}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=full_env,
                          capture_output=True, text=True, timeout=120)


def message(root):
    return (root / "output" / "message").read_text()


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def csv_rows(rows):
    return "".join(",".join(r) + "\n" for r in rows)


def stage_training(root, text, name="training-data.csv"):
    write(root / "processing/input/data" / name, text)
    write(root / "processing/input/schema/dataset_schema.json", SCHEMA.read_text())


def make_tar(path, files):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for f in files:
            tar.add(f, arcname=f.name)


def read_lines(path):
    return path.read_text().splitlines()


def training_rows(n, seed=0):
    """n rows in the training convention (cells as text), from the current schema."""
    return synth.rows_text(synth.generate(SCHEMA_DICT, n, seed), SCHEMA_DICT.columns)


def feature_rows(n, seed=0):
    return [r[:T_INDEX] + r[T_INDEX + 1:] for r in training_rows(n, seed)]


def with_cell(row, name, value, columns=NAMES):
    row = list(row)
    row[columns.index(name)] = value
    return ",".join(row) + "\n"


def with_target(features, value):
    """A feature row (list of cells) with `value` put in the target's place: the training convention."""
    return features[:T_INDEX] + [value] + features[T_INDEX:]


def width(root):
    """Columns the fitted preprocessing makes (one-hot categories + numerics)."""
    import joblib
    return len(joblib.load(root / "processing/output/preprocessor/preprocessor.joblib").get_feature_names_out())


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """preprocess -> train -> evaluate -> preprocess_inference -> serving functions -> prepare_data_check."""
    base = tmp_path_factory.mktemp("e2e")
    data = base / "data"
    synth.write_split(synth.generate(SCHEMA_DICT, 400, 3), SCHEMA_DICT, data, training=True)
    synth.write_split(synth.generate(SCHEMA_DICT, 80, 4), SCHEMA_DICT, data, training=False)
    root = base / "opt" / "ml"
    stage_training(root, (data / "training-data.csv").read_text())
    pre = run("preprocess_training.py", root)
    assert pre.returncode == 0, pre.stderr
    out = root / "processing/output"
    channels = {k: out / k for k in ("train", "validation", "preprocessor")}
    env = {"SM_MODEL_DIR": str(root / "model"), **{f"SM_CHANNEL_{k.upper()}": str(v) for k, v in channels.items()}}
    tr = run("train.py", root, ["--n_estimators", "40", "--min_samples_leaf", "4"], env)
    assert tr.returncode == 0, tr.stderr
    make_tar(root / "processing/model/model.tar.gz", sorted((root / "model").iterdir()))
    write(root / "processing/test/test.csv", (out / "test/test.csv").read_text())
    ev = run("evaluate.py", root)
    assert ev.returncode == 0, ev.stderr
    # Batch inference: raw inference data, then the same model archive.
    write(root / "processing/input/data/inference-data.csv", (data / "inference-data.csv").read_text())
    (root / "processing/input/data/training-data.csv").unlink()
    pi = run("preprocess_inference.py", root)
    assert pi.returncode == 0, pi.stderr
    transformed = root / "processing/output/transformed/inference-data.csv/part-00000-of-00001.csv"
    model = train_module.model_fn(str(root / "model"))
    payload = train_module.input_fn(transformed.read_bytes(), "text/csv")
    body = train_module.output_fn(train_module.predict_fn(payload, model), "text/csv")
    # the batch input/inference-data.csv and its own labels at ground-truth/inference-data.csv
    write(root / "processing/input/batch/inference-data.csv", (data / "inference-data.csv").read_text())
    write(root / "processing/input/inference/ground-truth/inference-data.csv", (data / "ground-truth.csv").read_text())
    write(root / "processing/input/predictions/inference-data.csv/part-00000-of-00001.csv.out", body)
    dc = run("prepare_data_check.py", root, ["--object-key", "p/inference/input/inference-data.csv",
                                             "--input-prefix", "p/inference/input"])
    assert dc.returncode == 0, dc.stderr
    return {"root": root, "data": data, "train_log": tr.stdout, "transformed": transformed, "model": model,
            "body": body, "pi_log": pi.stdout}


def test_preprocess_outputs_and_split(e2e):
    root, out = e2e["root"], e2e["root"] / "processing/output"
    n = {s: len(read_lines(out / s / f"{s}.csv")) for s in ("train", "validation", "test")}
    assert sum(n.values()) == 400 and n["test"] == 60 and abs(n["validation"] - 60) <= 1  # 15% each, none dropped
    baseline = read_lines(out / "baseline/baseline.csv")
    assert baseline[0].split(",") == SCHEMA_DICT.feature_names  # drift is watched on the inputs
    assert len(baseline) == n["train"] + 1
    train = np.loadtxt(out / "train/train.csv", delimiter=",")
    n_onehot = sum(len(c.categories) for c in CATEGORICAL)
    assert train.shape[1] == 1 + width(root) and width(root) >= n_onehot + len(NUMERIC)  # target, then features
    # Scaler fitted on the train split only: train features have mean 0 / sd 1; the target stays raw.
    numeric = train[:, 1 + width(root) - len(NUMERIC):]
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-9) and np.allclose(numeric.std(axis=0), 1)
    all_targets = sorted(float(line.split(",")[T_INDEX]) for line in read_lines(e2e["data"] / "training-data.csv"))
    assert set(train[:, 0]) <= set(all_targets)  # the raw labels of the train split's rows
    assert (out / "preprocessor/preprocessor.joblib").is_file() and (out / "preprocessor/dataset_schema.json").is_file()


def test_train_writes_model_and_objective(e2e):
    model_dir = e2e["root"] / "model"
    assert {p.name for p in model_dir.iterdir()} >= {"model.joblib", "preprocessor.joblib", "dataset_schema.json"}
    import re
    match = re.search(r"validation:mse=([0-9\.eE+-]+)", e2e["train_log"])
    assert match and float(match.group(1)) > 0


def test_evaluation_json(e2e):
    report = json.loads((e2e["root"] / "processing/evaluation/evaluation.json").read_text())
    m = report["regression_metrics"]
    assert set(m) == {"mse", "rmse", "mae", "r2"}
    assert m["rmse"]["value"] == pytest.approx(m["mse"]["value"] ** 0.5)
    test = np.loadtxt(e2e["root"] / "processing/test/test.csv", delimiter=",")
    pred = e2e["model"].predict(test[:, 1:])
    assert m["mse"]["value"] == pytest.approx(np.mean((pred - test[:, 0]) ** 2))
    assert m["mse"]["standard_deviation"] > 0
    # A model is learnt: clearly better than predicting the mean.
    assert m["mse"]["value"] < 0.8 * np.var(test[:, 0])


def test_inference_keeps_row_order_and_count(e2e):
    root = e2e["root"]
    raw = read_lines(e2e["data"] / "inference-data.csv")
    transformed = np.loadtxt(e2e["transformed"], delimiter=",", ndmin=2)
    assert transformed.shape == (len(raw), width(root))
    # Row i of the transformed file encodes row i of the raw file: the fitted preprocessing of each raw row.
    import joblib
    pre = joblib.load(root / "processing/output/preprocessor/preprocessor.joblib")
    frame = synth.read_csv(e2e["data"] / "inference-data.csv", SCHEMA_DICT, SCHEMA_DICT.features)
    for c in NUMERIC:
        frame[c.name] = frame[c.name].astype(float)
    assert np.allclose(pre.transform(frame), transformed)
    preds = [float(v) for v in e2e["body"].splitlines()]
    assert preds == pytest.approx(e2e["model"].predict(transformed).tolist())
    check = read_lines(root / "processing/output/data_check/data_check.csv")
    assert check[0] == ",".join(SCHEMA_DICT.feature_names) and check[1:] == raw  # the features, as they came
    checked = read_lines(root / "processing/output/prediction_check/predictions.csv")
    assert checked[0] == "prediction" and [float(v) for v in checked[1:]] == pytest.approx(preds)
    mq = read_lines(root / "processing/output/model_quality/model_quality_input.csv")
    truth = read_lines(e2e["data"] / "ground-truth.csv")
    assert mq[0] == "prediction,ground_truth"
    assert [float(r.split(",")[1]) for r in mq[1:]] == [float(t) for t in truth]
    status = json.loads((root / "processing/output/ground_truth/ground_truth.json").read_text())
    assert status["available"] is True and status["rows"] == len(raw) and status["labelled"] == ["inference-data.csv"]
    # the labelled batch, in the training-data convention, for HPO retraining
    feedback = read_lines(root / "processing/output/feedback/data/inference-data.csv")
    assert len(feedback) == len(raw)
    for line, labelled, t in zip(raw, feedback, truth):
        cells = labelled.split(",")
        assert cells[:T_INDEX] + cells[T_INDEX + 1:] == line.split(",") and float(cells[T_INDEX]) == float(t)
    for c in CATEGORICAL:
        assert f"unseen categories in column '{c.name}': 0 row(s)" in e2e["pi_log"]


@pytest.mark.parametrize("threshold,passes", [(1000.0, True), (0.01, False)])
def test_model_quality_pass_and_breach(e2e, tmp_path, threshold, passes):
    """The verdict is in the report; a breach is the pipeline's FailStep, so the job succeeds either way."""
    root = tmp_path / "opt/ml"
    src = e2e["root"] / "processing/output/model_quality"
    for name in ("model_quality_input.csv", "ground_truth.json"):
        write(root / "processing/input/model_quality" / name, (src / name).read_text())
    proc = run("model_quality.py", root, ["--mse-threshold", str(threshold)])
    assert proc.returncode == 0, proc.stderr
    report = json.loads((root / "processing/output/model_quality/model_quality.json").read_text())
    pairs = np.loadtxt(src / "model_quality_input.csv", delimiter=",", skiprows=1)
    mse = float(np.mean((pairs[:, 0] - pairs[:, 1]) ** 2))
    assert report["regression_metrics"]["mse"]["value"] == pytest.approx(mse)
    assert report["threshold"] == {"metric": "mse", "value": threshold, "passed": passes}
    assert not (root / "output/message").exists()


# ---------------------------------------------------------------- bad inputs
ROW = training_rows(1)[0]
GOOD = ",".join(ROW) + "\n"
NUM = NUMERIC[0].name if NUMERIC else SCHEMA_DICT.target  # a numeric column of the current schema
BAD_INPUTS = [
    (GOOD * 20 + '"' + GOOD, "malformed CSV"),
    (GOOD * 5 + ",".join(ROW[:-1]) + "\n", f"line 6: expected {len(NAMES)} columns"),
    (GOOD * 3 + with_cell(ROW, NUM, "abc"), f"line 4: non-numeric value 'abc' in numeric column '{NUM}'"),
    (GOOD * 3 + with_cell(ROW, NUM, "1e200"), f"line 4: value 1e+200 in column '{NUM}' overflows"),
    (",".join(NAMES) + "\n" + GOOD, "line 1 looks like a header row"),
    (GOOD * 3 + "\n" + GOOD, "line 4: empty line"),
    ("", "file is empty"),
]
if CATEGORICAL:
    BAD_INPUTS.append((GOOD * 3 + with_cell(ROW, CATEGORICAL[0].name, "unseen-category"),
                       f"line 4: unknown category 'unseen-category' in column '{CATEGORICAL[0].name}'"))


@pytest.mark.parametrize("text,expected", BAD_INPUTS)
def test_preprocess_training_rejects_bad_input(tmp_path, text, expected):
    root = tmp_path / "opt/ml"
    stage_training(root, text, name="bad.csv")
    proc = run("preprocess_training.py", root)
    assert proc.returncode != 0
    assert expected in message(root) and "bad.csv" in message(root)
    assert expected in proc.stderr


def test_preprocess_training_no_input_files(tmp_path):
    root = tmp_path / "opt/ml"
    (root / "processing/input/data").mkdir(parents=True)
    write(root / "processing/input/schema/dataset_schema.json", SCHEMA.read_text())
    proc = run("preprocess_training.py", root)
    assert proc.returncode != 0 and "no input files" in message(root)


def test_preprocess_training_reads_every_row_of_several_files(tmp_path):
    root = tmp_path / "opt/ml"
    rows = training_rows(100)
    stage_training(root, csv_rows(rows[:30]), name="a.csv")
    write(root / "processing/input/data/b.csv", csv_rows(rows[30:]))
    assert run("preprocess_training.py", root).returncode == 0
    out = root / "processing/output"
    assert sum(len(read_lines(out / s / f"{s}.csv")) for s in ("train", "validation", "test")) == 100


def _train_root(tmp_path, train_text, val_text):
    root = tmp_path / "opt/ml"
    write(root / "input/data/train/train.csv", train_text)
    write(root / "input/data/validation/validation.csv", val_text)
    return root


def test_train_rejects_bad_data_and_hyperparameters(tmp_path, e2e):
    out = e2e["root"] / "processing/output"
    good = (out / "train/train.csv").read_text()
    root = _train_root(tmp_path, good, good.replace(",", ";", 1))
    pre = tmp_path / "opt/ml/input/data/preprocessor"
    pre.mkdir(parents=True)
    for f in (out / "preprocessor").iterdir():
        (pre / f.name).write_bytes(f.read_bytes())
    proc = run("train.py", root)
    # a training job's reason goes to /opt/ml/output/failure (processing jobs: .../message)
    failure = root / "output/failure"
    assert proc.returncode != 0 and "validation.csv: line 1" in failure.read_text()
    assert not (root / "output/message").exists()
    write(root / "input/data/validation/validation.csv", good)
    proc = run("train.py", root, ["--algorithm", "svm"])
    assert proc.returncode != 0 and "algorithm='svm'" in failure.read_text()
    for args, expected in ((["--svr_c", "-1"], "svr_c='-1': expected a value in (0, 1e+06]"),
                           (["--n_estimators", "2.5"], "n_estimators='2.5': expected an integer"),
                           (["--algorithm", "random_forest", "--svr_c", "3"], "svr_c='3' does not apply to"),
                           (["--n_estimatorz", "3"], "unrecognized arguments: --n_estimatorz")):
        proc = run("train.py", root, args)
        assert proc.returncode != 0 and expected in failure.read_text(), failure.read_text()


def test_train_xgboost_option(tmp_path, e2e):
    out = e2e["root"] / "processing/output"
    root = tmp_path / "opt/ml"
    env = {"SM_MODEL_DIR": str(root / "model"),
           **{f"SM_CHANNEL_{k.upper()}": str(out / k) for k in ("train", "validation", "preprocessor")}}
    proc = run("train.py", root, ["--algorithm", '"xgboost"', "--n_estimators", "30", "--max_depth", "3"], env)
    assert proc.returncode == 0, proc.stderr
    model = train_module.model_fn(str(root / "model"))
    rows = np.loadtxt(out / "validation/validation.csv", delimiter=",", ndmin=2)[:2, 1:]
    x = train_module.input_fn("".join(",".join(map(str, r)) + "\n" for r in rows), "text/csv")
    assert len(train_module.output_fn(train_module.predict_fn(x, model), "text/csv").splitlines()) == 2


@pytest.mark.parametrize("body,content_type,expected", [
    ("1,2\n3\n", "text/csv", "line 2: expected 2 columns"),
    ("1,x\n", "text/csv", "non-numeric value 'x'"),
    ("", "text/csv", "empty input"),
    ('{"a": 1}', "application/json", "only text/csv"),
])
def test_input_fn_rejects_bad_payload(body, content_type, expected):
    with pytest.raises(ValueError, match=expected):
        train_module.input_fn(body, content_type)


def test_predict_fn_rejects_wrong_width(e2e):
    with pytest.raises(ValueError, match=f"model expects {width(e2e['root'])}"):
        train_module.predict_fn(np.zeros((2, 3)), e2e["model"])


@pytest.mark.parametrize("factor, expected", [
    (1e6, "is above the range {low} to {high} ({lo_f}x to {hi_f}x the variance {var} of the target in "),
    (1e-6, "is below the range {low} to {high}"),
])
def test_evaluate_refuses_an_mse_threshold_the_gate_could_never_use(tmp_path, e2e, factor, expected):
    """accuracy_mse_threshold = 1e308 (the gate never fires) or 1e-300 (every batch breaches) is accepted by a
    schema; the evaluation knows the target, so it refuses a threshold outside a useful range with the figures."""
    import evaluate
    root = tmp_path / "opt/ml"
    (root / "processing/model").mkdir(parents=True)
    (root / "processing/model/model.tar.gz").write_bytes((e2e["root"] / "processing/model/model.tar.gz").read_bytes())
    test_csv = write(root / "processing/test/test.csv", (e2e["root"] / "processing/test/test.csv").read_text())
    variance = float(np.var(np.loadtxt(test_csv, delimiter=",")[:, 0]))
    low, high = (f * variance for f in evaluate.THRESHOLD_RANGE)
    proc = run("evaluate.py", root, ["--mse-threshold", repr(variance * factor)])
    assert proc.returncode != 0 and not (root / "processing/evaluation/evaluation.json").exists()
    assert expected.format(low=f"{low:.4g}", high=f"{high:.4g}", lo_f=f"{evaluate.THRESHOLD_RANGE[0]:g}",
                           hi_f=f"{evaluate.THRESHOLD_RANGE[1]:g}", var=f"{variance:.4g}") in message(root)
    assert "accuracy_mse_threshold (tfvars) or mse_threshold (pipeline YAML)" in message(root)
    inside = run("evaluate.py", root, ["--mse-threshold", repr(variance * 0.5)])
    assert inside.returncode == 0, inside.stderr  # a threshold in the range: evaluated as before


def test_evaluate_refuses_a_constant_target(tmp_path, e2e):
    root = tmp_path / "opt/ml"
    (root / "processing/model").mkdir(parents=True)
    (root / "processing/model/model.tar.gz").write_bytes((e2e["root"] / "processing/model/model.tar.gz").read_bytes())
    rows = (e2e["root"] / "processing/test/test.csv").read_text().splitlines()
    write(root / "processing/test/test.csv", "".join("7," + r.split(",", 1)[1] + "\n" for r in rows))
    proc = run("evaluate.py", root, ["--mse-threshold", "5.5"])
    assert proc.returncode != 0 and "every target value is 7.0: a constant target leaves nothing to learn" in message(root)


def test_evaluate_refuses_path_traversal(tmp_path):
    root = tmp_path / "opt/ml"
    evil = write(tmp_path / "evil.txt", "x")
    archive = root / "processing/model/model.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(evil, arcname="../../escaped.txt")
    write(root / "processing/test/test.csv", "1,2\n")
    proc = run("evaluate.py", root)
    assert proc.returncode != 0 and "path traversal" in message(root) and "model.tar.gz" in message(root)
    assert not list(tmp_path.rglob("escaped.txt"))


FEATURE_NAMES = [c.name for c in SCHEMA_DICT.features]


def test_preprocess_inference_refuses_unseen_and_bad_rows(tmp_path, e2e):
    root = tmp_path / "opt/ml"
    archive = e2e["root"] / "processing/model/model.tar.gz"
    write(root / "processing/model/model.tar.gz", "").write_bytes(archive.read_bytes())
    data = root / "processing/input/data/inference-data.csv"
    rows = feature_rows(3, seed=5)
    if CATEGORICAL:
        cat = CATEGORICAL[0].name
        write(data, "".join(with_cell(r, cat, "unseen-category", FEATURE_NAMES) if i == 1 else ",".join(r) + "\n"
                            for i, r in enumerate(rows)))
        proc = run("preprocess_inference.py", root)
        if CATEGORICAL[0].unknown_category == "error":  # the schema's policy (the shipped one: error)
            assert proc.returncode != 0
            assert f"inference-data.csv: line 2: unknown category 'unseen-category' in column '{cat}'" in message(root)
        else:  # ignore / most_frequent: the row is kept, in order
            assert proc.returncode == 0, proc.stderr
            out = np.loadtxt(root / "processing/output/transformed/inference-data.csv/part-00000-of-00001.csv",
                             delimiter=",", ndmin=2)
            assert out.shape == (3, width(e2e["root"]))
    if NUMERIC:
        num = NUMERIC[0].name
        write(data, ",".join(rows[0]) + "\n" + with_cell(rows[1], num, "oops", FEATURE_NAMES))
        proc = run("preprocess_inference.py", root)
        assert proc.returncode != 0
        assert f"inference-data.csv: line 2: non-numeric value 'oops' in numeric column '{num}'" in message(root)


def test_prepare_data_check_count_mismatch_and_no_ground_truth(tmp_path):
    root = tmp_path / "opt/ml"
    make_tar(root / "processing/model/model.tar.gz", [SCHEMA])  # the schema travels with the model
    row = feature_rows(1)[0]
    write(root / "processing/input/batch/inference-data.csv", (",".join(row) + "\n") * 3)
    preds = write(root / "processing/input/predictions/inference-data.csv/part-00000-of-00001.csv.out", "9.5\n8.0\n")
    args = ["--object-key", "p/inference/input/inference-data.csv", "--input-prefix", "p/inference/input"]
    proc = run("prepare_data_check.py", root, args)
    assert proc.returncode != 0
    msg = message(root)
    assert "has 3 rows" in msg and "predictions/inference-data.csv/ have 2" in msg and "have 2" in msg
    preds.write_text("9.5\n8.0\n7.0\n")
    proc = run("prepare_data_check.py", root, args)
    assert proc.returncode == 0, proc.stderr
    status = json.loads((root / "processing/output/ground_truth/ground_truth.json").read_text())
    assert status["available"] is False and status["rows"] == 0
    assert not (root / "processing/output/model_quality/model_quality_input.csv").exists()
    assert not (root / "processing/output/feedback").exists()
    assert read_lines(root / "processing/output/data_check/data_check.csv")[3] == ",".join(row)
    assert read_lines(root / "processing/output/prediction_check/predictions.csv") == ["prediction", "9.5", "8.0", "7.0"]


def test_model_quality_bad_input_is_not_a_breach(tmp_path):
    root = tmp_path / "opt/ml"
    write(root / "processing/input/model_quality/ground_truth.json", json.dumps(
        {"available": True, "rows": 1, "batches": ["b.csv"], "labelled": ["b.csv"], "quarantined": False, "note": ""}))
    write(root / "processing/input/model_quality/model_quality_input.csv", "prediction,ground_truth\n1.0,abc\n")
    proc = run("model_quality.py", root, ["--mse-threshold", "5.5"])
    assert proc.returncode != 0
    assert "line 2" in message(root) and "ground_truth" in message(root)
    assert "ModelQualityBreach" not in message(root)
