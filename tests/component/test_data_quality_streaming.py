"""The streaming data-quality engine against exact computation, and sharded runs against one pass.

The engine reads its input in chunks and keeps only mergeable statistics (scripts/steplib/dataquality/).
Counts, min, max, sum, mean and standard deviation must be exact; quantities derived from the KLL
sketch (buckets, drift distances) within the sketch's documented rank error (dataquality.kll.RANK_ERROR,
two sketches: twice that). Sharding as SageMaker's ShardedByS3Key does it: whole files per instance;
resourceconfig.json as documented in
https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html
(/opt/ml/config/resourceconfig.json holds current_host and hosts).
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "data_quality.py"
_spec = importlib.util.spec_from_file_location("data_quality_streaming", SCRIPT)
dq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dq)

SCHEMA = {"name": "gen", "target": "y", "columns": [
    {"name": "color", "type": "categorical", "categories": ["red", "green", "blue", "gray"]},
    {"name": "x", "type": "float"}, {"name": "skewed", "type": "float"},
    {"name": "count", "type": "int"}, {"name": "y", "type": "float"}]}


def generate(n, seed, shift=0.0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({
        "color": r.choice(["red", "green", "blue", "gray"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "x": r.normal(5 + shift, 2, n),
        "skewed": r.lognormal(shift, 1.0, n),
        "count": r.poisson(3 + shift, n),
        "y": 1e6 + r.normal(0, 1, n),  # large mean, small spread: a naive sum-of-squares variance fails
    })


@pytest.fixture()
def small_chunks(monkeypatch):
    """Chunks of 7,000 rows (here and in the CLI subprocesses), so a few 100k rows stream through many chunks."""
    monkeypatch.setenv("DQ_CHUNK_ROWS", "7000")


def write_files(folder, frames):
    folder.mkdir(parents=True, exist_ok=True)
    for i, df in enumerate(frames):
        df.to_csv(folder / f"part-{i:03d}.csv", index=False)
    return folder


def exact_linf(a, b):
    a, b = np.sort(a), np.sort(b)
    grid = np.union1d(a, b)
    return float(np.max(np.abs(np.searchsorted(a, grid, side="right") / a.size
                               - np.searchsorted(b, grid, side="right") / b.size)))


def rank_error(points, sorted_values):
    """Largest |sketch CDF - exact CDF| (normalized) at the sketch's distinct items (ties counted whole)."""
    pts, cum = points
    last = np.flatnonzero(np.append(pts[1:] != pts[:-1], True))  # last index of each distinct item
    exact = np.searchsorted(sorted_values, pts[last], side="right")
    return float(np.max(np.abs(cum[last] - exact))) / sorted_values.size


def by_name(doc):
    return {f["name"]: f for f in doc["features"]}


