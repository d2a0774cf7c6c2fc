"""Inference preprocessing (contracts.json role inference_preprocess): apply the training-time preprocessing (never re-fitted) to raw inference data.

Inputs : /opt/ml/processing/input/data/ (headerless CSVs, feature columns in schema order; files are read in
         sorted name order), /opt/ml/processing/model/model.tar.gz (preprocessor.joblib, dataset_schema.json,
         preprocessing.json: the schema and the fit the model was trained with)
Output : /opt/ml/processing/output/transformed/inference-transformed.csv (headerless transformed features,
         same rows, same order).
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


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/transformed")
    p.add_argument("--output-name", default="inference-transformed.csv")
    args = p.parse_args(argv)
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
    frames = []
    for path in list_files(container_path(args.input_dir)):
        lines = []
        rows, missing = read_table(path, schema, features, allow_missing=allow, unknown_ok=tolerant,
                                   what="inference", lines=lines)
        frames.append(frame_of(rows, schema.feature_names, path, lines))
        counts = ", ".join(f"{k}={v}" for k, v in missing.items() if v)
        print(f"read {len(rows)} rows from {path}" + (f"; missing values imputed: {counts}" if counts else ""))
    df = apply_unknown_policy(pd.concat(frames, ignore_index=True), schema, fit)
    check_magnitudes(df, schema)
    transformed = pre.transform(feature_frame(df, schema))  # the training-time fit, unchanged
    if transformed.shape[0] != len(df):
        raise InputError(f"preprocessing returned {transformed.shape[0]} rows for {len(df)} input rows")
    check_finite(df, np.asarray(transformed, dtype=float), schema)
    out = container_path(args.output_dir)
    os.makedirs(out, exist_ok=True)
    out_path = os.path.join(out, args.output_name)
    pd.DataFrame(transformed).to_csv(out_path, header=False, index=False)
    print(f"wrote {len(df)} rows x {transformed.shape[1]} features to {out_path}")


if __name__ == "__main__":
    run_main(main, "preprocess_inference")
