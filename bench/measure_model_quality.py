"""Print the test-split MSE/RMSE/MAE/R2 of the default configuration on a data file.

    .venv/bin/python bench/measure_model_quality.py --data abalone.csv   # `python -m tools.make_data fetch-uci`
    .venv/bin/python bench/measure_model_quality.py --data other.csv --ignore-header  # schema order, other names

The file goes through the import path (tools.make_data: header optional), then the real step scripts run as
subprocesses: preprocess_training.py (seed 42, 15%/15%) -> train.py (hyperparameters of pipeline_scripts/training_pipeline.yaml, or --hp k=v)
-> evaluate.py. For scale it also prints the mean predictor's MSE and the original sample's model
(RandomForest max_depth=2) on the same split.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import joblib
import yaml
import numpy as np
from sklearn.ensemble import RandomForestRegressor

ROOT = Path(__file__).resolve().parents[1]
TRAINING_YAML = ROOT / "pipeline_scripts" / "training_pipeline.yaml"
sys.path.insert(0, str(ROOT))
from tools import make_data  # noqa: E402


def run(script, args, env):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{script} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout, time.perf_counter() - start


def load(path):
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    return data[:, 1:], data[:, 0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="UCI-style CSV (header optional)")
    p.add_argument("--hp", action="append", default=[], help="hyperparameter override name=value")
    p.add_argument("--ignore-header", action="store_true",
                   help="line 1 is a header whose columns are in schema order under other names")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "opt" / "ml"
        env = {**os.environ, "SM_CONTAINER_ROOT": str(root)}
        try:
            rows = make_data.read_table(args.data.read_text(), str(args.data), make_data.load_schema(),
                                        args.ignore_header).rows
        except make_data.DataError as exc:  # names file, line, column and value: the message is the answer
            sys.exit(f"error: {exc}")
        make_data.import_rows(rows, str(args.data), root / "processing" / "input" / "data", 0, 0)
        (root / "processing" / "input" / "data" / "README.md").unlink()  # only the CSV is step input
        schema_dir = root / "processing" / "input" / "schema"
        schema_dir.mkdir(parents=True)
        (schema_dir / "dataset_schema.json").write_bytes((ROOT / "scripts" / "dataset_schema.json").read_bytes())
        _, t_pre = run("preprocess_training.py", [], env)
        out = root / "processing" / "output"
        channels = {"train": out / "train", "validation": out / "validation", "preprocessor": out / "preprocessor"}
        train_env = {**env, "SM_MODEL_DIR": str(root / "model"),
                     **{f"SM_CHANNEL_{k.upper()}": str(v) for k, v in channels.items()}}
        # the training pipeline's configured hyperparameters, then any --hp overrides
        hp = {k: str(v) for k, v in yaml.safe_load(TRAINING_YAML.read_text())["training"]["hyperparameters"].items()}
        hp.update(kv.split("=", 1) for kv in args.hp)
        hp_args = [a for k, v in hp.items() for a in (f"--{k}", v)]
        train_log, t_train = run("train.py", hp_args, train_env)
        model_dir = root / "processing" / "model"
        model_dir.mkdir(parents=True)
        with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
            for f in (root / "model").iterdir():
                tar.add(f, arcname=f.name)
        test_dir = root / "processing" / "test"
        test_dir.mkdir(parents=True)
        (test_dir / "test.csv").write_bytes((out / "test" / "test.csv").read_bytes())
        _, t_eval = run("evaluate.py", [], env)
        report = json.loads((root / "processing" / "evaluation" / "evaluation.json").read_text())
        x_tr, y_tr = load(out / "train" / "train.csv")
        x_te, y_te = load(out / "test" / "test.csv")
        model = joblib.load(root / "model" / "model.joblib")
    m = report["regression_metrics"]
    val = [line for line in train_log.splitlines() if line.startswith("validation:mse=")][0]
    print(f"data: {args.data} ({len(rows)} rows); split seed 42, validation 15%, test 15% -> test rows {len(y_te)}")
    print(f"model: {model!r}")
    print(f"default configuration, test split: MSE {m['mse']['value']:.4f} (bootstrap sd {m['mse']['standard_deviation']:.3f})"
          f"  RMSE {m['rmse']['value']:.4f}  MAE {m['mae']['value']:.4f}  R2 {m['r2']['value']:.4f}   [{val}]")
    print(f"mean predictor, test split: MSE {np.mean((y_te - y_tr.mean()) ** 2):.4f}")
    base = RandomForestRegressor(max_depth=2, random_state=42).fit(x_tr, y_tr)
    print(f"original sample model RandomForest(max_depth=2), test split: MSE {np.mean((base.predict(x_te) - y_te) ** 2):.4f}")
    print(f"step wall time: preprocess {t_pre:.1f}s, train {t_train:.1f}s, evaluate {t_eval:.1f}s")


if __name__ == "__main__":
    main()
