"""The algorithm registry: name -> estimator factory, hyperparameters (type, range, default), the Python
packages it imports and the SageMaker framework images that carry them.

train.py builds its estimator and parses its arguments from here; pipeline_scripts/settings.py validates the
YAML's hyperparameters, tuning ranges and objective against it, and refuses an algorithm the configured
image cannot run. A new algorithm is one entry in ALGORITHMS (plus its YAML, if a pipeline uses it).

Every regressor is wrapped in a TransformedTargetRegressor that standardizes the target (fitted on the
train split): the defaults below (SVR's C and epsilon, tree leaf sizes) then mean the same on a target
measured in rings or in grams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import InputError

# The tuning objective every algorithm reports (train.py prints it); MSE can only be minimized.
OBJECTIVE_METRIC = "validation:mse"
OBJECTIVE_TYPE = "Minimize"
OBJECTIVE_LINE = OBJECTIVE_METRIC + "={value:.6f}"


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    type: type  # int | float | str
    default: Any
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    help: str = ""

    @property
    def tuning_type(self) -> str:
        """The tuning range type SageMaker uses for it."""
        return {int: "integer", float: "continuous"}.get(self.type, "categorical")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.type is str:
            return None if isinstance(value, str) else f"expected a string, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {value!r}"
        if self.type is int and float(value) != int(value):
            return f"expected an integer, got {value!r}"
        if not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        low_ok = self.min is None or (value > self.min if self.min_exclusive else value >= self.min)
        if not low_ok or (self.max is not None and value > self.max):
            return f"expected a value in {self.range_text()}, got {value!r}"
        return None

    def range_text(self) -> str:
        low = "-inf" if self.min is None else f"{self.min:g}"
        high = "inf" if self.max is None else f"{self.max:g}"
        return f"{'(' if self.min_exclusive else '['}{low}, {high}]"

    def parse(self, text: str) -> Any:
        """A command-line value (SageMaker passes hyperparameters as strings, older SDKs JSON-quoted)."""
        raw = str(text).strip().strip('"').strip("'")
        if self.type is str:
            value: Any = raw
        else:
            try:
                number = float(raw)
            except ValueError:
                raise InputError(f"hyperparameter {self.name}={raw!r}: expected a number") from None
            value = int(number) if self.type is int and number.is_integer() else number
        problem = self.problem(value)
        if problem:
            raise InputError(f"hyperparameter {self.name}={raw!r}: {problem}")
        return value


@dataclass(frozen=True)
class Algorithm:
    name: str
    hyperparameters: tuple[Hyperparameter, ...]
    build: Callable[[dict[str, Any]], Any]  # validated hyperparameters -> unfitted regressor
    packages: tuple[str, ...]  # Python modules it imports (the image must have them)
    images: tuple[str, ...]  # SageMaker framework images (framework.name) whose containers carry them
    description: str = ""

    def hyperparameter(self, name: str) -> Hyperparameter:
        for hp in self.hyperparameters:
            if hp.name == name:
                return hp
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [hp.name for hp in self.hyperparameters]

    def defaults(self) -> dict[str, Any]:
        return {hp.name: hp.default for hp in self.hyperparameters}

    def estimator(self, hps: dict[str, Any]) -> Any:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        return TransformedTargetRegressor(regressor=self.build(hps), transformer=StandardScaler())


# --- factories -------------------------------------------------------------------------------------

def _forest(hp: dict[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=hp["n_estimators"], max_depth=hp["max_depth"] or None, min_samples_leaf=hp["min_samples_leaf"],
        max_features=hp["max_features"], max_samples=hp["subsample"] if hp["subsample"] < 1 else None,
        random_state=hp["seed"], n_jobs=-1)


def _forest_svr(hp: dict[str, Any]) -> Any:
    # Trees fit the step-like effects, the RBF kernel the smooth size/weight relation; averaging the two
    # lowers validation MSE (bench/measure_model_quality.py).
    from sklearn.ensemble import VotingRegressor
    from sklearn.svm import SVR

    return VotingRegressor([("forest", _forest(hp)), ("svr", SVR(C=hp["svr_c"], epsilon=hp["svr_epsilon"]))])


def _stacking(hp: dict[str, Any]) -> Any:
    # Breiman's stacked regression (Machine Learning 24, 1996): the forest (step-like effects, interactions), an
    # RBF SVR (smooth relations) and a ridge regression (the linear part) are combined with non-negative
    # weights fitted on their honest (out-of-fold) predictions. Because the linear model is a member, the
    # combination can always fall back on it: on a linear data set the weights go to ridge, and the default
    # ties with linear regression there (bench/bench_models.py), where a fixed average of forest and SVR lost
    # by 20 % on scikit-learn's diabetes data (CV MSE 3,589 against 2,978). SVR's C is 1: on standardized features and
    # target a flatter kernel fit is the better member on small data sets, and the stack takes the forest
    # where the data need more. The forest's honest predictions are its out-of-bag ones (stack_forest_oob=1,
    # steplib/stacking.py): it is fitted once, SVR and ridge stack_folds + 1 times; serving runs one of each.
    import numpy as np
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.svm import SVR

    from .stacking import OutOfBagStackingRegressor

    members = [("forest", _forest(hp)), ("svr", SVR(C=hp["svr_c"], epsilon=hp["svr_epsilon"])),
               ("ridge", RidgeCV(alphas=np.logspace(-3, 3, 13)))]  # alpha by efficient leave-one-out
    folds = KFold(hp["stack_folds"], shuffle=True, random_state=hp["seed"])
    return OutOfBagStackingRegressor(members, final_estimator=LinearRegression(positive=True), cv=folds,
                                     oob_estimators=("forest",) if hp["stack_forest_oob"] else ())


def _xgboost(hp: dict[str, Any]) -> Any:
    import xgboost  # only in the XGBoost framework image (see ALGORITHMS["xgboost"].images)

    return xgboost.XGBRegressor(
        n_estimators=hp["n_estimators"], max_depth=hp["max_depth"], learning_rate=hp["learning_rate"],
        subsample=hp["subsample"], min_child_weight=hp["min_child_weight"], random_state=hp["seed"], n_jobs=-1)


_SEED = Hyperparameter("seed", int, 42, 0, 2**31 - 1, help="random seed")
_TREES = Hyperparameter("n_estimators", int, 300, 1, 5000, help="number of trees")
_FOREST = (
    _TREES,
    Hyperparameter("max_depth", int, 0, 0, 1000, help="tree depth limit; 0: unlimited"),
    Hyperparameter("min_samples_leaf", int, 4, 1, 100000, help="rows per leaf at least"),
    Hyperparameter("max_features", float, 0.7, 0.0, 1.0, min_exclusive=True, help="fraction of features per split"),
    Hyperparameter("subsample", float, 0.5, 0.0, 1.0, min_exclusive=True, help="fraction of rows per tree"),
    _SEED,
)
_SVR = (
    Hyperparameter("svr_c", float, 30.0, 0.0, 1e6, min_exclusive=True, help="SVR regularization C"),
    Hyperparameter("svr_epsilon", float, 0.2, 0.0, 10.0, help="SVR epsilon tube (standardized target units)"),
)

_STACKING = (
    Hyperparameter("svr_c", float, 1.0, 0.0, 1e6, min_exclusive=True, help="SVR regularization C"),
    _SVR[1],
    Hyperparameter("stack_folds", int, 3, 2, 20, help="folds of the out-of-fold predictions the weights are fitted on"),
    Hyperparameter("stack_forest_oob", int, 1, 0, 1,
                   help="1: the forest's weight is fitted on its out-of-bag predictions (one forest fit); "
                        "0: on K-fold refits like the other members (stack_folds + 1 forest fits)"),
)

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("random_forest", _FOREST, _forest, ("sklearn",), ("sklearn",),
              "random forest"),
    Algorithm("random_forest_svr", _FOREST + _SVR, _forest_svr, ("sklearn",), ("sklearn",),
              "average of a random forest and an RBF support-vector regressor"),
    Algorithm("stacking", _FOREST + _STACKING, _stacking, ("sklearn",), ("sklearn",),
              "random forest, RBF support-vector and ridge regressors stacked with non-negative weights"),
    Algorithm("xgboost", (
        _TREES,
        Hyperparameter("max_depth", int, 6, 1, 100, help="tree depth"),
        Hyperparameter("learning_rate", float, 0.05, 0.0, 1.0, min_exclusive=True, help="shrinkage"),
        Hyperparameter("subsample", float, 0.5, 0.0, 1.0, min_exclusive=True, help="fraction of rows per tree"),
        Hyperparameter("min_child_weight", float, 4.0, 0.0, 1e6, help="minimum hessian weight per leaf"),
        _SEED,
    ), _xgboost, ("sklearn", "xgboost"), ("xgboost",), "gradient-boosted trees (XGBoost framework image)"),
)}
DEFAULT_ALGORITHM = "stacking"


def get(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise InputError(f"hyperparameter algorithm={name!r}: use one of {', '.join(ALGORITHMS)}") from None


def preload_modules() -> list[str]:
    """What the offline runtime's warm interpreter imports up front (every registered algorithm's packages)."""
    return sorted({p for a in ALGORITHMS.values() for p in a.packages})
