"""Offline runtime benchmark: where the demo's time goes, before and after, side by side in one run; then local
batch-transform throughput vs raw model.predict (goal ratio >= 0.7).

    .venv/bin/python bench/bench_runtime.py [--baseline REF] [--repeat N] [--rows 1000000 | --rows 0]

The demo (`sm-local demo`, unchanged: its 17 expectations must hold) runs once from a copy of the repository at
REF (default: the last commit before the faster loop, BASELINE_REF; `git archive`, nothing in the repository
changes) and once from this checkout, alternately when --repeat > 1, each in its own process with timers on:

  builds        the pipeline scripts' main(): three upserts and the two approval deploys (SDK, moto calls inside)
  SDK import    the first load of the SageMaker SDK (inside the first build)
  HPO           the tuning step, trials included
  processing    the processing steps (staging, the script, outputs)
  training      the training step
  transform     the batch transform steps
  other steps   model, registration, condition, fail and quality-check steps
  Lambdas       the Lambda invocations
  matching      EventBridge rule matching of every event
  moto          every AWS call answered by moto (inside all of the above)

Wall seconds per phase (inclusive: a build's moto calls are in "builds" and in "moto"), the main thread's CPU
seconds in them, and the whole process tree's CPU (parent + the zygote and every job: getrusage of the
finished child). Compare CPU on a busy machine: wall time there mostly measures the other processes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REF = "75d18a8"  # main before the faster loop (issue 13): the "before" column

STEP_TYPES = {"Tuning": "HPO", "Processing": "processing", "Training": "training", "Transform": "transform"}
PHASES = [  # (label, module, attribute path): timed where the attribute exists in the checkout being measured
    ("builds", "pipeline_scripts.cli", "run_cli"),
    ("SDK import", "pipeline_scripts.sdk_adapter", "load_sdk"),
    ("pipeline steps", "local_runtime.executor", "Executor.run_step"),  # split by step type below
    ("Lambdas", "local_runtime.lambdas", "Lambdas.invoke"),
    ("matching", "local_runtime.events", "EventBus.matching_rules"),
    ("moto", "moto.core.botocore_stubber", "BotocoreStubber.__call__"),
]


# ------------------------------------------------------------------ inside the measured process
def _install_timers(totals: dict) -> None:
    """Wrap each phase's function (bench only) with a timer of wall and thread CPU; nested calls of the same
    phase count once (a pipeline's tuning job runs training jobs: those are in HPO, not also in training)."""
    import importlib

    active = threading.local()

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            if label == "pipeline steps":  # Executor.run_step(self, step): one phase per step type
                return timed(STEP_TYPES.get(args[1].get("Type"), "other steps"), fn)(*args, **kwargs)
            if getattr(active, label, False):
                return fn(*args, **kwargs)
            setattr(active, label, True)
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(active, label, False)
                slot = totals.setdefault(label, {"wall": 0.0, "cpu": 0.0, "calls": 0})
                slot["wall"] += time.perf_counter() - w0
                slot["cpu"] += time.thread_time() - c0
                slot["calls"] += 1
        return wrapper

    for label, module, path in PHASES:
        try:
            owner = importlib.import_module(module)
        except ImportError:
            continue
        *parents, name = path.split(".")
        for p in parents:
            owner = getattr(owner, p, None)
        if owner is None or not hasattr(owner, name):
            continue
        if label == "SDK import":  # only its first call imports the SDK
            fn = getattr(owner, name)
            state = {"done": False}

            def first_only(*a, _fn=fn, _timed=timed(label, fn), **k):
                if state["done"]:
                    return _fn(*a, **k)
                state["done"] = True
                return _timed(*a, **k)
            setattr(owner, name, first_only)
            continue
        setattr(owner, name, timed(label, getattr(owner, name)))


def harness(out: str, demo_output: str) -> int:
    totals: dict = {}
    _install_timers(totals)
    from local_runtime.cli import main
    w0, c0 = time.perf_counter(), time.process_time()
    rc = main(["demo", "--output", demo_output])
    totals["whole demo (main process)"] = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0, "calls": 1}
    summary = json.loads((Path(demo_output) / "summary.json").read_text())
    held = sum(1 for c in summary["expectations"] if c["ok"])
    Path(out).write_text(json.dumps({"rc": rc, "phases": totals,
                                     "expectations": f"{held}/{len(summary['expectations'])}"}))
    return rc