def test_statistics_are_exact_and_sketch_figures_within_the_error(tmp_path, small_chunks):
    df = generate(200_000, 1)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    write_files(tmp_path / "in", [df[:120_000], df[120_000:]])
    stats, cons = dq.run_baseline(str(tmp_path / "in"), str(tmp_path / "schema.json"), True, str(tmp_path / "o"))
    assert stats["dataset"]["item_count"] == 200_000
    feats = by_name(stats)
    for name in ("x", "skewed", "count", "y"):
        ns, v = feats[name]["numerical_statistics"], df[name].to_numpy(dtype=float)
        assert ns["common"] == {"num_present": 200_000, "num_missing": 0}
        assert ns["min"] == v.min() and ns["max"] == v.max()
        assert ns["sum"] == pytest.approx(v.sum(), rel=1e-13)
        assert ns["mean"] == pytest.approx(v.mean(), rel=1e-13)
        assert ns["std_dev"] == pytest.approx(v.std(), rel=1e-9)
        buckets = ns["distribution"]["kll"]["buckets"]
        edges = np.linspace(v.min(), v.max(), 11)
        exact = np.diff(np.concatenate(([0], np.searchsorted(np.sort(v), edges[1:-1], side="left"), [v.size])))
        assert sum(b["count"] for b in buckets) == v.size
        cum_err = np.abs(np.cumsum([b["count"] for b in buckets]) - np.cumsum(exact)) / v.size
        assert cum_err.max() <= dq.RANK_ERROR
    counts = {b["value"]: b["count"] for b in feats["color"]["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert counts == df["color"].value_counts().to_dict()
    assert by_name(cons)["count"]["inferred_type"] == "Integral"


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_drift_distances_are_within_twice_the_rank_error_of_the_exact_ones(tmp_path, small_chunks, shift):
    base, cur = generate(150_000, 2), generate(90_000, 3, shift)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    write_files(tmp_path / "b", [base])
    write_files(tmp_path / "c", [cur[:40_000], cur[40_000:]])
    dq.run_baseline(str(tmp_path / "b"), str(tmp_path / "schema.json"), True, str(tmp_path / "bo"))
    cons = json.loads((tmp_path / "bo" / "constraints.json").read_text())
    dist = cons["monitoring_config"]["distribution_constraints"]
    dist.update(comparison_method="Simple", comparison_threshold=0.0)  # report every distance
    (tmp_path / "bo" / "constraints.json").write_text(json.dumps(cons))
    summary = dq.run_check(str(tmp_path / "c"), str(tmp_path / "bo" / "statistics.json"),
                           str(tmp_path / "bo" / "constraints.json"), str(tmp_path / "co"))
    reported = {v["feature_name"]: v["distance"] for v in summary["violations"]
                if v["constraint_check_type"] == "baseline_drift_check"}
    for name in ("x", "skewed", "count", "y"):
        exact = exact_linf(base[name].to_numpy(float), cur[name].to_numpy(float))
        assert abs(reported.get(name, 0.0) - exact) <= 2 * dq.RANK_ERROR, name


def test_sharded_partials_merge_to_the_single_pass_statistics(tmp_path, small_chunks):
    frames = [generate(n, 10 + i) for i, n in enumerate((50_000, 1, 33_333, 70_000, 12_000))]
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    whole = write_files(tmp_path / "all", frames)
    single, _ = dq.run_baseline(str(whole), str(tmp_path / "schema.json"), True, str(tmp_path / "single"))

    # ShardedByS3Key: each instance gets whole objects under the same relative paths
    shards = {"algo-1": [0, 3], "algo-2": [1, 4], "algo-3": [2]}
    for host, idx in shards.items():
        root = tmp_path / host / "opt" / "ml"
        inp = root / "processing" / "input" / "baseline"
        inp.mkdir(parents=True)
        for i in idx:
            (inp / f"part-{i:03d}.csv").write_bytes((whole / f"part-{i:03d}.csv").read_bytes())
        (root / "config").mkdir(parents=True)
        (root / "config" / "resourceconfig.json").write_text(json.dumps(
            {"current_host": host, "hosts": sorted(shards), "network_interface_name": "eth0"}))
        r = run_cli(root, "baseline", "--schema", str(tmp_path / "schema.json"), "--output", str(tmp_path / "partials"))
        assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "partials").iterdir()) == [f"partial-{h}.json" for h in sorted(shards)]
    r = run_cli(tmp_path / "merge", "baseline", "--partials", str(tmp_path / "partials"), "--output", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    merged = json.loads((tmp_path / "m" / "statistics.json").read_text())
    single_cons = json.loads((tmp_path / "single" / "constraints.json").read_text())
    assert json.loads((tmp_path / "m" / "constraints.json").read_text()) == single_cons
    assert merged["dataset"] == single["dataset"]
    for name, s in by_name(single).items():
        m = by_name(merged)[name]
        if "string_statistics" in s:
            assert m == s
            continue
        ms, ss = m["numerical_statistics"], s["numerical_statistics"]
        for key in ("common", "mean", "sum", "std_dev", "min", "max"):
            assert ms[key] == ss[key], (name, key)  # exact: the same per-chunk moments in the same order
        a = dq.sketch_points(ms)
        b = dq.sketch_points(ss)
        assert a[1][-1] == b[1][-1] == ss["common"]["num_present"]
        v = np.sort(pd.concat(frames)[name].to_numpy(float))
        assert rank_error(a, v) <= dq.RANK_ERROR and rank_error(b, v) <= dq.RANK_ERROR


def test_sharded_check_merges_to_the_single_pass_verdict(tmp_path, small_chunks):
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    write_files(tmp_path / "b", [generate(60_000, 20)])
    dq.run_baseline(str(tmp_path / "b"), str(tmp_path / "schema.json"), True, str(tmp_path / "bo"))
    cur = [generate(20_000, 21, shift=0.4), generate(25_000, 22, shift=0.4).assign(color="purple")]
    write_files(tmp_path / "c", cur)
    stats, cons = str(tmp_path / "bo" / "statistics.json"), str(tmp_path / "bo" / "constraints.json")
    single = dq.run_check(str(tmp_path / "c"), stats, cons, str(tmp_path / "single"))
    for i in range(2):
        root = tmp_path / f"h{i}" / "opt" / "ml"
        write_files(root / "processing" / "input" / "data_check", [cur[i]])
        os.rename(root / "processing" / "input" / "data_check" / "part-000.csv",
                  root / "processing" / "input" / "data_check" / f"part-{i:03d}.csv")
        (root / "config").mkdir()
        (root / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": f"algo-{i + 1}",
                                                                         "hosts": ["algo-1", "algo-2"]}))
        r = run_cli(root, "check", "--baseline-statistics", stats, "--baseline-constraints", cons,
                    "--output", str(tmp_path / "partials"))
        assert r.returncode == 0, r.stderr
    r = run_cli(tmp_path / "x", "check", "--partials", str(tmp_path / "partials"), "--baseline-statistics", stats,
                "--baseline-constraints", cons, "--output", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert merged["row_count"] == single["row_count"] == 45_000
    assert [(v["feature_name"], v["constraint_check_type"]) for v in merged["violations"]] == \
        [(v["feature_name"], v["constraint_check_type"]) for v in single["violations"]]
    assert "categorical_values_check" in {v["constraint_check_type"] for v in merged["violations"]}
    for a, b in zip(merged["violations"], single["violations"]):
        if a["distance"] is not None:
            assert abs(a["distance"] - b["distance"]) <= 2 * dq.RANK_ERROR


def test_an_instance_without_files_writes_an_empty_partial(tmp_path):
    """ShardedByS3Key with fewer objects than instances: the instances left without data still succeed."""
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    write_files(tmp_path / "in", [generate(500, 1)])
    for host, folder in (("algo-1", tmp_path / "in"), ("algo-2", tmp_path / "nothing")):
        root = tmp_path / host / "opt" / "ml"
        (root / "config").mkdir(parents=True)
        (root / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": host,
                                                                         "hosts": ["algo-1", "algo-2"]}))
        r = run_cli(root, "baseline", "--input", str(folder), "--schema", str(tmp_path / "schema.json"),
                    "--output", str(tmp_path / "p"))
        assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "p" / "partial-algo-2.json").read_text()) == {"version": 1, "empty": True}
    assert dq.merge_partials(str(tmp_path / "p")).rows == 500
    (tmp_path / "p" / "partial-algo-1.json").unlink()
    with pytest.raises(dq.DataQualityError, match="hold no data rows"):
        dq.merge_partials(str(tmp_path / "p"))


