"""Training preprocessing (contracts.json role training_preprocess): validate raw training CSVs, clean,
split, fit the feature preprocessing on the train split.

Inputs : /opt/ml/processing/input/data/ (headerless CSVs, schema column order, target included)
         --feedback-dir (HPO retraining): labelled inference batches in the same convention
         /opt/ml/processing/input/schema/dataset_schema.json
Outputs: /opt/ml/processing/output/{train/train.csv, validation/validation.csv, test/test.csv}
         (headerless: target first, then transformed features), baseline/baseline.csv (raw train split with
         header), preprocessor/{preprocessor.joblib, dataset_schema.json, preprocessing.json}.

Cleaning, each step counted in the log and in preprocessing.json (nothing is dropped silently):
  * rows whose target is missing are dropped (they cannot teach a regressor);
  * exact duplicate rows are dropped before the split (a copy in train and test would flatter the test MSE);
  * missing feature values stay missing here and are imputed by the preprocessing fitted on the train split:
    the median for numeric columns, a "__missing__" category for categorical ones (schema policy "impute");
  * a value too large for the fitted standardization (its square overflows) is refused, naming file, line,
    column and value, and every transformed value is checked finite before it is written.
"""

import json
import math
import os
import shutil

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from steplib import InputError, Parser, container_path, list_files, run_main
from steplib.csvio import read_table
from steplib.features import (build_preprocessor, check_finite, check_magnitudes, feature_frame, frame_of,
                              where)
from steplib.schema import load_schema


def read_inputs(paths, schema):
    """Every row of every file with its file and line; missing features allowed per the schema's policy."""
    allow = [schema.target] + (schema.feature_names if schema.missing_features == "impute" else [])
    frames, missing = [], {n: 0 for n in schema.names}
    for path in paths:
        lines = []
        rows, counts = read_table(path, schema, schema.columns, allow_missing=allow, what="training", lines=lines)
        frames.append(frame_of(rows, schema.names, path, lines))
        for name, n in counts.items():
            missing[name] += n
        print(f"read {len(rows)} rows from {path}")
    return pd.concat(frames, ignore_index=True), missing


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


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/dataset_schema.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--validation-ratio", type=float, default=0.15)
    p.add_argument("--test-ratio", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=42)
    # HPO retraining also learns from labelled inference batches (the feedback the data-check preparation writes)
    p.add_argument("--feedback-dir", default=None, help="extra headerless CSVs in the training convention")
    p.add_argument("--feedback-window", type=int, default=10, help="use at most this many newest feedback batches")
    args = p.parse_args(argv)
    if not (0 < args.validation_ratio < 1 and 0 < args.test_ratio < 1
            and args.validation_ratio + args.test_ratio < 1):
        raise InputError(f"bad split ratios: validation {args.validation_ratio}, test {args.test_ratio} "
                         "(each must be > 0 and their sum < 1)")
    schema_path, out = container_path(args.schema), container_path(args.output_dir)
    schema = load_schema(schema_path)
    names, target = schema.names, schema.target
    inputs = list_files(container_path(args.input_dir))
    if args.feedback_window < 1:
        raise InputError(f"bad arguments: --feedback-window {args.feedback_window} must be >= 1")
    if args.feedback_dir:
        inputs += feedback_files(container_path(args.feedback_dir), args.feedback_window)
    df, missing = read_inputs(inputs, schema)
    report = {"rows_read": len(df), "missing_values": {k: v for k, v in missing.items() if v}}

    no_target = df[target].isna()
    if no_target.any():
        print(f"dropped {int(no_target.sum())} row(s) with a missing target '{target}' "
              f"(first: {where(df, df.index[no_target][0])})")
    df = df[~no_target]
    duplicated = df.duplicated(subset=names, keep="first")
    if duplicated.any():
        print(f"dropped {int(duplicated.sum())} exact duplicate row(s) before the split "
              f"(first: {where(df, df.index[duplicated][0])})")
    df = df[~duplicated]
    report.update(rows_missing_target_dropped=int(no_target.sum()), duplicate_rows_dropped=int(duplicated.sum()),
                  rows_used=len(df))
    for name, n in report["missing_values"].items():
        if name != target:
            print(f"missing values in column '{name}': {n} (imputed by the preprocessing fitted on the train split)")
    check_magnitudes(df, schema, [c for c in schema.columns if c.is_numeric])  # the target too

    n_test = math.ceil(len(df) * args.test_ratio)
    n_val = math.ceil(len(df) * args.validation_ratio)
    if len(df) - n_test - n_val < 1:
        raise InputError(f"only {len(df)} usable rows: too few to split into train/validation/test")
    rest, test = train_test_split(df, test_size=args.test_ratio, random_state=args.seed)
    train, val = train_test_split(rest, test_size=args.validation_ratio / (1 - args.test_ratio),
                                  random_state=args.seed)
    pre = build_preprocessor(schema)
    pre.fit(feature_frame(train, schema))  # train split only: validation/test stay unseen
    feature_names = [str(n) for n in pre.get_feature_names_out()]
    for split, frame in (("train", train), ("validation", val), ("test", test)):
        transformed = pre.transform(feature_frame(frame, schema))
        check_finite(frame, transformed, schema)
        out_frame = pd.DataFrame(np.column_stack([frame[target].to_numpy(dtype=float), transformed]))
        path = os.path.join(out, split, f"{split}.csv")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        out_frame.to_csv(path, header=False, index=False)
        print(f"{split}: {len(frame)} rows, {transformed.shape[1]} transformed features")
        report[f"{split}_rows"] = len(frame)
    baseline = os.path.join(out, "baseline", "baseline.csv")
    os.makedirs(os.path.dirname(baseline), exist_ok=True)
    train[names].to_csv(baseline, header=True, index=False)
    # What inference needs besides the fitted transform: the train split's most frequent category per
    # column (unknown_category: most_frequent), and this report.
    report["most_frequent"] = {c.name: str(train[c.name].mode(dropna=True).iloc[0])
                               for c in schema.categorical_features if train[c.name].notna().any()}
    report["transformed_features"] = feature_names
    pre_dir = os.path.join(out, "preprocessor")
    os.makedirs(pre_dir, exist_ok=True)
    joblib.dump(pre, os.path.join(pre_dir, "preprocessor.joblib"))
    shutil.copyfile(schema_path, os.path.join(pre_dir, "dataset_schema.json"))
    with open(os.path.join(pre_dir, "preprocessing.json"), "w") as f:
        json.dump(report, f, indent=2)
    print("preprocessing report: " + json.dumps({k: v for k, v in report.items() if k != "transformed_features"}))


if __name__ == "__main__":
    run_main(main, "preprocess_training")