# ------------------------------------------------------------------ the bench
def _checkout(ref: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _run_demo(tree: Path, work: Path, tag: str) -> dict:
    """One demo from `tree` (its modules first on sys.path), timed; the process tree's CPU from getrusage."""
    out, demo_output = work / f"{tag}.json", work / f"{tag}-demo"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(tree / "scripts")]))
    env.pop("SAGEMAKER_USER_CONFIG_OVERRIDE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--harness", str(out), str(demo_output)],
                          cwd=str(tree), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not out.exists():
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"the demo from {tree} failed (exit {proc.returncode})")
    result = json.loads(out.read_text())
    result["process tree CPU"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["wall"] = wall
    return result


def _mean(runs: list[dict], key: str, label: str | None = None) -> float:
    vals = [(r["phases"].get(label) or {}).get(key, 0.0) if label else r[key] for r in runs]
    return sum(vals) / len(vals)


def bench_demo(baseline: str, repeat: int, work: Path) -> dict:
    base_tree = _checkout(baseline, work / "baseline")
    runs: dict[str, list] = {"before": [], "after": []}
    for i in range(repeat):  # alternate, so a change in the machine's load hits both columns alike
        runs["before"].append(_run_demo(base_tree, work, f"before-{i}"))
        runs["after"].append(_run_demo(ROOT, work, f"after-{i}"))
    load = os.getloadavg()
    labels = [p[0] for p in PHASES if p[0] != "pipeline steps"]
    labels[2:2] = [*STEP_TYPES.values(), "other steps"]
    labels.append("whole demo (main process)")
    print(f"\nsm-local demo, before ({baseline}) and after (this checkout), mean of {repeat} run(s) each; "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")
    print(f"{'phase':<28}{'before wall':>12}{'before CPU':>12}{'after wall':>12}{'after CPU':>12}")
    table = {}
    for label in labels:
        row = [_mean(runs[s], k, label) for s in ("before", "after") for k in ("wall", "cpu")]
        table[label] = dict(zip(("before_wall", "before_cpu", "after_wall", "after_cpu"), row))
        print(f"{label:<28}" + "".join(f"{v:12.1f}" for v in row))
    tree = [_mean(runs[s], "process tree CPU") for s in ("before", "after")]
    walls = [_mean(runs[s], "wall") for s in ("before", "after")]
    print(f"{'demo process tree':<28}{walls[0]:12.1f}{tree[0]:12.1f}{walls[1]:12.1f}{tree[1]:12.1f}")
    print("expectations held: before " + ", ".join(r["expectations"] for r in runs["before"])
          + "; after " + ", ".join(r["expectations"] for r in runs["after"]))
    print("(wall and main-thread CPU per phase, inclusive: moto calls are also inside builds, Lambdas, jobs; the "
          "process tree adds the zygote and every job's own CPU)")
    return {"baseline": baseline, "repeat": repeat, "load_average": load, "phases": table,
            "process_tree_cpu": {"before": tree[0], "after": tree[1]}, "wall": {"before": walls[0], "after": walls[1]},
            "expectations": {s: [r["expectations"] for r in runs[s]] for s in runs}}


def bench_transform(demo_dir: Path, out: Path, rows: int) -> dict:
    """Local batch transform of `rows` rows through the real worker vs raw predict, with the demo's trained model
    and scripts/train.py's serving functions."""
    import numpy as np
    jobs = sorted((demo_dir / "workspace" / "jobs").glob("*trainingstep*"))
    model_dir = jobs[0] / "opt" / "ml" / "model"
    sample = next((demo_dir / "workspace" / "jobs").glob("*datapreprocessingstep*/opt/ml/processing/output/transformed/*.csv"))
    lines = [line for line in sample.read_text().splitlines() if line.strip()]
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
    sys.path.insert(0, str(ROOT / "scripts"))
    import train as serving
    model = serving.model_fn(str(model_dir))
    X = np.loadtxt(src, delimiter=",", ndmin=2, max_rows=rows)
    t0 = time.perf_counter()
    serving.predict_fn(X, model) if hasattr(serving, "predict_fn") else model.predict(X)
    t_raw = time.perf_counter() - t0
    res = {"transform_rows": rows, "transform_output_rows": n_out, "transform_seconds": round(t_transform, 2),
           "raw_predict_seconds": round(t_raw, 2), "throughput_ratio": round(t_raw / t_transform, 3),
           "transform_rows_per_second": round(rows / t_transform)}
    print(f"\ntransform {rows:,} rows in {res['transform_seconds']} s vs raw predict {res['raw_predict_seconds']} s "
          f"-> ratio {res['throughput_ratio']} (goal >= 0.7)")
    return res


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--harness"]:
        return harness(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default=BASELINE_REF, help="git ref of the 'before' column (default %(default)s)")
    p.add_argument("--repeat", type=int, default=1, help="demo runs per column, alternating (default 1)")
    p.add_argument("--rows", type=int, default=1_000_000, help="transform rows; 0 skips the transform part")
    p.add_argument("--output", default=str(ROOT / "bench" / "results" / "runtime"))
    a = p.parse_args(argv)
    out = Path(a.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        res = {"cpu_count": os.cpu_count(), "demo": bench_demo(a.baseline, a.repeat, Path(tmp))}
        if a.rows:
            res["transform"] = bench_transform(Path(tmp) / f"after-{a.repeat - 1}-demo", out, a.rows)
    (out / "bench.json").write_text(json.dumps(res, indent=2))
    print(f"\nfigures: {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
