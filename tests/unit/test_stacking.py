"""steplib/stacking.py: stacked regression whose forest member contributes its out-of-bag predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor, StackingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.svm import SVR

from steplib.stacking import OutOfBagStackingRegressor


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.5 * x[:, 2] + 0.1 * rng.normal(size=n)
    return x, y


def _members(trees=40):
    return [("forest", RandomForestRegressor(n_estimators=trees, max_samples=0.5, random_state=0)),
            ("svr", SVR(C=1.0)), ("ridge", RidgeCV())]


def _stack(oob=("forest",), trees=40):
    return OutOfBagStackingRegressor(_members(trees), LinearRegression(positive=True),
                                     KFold(3, shuffle=True, random_state=1), oob_estimators=oob)


def test_without_out_of_bag_members_it_is_scikit_learns_stacking():
    x, y = _data()
    ours = _stack(oob=()).fit(x, y)
    theirs = StackingRegressor(_members(), final_estimator=LinearRegression(positive=True),
                               cv=KFold(3, shuffle=True, random_state=1)).fit(x, y)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    np.testing.assert_array_equal(ours.final_estimator_.coef_, theirs.final_estimator_.coef_)


def test_the_forest_is_fitted_once_and_its_weight_comes_from_its_out_of_bag_predictions(monkeypatch):
    x, y = _data()
    fits = []
    original = RandomForestRegressor.fit
    monkeypatch.setattr(RandomForestRegressor, "fit", lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    model = _stack().fit(x, y)
    assert len(fits) == 1  # K-fold stacking fits it stack_folds + 1 = 4 times
    forest, svr, ridge = model.estimators_
    honest = np.column_stack([forest.oob_prediction_,
                              cross_val_predict(SVR(C=1.0), x, y, cv=KFold(3, shuffle=True, random_state=1)),
                              cross_val_predict(RidgeCV(), x, y, cv=KFold(3, shuffle=True, random_state=1))])
    expected = LinearRegression(positive=True).fit(honest, y)
    np.testing.assert_allclose(model.final_estimator_.coef_, expected.coef_)
    assert np.all(model.final_estimator_.coef_ >= 0)
    # serving runs the members refitted on every row, combined with those weights
    np.testing.assert_allclose(model.predict(x[:5]),
                               expected.predict(np.column_stack([m.predict(x[:5]) for m in model.estimators_])))


def test_a_forest_too_small_to_leave_every_row_out_falls_back_on_k_fold_predictions(monkeypatch):
    """scikit-learn gives a row that no tree left out an out-of-bag prediction of 0; that must not reach the weights."""
    x, y = _data(n=200)
    y = y + 100.0  # a row predicted as 0 would be an outlier the weights could not ignore
    fits = []
    original = RandomForestRegressor.fit
    monkeypatch.setattr(RandomForestRegressor, "fit", lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    with pytest.warns(UserWarning, match="OOB"):  # scikit-learn's own warning about those rows
        model = _stack(trees=2).fit(x, y)
    assert len(fits) == 1 + 3  # once on all rows, then the 3 folds
    assert np.mean((model.predict(x) - y) ** 2) < np.var(y)


def test_a_name_that_is_no_member_is_refused():
    x, y = _data(n=50)
    with pytest.raises(ValueError, match=r"oob_estimators names no member: \['forrest'\]"):
        _stack(oob=("forrest",)).fit(x, y)


def test_the_fitted_stack_round_trips_through_joblib(tmp_path):
    import joblib

    x, y = _data(n=120)
    model = _stack(trees=20).fit(x, y)
    joblib.dump(model, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(x), model.predict(x))
