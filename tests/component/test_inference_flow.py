"""The batch inference flow's step scripts: one batch, its own ground truth, clean feedback, the feedback window.

Scripts run as subprocesses the way the containers run them (SM_CONTAINER_ROOT relocates /opt/ml into
tmp_path). The schema is a small one written here (a category, a ranged number, a ranged target), so the
tests do not depend on the shipped data set's columns.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
PREFIX = "proj/inference/input"
SCHEMA = {"name": "toy", "target": "y", "columns": [
    {"name": "color", "type": "categorical", "categories": ["red", "blue"]},
    {"name": "x", "type": "float", "min": 0, "max": 10},
    {"name": "y", "type": "float", "min": 0, "max": 100},
]}


def run(script, root, args=()):
    env = {**os.environ, "SM_CONTAINER_ROOT": str(root)}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def message(root):
    return (root / "output" / "message").read_text()


def stage(root, batch: dict, predictions: list, ground_truth: dict, object_key: str, schema: dict = SCHEMA):
    """Lay out the data-check job's channels: batch objects (as SageMaker stages them for object_key),
    predictions in the batch's row order (one part file per batch file), the ground-truth prefix, and the model (whose model.tar.gz carries
    the schema it was trained with: the one route)."""
    import io
    import tarfile
    proc = root / "processing" / "input"
    model = root / "processing" / "model" / "model.tar.gz"
    model.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(schema).encode()
    with tarfile.open(model, "w:gz") as tar:
        info = tarfile.TarInfo("dataset_schema.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    single = not object_key.endswith("/")
    start = 0
    for name, text in batch.items():
        local = Path(name).name if single else name
        write(proc / "batch" / local, text)
        # what the transform returns for DataPreProcessingStep's one part of this file: its predictions in order
        own = predictions[start:start + len(text.splitlines())]
        start += len(own)
        write(proc / "predictions" / local / "part-00000-of-00001.csv.out", "".join(f"{p}\n" for p in own))
    for name, text in ground_truth.items():
        write(proc / "inference" / "ground-truth" / name, text)


def check(root, object_key, execution="exec-1"):
    return run("prepare_data_check.py", root, ["--object-key", object_key, "--input-prefix", PREFIX,
                                                "--execution", execution])


def staged_check(root, batch: dict, predictions: list, ground_truth: dict, object_key: str, schema: dict = SCHEMA):
    """stage() the channels, then run the data-check script for object_key."""
    stage(root, batch, predictions, ground_truth, object_key, schema)
    return check(root, object_key)


def checked(root, batch: dict, predictions: list, ground_truth: dict, object_key: str,
            schema: dict = SCHEMA) -> dict:
    """staged_check() that must succeed; the ground-truth status document it wrote."""
    proc = staged_check(root, batch, predictions, ground_truth, object_key, schema)
    assert proc.returncode == 0, proc.stderr
    return status(root)


def out(root, *parts):
    return root / "processing" / "output" / Path(*parts)


def status(root):
    return json.loads(out(root, "ground_truth", "ground_truth.json").read_text())


ROWS_A = "red,1.0\nblue,2.5\nred,3.0\n"


def test_a_batch_is_scored_against_its_own_labels_only(tmp_path):
    root = tmp_path / "opt/ml"
    # the ground-truth prefix also holds another batch's labels: they must never be used
    st = checked(root, {"batch-a.csv": ROWS_A}, [10, 20, 30],
                 {"batch-a.csv": "11\n19\n33\n", "batch-b.csv": "90\n90\n90\n"}, f"{PREFIX}/batch-a.csv")
    assert st["available"] is True and st["rows"] == 3 and st["labelled"] == ["batch-a.csv"] and not st["quarantined"]
    pairs = out(root, "model_quality", "model_quality_input.csv").read_text().splitlines()
    assert pairs == ["prediction,ground_truth", "10,11", "20,19", "30,33"]
    assert json.loads(out(root, "model_quality", "ground_truth.json").read_text()) == st
    # feedback: the batch in the training convention (schema order, label in the target's place) + manifest
    assert out(root, "feedback", "data", "batch-a.csv").read_text().splitlines() == ["red,1.0,11", "blue,2.5,19", "red,3.0,33"]
    manifest = json.loads(out(root, "feedback", "manifest.json").read_text())
    assert manifest["execution"] == "exec-1" and manifest["object_key"] == f"{PREFIX}/batch-a.csv"
    assert [(b["batch"], b["rows"]) for b in manifest["batches"]] == [("batch-a.csv", 3)]
    assert not out(root, "quarantine").exists()
    # the data-quality check gets the features, the prediction-drift check the predictions, apart
    assert out(root, "data_check", "data_check.csv").read_text().splitlines()[0] == "color,x"
    assert out(root, "prediction_check", "predictions.csv").read_text().splitlines() == ["prediction", "10", "20", "30"]


def test_a_batch_without_its_own_ground_truth_is_not_scored(tmp_path):
    """The stale-label scenario of issue 10: an older batch's labels are in ground-truth/, the new batch has none."""
    root = tmp_path / "opt/ml"
    st = checked(root, {"batch-new.csv": ROWS_A}, [10, 20, 30], {"batch-old.csv": "11\n19\n33\n"}, f"{PREFIX}/batch-new.csv")
    assert st["available"] is False and st["rows"] == 0 and not st["quarantined"]
    assert "not scored" in st["note"] and "ground-truth/batch-new.csv" in st["note"]
    assert not out(root, "model_quality", "model_quality_input.csv").exists()
    assert not out(root, "feedback").exists()
    # the data-quality check still gets the batch
    assert len(out(root, "data_check", "data_check.csv").read_text().splitlines()) == 4


