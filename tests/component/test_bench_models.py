"""bench/bench_models.py's --variant: the default model with other hyperparameters, scored on the same folds."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


@pytest.fixture
def sample(tmp_path):
    from tools import synth

    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(synth.SAMPLE_SCHEMA))
    schema = synth.as_schema(synth.SAMPLE_SCHEMA)
    data = tmp_path / "sample.csv"
    synth.write_csv(synth.generate(schema, 160, seed=3), data, schema.columns, header=True)
    return data, schema_path


def test_a_variant_is_scored_on_the_same_folds_with_its_difference_to_the_default(sample, capsys):
    import bench_models

    data, schema = sample
    # every algorithm has a seed (steplib/algorithms.py); whichever the training YAML names is the default
    assert bench_models.main(["--data", str(data), "--schema", str(schema), "--folds", "3",
                              "--variant", "seed=7", "--variant", "seed=8,seed=9"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])["data_sets"][0]
    assert set(report["vs_default"]) == {"default seed=7", "default seed=8,seed=9"}
    for name, diff in report["vs_default"].items():
        folds, default = report["results"][name]["folds"], report["results"]["default"]["folds"]
        assert len(folds) == len(default) == 3
        assert diff["mean_difference"] == pytest.approx(sum(folds) / 3 - sum(default) / 3)
        assert f"{name} vs default" in out


def test_a_variant_naming_no_hyperparameter_of_the_default_model_is_refused(sample):
    import bench_models

    data, schema = sample
    with pytest.raises(SystemExit, match="'trees=5' is not NAME=VALUE of a .* hyperparameter"):
        bench_models.main(["--data", str(data), "--schema", str(schema), "--variant", "trees=5"])


def test_a_variant_with_a_bad_value_names_it(sample):
    import bench_models

    data, schema = sample
    with pytest.raises(SystemExit, match="--variant 'seed=many': hyperparameter seed='many'"):
        bench_models.main(["--data", str(data), "--schema", str(schema), "--variant", "seed=many"])


def test_the_reference_suite_is_scored_beside_the_given_data_through_the_template_import(sample, tmp_path, capsys):
    import bench_models
    import model_datasets

    from tools import make_data

    for data, schema_path in model_datasets.write(tmp_path / "sets"):  # each set passes the import's checks
        schema = make_data.load_schema(schema_path)
        table = make_data.read_table(data.read_text(), str(data), schema)
        assert len(table.rows) == len(data.read_text().splitlines()) - 1 and table.header
    data, schema = sample
    assert bench_models.main(["--data", str(data), "--schema", str(schema), "--folds", "2",
                              "--suite", str(tmp_path / "suite")]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["schema"] for r in report["data_sets"]] == ["sample", "diabetes", "friedman", "linear", "penguins"]
    assert [r["rows"] for r in report["data_sets"][1:]] == [442, 2000, 1000, 340]
