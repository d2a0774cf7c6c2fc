"""The template's default model against linear regression and a plain random forest: K-fold CV MSE on any data set.

    make bench-models                                    # the shipped data/training-data.csv, current schema
    make bench-models DATA=my.csv SCHEMA=my_schema.json  # any CSV (header optional) described by a schema
    make bench-models DATA="a.csv b.csv" SCHEMA="a.json b.json"   # several data sets, side by side
    make bench-models SUITE=1                            # plus the reference sets of bench/model_datasets.py
    .venv/bin/python bench/bench_models.py [--data FILE [--schema FILE]]... [--folds 5] [--seed 0]
        [--variant stack_folds=3 [--variant n_estimators=100,stack_folds=3]]...

Each --data goes with the --schema in the same position (one --schema serves them all; none: the current
scripts/dataset_schema.json).

Every model gets the same rows, folds and feature preprocessing (the template's own: the schema's one-hot
categories, median imputation, standardization); the default model is the training pipeline's algorithm with
the hyperparameters of pipeline_scripts/training_pipeline.yaml, built by the step library exactly as the
training job builds it. Rows without a target are left out (and counted). Goal: the default model is never worse
than linear regression: "holds" when its CV MSE is lower, "ties" when it is higher by less than one standard
error of the fold-by-fold differences (noise), else "FAILS". The last line is the JSON of the figures; the MSE
also guides the tfvars threshold (README "Bring your own data set"). Each --variant adds the default model with
those hyperparameters changed, scored on the same folds, with its difference to the default (mean ± standard
error of the fold-by-fold differences) and its CPU seconds: how a cheaper setting is chosen without guessing.
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
from steplib.errors import InputError  # noqa: E402

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
            lambda overrides=None: algorithm.estimator({**values, **(overrides or {})}), f"{algorithm.name} {values}",
            algorithm)


def parse_variant(spec: str, algorithm) -> dict:
    """'stack_folds=3,n_estimators=100' -> typed overrides, checked against the algorithm's hyperparameters."""
    out = {}
    for item in filter(None, spec.split(",")):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in algorithm.names:
            raise SystemExit(f"error: --variant {spec!r}: {item!r} is not NAME=VALUE of a {algorithm.name} "
                             f"hyperparameter ({', '.join(algorithm.names)})")
        try:
            out[name.strip()] = algorithm.hyperparameter(name.strip()).parse(value.strip())
        except InputError as exc:  # the value's problem in words, as the training job would report it
            raise SystemExit(f"error: --variant {spec!r}: {exc}") from None
    return out


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the fold-by-fold differences a - b and its standard error."""
    diff = np.subtract(a, b)
    return float(diff.mean()), float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def score(data: Path, schema_path: Path, args) -> dict:
    """K-fold CV of every model on one data set (same folds and preprocessing for all)."""
    from sklearn.base import clone
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline

    schema = make_data.load_schema(schema_path)
    frame, unlabelled = load_frame(data, schema, args.ignore_header)
    to_features, make_pre, make_default, described, algorithm = template_parts(schema)
    x, y = to_features(frame), frame[schema.target].to_numpy(float)
    variants = {f"default {spec}": parse_variant(spec, algorithm) for spec in args.variant or []}
    models = {
        "default": make_default,
        **{name: (lambda o=overrides: make_default(o)) for name, overrides in variants.items()},
        "linear_regression": LinearRegression,
        "random_forest": lambda: RandomForestRegressor(random_state=args.seed, n_jobs=-1),
    }
    folds = list(KFold(args.folds, shuffle=True, random_state=args.seed).split(x))
    results = {}
    for name, make in models.items():
        scores, start = [], time.process_time()
        for train, test in folds:
            model = make_pipeline(make_pre(), clone(make()))
            model.fit(x.iloc[train], y[train])
            scores.append(float(np.mean((model.predict(x.iloc[test]) - y[test]) ** 2)))
        results[name] = {"mse": float(np.mean(scores)), "sd": float(np.std(scores)), "folds": scores,
                         "cpu_seconds": round(time.process_time() - start, 1)}
    mean, margin = paired(results["default"]["folds"], results["linear_regression"]["folds"])
    verdict = "holds" if mean < 0 else "ties" if mean <= margin else "FAILS"
    vs_default = {}
    for name in variants:
        d, se = paired(results[name]["folds"], results["default"]["folds"])
        vs_default[name] = {"mean_difference": d, "standard_error": se}
    return {"data": str(data), "schema": schema.name, "rows": len(frame), "unlabelled": unlabelled,
            "variance": float(np.var(y)), "default_model": described, "results": results,
            "vs_linear": {"mean_difference": mean, "standard_error": margin, "verdict": verdict},
            "vs_default": vs_default}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, action="append", help="default: data/training-data.csv")
    p.add_argument("--schema", type=Path, action="append", help="default: scripts/dataset_schema.json")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ignore-header", action="store_true", help="line 1 names the columns otherwise (schema order)")
    p.add_argument("--variant", action="append", metavar="NAME=VALUE[,NAME=VALUE]",
                   help="also score the default model with these hyperparameters changed (repeatable)")
    p.add_argument("--suite", type=Path, metavar="DIR",
                   help="also score the reference data sets of bench/model_datasets.py, written to DIR")
    args = p.parse_args(argv)
    data = args.data or [ROOT / "data" / "training-data.csv"]
    schemas = args.schema or [make_data.SCHEMA_PATH]
    if len(schemas) not in (1, len(data)):
        p.error(f"{len(data)} --data and {len(schemas)} --schema: give one schema, or one per data set")
    schemas = schemas * len(data) if len(schemas) == 1 else schemas
    if args.suite:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import model_datasets

        for path, schema_path in model_datasets.write(args.suite):
            data, schemas = [*data, path], [*schemas, schema_path]
    reports = []
    for path, schema_path in zip(data, schemas):
        try:
            reports.append(score(path, schema_path, args))
        except make_data.DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"{args.folds}-fold CV MSE, seed {args.seed}; in brackets: against linear regression; "
          f"CPU seconds for all folds")
    for i, r in enumerate(reports, 1):
        print(f"  [{i}] {r['data']} (schema {r['schema']}): {r['rows']} labelled rows "
              f"({r['unlabelled']} without a target left out), target variance {r['variance']:.6g}")
    print(f"default model: {reports[0]['default_model']}")
    table = {name: [f"{r['results'][name]['mse']:.5g} ({r['results'][name]['mse'] / r['results']['linear_regression']['mse']:.3f}x, "
                    f"{r['results'][name]['cpu_seconds']:g} s)" for r in reports] for name in reports[0]["results"]}
    table["default vs linear"] = [f"{r['vs_linear']['verdict']} ({r['vs_linear']['mean_difference']:+.3g} "
                                  f"± {r['vs_linear']['standard_error']:.2g})" for r in reports]
    for name in reports[0]["vs_default"]:
        table[f"{name} vs default"] = [f"{r['vs_default'][name]['mean_difference']:+.3g} "
                                       f"± {r['vs_default'][name]['standard_error']:.2g}" for r in reports]
    heads = [f"[{i}] {r['schema']}" for i, r in enumerate(reports, 1)]
    width = 2 + max(len(c) for c in heads + [c for cells in table.values() for c in cells])
    label = max(20, *(len(name) + 2 for name in table))
    print(f"{'model':<{label}}" + "".join(f"{h:>{width}}" for h in heads))
    for name, cells in table.items():
        print(f"{name:<{label}}" + "".join(f"{c:>{width}}" for c in cells))
    failed = [r["schema"] for r in reports if r["vs_linear"]["verdict"] == "FAILS"]
    print(f"goal (default no worse than linear regression): {'FAILS on ' + ', '.join(failed) if failed else 'holds'}")
    print(json.dumps({"folds": args.folds, "seed": args.seed, "data_sets": reports}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