def test_nested_batch_names_pair_by_their_path_below_input(tmp_path):
    root = tmp_path / "opt/ml"
    assert checked(root, {"2026/01/15.csv": ROWS_A}, [1, 2, 3], {"2026/01/15.csv": "1\n2\n3\n", "15.csv": "9\n9\n9\n"},
                   f"{PREFIX}/2026/01/15.csv")["labelled"] == ["2026/01/15.csv"]
    assert out(root, "model_quality", "model_quality_input.csv").read_text().splitlines()[1:] == ["1,1", "2,2", "3,3"]


def test_a_scheduled_run_pairs_each_file_with_its_own_labels(tmp_path):
    """No object (the default InputObjectKey is the input prefix): every file under it, each its own batch;
    files without labels are listed in the note and not scored; labels join by position within each file."""
    root = tmp_path / "opt/ml"
    st = checked(root, {"a.csv": "red,1\nred,2\n", "b.csv": "blue,3\n", "c.csv": "red,4\nblue,5\n"},
                 [10, 20, 30, 40, 50], {"a.csv": "11\n21\n", "c.csv": "41\n51\n"}, f"{PREFIX}/")
    assert st["batches"] == ["a.csv", "b.csv", "c.csv"] and st["labelled"] == ["a.csv", "c.csv"] and st["rows"] == 4
    assert "b.csv: no ground truth" in st["note"]
    assert out(root, "model_quality", "model_quality_input.csv").read_text().splitlines()[1:] == \
        ["10,11", "20,21", "40,41", "50,51"]
    assert sorted(p.name for p in out(root, "feedback", "data").iterdir()) == ["a.csv", "c.csv"]


def test_counts_are_checked(tmp_path):
    root = tmp_path / "opt/ml"
    proc = staged_check(root, {"batch-a.csv": ROWS_A}, [10, 20], {}, f"{PREFIX}/batch-a.csv")
    assert proc.returncode == 1
    assert "row count mismatch" in message(root) and "3 rows" in message(root) and "have 2" in message(root)


