"""Benchmark: our data-quality engine against Evidently, on time and on what each one detects.

    make bench-dq            # = .venv-bench/bin/python bench/bench_data_quality.py --dq-python .venv/bin/python
    options: --rows 1000000 --repeats 3 --runs-small 40 --runs-large 10 [--skip-speed] [--skip-detection]

Fair by construction: our engine runs in the project venv (.venv: pandas 3.1.1, as in production),
Evidently in .venv-bench (Evidently 0.7 needs pandas < 3); both in fresh subprocesses, on the same files.

1. Speed (1,000,000 rows x 9 columns from tools/synth.py, reference + a slightly shifted current set): wall
   time of baseline+check (ours) and of reading the CSVs + Report([DataDriftPreset(), DataSummaryPreset()])
   (Evidently), each repeated --repeats times (min and median), peak RSS, and both verdicts: which
   columns each engine calls drifted, side by side.
2. Detection: one N(0, 1) feature, reference and current of n rows each (n = 1,000 and 100,000), the
   current mean shifted by 0, 0.05, 0.1, 0.2 and 0.5 sigma. The table gives the share of runs in which
   each engine flags the feature: ours with its default constraints (L-infinity distance, Robust, 0.1),
   Evidently with its defaults (K-S p < 0.05 up to 1,000 rows, Wasserstein distance > 0.1 sigma above).
   Data are generated from the same seeds in both processes (numpy 2.4.6 in both venvs).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from peak_memory import PEAK  # bench/ is on sys.path when run as a script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIFTS = [0.0, 0.05, 0.1, 0.2, 0.5]
SIZES = [1_000, 100_000]
SLIGHT_SHIFT = 0.17  # sigma: the "slightly shifted" current set

# The data come from the project's seeded generator (tools/synth.py, its SAMPLE_SCHEMA: one categorical, seven
# floats, a target), run in the project venv: the same rows whatever data set the template is set up for.
GENERATE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from tools import synth
rows, seed, shift, path, schema_path = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
synth.generate(synth.SAMPLE_SCHEMA, rows, seed, shift=shift).to_csv(path + ".tmp", index=False, float_format="%.6f")
os.replace(path + ".tmp", path)
with open(schema_path, "w") as fh:
    json.dump(synth.SAMPLE_SCHEMA, fh)
"""


def prepare(data_dir, rows, dq_python):
    ref, cur = os.path.join(data_dir, f"reference-{rows}.csv"), os.path.join(data_dir, f"current-{rows}.csv")
    schema = os.path.join(data_dir, "dataset_schema.json")
    for path, seed, shift in ((ref, 1, 0.0), (cur, 2, SLIGHT_SHIFT)):
        if not os.path.exists(path) or not os.path.exists(schema):
            t = time.perf_counter()
            subprocess.run([dq_python, "-c", GENERATE, ROOT, str(rows), str(seed), str(shift), path, schema], check=True)
            print(f"generated {path} in {time.perf_counter() - t:.1f} s", flush=True)
    return ref, cur, schema


# Each engine runs in a fresh interpreter and prints one JSON line.
OURS = PEAK + r"""
import importlib.util, json, sys, time
root, ref, cur, schema, out = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("data_quality", root + "/scripts/data_quality.py")
dq = importlib.util.module_from_spec(spec); spec.loader.exec_module(dq)
import pandas as pd
t = time.perf_counter()
dq.run_baseline(ref, schema, True, out + "/baseline")
summary = dq.run_check(cur, out + "/baseline/statistics.json", out + "/baseline/constraints.json", out + "/check")
secs = time.perf_counter() - t
drifted = sorted({v["feature_name"] for v in summary["violations"] if v["constraint_check_type"] == "baseline_drift_check"})
print(json.dumps({"seconds": secs, "maxrss_kb": peak_kib(),
                  "violations": summary["violation_count"], "drifted": drifted, "pandas": pd.__version__}))
"""

EVIDENTLY = PEAK + r"""
import json, sys, time, warnings
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
drifted = []
for m in result.get("metrics", []):
    name, value = str(m.get("metric_name", "")), m.get("value")
    if name.startswith("ValueDrift(") and isinstance(value, (int, float)):
        cfg = m.get("config") or {}
        column, threshold = cfg.get("column"), cfg.get("threshold")
        method = str(cfg.get("method", ""))
        is_p_value = "p_value" in method or "K-S" in method or "chi" in method.lower() or "Z-test" in method
        if column and threshold is not None and ((value < threshold) if is_p_value else (value >= threshold)):
            drifted.append(column)
print(json.dumps({"seconds": secs, "maxrss_kb": peak_kib(),
                  "drifted": sorted(drifted), "pandas": pd.__version__}))
"""

# Detection runs: every (n, shift, run) data set generated from seed 1000 * run + n-index.
DETECT_OURS = r"""
import importlib.util, json, os, sys, tempfile
import numpy as np, pandas as pd
root, plan = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("data_quality", root + "/scripts/data_quality.py")
dq = importlib.util.module_from_spec(spec); spec.loader.exec_module(dq)
import contextlib, io
out = {}
with tempfile.TemporaryDirectory() as tmp:
    for n, runs in plan["sizes"]:
        for shift in plan["shifts"]:
            flagged = 0
            for run in range(runs):
                r = np.random.default_rng([run, n])
                pd.DataFrame({"x": r.normal(0, 1, n)}).to_csv(tmp + "/ref.csv", index=False)
                pd.DataFrame({"x": r.normal(shift, 1, n)}).to_csv(tmp + "/cur.csv", index=False)
                with contextlib.redirect_stdout(io.StringIO()):
                    dq.run_baseline(tmp + "/ref.csv", None, False, tmp + "/b")
                    s = dq.run_check(tmp + "/cur.csv", tmp + "/b/statistics.json", tmp + "/b/constraints.json", tmp + "/c")
                flagged += any(v["constraint_check_type"] == "baseline_drift_check" for v in s["violations"])
            out[f"{n}/{shift}"] = [flagged, runs]
print(json.dumps(out))
"""

