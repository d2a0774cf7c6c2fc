"""tools/make_data.py: the abalone-like generator of the shipped files (default and drifted), the import of any
data set against a schema (header or none, target anywhere, numeric categories, missing values, every value
checked), fetch (file:// URL, offline) and the schema-driven `synth` command.

The import tests use their own schemas (written to tmp), so they hold whatever the current data set is."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("make_data_under_test", ROOT / "tools" / "make_data.py")
make_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_data)
synth = make_data.synth

COLS = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
        "shell_weight", "rings"]


def read(path, names):
    return pd.read_csv(path, header=None, names=names)


def features(df):
    x = df[COLS[1:-1]].to_numpy()
    return np.column_stack([x, *(df["sex"] == s for s in "MFI")])


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The abalone-like generator writes the shipped files; it does not read the current schema."""
    base = tmp_path_factory.mktemp("gen")
    make_data.generate(base / "normal", 1500, 400, make_data.DEFAULT_SEED, drift=False)
    make_data.generate(base / "drift", 4177, 400, make_data.DEFAULT_SEED, drift=True)
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
    make_data.generate(tmp_path, 1500, 400, make_data.DEFAULT_SEED, drift=False)
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



# ---------------------------------------------------------------- import, against a schema of the test's own
# target first, numeric category labels, an integer column with a range, text categories, missing-value tokens
SCHEMA = {
    "name": "cars", "target": "price",
    "columns": [
        {"name": "price", "type": "float", "min": 0},
        {"name": "cylinders", "type": "categorical", "categories": [3, 4, 5, 6, 8]},
        {"name": "weight", "type": "float"},
        {"name": "year", "type": "int", "min": 1970, "max": 1990},
        {"name": "origin", "type": "categorical", "categories": ["usa", "europe", "japan"]},
    ],
    "missing_values": {"tokens": ["", "NA", "?"]},
}
NAMES = [c["name"] for c in SCHEMA["columns"]]


def run_import(tmp_path, text, *extra, schema=SCHEMA, name="cars.csv"):
    src = tmp_path / name
    src.write_text(text)
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(schema))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "tools.make_data", "import", "--from", str(src), "--schema",
                           str(schema_path), "--out-dir", str(out), *extra], cwd=ROOT, capture_output=True, text=True)
    return proc, out


def lines(path):
    return path.read_text().splitlines()


def test_import_generated_data_with_a_shuffled_header_puts_the_target_where_the_schema_says(tmp_path):
    """Generated rows, written with a header in another column order (target last in the file, first in the
    schema): the import matches columns by name; holdout rows split into features and target, row-aligned."""
    frame = synth.generate(SCHEMA, 300, 11, missing=0.0)
    order = ["origin", "weight", "year", "cylinders", "price"]
    typed = synth.as_schema(SCHEMA)
    src_rows = synth.rows_text(frame, [typed.column(n) for n in order])
    text = ",".join(order) + "\n" + "\n".join(",".join(r) for r in src_rows) + "\n"
    proc, out = run_import(tmp_path, text, "--holdout", "50")
    assert proc.returncode == 0, proc.stderr
    expected = {tuple(r) for r in synth.rows_text(frame, typed.columns)}
    train = [tuple(l.split(",")) for l in lines(out / "training-data.csv")]
    infer = [l.split(",") for l in lines(out / "inference-data.csv")]
    truth = [l.split(",") for l in lines(out / "ground-truth.csv")]
    assert len(train) == 250 and len(infer) == len(truth) == 50
    rebuilt = {tuple(t + f) for f, t in zip(infer, truth)}  # schema order: price first, then the features
    assert set(train) | rebuilt == expected and not set(train) & rebuilt
    assert "columns matched by header" in proc.stdout and "no missing values" in proc.stdout
    readme = (out / "README.md").read_text()
    assert "target (`price`) where the schema puts it (column 1 of 5)" in readme


