"""Evaluation (contracts/pipelines.json role evaluation): score the trained model on the held-out test split.

Inputs : /opt/ml/processing/model/model.tar.gz (model.joblib inside), /opt/ml/processing/test/test.csv
         (headerless: target first, then transformed features)
Output : /opt/ml/processing/evaluation/evaluation.json =
         {"regression_metrics": {"mse"|"rmse"|"mae"|"r2": {"value": x, "standard_deviation": s}}}
         standard_deviation is the bootstrap standard error of the metric (200 resamples, fixed seed).
         /opt/ml/processing/evaluation/prediction-baseline/{statistics,constraints}.json: the model-output
         baseline, the data-quality profile of the model's predictions on the test split (column
         "prediction"), registered with the version; inference compares each batch's predictions with it.
         Held-out rows, not the train split: predictions on rows the model was fitted to copy the labels'
         shape (a zero-inflated target's spike at zero), which predictions on new rows never have.

--mse-threshold (the pipeline's MseThreshold, the gate after this step) is checked against the variance of the
test split's target, which is the MSE of always predicting its mean. A threshold above 100x that variance lets
through models 100 times worse than that constant guess: the gate, and the same threshold on inference batches,
could never fire. One below 0.001x demands R^2 above 0.999: every model and every batch would breach. Either is
a configuration error (accuracy_mse_threshold in the tfvars, or mse_threshold in the pipeline YAML), said here
with the figures, before a model is registered or a retraining loop starts. A constant target (nothing to
learn) is refused for the same reason.
"""

import os
import tempfile

import joblib
import numpy as np

from steplib import InputError, Parser, artifacts, container_path, run_main
from steplib.archive import extract
from steplib.csvio import read_numeric
from steplib.dataquality.cli import add_drift_arguments, drift_settings
from steplib.dataquality.engine import run_values_baseline
from steplib.metrics import regression_metrics


def read_test(path):
    if not os.path.isfile(path):
        raise InputError(f"{path}: test file not found")
    data = np.asarray(read_numeric(path))
    if data.shape[1] < 2:
        raise InputError(f"{path}: needs the target column plus feature columns")
    return data[:, 1:], data[:, 0]


(PREDICTION_COLUMN,) = artifacts.columns("prediction_check")  # the column the batch's prediction check carries
THRESHOLD_RANGE = (0.001, 100.0)  # x the target's variance (see above)


def check_threshold(threshold, y, where):
    """The MSE threshold against the variance of the target ``y`` (module docstring)."""
    variance = float(np.var(y))
    if not np.isfinite(threshold) or threshold <= 0:
        raise InputError(f"MseThreshold {threshold!r}: must be a finite number above 0")
    if variance == 0:
        raise InputError(f"{where}: every target value is {float(y[0])!r}: a constant target leaves nothing to learn "
                         "or evaluate (check the label column of the training data)")
    low, high = (factor * variance for factor in THRESHOLD_RANGE)
    if not low <= threshold <= high:
        side = "above" if threshold > high else "below"
        raise InputError(
            f"MseThreshold {threshold:g} is {side} the range {low:.4g} to {high:.4g} "
            f"({THRESHOLD_RANGE[0]:g}x to {THRESHOLD_RANGE[1]:g}x the variance {variance:.4g} of the target in {where}, "
            "the MSE of always predicting its mean): the gate could "
            f"{'never fire' if side == 'above' else 'never pass'}. Set accuracy_mse_threshold (tfvars) or "
            "mse_threshold (pipeline YAML) near 1.3x the model's cross-validated MSE")


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--test-path", default="/opt/ml/processing/test/test.csv")
    p.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    p.add_argument("--mse-threshold", type=float, default=None, help="the pipeline's MseThreshold (checked)")
    add_drift_arguments(p)  # the feature baseline's drift sensitivity, for the prediction baseline too
    args = p.parse_args(argv)
    archive, test_path = container_path(args.model_path), container_path(args.test_path)
    if os.path.isdir(test_path):
        test_path = os.path.join(test_path, "test.csv")
    with tempfile.TemporaryDirectory() as tmp:
        files = extract(archive, tmp, {"model.joblib"})
        model = joblib.load(files["model.joblib"])
    x, y = read_test(test_path)
    if args.mse_threshold is not None:
        check_threshold(args.mse_threshold, y, test_path)
    expected = getattr(model, "n_features_in_", x.shape[1])
    if x.shape[1] != expected:
        raise InputError(f"{test_path}: {x.shape[1]} feature columns, the model expects {expected}")
    predictions = np.asarray(model.predict(x), dtype=float)
    if not np.all(np.isfinite(predictions)):
        raise InputError(f"{test_path}: the model made non-finite predictions for {int((~np.isfinite(predictions)).sum())} "
                         "test row(s)")
    report = {"regression_metrics": regression_metrics(y, predictions)}
    out = container_path(args.output_dir)
    run_values_baseline(PREDICTION_COLUMN, predictions, os.path.dirname(artifacts.path("prediction_baseline_statistics", out)),
                        drift_settings(args), where=f"predictions on {test_path}")
    artifacts.write("evaluation", out, report)
    print(f"test rows={len(y)} " + " ".join(f"{k}={v['value']:.4f}" for k, v in report["regression_metrics"].items()))


if __name__ == "__main__":
    run_main(main, "evaluate")
