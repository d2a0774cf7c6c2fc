"""tools/make_data.py: synthetic generator (default and drifted), UCI import and fetch (file:// URL, offline)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_data_under_test", ROOT / "tools" / "make_data.py")
make_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_data)

COLS = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
        "shell_weight", "rings"]


def read(path, names):
    return pd.read_csv(path, header=None, names=names)


def features(df):
    x = df[COLS[1:-1]].to_numpy()
    return np.column_stack([x, *(df["sex"] == s for s in "MFI")])


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("gen")
    assert make_data.main(["--rows", "1500", "--inference-rows", "400", "--out-dir", str(base / "normal")]) == 0
    assert make_data.main(["--inference-rows", "400", "--drift", "--out-dir", str(base / "drift")]) == 0
    return base


def test_generator_files_are_headerless_schema_ordered_and_labelled(generated):
    d = generated / "normal"
    train = read(d / "training-data.csv", COLS)
    infer = read(d / "inference-data.csv", COLS[:-1])
    truth = read(d / "ground-truth.csv", ["rings"])
    assert len(train) == 1500 and len(infer) == len(truth) == 400
    assert set(train["sex"]) == {"M", "F", "I"} and train[COLS[1:]].notna().all().all()
    assert (train["diameter"] < train["length"]).all() and (train["shell_weight"] < train["whole_weight"]).all()
    assert train.groupby("sex")["rings"].mean()["I"] < train.groupby("sex")["rings"].mean()["F"]
    assert "synthetic" in (d / "README.md").read_text()
    assert not (d / "training-data.csv").read_text().startswith("sex")


def test_generator_is_deterministic(tmp_path, generated):
    make_data.main(["--rows", "1500", "--inference-rows", "400", "--out-dir", str(tmp_path)])
    for name in ("training-data.csv", "inference-data.csv", "ground-truth.csv"):
        assert (tmp_path / name).read_bytes() == (generated / "normal" / name).read_bytes()


def test_a_model_is_learnt_and_drift_breaks_it(generated):
    train = read(generated / "normal" / "training-data.csv", COLS)
    model = RandomForestRegressor(100, min_samples_leaf=4, random_state=0, n_jobs=-1)
    model.fit(features(train), train["rings"])
    mses = {}
    for kind in ("normal", "drift"):
        x = read(generated / kind / "inference-data.csv", COLS[:-1])
        y = read(generated / kind / "ground-truth.csv", ["rings"])["rings"]
        mses[kind] = float(np.mean((model.predict(features(x)) - y) ** 2))
    truth = read(generated / "normal" / "ground-truth.csv", ["rings"])["rings"]
    assert mses["normal"] < 0.6 * truth.var() and mses["normal"] < 5.5
    assert mses["drift"] > 5.5 * 1.1  # over the pipeline's default threshold with a margin
    drift = read(generated / "drift" / "inference-data.csv", COLS[:-1])
    normal = read(generated / "normal" / "inference-data.csv", COLS[:-1])
    assert drift["length"].mean() > normal["length"].mean() + 2 * normal["length"].std() / np.sqrt(400)
    assert not (generated / "drift" / "training-data.csv").exists()
    assert "DRIFTED" in (generated / "drift" / "README.md").read_text()


UCI = ("Sex,Length,Diameter,Height,Whole_weight,Shucked_weight,Viscera_weight,Shell_weight,Class  \n"
       "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9\n"
       "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7\n")


@pytest.mark.parametrize("with_header", [True, False])
def test_import_with_or_without_header(tmp_path, with_header):
    src = tmp_path / "abalone.csv"
    src.write_text(UCI if with_header else UCI.split("\n", 1)[1])
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "tools.make_data", "import", "--from", str(src), "--out-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "training-data.csv").read_text() == UCI.split("\n", 1)[1]
    assert "REAL data: 3 rows imported" in (out / "README.md").read_text()


def test_import_holdout_writes_inference_and_truth(tmp_path):
    src = tmp_path / "abalone.data"
    src.write_text(UCI.split("\n", 1)[1])
    assert make_data.main(["import", "--from", str(src), "--holdout", "1", "--out-dir", str(tmp_path / "o")]) == 0
    train = (tmp_path / "o" / "training-data.csv").read_text().splitlines()
    infer = (tmp_path / "o" / "inference-data.csv").read_text().splitlines()
    truth = (tmp_path / "o" / "ground-truth.csv").read_text().splitlines()
    assert len(train) == 2 and len(infer) == len(truth) == 1
    assert sorted(train + [f"{infer[0]},{truth[0]}"]) == sorted(UCI.splitlines()[1:])


@pytest.mark.parametrize("text,expected", [
    ("M,0.4,0.3\n", "line 1: expected 9 columns"),
    ("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\nQ,0.4,0.3,0.1,0.5,0.2,0.1,0.1,9\n", "line 2: unknown category 'Q'"),
    ("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\nM,0.4,x,0.1,0.5,0.2,0.1,0.1,9\n", "line 2: non-numeric value 'x'"),
    ("", "file is empty"),
])
def test_import_rejects_bad_files(tmp_path, capsys, text, expected):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    assert make_data.main(["import", "--from", str(src), "--out-dir", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert expected in err and "bad.csv" in err
    assert not (tmp_path / "o" / "training-data.csv").exists()


def test_fetch_uci_converts_the_download(tmp_path):
    src = tmp_path / "abalone.data"  # the real file has no header
    src.write_text(UCI.split("\n", 1)[1])
    assert make_data.main(["fetch-uci", "--url", src.as_uri(), "--out-dir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "training-data.csv").read_text() == src.read_text()


def test_fetch_uci_failure_is_clear(tmp_path, capsys):
    missing = (tmp_path / "nope.data").as_uri()
    assert make_data.main(["fetch-uci", "--url", missing, "--out-dir", str(tmp_path)]) == 1
    assert "could not download" in capsys.readouterr().err
