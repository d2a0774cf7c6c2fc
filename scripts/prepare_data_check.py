"""DataCheckPreProcessingStep: join raw inference features with batch predictions (and ground truth) by row order.

Inputs : /opt/ml/processing/input/inference/ (input/ = raw headerless feature CSVs; ground-truth/ MAY hold
         headerless one-column target CSVs), /opt/ml/processing/input/predictions/ (*.out, one prediction per
         line), /opt/ml/processing/model/model.tar.gz (dataset_schema.json of the model). Files are read in sorted name order.
Outputs: /opt/ml/processing/output/data_check/data_check.csv (header: schema order, prediction in the target's
         place), model_quality/model_quality_input.csv (prediction,ground_truth; only with ground truth),
         feedback/labelled-batch.csv (features + ground truth, headerless training format; only with ground
         truth), ground_truth/ground_truth.json {"available": bool, "rows": n} (always written on success).
"""

import csv
import json
import os
import tempfile

from steplib import InputError, Parser, container_path, list_files, run_main
from steplib.archive import extract
from steplib.csvio import read_numeric, read_table
from steplib.schema import load_schema


def read_features(paths, schema):
    """Raw feature rows as their text, validated against the model's schema. Missing values and categories
    the schema does not list pass through: the data-quality check counts and reports them."""
    features = schema.features
    rows = []
    for path in paths:
        file_rows, _ = read_table(path, schema, features, allow_missing=[c.name for c in features],
                                  unknown_ok=[c.name for c in features], check_ranges=False,
                                  what="raw inference", as_text=True)
        print(f"read {len(file_rows)} rows from {path}")
        rows.extend(file_rows)
    return rows


def read_column(paths, name):
    """One numeric value per line (predictions, ground truth), as text."""
    values = []
    for path in paths:
        file_values = [repr(r[0]) for r in read_numeric(path, 1, [name])]
        print(f"read {len(file_values)} rows from {path}")
        values.extend(file_values)
    return values


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
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    args = p.parse_args(argv)
    # the schema the model was trained with, from its model.tar.gz (the one route; see steplib/schema.py)
    with tempfile.TemporaryDirectory() as tmp:
        schema = load_schema(extract(container_path(args.model_path), tmp, {"dataset_schema.json"})["dataset_schema.json"])
    columns, target = schema.names, schema.target
    inference_dir = container_path(args.inference_dir)
    raw_dir = os.path.join(inference_dir, "input")
    raw_files = list_files(raw_dir, "raw inference input")
    pred_dir = container_path(args.predictions_dir)
    pred_files = list_files(pred_dir, "prediction", suffix=".out")
    raw = read_features(raw_files, schema)
    preds = read_column(pred_files, "prediction")
    if len(raw) != len(preds):
        raise InputError(f"row count mismatch: raw inference data {describe(raw_files)} has {len(raw)} rows, "
                         f"predictions {describe(pred_files)} have {len(preds)}")
    truth_files = list_files(os.path.join(inference_dir, "ground-truth"), "ground truth", required=False)
    truth = read_column(truth_files, target) if truth_files else None
    if truth is not None and len(truth) != len(raw):
        raise InputError(f"row count mismatch: ground truth {describe(truth_files)} has {len(truth)} rows, "
                         f"raw inference data {describe(raw_files)} has {len(raw)}")
    out = container_path(args.output_dir)
    names = columns

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


if __name__ == "__main__":
    run_main(main, "prepare_data_check")
