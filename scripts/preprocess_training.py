"""TrainingPreProcessStep: validate raw training CSVs, split, fit the feature preprocessing on the train split.

Inputs : /opt/ml/processing/input/data/ (headerless CSVs, schema column order, target included)
         --feedback-dir (HPO retraining): labelled inference batches in the same convention
         /opt/ml/processing/input/schema/dataset_schema.json
Outputs: /opt/ml/processing/output/{train/train.csv, validation/validation.csv, test/test.csv}
         (headerless: target first, then transformed features), baseline/baseline.csv (raw train split with
         header), preprocessor/preprocessor.joblib (+ dataset_schema.json), fitted on the train split only.
"""

import argparse
import csv
import json
import math
import os
import shutil
import sys
import traceback

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file, the row and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def load_schema(path):
    try:
        with open(path) as f:
            schema = json.load(f)
        names = [c["name"] for c in schema["columns"]]
        if schema["target"] not in names:
            raise InputError(f"{path}: target '{schema['target']}' is not one of the columns")
        for c in schema["columns"]:
            if c["type"] == "categorical" and not c.get("categories"):
                raise InputError(f"{path}: categorical column '{c['name']}' lists no categories")
        return schema
    except FileNotFoundError:
        raise InputError(f"{path}: schema file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: invalid schema ({type(exc).__name__}: {exc})") from None


def list_input_files(directory):
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: input directory does not exist")
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(directory) for n in names if not n.startswith("."))
    if not files:
        raise InputError(f"{directory}: no input files")
    return files


