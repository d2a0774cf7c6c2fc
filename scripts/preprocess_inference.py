"""DataPreProcessingStep: apply the training-time preprocessing (never re-fitted) to raw inference data.

Inputs : /opt/ml/processing/input/data/ (headerless CSVs, feature columns in schema order; files are read in
         sorted name order), /opt/ml/processing/model/model.tar.gz (preprocessor.joblib, dataset_schema.json)
Output : /opt/ml/processing/output/transformed/inference-transformed.csv (headerless transformed features,
         same rows, same order). Categories unseen in the schema are encoded as all zeros and reported.
"""

import argparse
import csv
import math
import os
import sys
import tarfile
import tempfile
import traceback

import joblib
import json
import pandas as pd


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file, the row and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def extract_members(archive, names, dest):
    """Copy just the named top-level files out of the model archive (no path from the archive is trusted)."""
    found = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m in tar.getmembers():
                name = m.name[2:] if m.name.startswith("./") else m.name
                if name in names and m.isfile():
                    target = os.path.join(dest, name)
                    with tar.extractfile(m) as src, open(target, "wb") as out:
                        out.write(src.read())
                    found[name] = target
    except FileNotFoundError:
        raise InputError(f"{archive}: model archive not found") from None
    except tarfile.TarError as exc:
        raise InputError(f"{archive}: not a readable tar.gz archive ({exc})") from None
    missing = sorted(set(names) - set(found))
    if missing:
        raise InputError(f"{archive}: missing {', '.join(missing)} (was the model trained by scripts/train.py?)")
    return found


def read_features(path, features):
    """Strict parse: wrong column count, non-numeric or missing numeric values are errors."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            for row in reader:
                line = reader.line_num
                if not row:
                    raise InputError(f"{path}: line {line}: empty line")
                if len(row) != len(features):
                    raise InputError(f"{path}: line {line}: expected {len(features)} feature columns "
                                     f"({', '.join(c['name'] for c in features)}), found {len(row)}")
                values = []
                for col, raw in zip(features, row):
                    value = raw.strip()
                    if col["type"] == "categorical":
                        values.append(value)
                        continue
                    try:
                        number = float(value)
                    except ValueError:
                        what = "missing value" if value == "" else f"non-numeric value {value!r}"
                        raise InputError(f"{path}: line {line}: {what} in numeric column '{col['name']}'") from None
                    if not math.isfinite(number):
                        raise InputError(f"{path}: line {line}: missing or non-finite value {value!r} "
                                         f"in column '{col['name']}'")
                    values.append(number)
                rows.append(values)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc})") from None
    if not rows:
        raise InputError(f"{path}: file is empty")
    return rows


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/transformed")
    p.add_argument("--output-name", default="inference-transformed.csv")
    args = p.parse_args(argv)
    input_dir, archive = container_path(args.input_dir), container_path(args.model_path)
    with tempfile.TemporaryDirectory() as tmp:
        files = extract_members(archive, {"preprocessor.joblib", "dataset_schema.json"}, tmp)
        pre = joblib.load(files["preprocessor.joblib"])
        with open(files["dataset_schema.json"]) as f:
            schema = json.load(f)
    features = [c for c in schema["columns"] if c["name"] != schema["target"]]
    if not os.path.isdir(input_dir):
        raise InputError(f"{input_dir}: input directory does not exist")
    paths = sorted(os.path.join(d, n) for d, _, ns in os.walk(input_dir) for n in ns if not n.startswith("."))
    if not paths:
        raise InputError(f"{input_dir}: no input files")
    rows = []
    for path in paths:
        file_rows = read_features(path, features)
        print(f"read {len(file_rows)} rows from {path}")
        rows.extend(file_rows)
    df = pd.DataFrame(rows, columns=[c["name"] for c in features])
    for col in features:
        if col["type"] == "categorical":
            unseen = df.loc[~df[col["name"]].isin(col["categories"]), col["name"]]
            if len(unseen):  # kept (encoded as all zeros), but visible in the job log
                print(f"WARNING unseen categories in column '{col['name']}': {len(unseen)} row(s), values "
                      f"{sorted(unseen.unique().tolist())}; encoded as all zeros")
            else:
                print(f"unseen categories in column '{col['name']}': 0 row(s)")
    transformed = pre.transform(df)  # the training-time fit, unchanged
    if transformed.shape[0] != len(df):
        raise InputError(f"preprocessing returned {transformed.shape[0]} rows for {len(df)} input rows")
    out = container_path(args.output_dir)
    os.makedirs(out, exist_ok=True)
    out_path = os.path.join(out, args.output_name)
    pd.DataFrame(transformed).to_csv(out_path, header=False, index=False)
    print(f"wrote {len(df)} rows x {transformed.shape[1]} features to {out_path}")


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
        fail(f"preprocess_inference failed: {type(exc).__name__}: {exc}")
