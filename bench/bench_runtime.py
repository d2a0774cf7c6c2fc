"""Offline runtime benchmark: full demo wall time on the real-size data (goal <= 60 s on 2 cores) and local
batch-transform throughput vs raw model.predict on 1,000,000 rows (goal ratio >= 0.7).

    .venv/bin/python bench/bench_runtime.py [--rows 1000000] [--output bench/results/runtime]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_demo(out: Path) -> dict:
    from local_runtime.demo import run_demo
    t0 = time.perf_counter()
    rc = run_demo(output=str(out / "demo"), repo_root=ROOT)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "demo" / "summary.json").read_text())
    return {"demo_wall_seconds": round(wall, 1), "demo_exit_code": rc,
            "demo_failed_expectations": [c["expectation"] for c in summary["expectations"] if not c["ok"]],
            "executions": [(e["PipelineName"], e["PipelineExecutionStatus"], e["DurationSeconds"]) for e in summary["executions"]]}


def bench_transform(out: Path, rows: int) -> dict:
    """Uses the demo's trained model dir and scripts/train.py's serving functions."""
    import numpy as np
    jobs = sorted((out / "demo" / "workspace" / "jobs").glob("*trainingstep*"))
    model_dir = jobs[0] / "opt" / "ml" / "model"
    sample = next((out / "demo" / "workspace" / "jobs").glob("*datapreprocessingstep*/opt/ml/processing/output/transformed/*.csv"))
    lines = [l for l in sample.read_text().splitlines() if l.strip()]
    work = out / "transform"
    work.mkdir(parents=True, exist_ok=True)
    src = work / "input.csv"
    with open(src, "w") as fh:
        full, rest = divmod(rows, len(lines))
        block = "\n".join(lines) + "\n"
        for _ in range(full):
            fh.write(block)
        if rest:
            fh.write("\n".join(lines[:rest]) + "\n")
    spec = {"model_dir": str(model_dir), "code_dir": str(ROOT / "scripts"), "program": "train.py",
            "files": [[str(src), str(work / "input.csv.out")]], "max_payload_mb": 6, "strategy": "MultiRecord",
            "split_type": "Line", "content_type": "text/csv", "accept": "text/csv", "assemble_with": "Line",
            "report": str(work / "records.json"), "failure_file": str(work / "message")}
    (work / "spec.json").write_text(json.dumps(spec))
    worker = ROOT / "local_runtime" / "steps" / "transform_worker.py"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(worker), str(work / "spec.json")], check=True, cwd=str(ROOT / "scripts"))
    t_transform = time.perf_counter() - t0
    n_out = sum(1 for _ in open(work / "input.csv.out"))
    # raw: the same model object predicting the same rows already parsed in memory
    sys.path.insert(0, str(ROOT / "scripts"))
    import train as serving
    model = serving.model_fn(str(model_dir))
    X = np.loadtxt(src, delimiter=",", ndmin=2, max_rows=rows)
    t0 = time.perf_counter()
    serving.predict_fn(X, model) if hasattr(serving, "predict_fn") else model.predict(X)
    t_raw = time.perf_counter() - t0
    return {"transform_rows": rows, "transform_output_rows": n_out, "transform_seconds": round(t_transform, 2),
            "raw_predict_seconds": round(t_raw, 2), "throughput_ratio": round(t_raw / t_transform, 3),
            "transform_rows_per_second": round(rows / t_transform)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--output", default=str(ROOT / "bench" / "results" / "runtime"))
    a = p.parse_args(argv)
    out = Path(a.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    res = {"cpu_count": os.cpu_count()}
    res.update(bench_demo(out))
    res.update(bench_transform(out, a.rows))
    print(json.dumps(res, indent=2))
    print(f"demo wall: {res['demo_wall_seconds']} s (goal <= 60 s); transform {res['transform_rows']:,} rows in "
          f"{res['transform_seconds']} s vs raw predict {res['raw_predict_seconds']} s -> ratio {res['throughput_ratio']} (goal >= 0.7)")
    (out / "bench.json").write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