def test_the_same_file_in_two_partials_is_an_error(tmp_path):
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    write_files(tmp_path / "in", [generate(100, 1)])
    for host in ("algo-1", "algo-2"):  # FullyReplicated input on two instances: both see every file
        r = run_cli(tmp_path / host, "baseline", "--partial", "--input", str(tmp_path / "in"),
                    "--schema", str(tmp_path / "schema.json"), "--output", str(tmp_path / "p" / host))
        assert r.returncode == 0, r.stderr
    with pytest.raises(dq.DataQualityError, match="profile the same file twice.*ShardedByS3Key"):
        dq.merge_partials(str(tmp_path / "p"))


def _partials(tmp_path, shards):
    """Write one baseline partial per (host, frame, schema or None) as its own instance would."""
    for host, frame, schema in shards:
        args = []
        if schema is not None:
            (tmp_path / f"{host}.schema.json").write_text(json.dumps(schema))
            args = ["--schema", str(tmp_path / f"{host}.schema.json")]
        (tmp_path / host / "in").mkdir(parents=True)
        frame.to_csv(tmp_path / host / "in" / f"{host}.csv", index=False)  # each instance its own file
        r = run_cli(tmp_path / host, "baseline", "--partial", "--input", str(tmp_path / host / "in"), *args,
                    "--output", str(tmp_path / "p" / host))
        assert r.returncode == 0, r.stderr
    return str(tmp_path / "p")


def test_partials_read_under_different_types_are_refused(tmp_path):
    """Two instances that read a column as different declared types (different schemas) must not merge:
    the first partial's type used to win silently."""
    as_float = json.loads(json.dumps(SCHEMA))
    next(c for c in as_float["columns"] if c["name"] == "count")["type"] = "float"
    frame = generate(200, 1)
    with pytest.raises(dq.DataQualityError, match="column count is read as Fractional.*as Integral"):
        dq.merge_partials(_partials(tmp_path, [("algo-1", frame, SCHEMA), ("algo-2", frame, as_float)]))


def test_partials_with_inferred_whole_and_fractional_numbers_merge_as_fractional(tmp_path):
    """Without a schema each instance infers types from its rows; whole numbers on one and fractions on the
    other are one Fractional column, whichever partial comes first."""
    whole = pd.DataFrame({"v": [1, 2, 3] * 50})
    fractional = pd.DataFrame({"v": [0.5, 1.5, 2.25] * 50})
    for order in ((whole, fractional), (fractional, whole)):
        folder = tmp_path / str(id(order))
        merged = dq.merge_partials(_partials(folder, [("algo-1", order[0], None), ("algo-2", order[1], None)]))
        assert merged.kinds["v"] == "Fractional" and merged.rows == 300


def test_high_cardinality_text_keeps_bounded_counts(tmp_path, monkeypatch):
    import steplib.dataquality.profile as dq_profile
    monkeypatch.setattr(dq_profile, "MAX_TRACKED_VALUES", 500)
    r = np.random.default_rng(4)
    ids = np.concatenate([np.repeat(["common"], 3000), [f"id{i}" for i in range(20_000)]])
    df = pd.DataFrame({"id": r.permutation(ids), "v": r.normal(size=ids.size)})
    df.to_csv(tmp_path / "d.csv", index=False)
    stats, cons = dq.run_baseline(str(tmp_path / "d.csv"), str(tmp_path / "none.json"), False, str(tmp_path / "o"))
    ss = by_name(stats)["id"]["string_statistics"]
    assert ss["distribution"]["categorical"]["buckets"][0] == {"value": "common", "count": 3000}
    assert ss["distinct_count"] == pytest.approx(20_001, rel=0.05)  # k-minimum-values estimate
    assert "string_constraints" not in by_name(cons)["id"]


def run_cli(root, *args):
    env = dict(os.environ, SM_CONTAINER_ROOT=str(root))
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)
