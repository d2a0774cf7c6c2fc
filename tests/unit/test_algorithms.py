"""The algorithm registry (scripts/steplib/algorithms.py) and the pipeline YAML checks derived from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline_scripts.config import ConfigError, load_pipeline_config, load_settings
from steplib import InputError, algorithms

ROOT = Path(__file__).resolve().parents[2]
YAML = {k: ROOT / "pipeline_scripts" / f"{k}_pipeline.yaml" for k in ("training", "training_hpo", "inference")}


def test_every_algorithm_builds_and_fits_with_its_defaults():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = 1e4 * (x[:, 0] + 0.1 * rng.normal(size=80))  # a large-scale target
    for algorithm in algorithms.ALGORITHMS.values():
        hps = {**algorithm.defaults(), "n_estimators": 10}
        for hp in algorithm.hyperparameters:
            assert hp.problem(hp.default) is None, (algorithm.name, hp.name)
        model = algorithm.estimator(hps).fit(x, y)
        assert np.isfinite(model.predict(x)).all()
        assert set(algorithm.images) <= {"sklearn", "xgboost"}


def test_hyperparameter_parse():
    hp = algorithms.ALGORITHMS["random_forest"].hyperparameter("n_estimators")
    assert hp.parse('"300"') == 300 and hp.parse("300.0") == 300
    with pytest.raises(InputError, match="expected an integer"):
        hp.parse("2.5")
    with pytest.raises(InputError, match=r"expected a value in \[1, 5000\]"):
        hp.parse("0")
    with pytest.raises(InputError, match="expected a number"):
        hp.parse("many")
    with pytest.raises(InputError, match="use one of random_forest"):
        algorithms.get("svm")


def write_yaml(tmp_path, kind, change):
    data = yaml.safe_load(YAML[kind].read_text())
    change(data)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _set(section, **values):
    return lambda d: d["training"]["hyperparameters"].update(values) if section == "hp" else d["tuning"][section].update(values)


@pytest.mark.parametrize("kind, change, expected", [
    ("training", _set("hp", n_estimatorz=10), r"'training.hyperparameters.n_estimatorz': not a hyperparameter of stacking"),
    ("training", _set("hp", n_estimators=0), r"'training.hyperparameters.n_estimators': expected a value in \[1, 5000\], got 0"),
    ("training", _set("hp", n_estimators=2.5), r"'training.hyperparameters.n_estimators': expected an integer"),
    ("training", _set("hp", subsample=1.5), r"'training.hyperparameters.subsample': expected a value in \(0, 1\]"),
    ("training", _set("hp", max_features="sqrt"), r"'training.hyperparameters.max_features': expected a number"),
    ("training", _set("hp", algorithm="random_forest", svr_c=3), r"'training.hyperparameters.(svr_c|svr_epsilon|stack_folds)': not a hyperparameter of random_forest "),
    ("training", _set("hp", algorithm="xgboost"), r"xgboost imports sklearn, xgboost, which the SageMaker 'sklearn' image does not carry"),
    ("training_hpo", _set("ranges", svr_cc={"type": "continuous", "min": 1, "max": 2}), r"'tuning.ranges.svr_cc': not a hyperparameter"),
    ("training_hpo", _set("ranges", n_estimators={"type": "continuous", "min": 10, "max": 20}), r"'tuning.ranges.n_estimators': n_estimators is int; use type integer"),
    ("training_hpo", _set("ranges", svr_epsilon={"type": "continuous", "min": 0.1, "max": 50}), r"'tuning.ranges.svr_epsilon': expected a value in \[0, 10\]"),
    ("training_hpo", _set("objective", type="Maximize"), r"'tuning.objective.type': validation:mse is an error, it can only be minimized"),
    ("training_hpo", _set("objective", metric="validation:rmse"), r"'tuning.objective.metric': train.py reports validation:mse"),
    ("training_hpo", _set("objective", regex="validation:mse=(x"), r"'tuning.objective.regex': not a valid regular expression"),
    ("training_hpo", _set("objective", regex="validation:mse"), r"'tuning.objective.regex': must capture the value"),
])
def test_yaml_refusals_name_file_and_key(tmp_path, kind, change, expected):
    path = write_yaml(tmp_path, kind, change)
    with pytest.raises(ConfigError, match=expected) as err:
        load_settings(kind, path)
    assert str(path) in str(err.value)


def test_xgboost_is_accepted_with_the_xgboost_image(tmp_path):
    def change(d):
        d["framework"] = {"name": "xgboost", "version": "1.7-1"}
        d["training"]["hyperparameters"] = {"algorithm": "xgboost", "n_estimators": 50, "max_depth": 4}
    assert load_settings("training", write_yaml(tmp_path, "training", change)).framework.name == "xgboost"


def test_shipped_yamls_pass():
    for kind, path in YAML.items():
        load_settings(kind, path)


def test_bogus_framework_version_is_a_clear_error(tmp_path):
    from pipeline_scripts import step_blocks

    path = write_yaml(tmp_path, "training", lambda d: d["framework"].update(version="99.9-9"))
    cfg = load_pipeline_config("training", settings_file=path)
    with pytest.raises(ConfigError, match=r"key 'framework': no SageMaker sklearn image for version '99.9-9'") as err:
        step_blocks.image_uri(cfg, "ml.m5.xlarge")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("shape", ["linear", "friedman1"])
def test_default_algorithm_is_not_worse_than_linear_regression(shape):
    """The default stacks a linear member: on a linear problem its weights fall back on it (a tie with linear
    regression), on a nonlinear one the forest and SVR members win (bench/bench_models.py measures this in CV)."""
    from sklearn.datasets import make_friedman1, make_regression
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    if shape == "linear":
        x, y = make_regression(n_samples=400, n_features=15, n_informative=10, noise=20.0, random_state=1)
    else:
        x, y = make_friedman1(n_samples=400, noise=1.0, random_state=1)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=0)
    default = algorithms.get(algorithms.DEFAULT_ALGORITHM)
    model = default.estimator({**default.defaults(), "n_estimators": 50}).fit(x_train, y_train)
    linear = LinearRegression().fit(x_train, y_train)
    mse, linear_mse = (float(np.mean((m.predict(x_test) - y_test) ** 2)) for m in (model, linear))
    assert mse <= (1.05 if shape == "linear" else 0.85) * linear_mse, (mse, linear_mse)
