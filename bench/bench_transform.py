"""Batch-transform throughput per instance, for each algorithm, with the model's test MSE beside it.

    make bench-transform     # = .venv/bin/python bench/bench_transform.py [--data FILE] [--workers 1 2]

The real step scripts run as the pipeline runs them: preprocess_training.py (split seed 42), then train.py
per algorithm with pipeline_scripts/training_pipeline.yaml's hyperparameters (--algorithm swapped). Each
model is then served with its own code/train.py from the model directory, the way the scikit-learn
container does for one MultiRecord request: input_fn(body bytes) -> predict_fn -> output_fn, on a payload
of the test rows repeated up to MaxPayloadInMB (6 MB, ~60k rows).

Printed per algorithm:
  rows/s, 1 worker, strict parse  today's path: the csv-module parser (steplib), one request at a time
  rows/s, 1 worker, vectorized    input_fn's pandas fast path
  rows/s, W workers                W processes serving at once on this machine (MaxConcurrentTransforms = W);
                                   shows whether requests scale with cores here (2 cores, shared)
  per 4-vCPU instance              4 workers x the 1-worker vectorized figure (CPU-bound, no shared state:
                                   the model server starts one worker per vCPU) against today's 1 x strict
"""
import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAINING_YAML = ROOT / "pipeline_scripts" / "training_pipeline.yaml"
ALGORITHMS = ("stacking", "random_forest_svr", "random_forest", "xgboost")
PAYLOAD_MB = 6


def run(script, args, env):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def train_models(data: Path, work: Path) -> tuple[dict[str, Path], Path]:
    sys.path.insert(0, str(ROOT))
    sys.path.append(str(ROOT / "scripts"))
    from steplib import algorithms
    from tools import make_data

    root = work / "opt" / "ml"
    env = {**os.environ, "SM_CONTAINER_ROOT": str(root)}
    rows = make_data.parse_table(data.read_text(), str(data), make_data.load_schema())
    make_data.import_rows(rows, str(data), root / "processing" / "input" / "data", 0, 0)
    (root / "processing" / "input" / "data" / "README.md").unlink(missing_ok=True)
    schema_dir = root / "processing" / "input" / "schema"
    schema_dir.mkdir(parents=True)
    (schema_dir / "dataset_schema.json").write_bytes((ROOT / "scripts" / "dataset_schema.json").read_bytes())
    run("preprocess_training.py", [], env)
    out = root / "processing" / "output"
    hp = yaml.safe_load(TRAINING_YAML.read_text())["training"]["hyperparameters"]
    models = {}
    for algorithm in ALGORITHMS:
        model_dir = work / "models" / algorithm
        train_env = {**env, "SM_MODEL_DIR": str(model_dir),
                     **{f"SM_CHANNEL_{k.upper()}": str(out / k) for k in ("train", "validation", "preprocessor")}}
        # the YAML's values where this algorithm has that hyperparameter and the value fits its range (train.py
        # refuses the others; e.g. xgboost's max_depth has no 0 = unlimited): its defaults for the rest
        spec = algorithms.get(algorithm)
        own = {k: str(v) for k, v in hp.items() if k in spec.names and spec.hyperparameter(k).problem(v) is None}
        args = [a for k, v in {**own, "algorithm": algorithm}.items() for a in (f"--{k}", v)]
        run("train.py", args, train_env)
        models[algorithm] = model_dir
    return models, out / "test" / "test.csv"


def one_core(model):
    """n_jobs=1 wherever the model has it: one model-server worker per vCPU, each on one core."""
    model.set_params(**{k: 1 for k in model.get_params(deep=True) if k.endswith("n_jobs")})
    return model