def read_rows(path, columns):
    """Parse one headerless CSV strictly; every bad row is an error (nothing dropped)."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            for row in reader:
                rows.append(parse_row(row, columns, path, reader.line_num))
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc})") from None
    if not rows:
        raise InputError(f"{path}: file is empty")
    return rows


def feedback_files(directory, window):
    """The bounded, de-duplicated feedback window: the newest `window` labelled batches written by the
    inference pipeline (<execution>/manifest.json + data/<batch name>). A batch name scored again (labels
    corrected, batch re-uploaded) counts once, with its newest labels; identical content under two names
    counts once. Folders without a manifest are not feedback of this template: listed, never read."""
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: feedback directory does not exist")
    entries, ignored = [], []
    for execution in sorted(os.listdir(directory)):
        manifest = os.path.join(directory, execution, "manifest.json")
        if not os.path.isfile(manifest):
            ignored.append(execution)
            continue
        try:
            with open(manifest) as f:
                doc = json.load(f)
            for batch in doc["batches"]:
                path = os.path.join(directory, execution, "data", batch["batch"])
                if not os.path.isfile(path):
                    raise InputError(f"{manifest}: batch {batch['batch']!r} has no file {path}")
                entries.append((doc["created"], execution, batch["batch"], batch["sha256"], path))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{manifest}: invalid feedback manifest ({type(exc).__name__}: {exc})") from None
    if ignored:
        print(f"feedback: ignored {len(ignored)} folder(s) without manifest.json: {', '.join(ignored[:10])}")
    chosen, names, digests = [], set(), set()
    for created, execution, name, digest, path in sorted(entries, reverse=True):  # newest first
        if name in names or digest in digests:
            print(f"feedback: skipped {execution}/{name} ({'an older copy of a newer batch' if name in names else 'duplicate content'})")
            continue
        if len(chosen) == window:
            print(f"feedback: window of {window} batch(es) full; older batches from {created} back are not used")
            break
        names.add(name)
        digests.add(digest)
        chosen.append(path)
    print(f"feedback: {len(chosen)} batch(es) in the window: {', '.join(chosen)}")
    return sorted(chosen)


def parse_row(row, columns, path, lineno):
    if not row:
        raise InputError(f"{path}: line {lineno}: empty line")
    if len(row) != len(columns):
        raise InputError(f"{path}: line {lineno}: expected {len(columns)} columns "
                         f"({', '.join(c['name'] for c in columns)}), found {len(row)}")
    if lineno == 1 and all(not _is_number(v) for c, v in zip(columns, row) if c["type"] != "categorical"):
        raise InputError(f"{path}: line 1 looks like a header row ({','.join(row)[:80]}); "
                         "training CSVs must be headerless, in schema column order")
    out = []
    for col, raw in zip(columns, row):
        value = raw.strip()
        if col["type"] == "categorical":
            if value not in col["categories"]:
                raise InputError(f"{path}: line {lineno}: unknown category {value!r} in column '{col['name']}' "
                                 f"(allowed: {', '.join(col['categories'])})")
            out.append(value)
            continue
        if value == "" or value.lower() in ("nan", "na", "null", "none"):
            raise InputError(f"{path}: line {lineno}: missing value in numeric column '{col['name']}' "
                             "(training data must be complete; fix or remove the row upstream)")
        try:
            number = float(value)
        except ValueError:
            hint = " (training CSVs are headerless: is this a header row?)" if lineno == 1 else ""
            raise InputError(f"{path}: line {lineno}: non-numeric value {value!r} in numeric column "
                             f"'{col['name']}'{hint}") from None
        if not math.isfinite(number):
            raise InputError(f"{path}: line {lineno}: non-finite value {value!r} in column '{col['name']}'")
        out.append(number)
    return out


def _is_number(value):
    try:
        float(value)
        return True
    except ValueError:
        return False


def build_preprocessor(schema):
    feats = [c for c in schema["columns"] if c["name"] != schema["target"]]
    cats = [c for c in feats if c["type"] == "categorical"]
    nums = [c["name"] for c in feats if c["type"] != "categorical"]
    steps = []
    if cats:  # unknown categories at inference encode as all zeros (preprocess_inference reports them)
        steps.append(("categorical", OneHotEncoder(categories=[c["categories"] for c in cats],
                                                   handle_unknown="ignore", sparse_output=False),
                      [c["name"] for c in cats]))
    if nums:
        steps.append(("numeric", StandardScaler(), nums))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def write_csv(frame, path, header=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frame.to_csv(path, header=header, index=False)


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/dataset_schema.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--validation-ratio", type=float, default=0.15)
    p.add_argument("--test-ratio", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=42)
    # HPO retraining also learns from labelled inference batches (DataCheckPreProcessingStep's feedback)
    p.add_argument("--feedback-dir", default=None, help="labelled inference batches (<execution>/manifest.json + data/)")
    p.add_argument("--feedback-window", type=int, default=10, help="use at most this many newest feedback batches")
    args = p.parse_args(argv)
    if not (0 < args.validation_ratio < 1 and 0 < args.test_ratio < 1
            and args.validation_ratio + args.test_ratio < 1):
        raise InputError(f"bad split ratios: validation {args.validation_ratio}, test {args.test_ratio} "
                         "(each must be > 0 and their sum < 1)")
    schema_path, out = container_path(args.schema), container_path(args.output_dir)
    schema = load_schema(schema_path)
    columns, target = schema["columns"], schema["target"]
    names = [c["name"] for c in columns]
    rows = []
    inputs = list_input_files(container_path(args.input_dir))
    if args.feedback_window < 1:
        raise InputError(f"bad arguments: --feedback-window {args.feedback_window} must be >= 1")
    if args.feedback_dir:
        inputs += feedback_files(container_path(args.feedback_dir), args.feedback_window)
    for path in inputs:
        file_rows = read_rows(path, columns)
        print(f"read {len(file_rows)} rows from {path}")
        rows.extend(file_rows)
    df = pd.DataFrame(rows, columns=names)
    for c in columns:  # categorical columns stay strings, the rest float
        df[c["name"]] = df[c["name"]].astype(str if c["type"] == "categorical" else float)
    n_test = math.ceil(len(df) * args.test_ratio)
    n_val = math.ceil(len(df) * args.validation_ratio)
    if len(df) - n_test - n_val < 1:
        raise InputError(f"only {len(df)} rows: too few to split into train/validation/test")
    rest, test = train_test_split(df, test_size=args.test_ratio, random_state=args.seed)
    train, val = train_test_split(rest, test_size=args.validation_ratio / (1 - args.test_ratio),
                                  random_state=args.seed)
    pre = build_preprocessor(schema)
    features = [n for n in names if n != target]
    pre.fit(train[features])  # train split only: validation/test stay unseen
    for split, frame in (("train", train), ("validation", val), ("test", test)):
        transformed = pre.transform(frame[features])
        out_frame = pd.DataFrame(np.column_stack([frame[target].to_numpy(), transformed]))
        write_csv(out_frame, os.path.join(out, split, f"{split}.csv"))
        print(f"{split}: {len(frame)} rows, {transformed.shape[1]} transformed features")
    write_csv(train[names], os.path.join(out, "baseline", "baseline.csv"), header=True)
    os.makedirs(os.path.join(out, "preprocessor"), exist_ok=True)
    joblib.dump(pre, os.path.join(out, "preprocessor", "preprocessor.joblib"))
    shutil.copyfile(schema_path, os.path.join(out, "preprocessor", "dataset_schema.json"))
    print("transformed feature columns: " + ", ".join(pre.get_feature_names_out()))


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
        fail(f"preprocess_training failed: {type(exc).__name__}: {exc}")
