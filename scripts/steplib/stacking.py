"""Stacked regression (Breiman, Machine Learning 24, 1996) that takes a bagged member's out-of-bag predictions.

Stacking fits the combination weights on every member's *honest* predictions, made by a model that did not see
the row. scikit-learn's StackingRegressor gets them by refitting each member on K folds, so the forest, most of
the training cost, is fitted K + 1 times. A bagged forest already holds honest predictions for every row: those
of the trees whose bootstrap sample left the row out (Breiman, "Out-of-bag estimation", 1996; about 61 % of the
trees at subsample 0.5). With them the forest is fitted once; members without out-of-bag predictions (SVR,
ridge) keep their K-fold ones. The combination is the same as StackingRegressor's: the final estimator fitted on
the honest predictions, the members refitted on all rows for serving.

scikit-learn has no stacking with per-member honest predictions, so this composes its public parts (clone,
cross_val_predict, the forest's ``oob_prediction_`` and ``estimators_samples_``) instead.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted


class OutOfBagStackingRegressor(RegressorMixin, BaseEstimator):
    """estimators: [(name, regressor)]; the ones named in oob_estimators (bagged, bootstrap on) contribute their
    out-of-bag predictions, every other one its cross_val_predict predictions over cv."""

    def __init__(self, estimators, final_estimator, cv, oob_estimators=()):
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv
        self.oob_estimators = oob_estimators

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        unknown = set(self.oob_estimators) - {name for name, _ in self.estimators}
        if unknown:
            raise ValueError(f"oob_estimators names no member: {sorted(unknown)}")
        self.estimators_, honest = [], []
        for name, estimator in self.estimators:
            if name in self.oob_estimators:
                member = clone(estimator).set_params(oob_score=True).fit(X, y)
                predictions = member.oob_prediction_ if _every_row_out_of_bag(member, len(y)) else None
            else:
                member, predictions = clone(estimator).fit(X, y), None
            if predictions is None:  # K-fold, as StackingRegressor does (also for a forest too small to leave
                # every row out of some tree: scikit-learn would give such a row a prediction of 0, not an error)
                predictions = cross_val_predict(clone(estimator), X, y, cv=self.cv)
            self.estimators_.append(member)
            honest.append(np.asarray(predictions, dtype=float).ravel())
        self.final_estimator_ = clone(self.final_estimator).fit(np.column_stack(honest), y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        check_is_fitted(self, "final_estimator_")
        X = np.asarray(X, dtype=float)
        return self.final_estimator_.predict(np.column_stack([m.predict(X) for m in self.estimators_]))


def _every_row_out_of_bag(forest, n_rows: int) -> bool:
    """Whether each row was left out of at least one tree's bootstrap sample."""
    left_out = np.zeros(n_rows, dtype=bool)
    for drawn in forest.estimators_samples_:
        in_bag = np.zeros(n_rows, dtype=bool)
        in_bag[drawn] = True
        left_out |= ~in_bag
        if left_out.all():
            return True
    return False
