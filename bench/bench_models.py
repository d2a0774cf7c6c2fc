"""The template's default model against linear regression and a plain random forest: K-fold CV MSE on any data set.

    make bench-models                                    # the shipped data/training-data.csv, current schema
    make bench-models DATA=my.csv SCHEMA=my_schema.json  # any CSV (header optional) described by a schema
    .venv/bin/python bench/bench_models.py [--data FILE] [--schema FILE] [--folds 5] [--seed 0]

Every model gets the same rows, folds and feature preprocessing (the template's own: the schema's one-hot
categories, median imputation, standardization); the default model is the training pipeline's algorithm with
the hyperparameters of pipeline_scripts/training_pipeline.yaml, built by the step library exactly as the
training job builds it. Rows without a target are left out (and counted). Goal: the default model is never worse
than linear regression. The last line is the JSON of the figures; the MSE also guides the tfvars threshold
(README "Bring your own data set").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "scripts"))
from tools import make_data  # noqa: E402

TRAINING_YAML = ROOT / "pipeline_scripts" / "training_pipeline.yaml"


def load_frame(path: Path, schema, ignore_header: bool = False) -> tuple[pd.DataFrame, int]:
    """Rows in schema order, typed (numeric NaN / categorical None when missing); rows without target dropped."""
    table = make_data.read_table(make_data.read_source(path), str(path), schema, ignore_header)
    frame = pd.DataFrame(table.rows, columns=schema.names)
    for col in schema.columns:
        cells = frame[col.name]
        frame[col.name] = cells.where(cells != "", None) if col.is_categorical else \
            pd.to_numeric(cells.where(cells != "", None)).astype(float)
    labelled = frame[frame[schema.target].notna()].reset_index(drop=True)
    return labelled, len(frame) - len(labelled)


def template_parts(schema):
    """(features(frame) -> preprocessor input, make_preprocessor(), make_default_model()) from the step library."""
    try:
        from steplib import algorithms, features
    except ImportError as exc:  # the step library's feature/algorithm modules (issue 11)
        sys.exit(f"error: bench_models needs steplib.features and steplib.algorithms ({exc})")

    hp = yaml.safe_load(TRAINING_YAML.read_text())["training"]["hyperparameters"]
    algorithm = algorithms.get(hp.get("algorithm", algorithms.DEFAULT_ALGORITHM))
    values = {**algorithm.defaults(), **{k: v for k, v in hp.items() if k != "algorithm"}}
    return (lambda frame: features.feature_frame(frame, schema), lambda: features.build_preprocessor(schema),
            lambda: algorithm.estimator(values), f"{algorithm.name} {values}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "training-data.csv")
    p.add_argument("--schema", type=Path, default=make_data.SCHEMA_PATH)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ignore-header", action="store_true", help="line 1 names the columns otherwise (schema order)")
    args = p.parse_args(argv)
    from sklearn.base import clone
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline

    try:
        schema = make_data.load_schema(args.schema)
        frame, unlabelled = load_frame(args.data, schema, args.ignore_header)
    except make_data.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    to_features, make_pre, make_default, described = template_parts(schema)
    x, y = to_features(frame), frame[schema.target].to_numpy(float)
    models = {
        "default": make_default,
        "linear_regression": LinearRegression,
        "random_forest": lambda: RandomForestRegressor(random_state=args.seed, n_jobs=-1),
    }
    folds = list(KFold(args.folds, shuffle=True, random_state=args.seed).split(x))
    results = {}
    for name, make in models.items():
        scores, start = [], time.perf_counter()
        for train, test in folds:
            model = make_pipeline(make_pre(), clone(make()))
            model.fit(x.iloc[train], y[train])
            scores.append(float(np.mean((model.predict(x.iloc[test]) - y[test]) ** 2)))
        results[name] = {"mse": float(np.mean(scores)), "sd": float(np.std(scores)), "folds": scores,
                         "seconds": round(time.perf_counter() - start, 1)}
    print(f"data: {args.data} ({len(frame)} labelled rows, {unlabelled} without a target left out); "
          f"schema: {args.schema} ({schema.name}); {args.folds}-fold CV, seed {args.seed}")
    print(f"default model: {described}")
    print(f"target variance (mean predictor): {np.var(y):.6g}")
    print(f"{'model':<20}{'CV MSE':>14}{'sd':>12}{'vs linear':>11}{'seconds':>9}")
    linear = results["linear_regression"]["mse"]
    for name, r in results.items():
        print(f"{name:<20}{r['mse']:>14.6g}{r['sd']:>12.4g}{r['mse'] / linear:>10.3f}x{r['seconds']:>9}")
    verdict = "holds" if results["default"]["mse"] <= linear else "FAILS"
    print(f"goal (default no worse than linear regression): {verdict}")
    print(json.dumps({"data": str(args.data), "schema": schema.name, "rows": len(frame), "folds": args.folds,
                      "variance": float(np.var(y)), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