def test_numeric_category_labels_are_one_category_however_spelled(tmp_path):
    """With categories [1, 2], the preprocessing reads "1.0" as category 1: the feedback check agrees (the batch
    is training data, not quarantined) and the checked and fed-back rows carry the canonical spelling."""
    schema = {"name": "toy", "target": "y", "columns": [
        {"name": "size", "type": "categorical", "categories": [1, 2]}, {"name": "x", "type": "float"},
        {"name": "y", "type": "float"}]}
    root = tmp_path / "opt/ml"
    st = checked(root, {"batch-a.csv": "1.0,3.5\n2,4.0\n"}, [10, 20], {"batch-a.csv": "11\n19\n"},
                 f"{PREFIX}/batch-a.csv", schema)
    assert st["available"] is True and not st["quarantined"]
    assert out(root, "feedback", "data", "batch-a.csv").read_text().splitlines() == ["1,3.5,11", "2,4.0,19"]
    assert out(root, "data_check", "data_check.csv").read_text().splitlines()[1:] == ["1,3.5", "2,4.0"]


def test_labels_that_do_not_fit_the_batch_are_quarantined_not_scored(tmp_path):
    root = tmp_path / "opt/ml"
    st = checked(root, {"batch-a.csv": ROWS_A}, [10, 20, 30], {"batch-a.csv": "11\n19\n"}, f"{PREFIX}/batch-a.csv")
    assert st["available"] is False and st["quarantined"] is True
    assert "2 labels for 3 rows" in st["note"]
    reasons = json.loads(out(root, "quarantine", "reasons.json").read_text())
    assert list(reasons["reasons"]) == ["batch-a.csv"]
    assert out(root, "quarantine", "data", "batch-a.csv.ground-truth").read_text() == "11\n19\n"
    assert not out(root, "feedback").exists() and not out(root, "model_quality", "model_quality_input.csv").exists()


@pytest.mark.parametrize("label,expected", [("1e300", "above the schema maximum 100"), ("-4", "below the schema minimum 0"),
                                            ("inf", "non-numeric, missing or non-finite value 'inf'"),
                                            ("abc", "non-numeric, missing or non-finite value 'abc'")])
def test_out_of_range_or_broken_labels_are_quarantined(tmp_path, label, expected):
    """The typo'd 1e300 label of issue 10: never scored (no mse=inf breach), never trained on."""
    root = tmp_path / "opt/ml"
    st = checked(root, {"batch-a.csv": ROWS_A}, [10, 20, 30], {"batch-a.csv": f"11\n{label}\n33\n"}, f"{PREFIX}/batch-a.csv")
    assert st["available"] is False and st["quarantined"] is True
    assert expected in st["note"] and "line 2" in st["note"]
    assert not out(root, "feedback").exists()
    assert (out(root, "quarantine", "data", "batch-a.csv").exists()
            or out(root, "quarantine", "data", "batch-a.csv.ground-truth").exists())


def test_a_label_file_of_one_value_is_quarantined_from_thirty_rows(tmp_path):
    """All labels the same (a placeholder, a wrong column): quarantined, not a breach and not feedback. A short
    batch of equal labels can be real, so it is scored."""
    rows = "".join(f"red,{i % 10}\n" for i in range(30))
    root = tmp_path / "long" / "opt/ml"
    st = checked(root, {"batch-a.csv": rows}, list(range(30)), {"batch-a.csv": "29\n" * 30}, f"{PREFIX}/batch-a.csv")
    assert st["available"] is False and st["quarantined"] is True
    assert "every one of its 30 labels is 29" in st["note"] and not out(root, "feedback").exists()
    root = tmp_path / "short" / "opt/ml"
    st = checked(root, {"batch-a.csv": ROWS_A}, [10, 20, 30], {"batch-a.csv": "29\n29\n29\n"}, f"{PREFIX}/batch-a.csv")
    assert st["available"] is True and not st["quarantined"]


