"""Scale benchmark of the streaming data-quality engine: time and peak memory against the row count.

    make bench-scale                      # 10M and 30M rows
    make bench-scale BENCH_SCALE_ARGS="--sizes 10000000 30000000 100000000"   # 100M too (~8 GB of CSV per file)
    .venv-bench/bin/python bench/bench_scale.py --dq-python .venv/bin/python [--sizes N ...] [--shards 4]

For each size it generates, from scripts/dataset_schema.json (seeded, with polars), a baseline and a
current data set as ``--parts`` CSV part files, then measures in the same run, each in a fresh process
(peak RSS = that process's VmHWM):
  baseline   scripts/data_quality.py baseline over the baseline files (the production interpreter)
  check      scripts/data_quality.py check of the current files against that baseline
  sharded    the baseline as --shards instances of a ShardedByS3Key job (whole files per instance,
             run two at a time on this 2-core machine) + the merge of their partial results; the merged
             statistics must equal the single pass: counts/min/max/sum/mean/std exactly, every sketch
             within the documented rank error of the exact ranks
  floor      polars reading the same files (2 threads, streaming engine), the same min/max/sum/std per
             numeric column and counts per categorical one: a lower bound for any CSV-reading engine
Generated files are kept under --data-dir (default bench/results/scale-data) and reused.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from peak_memory import PEAK  # bench/ is on sys.path when run as a script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "scripts", "data_quality.py")

# Runs the engine's CLI in this process and prints seconds and peak RSS as the last line.
MEASURED = PEAK + r"""
import json, runpy, sys, time
engine, args = sys.argv[1], sys.argv[2:]
sys.argv = [engine] + args
t = time.perf_counter()
try:
    runpy.run_path(engine, run_name="__main__")
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"seconds": time.perf_counter() - t, "maxrss_mib": peak_kib() / 1024}))
"""

FLOOR = PEAK + r"""
import json, os, sys, time
os.environ["POLARS_MAX_THREADS"] = "2"
import polars as pl
schema, files = json.load(open(sys.argv[1])), sys.argv[2:]
numeric = [c["name"] for c in schema["columns"] if c["type"] != "categorical"]
categorical = [c["name"] for c in schema["columns"] if c["type"] == "categorical"]
t = time.perf_counter()
scan = pl.scan_csv(files)
# the streaming engine, like ours: memory bounded by chunks, not by the row count
df = scan.select([pl.col(numeric).min().name.suffix("_min"), pl.col(numeric).max().name.suffix("_max"),
                  pl.col(numeric).sum().name.suffix("_sum"), pl.col(numeric).std().name.suffix("_std"),
                  pl.len().alias("rows")]).collect(engine="streaming")
for name in categorical:
    scan.group_by(name).len().collect(engine="streaming")
