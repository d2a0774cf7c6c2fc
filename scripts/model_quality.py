"""ModelQualityCalcStep: regression metrics of batch predictions against ground truth, checked against a threshold.

Input : /opt/ml/processing/input/model_quality/model_quality_input.csv (header `prediction,ground_truth`)
Output: /opt/ml/processing/output/model_quality/model_quality.json (evaluation.json format, plus
        "threshold": {"metric": "mse", "value": t, "passed": bool}). When mse > threshold the report is written
        first, then "ModelQualityBreach: mse=<x> exceeds threshold=<t>" goes to /opt/ml/output/message, exit 1.
"""

import json
import math
import os
import sys

import numpy as np

from steplib import InputError, Parser, container_path, run_main
from steplib.csvio import read_numeric
from steplib.errors import FAILURE_FILES
from steplib.metrics import regression_metrics

BREACH = "ModelQualityBreach"  # the HPO retraining rule matches this word; only a real breach may use it


def read_pairs(path):
    if os.path.isdir(path):
        path = os.path.join(path, "model_quality_input.csv")
    if not os.path.isfile(path):
        raise InputError(f"{path}: model quality input not found")
    data = np.asarray(read_numeric(path, header=["prediction", "ground_truth"]))
    return data[:, 0], data[:, 1]


def write_message(message):
    path = container_path(FAILURE_FILES["processing"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(message + "\n")


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-path", default="/opt/ml/processing/input/model_quality/model_quality_input.csv")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/model_quality")
    p.add_argument("--mse-threshold", type=float, required=True)
    args = p.parse_args(argv)
    if not math.isfinite(args.mse_threshold) or args.mse_threshold < 0:
        raise InputError(f"bad arguments: --mse-threshold {args.mse_threshold} must be a finite number >= 0")
    pred, truth = read_pairs(container_path(args.input_path))
    metrics = regression_metrics(truth, pred)
    mse = metrics["mse"]["value"]
    passed = mse <= args.mse_threshold
    report = {"regression_metrics": metrics,
              "threshold": {"metric": "mse", "value": args.mse_threshold, "passed": passed}}
    out = container_path(args.output_dir)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model_quality.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"rows={len(pred)} " + " ".join(f"{k}={v['value']:.4f}" for k, v in metrics.items())
          + f" threshold={args.mse_threshold} passed={passed}")
    if not passed:  # report is on disk first, then the job fails with the breach reason
        message = f"{BREACH}: mse={mse:.6g} exceeds threshold={args.mse_threshold:g}"
        print(message, file=sys.stderr)
        write_message(message)
        sys.exit(1)


def not_a_breach(message):
    # Other failures must never look like a breach (that would trigger retraining).
    return message.replace(BREACH, "model-quality-breach")


if __name__ == "__main__":
    run_main(main, "model_quality", sanitize=not_a_breach)
