"""Model-quality step (contracts/pipelines.json role model_quality): regression metrics of a batch's predictions against its own ground truth.

Input : /opt/ml/processing/input/model_quality/: the ground_truth artifact (written by the data-check
        preparation) and, when available, model_quality_input (header `prediction,ground_truth`, one row per
        scored row, joined by batch position); names and shapes in scripts/steplib/artifacts.json.
Output: /opt/ml/processing/output/model_quality/: the model_quality artifact, always:
          {"ground_truth": {...as received...},
           "regression_metrics": {"mse": {"value", "standard_deviation"}, "rmse", "mae", "r2"}   (only if available)
           "threshold": {"metric": "mse", "value": t, "passed": bool | null}}                 (null: not scored)
        The job succeeds whether or not the threshold holds: the pipeline's model-quality condition reads this file and
        its FailStep reports a breach. Exit 1 only for bad input (never reported as a breach).
"""

import math
import os

import numpy as np

from steplib import InputError, Parser, artifacts, container_path, run_main
from steplib.csvio import read_numeric
from steplib.metrics import regression_metrics


def read_pairs(path):
    if not os.path.isfile(path):
        raise InputError(f"{path}: model quality input not found")
    data = np.asarray(read_numeric(path, header=artifacts.columns("model_quality_input")))
    return data[:, 0], data[:, 1]


def evaluate(input_dir, threshold):
    """The model_quality.json document for one batch."""
    status = artifacts.read("ground_truth", input_dir)  # the status the data-check preparation wrote
    report = {"ground_truth": status, "threshold": {"metric": "mse", "value": threshold, "passed": None}}
    if not status["available"]:
        print(f"model quality not scored: {status.get('note') or 'no ground truth for this batch'}")
        return report
    path = artifacts.path("model_quality_input", input_dir)
    pred, truth = read_pairs(path)
    if status.get("rows") is not None and status["rows"] != len(pred):
        raise InputError(f"{path}: {len(pred)} rows, but the data-check step paired {status['rows']}")
    with np.errstate(over="ignore"):
        metrics = regression_metrics(truth, pred)
    if not all(math.isfinite(m["value"]) for m in metrics.values()):
        # finite inputs whose squares overflow: a data problem, never a breach that would start retraining
        values = ", ".join(f"{k}={v['value']}" for k, v in metrics.items())
        raise InputError(f"{path}: metrics overflow ({values}); check the ground truth and predictions for "
                         "out-of-range values")
    report["regression_metrics"] = metrics
    report["threshold"]["passed"] = metrics["mse"]["value"] <= threshold
    print(f"rows={len(pred)} " + " ".join(f"{k}={v['value']:.4f}" for k, v in metrics.items())
          + f" threshold={threshold} passed={report['threshold']['passed']}")
    return report


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/model_quality")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/model_quality")
    p.add_argument("--mse-threshold", type=float, required=True)
    args = p.parse_args(argv)
    if not math.isfinite(args.mse_threshold) or args.mse_threshold < 0:
        raise InputError(f"bad arguments: --mse-threshold {args.mse_threshold} must be a finite number >= 0")
    report = evaluate(container_path(args.input_dir), args.mse_threshold)
    artifacts.write("model_quality", container_path(args.output_dir), report)


if __name__ == "__main__":
    run_main(main, "model_quality")