def load_serving(model_dir: Path):
    code = model_dir / "code"
    sys.path.insert(0, str(code))  # as SAGEMAKER_SUBMIT_DIRECTORY: the model's own copy of train.py
    spec = importlib.util.spec_from_file_location(f"serving_{model_dir.name}", code / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def payload(test_csv: Path) -> tuple[bytes, np.ndarray, np.ndarray]:
    data = np.loadtxt(test_csv, delimiter=",", ndmin=2)
    y, x = data[:, 0], data[:, 1:]
    lines = [",".join(repr(float(v)) for v in row) for row in x]
    per_row = sum(len(line) + 1 for line in lines) / len(lines)
    n = int(PAYLOAD_MB * 1024 * 1024 / per_row) - 1
    body = "\n".join(lines[i % len(lines)] for i in range(n)) + "\n"
    return body.encode(), x, y


def serve(serving, model, body: bytes, strict: bool) -> int:
    if strict:  # today's input_fn: the strict parser only
        x = serving.parse_numeric_csv(body.decode(), "request body")
    else:
        x = serving.input_fn(body, "text/csv")
    out = serving.output_fn(serving.predict_fn(x, model), "text/csv")
    return out.count("\n")


def _worker(args):
    model_dir, body, requests, start = args
    serving = load_serving(Path(model_dir))
    model = one_core(serving.model_fn(str(model_dir)))
    while time.time() < start:
        time.sleep(0.001)
    rows = 0
    for _ in range(requests):
        rows += serve(serving, model, body, strict=False)
    return rows, time.time()


def concurrent_rows_per_s(model_dir: Path, body: bytes, workers: int, requests: int) -> float:
    start = time.time() + 3.0  # every worker loaded before the clock starts
    with mp.get_context("fork").Pool(workers) as pool:
        results = pool.map(_worker, [(str(model_dir), body, requests, start)] * workers)
    return sum(r for r, _ in results) / (max(t for _, t in results) - start)


def rows_per_s(serving, model, body: bytes, strict: bool, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        rows = serve(serving, model, body, strict)
        best = min(best, time.perf_counter() - t)
    return rows / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "training-data.csv")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--requests", type=int, default=2, help="requests per worker in the concurrent run")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker, as one model-server worker per vCPU
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        models, test_csv = train_models(args.data, Path(tmp))
        body, x_test, y_test = payload(test_csv)
        n_rows = body.count(b"\n")
        print(f"payload: {n_rows:,} rows, {len(body) / 1e6:.1f} MB (MaxPayloadInMB {PAYLOAD_MB}); "
              f"test split {len(y_test)} rows of {args.data.name}", flush=True)
        results = []
        for algorithm, model_dir in models.items():
            serving = load_serving(model_dir)
            model = one_core(serving.model_fn(str(model_dir)))
            mse = float(np.mean((model.predict(x_test) - y_test) ** 2))
            strict = rows_per_s(serving, model, body, True, args.repeats)
            fast = rows_per_s(serving, model, body, False, args.repeats)
            conc = {w: concurrent_rows_per_s(model_dir, body, w, args.requests) for w in args.workers}
            results.append((algorithm, mse, strict, fast, conc))
            print(f"  {algorithm}: done", flush=True)
    print(f"\n{'algorithm':<18} {'test MSE':>8} {'1w strict':>10} {'1w vector':>10} "
          + " ".join(f"{f'{w}w':>9}" for w in args.workers) + f" {'4-vCPU est.':>12} {'vs today':>9}   (rows/s)")
    for algorithm, mse, strict, fast, conc in results:
        print(f"{algorithm:<18} {mse:>8.3f} {strict:>10,.0f} {fast:>10,.0f} "
              + " ".join(f"{conc[w]:>9,.0f}" for w in args.workers) + f" {4 * fast:>12,.0f} {4 * fast / strict:>8.1f}x")
    default = yaml.safe_load(TRAINING_YAML.read_text())["training"]["hyperparameters"]["algorithm"]
    print(f"default model: {default}; today = 1 worker (MaxConcurrentTransforms 1) with the strict parser; "
          f"4-vCPU estimate = 4 workers (MaxConcurrentTransforms = vCPUs) with the vectorized parse")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
