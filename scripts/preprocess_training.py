"""Training preprocessing (contracts/pipelines.json role training_preprocess): validate raw training CSVs, clean,
split, fit the feature preprocessing on the train split.

Inputs : /opt/ml/processing/input/data/ (headerless CSVs, schema column order, target included)
         --feedback-dir (HPO retraining): labelled inference batches in the same convention
         /opt/ml/processing/input/schema/dataset_schema.json
Outputs: /opt/ml/processing/output/{train/train.csv, validation/validation.csv, test/test.csv}
         (headerless: target first, then transformed features), baseline/baseline.csv (raw train split's
         feature columns, with header), preprocessor/{preprocessor.joblib, dataset_schema.json, preprocessing.json}.

Sharding (processing.instance_counts.training_preprocess > 1): the shard step (role training_preprocess_shards)
runs this script with --partial on every instance over its ShardedByS3Key share of the data files: it validates
and parses its files (the per-cell work) and writes them as parts/<part>.npz plus parts/index-<host>.json
(which input file, how many rows). The preprocessing step then runs it on one instance with --parts-dir: it reads the parts back
in input-file order (exactly the rows and values a single pass reads) and does the rest as a single pass
does: cleaning, the split and the fit over ALL rows, so its outputs equal a single pass byte for byte
(tests/component/test_preprocess_sharding.py). The one-instance step holds the usable rows in memory, as before.

Cleaning, each step counted in the log and in preprocessing.json (nothing is dropped silently):
  * rows whose target is missing are dropped (they cannot teach a regressor);
  * exact duplicate rows are dropped before the split (a copy in train and test would flatter the test MSE);
  * missing feature values stay missing here and are imputed by the preprocessing fitted on the train split:
    the median for numeric columns, a "__missing__" category for categorical ones (schema policy "impute");
  * a value too large for the fitted standardization (its square overflows) is refused, naming file, line,
    column and value, and every transformed value is checked finite before it is written;
  * a target with one value only (a wrong label column, a placeholder) is refused, naming the files and the value.

The training data is strict: a bad row is an error naming file, line, column and value. Feedback batches are
checked as strictly, one by one, but a batch that fails (unknown category, a value outside the schema's
min/max, non-finite, unreadable, wrong column count, an invalid manifest) is skipped with a log line naming it
and why, and the run continues: one bad batch must not block every retraining while it sits in the window.
The skipped batches are listed in preprocessing.json ("feedback").
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
                              shown, where)
from steplib.paths import current_host
from steplib.schema import load_schema


def read_file(path, schema):
    """One file's rows with their file and line; missing features allowed per the schema's policy."""
    allow = [schema.target] + (schema.feature_names if schema.missing_features == "impute" else [])
    lines = []
    rows, _ = read_table(path, schema, schema.columns, allow_missing=allow, what="training", lines=lines)
    print(f"read {len(rows)} rows from {path}")
    return normalized(frame_of(rows, schema.names, path, lines), schema)


def normalized(frame, schema):
    """The one in-memory form of parsed rows, whether parsed here or read back from a shard's part:
    numeric columns float64 (missing NaN), categorical columns objects (missing None)."""
    for col in schema.columns:
        if col.is_numeric:
            frame[col.name] = pd.to_numeric(frame[col.name]).astype(float)
        else:
            frame[col.name] = frame[col.name].astype(object).where(frame[col.name].notna(), None)
    frame["_line"] = frame["_line"].astype(int)
    return frame


def read_inputs(paths, schema):
    return pd.concat([read_file(path, schema) for path in paths], ignore_index=True)


def write_parts(paths, input_dir, schema, out, host):
    """A shard's parsed rows: one part per input file, in numpy's .npz format (no pickle): numeric columns as
    float64 (the parsed values, bit for bit), categorical ones as text ("" = missing: no label is empty), the
    line numbers; and an index naming each part's input file and row count."""
    index = []
    for k, path in enumerate(paths):
        frame = read_file(path, schema)
        part = f"part-{host}-{k:05d}.npz"
        columns = {c.name: (frame[c.name].to_numpy(dtype=float) if c.is_numeric
                            else frame[c.name].fillna("").to_numpy(dtype=str)) for c in schema.columns}
        np.savez(os.path.join(out, part), _line=frame["_line"].to_numpy(dtype=np.int64), **columns)
        index.append({"file": os.path.relpath(path, input_dir), "path": path, "part": part, "rows": len(frame)})
    with open(os.path.join(out, f"index-{host}.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"{host}: wrote {sum(e['rows'] for e in index)} parsed rows of {len(index)} file(s) to {out}")


def read_parts(parts_dir, schema):
    """Every shard's parts, in input-file order (the order a single pass reads the files in); each part's row
    count is checked against its index, and two shards holding the same input file are refused."""
    indexes = sorted(n for n in os.listdir(parts_dir) if n.startswith("index-") and n.endswith(".json")) \
        if os.path.isdir(parts_dir) else []
    if not indexes:
        raise InputError(f"{parts_dir}: no index-<host>.json from the training preprocessing shards")
    entries, seen = [], {}
    for name in indexes:
        with open(os.path.join(parts_dir, name)) as f:
            for entry in json.load(f):
                if entry["file"] in seen:
                    raise InputError(f"{parts_dir}: input file {entry['file']} was read by two shards "
                                     f"({seen[entry['file']]}, {name}); the data input must be ShardedByS3Key")
                seen[entry["file"]] = name
                entries.append(entry)
    if not entries:
        raise InputError(f"{parts_dir}: the shards read no training files")
    frames = []
    for entry in sorted(entries, key=lambda e: e["file"]):
        part = os.path.join(parts_dir, entry["part"])
        try:
            with np.load(part, allow_pickle=False) as arrays:
                columns = {c.name: arrays[c.name] if c.is_numeric else
                           np.where(arrays[c.name] == "", None, arrays[c.name].astype(object)) for c in schema.columns}
                lines = arrays["_line"]
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{part}: not a part written by the training preprocessing shards ({exc})") from None
        rows = {len(v) for v in columns.values()} | {len(lines)}
        if rows != {entry["rows"]}:
            raise InputError(f"{part}: {sorted(rows)} rows, its index says {entry['rows']} ({entry['file']})")
        frame = pd.DataFrame(columns)
        frame["_file"], frame["_line"] = entry["path"], lines
        frames.append(normalized(frame, schema))
        print(f"read {len(frame)} rows of {entry['path']} from {part}")
    return pd.concat(frames, ignore_index=True)


def feedback_files(directory, window, skipped=None):
    """The bounded, de-duplicated feedback window: the newest `window` labelled batches written by the
    inference pipeline (<execution>/manifest.json + data/<batch name>). A batch name scored again (labels
    corrected, batch re-uploaded) counts once, with its newest labels; identical content under two names
    counts once. Folders without a manifest are not feedback of this template: listed, never read. A folder
    whose manifest is invalid is skipped (appended to `skipped` as {"file", "reason"}), never fatal."""
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
            found = [(str(doc["created"]), execution, str(b["batch"]), str(b["sha256"]),
                      os.path.join(directory, execution, "data", str(b["batch"]))) for b in doc["batches"]]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            skip(skipped, manifest, f"{manifest}: invalid feedback manifest ({type(exc).__name__}: {exc})")
            continue
        entries.extend(found)  # a batch whose file is missing is skipped when it is read (read_feedback)
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


def skip(skipped, path, reason):
    named = reason if reason.startswith(path) else f"{path}: {reason}"  # the reader's errors name the file already
    print(f"feedback: SKIPPED {named} (training continues without this batch)")
    if skipped is not None:
        skipped.append({"file": path, "reason": reason})


def read_feedback(paths, schema, skipped):
    """The feedback batches that pass the training data's checks (the reader's, and the magnitude check that
    would otherwise fail the whole run later); each one that does not is skipped, with its reason."""
    frames = []
    for path in paths:
        try:
            frame = read_file(path, schema)
            check_magnitudes(frame, schema, [c for c in schema.columns if c.is_numeric])
        except (InputError, OSError) as exc:  # OSError: unreadable, or the manifest names a missing file
            skip(skipped, path, str(exc))
            continue
        frames.append(frame)
    return frames


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
    p.add_argument("--partial", action="store_true",
                   help="shard step: parse this instance's share of --input-dir into <output-dir>/parts only")
    p.add_argument("--parts-dir", default=None, help="merge step: the shards' parts instead of --input-dir")
    args = p.parse_args(argv)
    if not (0 < args.validation_ratio < 1 and 0 < args.test_ratio < 1
            and args.validation_ratio + args.test_ratio < 1):
        raise InputError(f"bad split ratios: validation {args.validation_ratio}, test {args.test_ratio} "
                         "(each must be > 0 and their sum < 1)")
    if args.feedback_window < 1:
        raise InputError(f"bad arguments: --feedback-window {args.feedback_window} must be >= 1")
    schema_path, out = container_path(args.schema), container_path(args.output_dir)
    schema = load_schema(schema_path)
    input_dir = container_path(args.input_dir)
    if args.partial:
        host, hosts = current_host()
        # ShardedByS3Key with fewer objects than instances leaves some instances without any
        paths = list_files(input_dir, required=len(hosts) == 1)
        os.makedirs(os.path.join(out, "parts"), exist_ok=True)
        write_parts(paths, input_dir, schema, os.path.join(out, "parts"), host)
        return
    df = read_parts(container_path(args.parts_dir), schema) if args.parts_dir else \
        read_inputs(list_files(input_dir), schema)
    feedback_report = None
    if args.feedback_dir:
        skipped = []
        feedback = feedback_files(container_path(args.feedback_dir), args.feedback_window, skipped)
        frames = read_feedback(feedback, schema, skipped)
        df = pd.concat([df, *frames], ignore_index=True)
        feedback_report = {"batches_used": len(frames), "batches_skipped": len(skipped), "skipped": skipped}
        print(f"feedback: {len(frames)} batch(es) used, {len(skipped)} skipped"
              + (f" (reasons above): {', '.join(s['file'] for s in skipped)}" if skipped else ""))
    preprocess(df, schema, schema_path, out, args, feedback_report)


def preprocess(df, schema, schema_path, out, args, feedback_report=None):
    """Clean, split, fit on the train split, write the splits, the baseline and the fitted preprocessing."""
    names, target = schema.names, schema.target
    missing = {n: int(v) for n, v in df[names].isna().sum().items()}
    report = {"rows_read": len(df), "missing_values": {k: v for k, v in missing.items() if v}}
    if feedback_report is not None:
        report["feedback"] = feedback_report

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
    if df[target].nunique() == 1:  # a variance of 0: nothing to learn, and no MSE gate that means anything
        files = sorted(set(df["_file"]))
        raise InputError(f"{', '.join(files)}: every label of the target '{target}' is {shown(df[target].iloc[0])} "
                         f"({len(df)} rows): a constant target teaches a regressor nothing (a wrong target column, "
                         "or a placeholder value?)")

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
    # features only: data-quality drift is about the inputs; the model's outputs get their own baseline
    # (the evaluation step's prediction baseline), labels their schema range
    train[schema.feature_names].to_csv(baseline, header=True, index=False)
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