def test_import_without_header_reads_schema_order(tmp_path):
    text = "12.5,4,2.1,1980,usa\n9.0,8,3.3,1975,japan\n"
    proc, out = run_import(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert lines(out / "training-data.csv") == ["12.5,4,2.1,1980,usa", "9.0,8,3.3,1975,japan"]
    assert "no header: schema column order" in proc.stdout


def test_numeric_categories_match_by_value_and_unknown_ones_are_named(tmp_path):
    ok, out = run_import(tmp_path, "price,cylinders,weight,year,origin\n10,4.0,2,1980,usa\n11,6,2,1981,europe\n")
    assert ok.returncode == 0, ok.stderr
    assert [l.split(",")[1] for l in lines(out / "training-data.csv")] == ["4", "6"]
    bad, _ = run_import(tmp_path, "10,4,2,1980,usa\n11,7,2,1981,europe\n")
    assert bad.returncode == 1
    assert "cars.csv: line 2, column 'cylinders': unknown category '7' (allowed: 3, 4, 5, 6, 8)" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_missing_values_are_kept_and_counted_and_rows_without_target_set_aside(tmp_path):
    text = ("price,cylinders,weight,year,origin\n10,4,NA,1980,usa\n,6,2.5,1981,europe\n12,?,3,1982,\n"
            "13,8,3.1,1983,japan\n")
    proc, out = run_import(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert lines(out / "training-data.csv") == ["10,4,,1980,usa", "12,,3,1982,", "13,8,3.1,1983,japan"]
    assert lines(out / "unlabelled-rows.csv") == ["6,2.5,1981,europe"]  # features only, schema order
    assert "3 of 4 rows have missing values (price 1, cylinders 1, weight 1, origin 1)" in proc.stdout
    assert "1 rows have no value for the target 'price'" in proc.stdout and "unlabelled-rows.csv" in proc.stdout
    assert "unlabelled-rows.csv" in (out / "README.md").read_text()


def test_missing_target_rows_are_never_held_out(tmp_path):
    text = "10,4,2,1980,usa\n,6,2,1981,usa\n12,4,2,1982,usa\n"
    proc, out = run_import(tmp_path, text, "--holdout", "1")
    assert proc.returncode == 0, proc.stderr
    assert lines(out / "ground-truth.csv")[0] in ("10", "12")
    proc, _ = run_import(tmp_path, text, "--holdout", "2")
    assert proc.returncode == 1 and "--holdout must be between 0 and 1 (the data has 2 labelled rows)" in proc.stderr


@pytest.mark.parametrize("text,expected", [
    ("price,cylinders,weight,origin\n1,4,2,usa\n", "the header does not match scripts/dataset_schema.json: "
                                                   "missing schema columns: year"),
    ("price,cylinders,weight,year,origin,id\n1,4,2,1980,usa,7\n", "columns the schema does not have: id"),
    ("price,price,weight,year,origin\n1,4,2,1980,usa\n", "repeated columns: price"),
    ("a,b,c,d,e\n1,4,2,1980,usa\n", "line 1: looks like a header (a, b, c, d, e) but names none of the schema"),
    ("10,4,2,1980\n", "line 1: expected 5 columns (price, cylinders, weight, year, origin), found 4"),
    ("10,4,x,1980,usa\n", "line 1, column 'weight': non-numeric value 'x' in a numeric column"),
    ("10,4,inf,1980,usa\n", "line 1, column 'weight': non-finite value 'inf'"),
    ("10,4,2,1980.5,usa\n", "line 1, column 'year': '1980.5' is not a whole number"),
    ("10,4,2,1960,usa\n", "line 1, column 'year': '1960' is outside the schema's range [1970, 1990]"),
    ("-1,4,2,1980,usa\n", "line 1, column 'price': '-1' is outside the schema's range [0, inf]"),
    ("10,4,2,1980,USA\n", "line 1, column 'origin': unknown category 'USA' (allowed: usa, europe, japan)"),
    ("", "file is empty"),
    ("price,cylinders,weight,year,origin\n", "no data rows (only a header)"),
])
def test_import_rejects_bad_files_naming_file_line_column_and_value(tmp_path, text, expected):
    proc, out = run_import(tmp_path, text, name="bad.csv")
    assert proc.returncode == 1
    assert expected in proc.stderr and "bad.csv" in proc.stderr, proc.stderr
    assert not (out / "training-data.csv").exists()


def test_import_lists_every_bad_line_not_just_the_first(tmp_path):
    text = "10,4,2,1980,usa\n10,9,2,1980,usa\n10,4,2,1980,mars\n" + "x,4,2,1980,usa\n" * 30
    proc, _ = run_import(tmp_path, text, name="bad.csv")
    assert proc.returncode == 1
    assert "32 bad line(s); nothing was written" in proc.stderr
    assert "line 2, column 'cylinders'" in proc.stderr and "line 3, column 'origin'" in proc.stderr
    assert "... and 12 more" in proc.stderr


def test_a_header_with_other_names_can_be_skipped_when_columns_are_in_schema_order(tmp_path):
    text = "Price,Cyl,Wt,Yr,From\n10,4,2,1980,usa\n"
    proc, _ = run_import(tmp_path, text)
    assert proc.returncode == 1 and "pass --ignore-header" in proc.stderr
    proc, out = run_import(tmp_path, text, "--ignore-header")
    assert proc.returncode == 0, proc.stderr
    assert lines(out / "training-data.csv") == ["10,4,2,1980,usa"]


def test_blank_lines_and_a_byte_order_mark_are_not_data(tmp_path):
    proc, out = run_import(tmp_path, "\ufeffprice,cylinders,weight,year,origin\n10,4,2,1980,usa\n\n")
    assert proc.returncode == 0, proc.stderr
    assert lines(out / "training-data.csv") == ["10,4,2,1980,usa"]


UCI = ("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9\n"
       "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7\n")


def test_fetch_uci_converts_the_download(tmp_path):
    src = tmp_path / "abalone.data"  # the real file has no header
    src.write_text(UCI)
    schema = tmp_path / "abalone.json"
    schema.write_text(json.dumps(make_data.ABALONE_SCHEMA))
    assert make_data.main(["fetch-uci", "--url", src.as_uri(), "--schema", str(schema),
                           "--out-dir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "training-data.csv").read_text() == UCI


def test_fetch_uci_failure_is_clear(tmp_path, capsys):
    missing = (tmp_path / "nope.data").as_uri()
    assert make_data.main(["fetch-uci", "--url", missing, "--out-dir", str(tmp_path)]) == 1
    assert "could not download" in capsys.readouterr().err


def test_synth_command_writes_the_convention_for_any_schema(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    assert make_data.main(["synth", "--rows", "50", "--inference-rows", "20", "--missing", "0.1",
                           "--schema", str(schema), "--out-dir", str(tmp_path / "o")]) == 0
    train = lines(tmp_path / "o" / "training-data.csv")
    assert len(train) == 50 and all(len(l.split(",")) == 5 for l in train)
    assert any(",," in l or l.endswith(",") for l in train)  # some missing cells
    assert len(lines(tmp_path / "o" / "inference-data.csv")) == len(lines(tmp_path / "o" / "ground-truth.csv")) == 20
    again = tmp_path / "again"
    make_data.main(["synth", "--rows", "50", "--inference-rows", "20", "--missing", "0.1",
                    "--schema", str(schema), "--out-dir", str(again)])
    assert (again / "training-data.csv").read_bytes() == (tmp_path / "o" / "training-data.csv").read_bytes()


def test_the_abalone_schema_range_is_the_import_rule_on_the_default_commands_labels(tmp_path):
    """The shipped schema's target range (ABALONE_SCHEMA keeps the same) is target_range() of what the default
    command writes, training rows and held-out labels alike; the drifted population stays inside it."""
    make_data.generate(tmp_path / "normal", 4177, 1000, make_data.DEFAULT_SEED, drift=False)
    make_data.generate(tmp_path / "drift", 4177, 1000, make_data.DEFAULT_SEED, drift=True)
    labels = (read(tmp_path / "normal" / "training-data.csv", COLS)["rings"].tolist()
              + read(tmp_path / "normal" / "ground-truth.csv", ["rings"])["rings"].tolist())
    rings = make_data.ABALONE_SCHEMA["columns"][-1]
    assert make_data.target_range(labels) == (rings["min"], rings["max"])
    drifted = read(tmp_path / "drift" / "ground-truth.csv", ["rings"])["rings"]
    assert rings["min"] <= drifted.min() and drifted.max() <= rings["max"]