print(json.dumps({"seconds": time.perf_counter() - t, "rows": int(df["rows"][0]), "maxrss_mib": peak_kib() / 1024}))
"""

def generate(folder, rows, parts, seed, shift):
    """Schema-driven data: floats N(mean_i + shift*sd_i, sd_i), categories with fixed proportions."""
    import numpy as np
    import polars as pl

    schema = json.load(open(os.path.join(ROOT, "scripts", "dataset_schema.json")))
    done = os.path.join(folder, ".complete")
    if os.path.exists(done):
        return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".csv"))
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    files, per_part, block = [], -(-rows // parts), 1_000_000
    t = time.perf_counter()
    for p in range(parts):
        n_part = min(per_part, rows - p * per_part)
        path = os.path.join(folder, f"part-{p:04d}.csv")
        with open(path, "wb") as fh:
            for start in range(0, n_part, block):
                n = min(block, n_part - start)
                cols = {}
                for i, c in enumerate(schema["columns"]):
                    if c["type"] == "categorical":
                        cats = c["categories"]
                        weights = np.arange(1, len(cats) + 1, dtype=float)
                        cols[c["name"]] = rng.choice(cats, n, p=weights / weights.sum())
                    else:
                        mean, sd = 1.0 + i, 0.2 * (1 + i)
                        cols[c["name"]] = np.round(rng.normal(mean + shift * sd, sd, n), 6)
                pl.DataFrame(cols).write_csv(fh, include_header=start == 0)
        files.append(path)
    open(done, "w").close()
    print(f"  generated {rows:,} rows in {parts} files under {folder} ({time.perf_counter() - t:.0f} s)", flush=True)
    return files


def measured(python, *args):
    proc = subprocess.run([python, "-c", MEASURED, ENGINE, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"data_quality.py {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sharded_baseline(python, files, shards, out, schema):
    """ShardedByS3Key: whole files round-robin to the instances; two instances at a time (2 cores)."""
    t = time.perf_counter()
    procs, peaks = [], []
    for i in range(shards):
        root = os.path.join(out, f"algo-{i + 1}", "opt", "ml")
        inp = os.path.join(root, "processing", "input", "baseline")
        os.makedirs(inp, exist_ok=True)
        os.makedirs(os.path.join(root, "config"), exist_ok=True)
        for f in files[i::shards]:
            os.symlink(f, os.path.join(inp, os.path.basename(f)))
        with open(os.path.join(root, "config", "resourceconfig.json"), "w") as fh:
            json.dump({"current_host": f"algo-{i + 1}", "hosts": [f"algo-{j + 1}" for j in range(shards)]}, fh)
        env = dict(os.environ, SM_CONTAINER_ROOT=root)
        procs.append(subprocess.Popen([python, "-c", MEASURED, ENGINE, "baseline", "--schema", schema,
                                       "--output", os.path.join(out, "partials")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        if len([p for p in procs if p.poll() is None]) >= 2:
            procs[-2].wait()
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode:
            sys.exit(f"sharded baseline failed:\n{stderr[-3000:]}")
        peaks.append(json.loads(stdout.strip().splitlines()[-1])["maxrss_mib"])
    shard_seconds = time.perf_counter() - t
    merge = measured(python, "baseline", "--partials", os.path.join(out, "partials"), "--output",
                     os.path.join(out, "merged"))
    return shard_seconds, max(peaks), merge


def compare(single_dir, merged_dir, files):
    """Exact fields equal; both sketches within the documented rank error (checked on exact ranks)."""
    import numpy as np
    import polars as pl

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from steplib.dataquality.drift import sketch_points
    from steplib.dataquality.kll import RANK_ERROR

    single = {f["name"]: f for f in json.load(open(os.path.join(single_dir, "statistics.json")))["features"]}
    merged = {f["name"]: f for f in json.load(open(os.path.join(merged_dir, "statistics.json")))["features"]}
    same_constraints = (json.load(open(os.path.join(single_dir, "constraints.json")))
                        == json.load(open(os.path.join(merged_dir, "constraints.json"))))
    exact_ok, worst = same_constraints, 0.0
    for name, s in single.items():
        m = merged[name]
        if "string_statistics" in s:
            exact_ok &= s == m
            continue
        ss, ms = s["numerical_statistics"], m["numerical_statistics"]
        exact_ok &= all(ss[k] == ms[k] for k in ("common", "min", "max", "sum", "mean", "std_dev"))
        values = np.sort(pl.scan_csv(files).select(name).collect().to_series().to_numpy())
        for stats in (ss, ms):
            pts, cum = sketch_points(stats)
            exact_ok &= cum[-1] == values.size
            last = np.flatnonzero(np.append(pts[1:] != pts[:-1], True))  # ties: the CDF after the last one
            err = np.abs(cum[last] - np.searchsorted(values, pts[last], side="right"))
            worst = max(worst, float(np.max(err)) / values.size)
        del values
    return exact_ok, worst, RANK_ERROR


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 30_000_000])
    ap.add_argument("--parts", type=int, default=8, help="CSV part files per data set")
    ap.add_argument("--shards", type=int, default=4, help="instances of the sharded baseline (largest size: skipped)")
    ap.add_argument("--shard-sizes", type=int, nargs="*", default=None,
                    help="sizes to run the sharded baseline on (default: the smallest)")
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "bench", "results", "scale-data"))
    ap.add_argument("--dq-python", default=os.path.join(ROOT, ".venv", "bin", "python"),
                    help="interpreter with the production dependencies (pandas 3.1.1)")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start", flush=True)
    schema = os.path.join(ROOT, "scripts", "dataset_schema.json")
    shard_sizes = args.shard_sizes if args.shard_sizes is not None else [min(args.sizes)]
    rows_out = []
    for rows in args.sizes:
        print(f"{rows:,} rows:", flush=True)
        base = generate(os.path.join(args.data_dir, f"baseline-{rows}"), rows, args.parts, 1, 0.0)
        cur = generate(os.path.join(args.data_dir, f"current-{rows}"), rows, args.parts, 2, 0.05)
        size_gb = sum(os.path.getsize(f) for f in base) / 1e9
        with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
            b = measured(args.dq_python, "baseline", "--input", os.path.dirname(base[0]), "--schema", schema,
                         "--output", os.path.join(tmp, "single"))
            c = measured(args.dq_python, "check", "--input", os.path.dirname(cur[0]),
                         "--baseline-statistics", os.path.join(tmp, "single", "statistics.json"),
                         "--baseline-constraints", os.path.join(tmp, "single", "constraints.json"),
                         "--output", os.path.join(tmp, "check"))
            proc = subprocess.run([sys.executable, "-c", FLOOR, schema, *base], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"polars floor failed: {proc.stderr[-2000:]}")
            floor = json.loads(proc.stdout.strip().splitlines()[-1])
            line = {"rows": rows, "csv_gb": size_gb, "baseline": b, "check": c, "floor": floor}
            if rows in shard_sizes:
                secs, peak, merge = sharded_baseline(args.dq_python, base, args.shards, os.path.join(tmp, "sharded"), schema)
                ok, worst, bound = compare(os.path.join(tmp, "single"), os.path.join(tmp, "sharded", "merged"), base)
                line["sharded"] = {"seconds": secs, "maxrss_mib": peak, "merge": merge, "equal": ok,
                                   "worst_rank_error": worst, "rank_error_bound": bound}
        rows_out.append(line)
        print(f"  baseline {b['seconds']:7.1f} s {b['maxrss_mib']:6.0f} MiB | check {c['seconds']:7.1f} s "
              f"{c['maxrss_mib']:6.0f} MiB | polars floor {floor['seconds']:6.1f} s {floor['maxrss_mib']:6.0f} MiB",
              flush=True)
    print()
    print(f"{'rows':>12} {'CSV GB':>7} {'baseline s':>10} {'MiB':>6} {'check s':>8} {'MiB':>6} {'floor s':>8}  sharded baseline")
    for r in rows_out:
        sh = r.get("sharded")
        shard_txt = "-"
        if sh:
            shard_txt = (f"{args.shards} shards {sh['seconds']:.1f} s (2 at a time) + merge {sh['merge']['seconds']:.1f} s, "
                         f"peak {max(sh['maxrss_mib'], sh['merge']['maxrss_mib']):.0f} MiB; merged == single pass: "
                         f"{'yes' if sh['equal'] else 'NO'} (exact fields equal; worst sketch rank error "
                         f"{sh['worst_rank_error']:.4%} <= {sh['rank_error_bound']:.2%})")
        print(f"{r['rows']:>12,} {r['csv_gb']:>7.2f} {r['baseline']['seconds']:>10.1f} {r['baseline']['maxrss_mib']:>6.0f} "
              f"{r['check']['seconds']:>8.1f} {r['check']['maxrss_mib']:>6.0f} {r['floor']['seconds']:>8.1f}  {shard_txt}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if any(r.get("sharded") and not r["sharded"]["equal"] for r in rows_out):
        sys.exit(1)


if __name__ == "__main__":
    main()
