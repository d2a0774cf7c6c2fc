"""DataCheckPreProcessingStep: join raw inference features with batch predictions (and ground truth) by row order.

Inputs : /opt/ml/processing/input/inference/ (input/ = raw headerless feature CSVs; ground-truth/ MAY hold
         headerless one-column target CSVs), /opt/ml/processing/input/predictions/ (*.out, one prediction per
         line), /opt/ml/processing/input/schema/dataset_schema.json. Files are read in sorted name order.
Outputs: /opt/ml/processing/output/data_check/data_check.csv (header: schema order, prediction in the target's
         place), model_quality/model_quality_input.csv (prediction,ground_truth; only with ground truth),
         feedback/labelled-batch.csv (features + ground truth, headerless training format; only with ground
         truth), ground_truth/ground_truth.json {"available": bool, "rows": n} (always written on success).
"""

import argparse
import csv
import json
import math
import os
import sys
import traceback


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file, the row and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def list_files(directory, suffix=""):
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(d, n) for d, _, ns in os.walk(directory) for n in ns
                  if not n.startswith(".") and n.endswith(suffix))


def read_csv(path, columns):
    """columns: list of (name, is_numeric). Returns rows of strings (numeric ones validated)."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            for row in reader:
                line = reader.line_num
                if not row:
                    raise InputError(f"{path}: line {line}: empty line")
                if len(row) != len(columns):
                    raise InputError(f"{path}: line {line}: expected {len(columns)} columns "
                                     f"({', '.join(n for n, _ in columns)}), found {len(row)}")
                clean = [v.strip() for v in row]
                for (name, numeric), value in zip(columns, clean):
                    if numeric and not _finite(value):
                        raise InputError(f"{path}: line {line}: non-numeric or missing value {value!r} "
                                         f"in column '{name}'")
                rows.append(clean)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc})") from None
    if not rows:
        raise InputError(f"{path}: file is empty")
    return rows


def _finite(value):
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def read_all(paths, columns):
    rows = []
    for path in paths:
        file_rows = read_csv(path, columns)
        print(f"read {len(file_rows)} rows from {path}")
        rows.extend(file_rows)
    return rows


def describe(paths):
    return ", ".join(paths)


def write(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header is not None:  # None: headerless, like the training data
            writer.writerow(header)
        writer.writerows(rows)


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--inference-dir", default="/opt/ml/processing/input/inference")
    p.add_argument("--predictions-dir", default="/opt/ml/processing/input/predictions")
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/dataset_schema.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    args = p.parse_args(argv)
    schema_path = container_path(args.schema)
    try:
        with open(schema_path) as f:
            schema = json.load(f)
        columns, target = schema["columns"], schema["target"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{schema_path}: cannot read the schema ({exc})") from None
    features = [(c["name"], c["type"] != "categorical") for c in columns if c["name"] != target]
    inference_dir = container_path(args.inference_dir)
    raw_dir = os.path.join(inference_dir, "input")
    raw_files = list_files(raw_dir)
    if not raw_files:
        raise InputError(f"{raw_dir}: no raw inference input files")
    pred_dir = container_path(args.predictions_dir)
    pred_files = list_files(pred_dir, ".out")
    if not pred_files:
        raise InputError(f"{pred_dir}: no prediction files (*.out)")
    raw = read_all(raw_files, features)
    preds = [r[0] for r in read_all(pred_files, [("prediction", True)])]
    if len(raw) != len(preds):
        raise InputError(f"row count mismatch: raw inference data {describe(raw_files)} has {len(raw)} rows, "
                         f"predictions {describe(pred_files)} have {len(preds)}")
    truth_files = list_files(os.path.join(inference_dir, "ground-truth"))
    truth = [r[0] for r in read_all(truth_files, [(target, True)])] if truth_files else None
    if truth is not None and len(truth) != len(raw):
        raise InputError(f"row count mismatch: ground truth {describe(truth_files)} has {len(truth)} rows, "
                         f"raw inference data {describe(raw_files)} has {len(raw)}")
    out = container_path(args.output_dir)
    names = [c["name"] for c in columns]

    def with_target(targets):
        """Rows in schema order: each row's features with the given value in the target's place."""
        rows = []
        for feats, value in zip(raw, targets):
            values = iter(feats)
            rows.append([value if n == target else next(values) for n in names])
        return rows

    write(os.path.join(out, "data_check", "data_check.csv"), names, with_target(preds))
    if truth is not None:
        write(os.path.join(out, "model_quality", "model_quality_input.csv"), ["prediction", "ground_truth"],
              list(zip(preds, truth)))
        # The labelled batch in the training-data convention (headerless, schema order): HPO retraining
        # learns from the data that revealed a quality breach, not only from the original training set.
        write(os.path.join(out, "feedback", "labelled-batch.csv"), None, with_target(truth))
    status = {"available": truth is not None, "rows": len(truth) if truth is not None else 0}
    os.makedirs(os.path.join(out, "ground_truth"), exist_ok=True)
    with open(os.path.join(out, "ground_truth", "ground_truth.json"), "w") as f:
        json.dump(status, f)
    print(f"joined {len(raw)} rows; ground truth: {status}")


def fail(message):
    message = " ".join(str(message).split())[:1000]  # one line; SageMaker FailureReason is short
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
        fail(f"prepare_data_check failed: {type(exc).__name__}: {exc}")