DETECT_EVIDENTLY = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
plan = json.loads(sys.argv[1])
out = {}
for n, runs in plan["sizes"]:
    for shift in plan["shifts"]:
        flagged = 0
        for run in range(runs):
            r = np.random.default_rng([run, n])
            ref = pd.DataFrame({"x": r.normal(0, 1, n)})
            cur = pd.DataFrame({"x": r.normal(shift, 1, n)})
            result = Report([DataDriftPreset()]).run(cur, ref).dict()
            count = next(m["value"]["count"] for m in result["metrics"] if "DriftedColumnsCount" in m["metric_name"])
            flagged += count > 0
        out[f"{n}/{shift}"] = [flagged, runs]
print(json.dumps(out))
"""


def run_json(name, argv):
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def speed(args):
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        os.makedirs(data_dir, exist_ok=True)
        ref, cur, schema = prepare(data_dir, args.rows, args.dq_python)
        size_mb = (os.path.getsize(ref) + os.path.getsize(cur)) / 1e6
        print(f"data: {args.rows:,} rows x 9 columns per file ({size_mb:.0f} MB of CSV for both)", flush=True)
        ours, evid = [], []
        for i in range(args.repeats):  # interleaved, so a change in the machine's load hits both
            ours.append(run_json("ours", [args.dq_python, "-c", OURS, ROOT, ref, cur, schema, os.path.join(tmp, f"o{i}")]))
            evid.append(run_json("evidently", [sys.executable, "-c", EVIDENTLY, ref, cur]))
    print(f"\nSpeed, {args.repeats} repeats each (python {sys.version.split()[0]}; pandas: ours {ours[0]['pandas']}, "
          f"evidently {evid[0]['pandas']}); load average {os.getloadavg()[0]:.1f}")
    for label, res in (("ours      baseline+check, CSV in, JSON out", ours),
                       ("evidently read CSV + DataDrift + DataSummary", evid)):
        secs = [r["seconds"] for r in res]
        print(f"  {label}: min {min(secs):6.2f} s  median {statistics.median(secs):6.2f} s  "
              f"peak RSS {max(r['maxrss_kb'] for r in res) / 1024:5.0f} MiB")
    ratio = statistics.median(r["seconds"] for r in evid) / statistics.median(r["seconds"] for r in ours)
    print(f"  median ratio evidently/ours: {ratio:.1f}x")
    print(f"  drifted columns on the 'slightly shifted' set (every feature's mean +{SLIGHT_SHIFT} sigma):")
    print(f"    ours      ({len(ours[0]['drifted'])}): {ours[0]['drifted']}")
    print(f"    evidently ({len(evid[0]['drifted'])}): {evid[0]['drifted']}")


def detection(args):
    plan = {"sizes": [[1_000, args.runs_small], [100_000, args.runs_large]], "shifts": SHIFTS}
    t = time.perf_counter()
    ours = run_json("ours detection", [args.dq_python, "-c", DETECT_OURS, ROOT, json.dumps(plan)])
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    evid = run_json("evidently detection", [sys.executable, "-c", DETECT_EVIDENTLY, json.dumps(plan)])
    t_evid = time.perf_counter() - t
    print(f"\nDetection: share of runs flagging drift of one N(0,1) feature, current mean shifted by k sigma "
          f"(ours {t_ours:.0f} s, evidently {t_evid:.0f} s)")
    print(f"  {'n':>8} {'runs':>5} {'engine':<10} " + " ".join(f"{s:>6g}σ" for s in SHIFTS))
    for n, runs in plan["sizes"]:
        for label, res in (("ours", ours), ("evidently", evid)):
            cells = " ".join(f"{res[f'{n}/{s}'][0] / res[f'{n}/{s}'][1]:>7.0%}" for s in SHIFTS)
            print(f"  {n:>8,} {runs:>5} {label:<10} {cells}")
    false_alarm = max(ours[f"{n}/0.0"][0] / ours[f"{n}/0.0"][1] for n, _ in plan["sizes"])
    print(f"  ours at 0 sigma: {false_alarm:.0%} of runs (must stay <= 5%)")
    return false_alarm <= 0.05


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runs-small", type=int, default=40, help="runs per shift at n = 1,000")
    ap.add_argument("--runs-large", type=int, default=10, help="runs per shift at n = 100,000")
    ap.add_argument("--data-dir", default=None, help="where the generated CSVs are kept (default: a temp dir)")
    ap.add_argument("--dq-python", default=os.path.join(ROOT, ".venv", "bin", "python"),
                    help="interpreter for our engine (the project venv: production pandas)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-detection", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    if not args.skip_speed:
        speed(args)
    if not args.skip_detection and not detection(args):
        sys.exit(1)


if __name__ == "__main__":
    main()