@pytest.mark.parametrize("rows,expected", [("red,1\ngreen,2\nred,3\n", "line 2: column 'color': unknown category 'green'"),
                                           ("red,1\nred,2\nred,1e155\n", "line 3: column 'x': 1e155 is above the schema maximum 10")])
def test_features_outside_the_schema_are_scored_but_never_feedback(tmp_path, rows, expected):
    """Good labels, bad features: the model's predictions can be scored, but the rows are not training data."""
    root = tmp_path / "opt/ml"
    st = checked(root, {"batch-a.csv": rows}, [10, 20, 30], {"batch-a.csv": "11\n19\n33\n"}, f"{PREFIX}/batch-a.csv")
    assert st["available"] is True and st["quarantined"] is True and expected in st["note"]
    assert not out(root, "feedback").exists()
    assert out(root, "quarantine", "data", "batch-a.csv").read_text().splitlines()[0].endswith(",11")
    assert expected in json.loads(out(root, "quarantine", "reasons.json").read_text())["reasons"]["batch-a.csv"][0]


def test_keys_that_extend_the_object_key_make_the_batch_ambiguous(tmp_path):
    """S3Prefix staging of input/batch.csv also brings input/batch.csv.bak: refuse rather than mix rows."""
    root = tmp_path / "opt/ml"
    proc = staged_check(root, {"batch.csv": ROWS_A, "batch.csv.bak": ROWS_A}, [1] * 6, {}, f"{PREFIX}/batch.csv")
    assert proc.returncode == 1
    assert "batch.csv.bak" in message(root) and "Rename them" in message(root)


def test_an_object_outside_the_input_prefix_is_refused(tmp_path):
    root = tmp_path / "opt/ml"
    proc = staged_check(root, {"x.csv": ROWS_A}, [1, 2, 3], {}, "elsewhere/x.csv")
    assert proc.returncode == 1 and "not under the inference input prefix" in message(root)


# ---------------------------------------------------------------- model quality
def mq_stage(root, status_doc, pairs=None):
    """The model-quality step's input as the data check writes it: a complete ground_truth artifact
    (scripts/steplib/artifacts.json; the step refuses any other shape) and the pairs."""
    status = {"batches": ["batch-a.csv"], "labelled": ["batch-a.csv"] if status_doc["available"] else [],
              "quarantined": False, "note": "", **status_doc}
    write(root / "processing/input/model_quality/ground_truth.json", json.dumps(status))
    if pairs is not None:
        write(root / "processing/input/model_quality/model_quality_input.csv",
              "prediction,ground_truth\n" + "".join(f"{p},{t}\n" for p, t in pairs))


def mq_report(root):
    return json.loads((root / "processing/output/model_quality/model_quality.json").read_text())


@pytest.mark.parametrize("threshold,passed", [(100.0, True), (0.5, False)])
def test_model_quality_reports_the_verdict_and_succeeds_either_way(tmp_path, threshold, passed):
    """A breach is the pipeline's decision (ModelQualityCond -> FailStep), not a job failure."""
    root = tmp_path / "opt/ml"
    mq_stage(root, {"available": True, "rows": 3}, [(10, 11), (20, 19), (30, 33)])
    proc = run("model_quality.py", root, ["--mse-threshold", str(threshold)])
    assert proc.returncode == 0, proc.stderr
    report = mq_report(root)
    assert report["regression_metrics"]["mse"]["value"] == pytest.approx((1 + 1 + 9) / 3)
    assert report["threshold"] == {"metric": "mse", "value": threshold, "passed": passed}
    assert not (root / "output" / "message").exists()


def test_model_quality_without_ground_truth_writes_the_note(tmp_path):
    root = tmp_path / "opt/ml"
    mq_stage(root, {"available": False, "rows": 0, "note": "model quality not scored: no ground truth"})
    proc = run("model_quality.py", root, ["--mse-threshold", "5"])
    assert proc.returncode == 0, proc.stderr
    report = mq_report(root)
    assert "regression_metrics" not in report and report["threshold"]["passed"] is None
    assert report["ground_truth"]["note"] == "model quality not scored: no ground truth"


