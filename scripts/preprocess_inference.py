"""Inference preprocessing (contracts/pipelines.json role inference_preprocess): apply the training-time preprocessing (never re-fitted) to raw inference data.

Inputs : /opt/ml/processing/input/data/ (headerless CSVs, feature columns in schema order; files are read in
         sorted name order), /opt/ml/processing/model/model.tar.gz (preprocessor.joblib, dataset_schema.json,
         preprocessing.json: the schema and the fit the model was trained with)
Output : /opt/ml/processing/output/transformed/<input file>/part-<k>-of-<n>.csv for every input file (its
         relative path below the input folder): the file's rows in order, cut into n = min(--part-files, rows)
         contiguous parts of headerless transformed features. Batch transform distributes whole objects among
         its instances, so the parts let a transform with several instances share even a one-object batch;
         the data-check preparation pairs <input file>/part-*.out back with <input file> (part order = row order).
Sharding: with several instances (input ShardedByS3Key) every instance transforms the files it received;
         each file goes to exactly one instance, so the part names never collide and nothing needs merging.
Missing feature values are imputed by the training fit (schema policy "impute"); a category the schema does
not list is handled as its column's ``unknown_category`` policy says (error / ignore = all zeros /
most_frequent = the train split's most frequent category), counted per column in the log.
"""

import json
import os
import tempfile

import joblib
import numpy as np
import pandas as pd

from steplib import InputError, Parser, container_path, list_files, run_main
from steplib.archive import extract
from steplib.csvio import read_table
from steplib.features import check_finite, check_magnitudes, feature_frame, frame_of, shown, where
from steplib.paths import current_host
from steplib.schema import load_schema

MODEL_FILES = {"preprocessor.joblib", "dataset_schema.json", "preprocessing.json"}


def apply_unknown_policy(df, schema, fit):
    """Unknown categories per column policy (an 'error' column never gets here: the reader refused it)."""
    for col in schema.categorical_features:
        unknown = df[col.name].notna() & ~df[col.name].isin(col.categories)
        n = int(unknown.sum())
        if n and col.unknown_category == "most_frequent":
            replacement = fit["most_frequent"].get(col.name)
            if replacement is None:
                raise InputError(f"{where(df, df.index[unknown][0])}: unknown category "
                                 f"{shown(df.at[df.index[unknown][0], col.name])} in column '{col.name}' and the "
                                 "training split had no value to use instead")
            print(f"unseen categories in column '{col.name}': {n} row(s), values "
                  f"{sorted(df.loc[unknown, col.name].unique().tolist())}; replaced by the most frequent "
                  f"{replacement!r} (unknown_category: most_frequent)")
            df.loc[unknown, col.name] = replacement
        elif n:
            print(f"WARNING unseen categories in column '{col.name}': {n} row(s), values "
                  f"{sorted(df.loc[unknown, col.name].unique().tolist())}; encoded as all zeros "
                  "(unknown_category: ignore)")
        else:
            print(f"unseen categories in column '{col.name}': 0 row(s)")
    return df


def part_paths(out: str, relative: str, n_rows: int, part_files: int) -> list[tuple[str, slice]]:
    """(path, rows) of each part of one input file: min(part_files, rows) contiguous, near-equal slices.
    The name carries index and count (part-00001-of-00004.csv): sorted names are row order, and a missing
    part is detectable downstream."""
    n = min(part_files, n_rows)
    bounds = np.linspace(0, n_rows, n + 1).round().astype(int)
    return [(os.path.join(out, relative, f"part-{k:05d}-of-{n:05d}.csv"), slice(bounds[k], bounds[k + 1]))
            for k in range(n)]


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/transformed")
    p.add_argument("--part-files", type=int, default=1, help="parts per input file (batch transform spreads them)")
    args = p.parse_args(argv)
    if args.part_files < 1:
        raise InputError(f"bad arguments: --part-files {args.part_files} must be >= 1")
    host, hosts = current_host()
    input_dir = container_path(args.input_dir)
    # ShardedByS3Key with fewer objects than instances leaves some instances without any
    paths = list_files(input_dir, required=len(hosts) == 1)
    if not paths:
        print(f"{host}: no input files in this instance's shard ({len(hosts)} instances); nothing to transform")
        return
    archive = container_path(args.model_path)
    with tempfile.TemporaryDirectory() as tmp:
        files = extract(archive, tmp, MODEL_FILES)
        pre = joblib.load(files["preprocessor.joblib"])
        schema = load_schema(files["dataset_schema.json"])
        with open(files["preprocessing.json"]) as f:
            fit = json.load(f)
    features = schema.features
    allow = schema.feature_names if schema.missing_features == "impute" else []
    tolerant = [c.name for c in schema.categorical_features if c.unknown_category != "error"]
    out = container_path(args.output_dir)
    total = 0
    for path in paths:  # one file at a time: memory holds one input file, never the whole shard
        lines = []
        rows, missing = read_table(path, schema, features, allow_missing=allow, unknown_ok=tolerant,
                                   what="inference", lines=lines)
        counts = ", ".join(f"{k}={v}" for k, v in missing.items() if v)
        print(f"read {len(rows)} rows from {path}" + (f"; missing values imputed: {counts}" if counts else ""))
        df = apply_unknown_policy(frame_of(rows, schema.feature_names, path, lines), schema, fit)
        check_magnitudes(df, schema)
        transformed = np.asarray(pre.transform(feature_frame(df, schema)), dtype=float)  # the training-time fit
        if transformed.shape[0] != len(df):
            raise InputError(f"{path}: preprocessing returned {transformed.shape[0]} rows for {len(df)} input rows")
        check_finite(df, transformed, schema)
        parts = part_paths(out, os.path.relpath(path, input_dir), len(df), args.part_files)
        for part, rows_of_part in parts:
            os.makedirs(os.path.dirname(part), exist_ok=True)
            pd.DataFrame(transformed[rows_of_part]).to_csv(part, header=False, index=False)
        total += len(df)
        print(f"wrote {len(df)} rows x {transformed.shape[1]} features to {len(parts)} part(s) under "
              f"{os.path.dirname(parts[0][0])}")
    print(f"{host}: transformed {total} rows from {len(paths)} file(s)")


if __name__ == "__main__":
    run_main(main, "preprocess_inference")
