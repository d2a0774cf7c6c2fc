"""Evaluation (contracts/pipelines.json role evaluation): score the trained model on the held-out test split.

Inputs : /opt/ml/processing/model/model.tar.gz (model.joblib inside), /opt/ml/processing/test/test.csv
         (headerless: target first, then transformed features)
Output : /opt/ml/processing/evaluation/evaluation.json =
         {"regression_metrics": {"mse"|"rmse"|"mae"|"r2": {"value": x, "standard_deviation": s}}}
         standard_deviation is the bootstrap standard error of the metric (200 resamples, fixed seed).
"""

import json
import os
import tempfile

import joblib
import numpy as np

from steplib import InputError, Parser, container_path, run_main
from steplib.archive import extract
from steplib.csvio import read_numeric
from steplib.metrics import regression_metrics


def read_test(path):
    if not os.path.isfile(path):
        raise InputError(f"{path}: test file not found")
    data = np.asarray(read_numeric(path))
    if data.shape[1] < 2:
        raise InputError(f"{path}: needs the target column plus feature columns")
    return data[:, 1:], data[:, 0]


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--test-path", default="/opt/ml/processing/test/test.csv")
    p.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    args = p.parse_args(argv)
    archive, test_path = container_path(args.model_path), container_path(args.test_path)
    if os.path.isdir(test_path):
        test_path = os.path.join(test_path, "test.csv")
    with tempfile.TemporaryDirectory() as tmp:
        files = extract(archive, tmp, {"model.joblib"})
        model = joblib.load(files["model.joblib"])
    x, y = read_test(test_path)
    expected = getattr(model, "n_features_in_", x.shape[1])
    if x.shape[1] != expected:
        raise InputError(f"{test_path}: {x.shape[1]} feature columns, the model expects {expected}")
    report = {"regression_metrics": regression_metrics(y, np.asarray(model.predict(x), dtype=float))}
    out = container_path(args.output_dir)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "evaluation.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"test rows={len(y)} " + " ".join(f"{k}={v['value']:.4f}" for k, v in report["regression_metrics"].items()))


if __name__ == "__main__":
    run_main(main, "evaluate")
