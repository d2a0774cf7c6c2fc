"""TrainingEval: score the trained model on the held-out test split.

Inputs : /opt/ml/processing/model/model.tar.gz (model.joblib inside), /opt/ml/processing/test/test.csv
         (headerless: target first, then transformed features)
Output : /opt/ml/processing/evaluation/evaluation.json =
         {"regression_metrics": {"mse"|"rmse"|"mae"|"r2": {"value": x, "standard_deviation": s}}}
         standard_deviation is the bootstrap standard error of the metric (200 resamples, fixed seed).
"""

import argparse
import csv
import json
import math
import os
import sys
import tarfile
import tempfile
import traceback

import joblib
import numpy as np


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file, the row and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def safe_extract(archive, dest):
    """Extract regular files and directories only; reject absolute paths, '..' and links (path traversal)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                parts = m.name.replace("\\", "/").split("/")
                if m.name.startswith(("/", "\\")) or ".." in parts or (len(m.name) > 1 and m.name[1] == ":"):
                    raise InputError(f"{archive}: unsafe path {m.name!r} in archive (path traversal)")
                if not (m.isfile() or m.isdir()):
                    raise InputError(f"{archive}: unsupported member {m.name!r} (links/devices are refused)")
            for m in members:
                target = os.path.join(dest, m.name)
                if m.isdir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target) or dest, exist_ok=True)
                with tar.extractfile(m) as src, open(target, "wb") as out:
                    out.write(src.read())
    except FileNotFoundError:
        raise InputError(f"{archive}: model archive not found") from None
    except tarfile.TarError as exc:
        raise InputError(f"{archive}: not a readable tar.gz archive ({exc})") from None


def read_test(path):
    if not os.path.isfile(path):
        raise InputError(f"{path}: test file not found")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            for row in reader:
                line = reader.line_num
                if not row:
                    raise InputError(f"{path}: line {line}: empty line")
                if rows and len(row) != len(rows[0]):
                    raise InputError(f"{path}: line {line}: expected {len(rows[0])} columns, found {len(row)}")
                try:
                    values = [float(v) for v in row]
                except ValueError:
                    raise InputError(f"{path}: line {line}: non-numeric value in {row!r}") from None
                if not all(math.isfinite(v) for v in values):
                    raise InputError(f"{path}: line {line}: missing or non-finite value")
                rows.append(values)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV: {exc}") from None
    if not rows:
        raise InputError(f"{path}: file is empty")
    data = np.asarray(rows)
    if data.shape[1] < 2:
        raise InputError(f"{path}: needs the target column plus feature columns")
    return data[:, 1:], data[:, 0]


def regression_metrics(y_true, y_pred, n_boot=200, seed=0):
    def metrics(t, p):
        err = p - t
        mse = float(np.mean(err**2))
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else 0.0
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "r2": r2}

    rng = np.random.default_rng(seed)
    boots = [metrics(y_true[i], y_pred[i]) for i in (rng.integers(0, len(y_true), len(y_true)) for _ in range(n_boot))]
    point = metrics(y_true, y_pred)
    return {k: {"value": v, "standard_deviation": float(np.std([b[k] for b in boots]))} for k, v in point.items()}


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
        safe_extract(archive, tmp)
        model_file = os.path.join(tmp, "model.joblib")
        if not os.path.isfile(model_file):
            raise InputError(f"{archive}: no model.joblib at the archive root")
        model = joblib.load(model_file)
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
        fail(f"evaluate failed: {type(exc).__name__}: {exc}")
