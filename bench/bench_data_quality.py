"""Benchmark: our data-quality engine vs Evidently on 1,000,000 rows x 9 columns.

    .venv-bench/bin/python bench/bench_data_quality.py [--rows 1000000] [--data-dir DIR]

Generates an abalone-like reference and a (slightly drifted) current data set as CSV files
(seeded), then times, each engine in its own subprocess so peak memory is separate:
  ours      scripts/data_quality.py baseline (reference) + check (current), CSV to JSON files
  evidently pandas.read_csv of both files + Report([DataDriftPreset(), DataSummaryPreset()])
            .run(current, reference) + snapshot.dict()
and prints wall times, their ratio and peak RSS (ru_maxrss of each subprocess).
Evidently (bench-only dependency) must be importable by this interpreter; it needs pandas<3.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ["length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight", "shell_weight"]


def generate(n, seed, shift=0.0):
    import numpy as np
    import pandas as pd

    r = np.random.default_rng(seed)
    length = np.clip(r.normal(0.52 + shift, 0.12, n), 0.075, 0.815)
    whole = np.abs(10.4 * length ** 3 + r.normal(0, 0.05, n))
    return pd.DataFrame({
        "sex": r.choice(["M", "F", "I"], n, p=[0.37, 0.31, 0.32]),
        "length": length, "diameter": 0.78 * length + r.normal(0, 0.015, n),
        "height": np.abs(0.27 * length + r.normal(0, 0.012, n)), "whole_weight": whole,
        "shucked_weight": 0.43 * whole + np.abs(r.normal(0, 0.02, n)),
        "viscera_weight": 0.22 * whole + np.abs(r.normal(0, 0.01, n)),
        "shell_weight": 0.29 * whole + np.abs(r.normal(0, 0.015, n)),
        "rings": np.round(np.clip(r.normal(9.9, 3.2, n), 1, 29)),
    })


def prepare(data_dir, rows):
    ref, cur = os.path.join(data_dir, f"reference-{rows}.csv"), os.path.join(data_dir, f"current-{rows}.csv")
    schema = os.path.join(data_dir, "dataset_schema.json")
    with open(schema, "w") as fh:
        json.dump({"name": "abalone", "target": "rings",
                   "columns": [{"name": "sex", "type": "categorical", "categories": ["M", "F", "I"]}]
                   + [{"name": c, "type": "float"} for c in FEATURES + ["rings"]]}, fh)
    for path, seed, shift in ((ref, 1, 0.0), (cur, 2, 0.02)):
        if not os.path.exists(path):
            t = time.perf_counter()
            generate(rows, seed, shift).to_csv(path + ".tmp", index=False, float_format="%.6f")
            os.replace(path + ".tmp", path)
            print(f"generated {path} in {time.perf_counter() - t:.1f} s", flush=True)
    return ref, cur, schema


# Each engine runs in a fresh interpreter; it prints one JSON line with seconds and peak RSS.
OURS = r"""
import importlib.util, json, resource, sys, time
root, ref, cur, schema, out = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("data_quality", root + "/scripts/data_quality.py")
dq = importlib.util.module_from_spec(spec); spec.loader.exec_module(dq)
t = time.perf_counter()
dq.run_baseline(ref, schema, True, out + "/baseline")
summary = dq.run_check(cur, out + "/baseline/statistics.json", out + "/baseline/constraints.json", out + "/check")
secs = time.perf_counter() - t
print(json.dumps({"seconds": secs, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "violations": summary["violation_count"], "pandas": dq.pd.__version__}))
"""

EVIDENTLY = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset, DataSummaryPreset
ref, cur = sys.argv[1:3]
t = time.perf_counter()
reference, current = pd.read_csv(ref), pd.read_csv(cur)
snapshot = Report([DataDriftPreset(), DataSummaryPreset()]).run(current, reference)
result = snapshot.dict()
secs = time.perf_counter() - t
drifted = None
for m in result.get("metrics", []):
    if "DriftedColumnsCount" in str(m.get("metric_name", "")):
        drifted = m.get("value", {}).get("count")
print(json.dumps({"seconds": secs, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "drifted_columns": drifted, "pandas": pd.__version__}))
"""


def run_engine(name, code, args, python):
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--data-dir", default=None, help="where the generated CSVs are kept (default: a temp dir)")
    ap.add_argument("--dq-python", default=sys.executable, help="interpreter for our engine")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        os.makedirs(data_dir, exist_ok=True)
        ref, cur, schema = prepare(data_dir, args.rows)
        size_mb = (os.path.getsize(ref) + os.path.getsize(cur)) / 1e6
        print(f"data: {args.rows:,} rows x 9 columns per file ({size_mb:.0f} MB of CSV for both)", flush=True)
        out = os.path.join(tmp, "dq-out")
        ours = run_engine("data_quality", OURS, [ROOT, ref, cur, schema, out], args.dq_python)
        evid = run_engine("evidently", EVIDENTLY, [ref, cur], sys.executable)
    ratio = evid["seconds"] / ours["seconds"]
    print(f"python {sys.version.split()[0]}; pandas: ours {ours['pandas']}, evidently {evid['pandas']}")
    print(f"ours      (baseline+check, CSV in, JSON out): {ours['seconds']:7.2f} s   "
          f"peak RSS {ours['maxrss_kb'] / 1024:7.0f} MiB   violations={ours['violations']}")
    print(f"evidently (read CSV + DataDrift+DataSummary):  {evid['seconds']:7.2f} s   "
          f"peak RSS {evid['maxrss_kb'] / 1024:7.0f} MiB   drifted_columns={evid['drifted_columns']}")
    print(f"ratio evidently/ours: {ratio:.2f}x ({'ours faster' if ratio > 1 else 'evidently faster'})")


if __name__ == "__main__":
    main()