@pytest.mark.parametrize("pairs,status_rows,expected", [
    ([(1e200, 0), (0, 0)], 2, "metrics overflow"),
    ([(1, 1)], 5, "the data-check step paired 5"),
])
def test_model_quality_bad_input_fails_the_job_without_any_breach_wording(tmp_path, pairs, status_rows, expected):
    root = tmp_path / "opt/ml"
    mq_stage(root, {"available": True, "rows": status_rows}, pairs)
    proc = run("model_quality.py", root, ["--mse-threshold", "5"])
    assert proc.returncode == 1 and expected in message(root)
    assert "Breach" not in message(root)


# ---------------------------------------------------------------- the HPO pipeline's feedback window
def feedback_batch(directory: Path, execution: str, created: str, batches: dict):
    import hashlib
    entries = []
    for name, text in batches.items():
        write(directory / execution / "data" / name, text)
        rows = text.strip().splitlines()
        entries.append({"batch": name, "rows": len(rows), "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest()})
    write(directory / execution / "manifest.json", json.dumps({"execution": execution, "created": created,
                                                               "batches": entries}))


def load_preprocess_training():
    import importlib.util
    spec = importlib.util.spec_from_file_location("preprocess_training_window", SCRIPTS / "preprocess_training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_feedback_window_is_bounded_newest_first_and_deduplicated(tmp_path, capsys):
    pt = load_preprocess_training()
    fb = tmp_path / "feedback"
    feedback_batch(fb, "e1", "2026-01-01T00:00:00Z", {"a.csv": "red,1,1\n"})
    feedback_batch(fb, "e2", "2026-01-02T00:00:00Z", {"b.csv": "red,2,2\n"})
    feedback_batch(fb, "e3", "2026-01-03T00:00:00Z", {"a.csv": "red,1,5\n"})   # a.csv again, corrected labels
    feedback_batch(fb, "e4", "2026-01-04T00:00:00Z", {"c.csv": "red,2,2\n"})   # b.csv's content under a new name
    feedback_batch(fb, "e5", "2026-01-05T00:00:00Z", {"d.csv": "blue,3,3\n"})
    write(fb / "legacy" / "labelled-batch.csv", "red,9,9\n")                   # not this template's feedback
    chosen = pt.feedback_files(str(fb), 3)
    log = capsys.readouterr().out
    assert chosen == sorted([str(fb / "e5/data/d.csv"), str(fb / "e4/data/c.csv"), str(fb / "e3/data/a.csv")])
    assert "ignored 1 folder(s) without manifest.json: legacy" in log
    chosen = pt.feedback_files(str(fb), 10)
    # e1's a.csv is superseded by e3's corrected labels; e2's b.csv duplicates e4's content (newer kept)
    assert chosen == sorted(str(fb / p) for p in ("e5/data/d.csv", "e4/data/c.csv", "e3/data/a.csv"))
    assert "skipped e1/a.csv (an older copy of a newer batch)" in capsys.readouterr().out


def test_feedback_with_a_missing_file_or_an_invalid_manifest_is_skipped_not_fatal(tmp_path):
    """One bad feedback folder must not block every later retraining: it is skipped, with its reason."""
    pt = load_preprocess_training()
    fb = tmp_path / "feedback"
    feedback_batch(fb, "e1", "2026-01-01T00:00:00Z", {"a.csv": "red,1,1\n"})
    feedback_batch(fb, "e2", "2026-01-02T00:00:00Z", {"b.csv": "red,2,2\n"})
    (fb / "e1" / "data" / "a.csv").unlink()
    write(fb / "e2" / "manifest.json", "{not json")
    skipped = []
    chosen = pt.feedback_files(str(fb), 3, skipped)
    assert chosen == [str(fb / "e1/data/a.csv")]  # listed; reading it is what skips it (read_feedback)
    assert [s["file"] for s in skipped] == [str(fb / "e2/manifest.json")]
    assert "invalid feedback manifest" in skipped[0]["reason"]


def test_data_check_feedback_is_what_the_window_reads(tmp_path):
    """The two ends of the feedback path agree: the data-check output, as uploaded under <feedback>/<execution>/,
    is read back by the HPO preprocessing's window."""
    import shutil
    pt = load_preprocess_training()
    fb = tmp_path / "feedback"
    for n, execution in enumerate(("exec-1", "exec-2")):
        root = tmp_path / execution / "opt/ml"
        stage(root, {"batch-a.csv": ROWS_A}, [10, 20, 30], {"batch-a.csv": f"1{n}\n19\n33\n"}, f"{PREFIX}/batch-a.csv")
        assert check(root, f"{PREFIX}/batch-a.csv", execution=execution).returncode == 0
        shutil.copytree(out(root, "feedback"), fb / execution)
    (chosen,) = pt.feedback_files(str(fb), 10)  # same batch name: the newer labels only
    assert Path(chosen).read_text().splitlines()[0].endswith(",11")


# ---------------------------------------------------------------- the report step
def test_report_step_renders_next_to_the_data_quality_results(tmp_path):
    root = tmp_path / "opt/ml"
    inp = root / "processing" / "input"
    stats = {"version": 0.0, "dataset": {"item_count": 3}, "features": [
        {"name": "x", "inferred_type": "Fractional",
         "numerical_statistics": {"common": {"num_present": 3, "num_missing": 0}, "mean": 2.0, "sum": 6.0,
                                  "std_dev": 0.8, "min": 1.0, "max": 3.0}}]}
    write(inp / "data_quality" / "statistics.json", json.dumps(stats))
    write(inp / "data_quality" / "constraint_violations.json", json.dumps({"violations": [
        {"feature_name": "x", "constraint_check_type": "baseline_drift_check", "description": "drifted"}]}))
    write(inp / "baseline" / "statistics.json", json.dumps(stats))
    note = "model quality not scored: this batch has no ground truth of its own; batch-z.csv: no ground truth"
    write(inp / "model_quality" / "model_quality.json", json.dumps(
        {"ground_truth": {"available": False}, "threshold": {"metric": "mse", "value": 5.5, "passed": None}}))
    write(inp / "ground_truth" / "ground_truth.json", json.dumps(
        {"available": False, "rows": 0, "batches": ["batch-z.csv"], "labelled": [], "quarantined": False, "note": note}))
    proc = run("inference_report.py", root, ["--title", "Batch inference p e1", "--model-package", "arn:pkg/3"])
    assert proc.returncode == 0, proc.stderr
    page = (root / "processing" / "output" / "report" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "batch batch-z.csv" in page and "arn:pkg/3" in page
    assert "Not evaluated" in page and "batch-z.csv: no ground truth" in page and "drifted" in page


def test_report_step_without_data_quality_results_names_the_missing_file(tmp_path):
    root = tmp_path / "opt/ml"
    (root / "processing" / "input" / "data_quality").mkdir(parents=True)
    proc = run("inference_report.py", root, ["--title", "t"])
    assert proc.returncode == 1 and "data_quality: no statistics.json" in message(root)


@pytest.mark.parametrize("feedback,expected", [({"max_batches": 0}, "feedback.max_batches"),
                                               ({"max_batch": 5}, "feedback")])
def test_feedback_window_setting_is_validated(tmp_path, feedback, expected):
    import yaml
    from pipeline_scripts.config import ConfigError, load_pipeline_config
    settings = yaml.safe_load((ROOT / "pipeline_scripts" / "training_hpo_pipeline.yaml").read_text())
    assert load_pipeline_config("training_hpo").settings.feedback.max_batches >= 1
    settings["feedback"] = feedback
    path = tmp_path / "hpo.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError, match=expected):
        load_pipeline_config("training_hpo", settings_file=path)
