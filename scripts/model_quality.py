"""ModelQualityCalcStep: regression metrics of a batch's predictions against its own ground truth.

Input : /opt/ml/processing/input/model_quality/ground_truth.json ({"available": bool, "rows": n, "note": str},
        written by DataCheckPreProcessingStep) and, when available, model_quality_input.csv
        (header `prediction,ground_truth`, one row per scored row, joined by batch position).
Output: /opt/ml/processing/output/model_quality/model_quality.json, always:
          {"ground_truth": {...as received...},
           "regression_metrics": {"mse": {"value", "standard_deviation"}, "rmse", "mae", "r2"}   (only if available)
           "threshold": {"metric": "mse", "value": t, "passed": bool | null}}                 (null: not scored)
        The job succeeds whether or not the threshold holds: the pipeline's ModelQualityCond reads this file and
        its FailStep reports a breach. Exit 1 only for bad input (never reported as a breach).
"""

import argparse
import csv
import json
import math
import os
import sys
import traceback

import numpy as np


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file, the row and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def read_status(path):
    try:
        with open(path) as f:
            status = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: ground-truth status not found (written by the data-check step)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(status, dict) or not isinstance(status.get("available"), bool):
        raise InputError(f"{path}: expected an object with a boolean 'available', found {status!r}")
    return status


def read_pairs(path):
    if not os.path.isfile(path):
        raise InputError(f"{path}: model quality input not found")
    pred, truth = [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: file is empty")
            if [h.strip() for h in header] != ["prediction", "ground_truth"]:
                raise InputError(f"{path}: line 1: header must be 'prediction,ground_truth', found {header!r}")
            for row in reader:
                line = reader.line_num
                if len(row) != 2:
                    raise InputError(f"{path}: line {line}: expected 2 columns, found {len(row)}")
                for name, value, dest in (("prediction", row[0], pred), ("ground_truth", row[1], truth)):
                    try:
                        number = float(value)
                    except ValueError:
                        number = math.nan
                    if not math.isfinite(number):
                        raise InputError(f"{path}: line {line}: non-numeric or missing value {value!r} "
                                         f"in column '{name}'")
                    dest.append(number)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc})") from None
    if not pred:
        raise InputError(f"{path}: no data rows after the header")
    return np.asarray(pred), np.asarray(truth)


def regression_metrics(y_true, y_pred, n_boot=200, seed=0):
    def metrics(t, p):
        err = p - t
        mse = float(np.mean(err**2))
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else 0.0
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "r2": r2}

    rng = np.random.default_rng(seed)
    boots = [metrics(y_true[i], y_pred[i]) for i in (rng.integers(0, len(y_true), len(y_true)) for _ in range(n_boot))]
    point = metrics(y_true, y_pred)
    return {k: {"value": v, "standard_deviation": float(np.std([b[k] for b in boots]))} for k, v in point.items()}


def evaluate(input_dir, threshold):
    """The model_quality.json document for one batch."""
    status = read_status(os.path.join(input_dir, "ground_truth.json"))
    report = {"ground_truth": status, "threshold": {"metric": "mse", "value": threshold, "passed": None}}
    if not status["available"]:
        print(f"model quality not scored: {status.get('note') or 'no ground truth for this batch'}")
        return report
    path = os.path.join(input_dir, "model_quality_input.csv")
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
    out = container_path(args.output_dir)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model_quality.json"), "w") as f:
        json.dump(report, f, indent=2)


def fail(message):
    message = " ".join(str(message).split())[:1000]  # one line: SageMaker keeps the first 1 KB as ExitMessage
    print(f"ERROR: {message}", file=sys.stderr)
    path = container_path("/opt/ml/output/message")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(message + "\n")
    sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed: traceback + failure message
        traceback.print_exc()
        fail(f"model_quality failed: {type(exc).__name__}: {exc}")
