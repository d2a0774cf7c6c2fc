"""scripts/data_quality.py: formats, each check type, drift power and false alarms, bad data, CLI."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools import synth

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "data_quality.py"
_spec = importlib.util.spec_from_file_location("data_quality", SCRIPT)
dq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dq)

# The engine's tests use a shape of their own (tools/synth.py's SAMPLE_SCHEMA: categorical "group", non-negative
# floats x1..x7, target y), generated seeded by the project's generator: they hold for any data set.
SCHEMA = synth.SAMPLE_SCHEMA
FLOATS = [c["name"] for c in SCHEMA["columns"][1:]]
GROUPS = SCHEMA["columns"][0]["categories"]
MIX = synth.category_mix(SCHEMA, "group")


def sample(n, seed, shift=0.0, mix=None):
    """n rows; shift moves every feature by that many standard deviations, mix replaces the group shares."""
    return synth.generate(SCHEMA, n, seed, shift=shift, category_probs=mix and {"group": mix})


def shifted_mix(by):
    """The default group mix with `by` added share by share (a categorical drift of L-infinity max(|by|))."""
    return [p + d for p, d in zip(MIX, by)]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    d = tmp_path_factory.mktemp("baseline")
    (d / "schema.json").write_text(json.dumps(SCHEMA))
    sample(3000, 1).to_csv(d / "baseline.csv", index=False)
    stats, cons = dq.run_baseline(str(d / "baseline.csv"), str(d / "schema.json"), True, str(d / "out"))
    return {"dir": d, "stats": stats, "cons": cons,
            "stats_path": str(d / "out" / "statistics.json"), "cons_path": str(d / "out" / "constraints.json")}


def check(tmp_path, df, baseline, constraints=None, statistics=None, name="cur"):
    path = tmp_path / f"{name}.csv"
    if isinstance(df, str):
        path.write_text(df)
    else:
        df.to_csv(path, index=False)
    cons_path, stats_path = baseline.get("cons_path"), baseline.get("stats_path")
    if constraints is not None:
        cons_path = str(tmp_path / f"{name}-constraints.json")
        Path(cons_path).write_text(json.dumps(constraints))
    if statistics is not None:
        stats_path = str(tmp_path / f"{name}-statistics.json")
        Path(stats_path).write_text(json.dumps(statistics))
    return dq.run_check(str(path), stats_path, cons_path, str(tmp_path / f"{name}-out"))


def kinds(summary, feature=None):
    return sorted(v["constraint_check_type"] for v in summary["violations"]
                  if feature is None or v["feature_name"] == feature)


def edited(cons, fn):
    c = json.loads(json.dumps(cons))
    fn(c)
    return c


def feature(cons, name):
    return next(f for f in cons["features"] if f["name"] == name)


# ----------------------------------------------------------------------------- formats

def test_baseline_files_follow_model_monitor_schemas(baseline):
    stats, cons = baseline["stats"], baseline["cons"]
    on_disk = json.loads(Path(baseline["stats_path"]).read_text())
    assert on_disk == stats and on_disk["version"] == 0.0 and on_disk["dataset"]["item_count"] == 3000
    assert [f["name"] for f in stats["features"]] == ["group"] + FLOATS
    group = stats["features"][0]
    assert group["inferred_type"] == "String"
    ss = group["string_statistics"]
    assert ss["common"] == {"num_present": 3000, "num_missing": 0} and ss["distinct_count"] == 3
    assert sum(b["count"] for b in ss["distribution"]["categorical"]["buckets"]) == 3000
    for f in stats["features"][1:]:
        assert f["inferred_type"] == "Fractional"
        ns = f["numerical_statistics"]
        assert {"common", "mean", "sum", "std_dev", "min", "max", "distribution"} <= set(ns)
        kll = ns["distribution"]["kll"]
        assert len(kll["buckets"]) == 10 and sum(b["count"] for b in kll["buckets"]) == 3000
        assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
        weight = sum(len(items) * 2 ** level for level, items in enumerate(kll["sketch"]["data"]))
        assert weight == 3000
    cfg = cons["monitoring_config"]
    assert cfg["datatype_check_threshold"] == 1.0 and cfg["domain_content_threshold"] == 1.0
    assert cfg["distribution_constraints"] == {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                               "comparison_method": "Robust", "categorical_comparison_threshold": 0.1,
                                               "categorical_drift_method": "LInfinity"}
    assert feature(cons, "group")["string_constraints"]["domains"] == GROUPS
    assert feature(cons, "x1") == {"name": "x1", "inferred_type": "Fractional", "completeness": 1.0,
                                       "num_constraints": {"is_non_negative": True}}


@pytest.mark.parametrize("n, chunk", [(1, 1), (5, 5), (2048, 2048), (2049, 1000), (4097, 4097), (100_003, 7_000),
                                      (1_000_000, 250_000), (1_000_000, 1_000_000)])
def test_sketch_weights_add_up_and_ranks_are_within_the_documented_error(n, chunk):
    vals = np.random.default_rng(n).normal(size=n)
    sketch = dq.KLL()
    for start in range(0, n, chunk):
        sketch.update(vals[start:start + chunk])
    doc = sketch.to_model_monitor()
    assert sketch.n == n and sum(len(items) * 2 ** lvl for lvl, items in enumerate(doc["data"])) == n
    assert sum(len(items) for items in doc["data"]) <= dq.KLL_K / (1 - 0.64) + 2 * len(doc["data"])
    pts, cum = dq.sketch_points({"distribution": {"kll": {"sketch": doc}}})
    true_rank = np.searchsorted(np.sort(vals), pts, side="right")
    assert np.max(np.abs(cum - true_rank)) / n <= dq.RANK_ERROR
    if n <= dq.KLL_K:  # small inputs are kept whole: exact
        assert np.array_equal(pts, np.sort(vals))


def test_merged_sketches_stay_within_the_documented_error():
    rng = np.random.default_rng(9)
    parts = [rng.normal(i, 1 + i, size) for i, size in enumerate((300_000, 5, 120_000, 2_500))]
    merged = dq.KLL()
    for part in parts:
        s = dq.KLL(seed=len(part))
        s.update(part)
        merged.merge(dq.KLL.from_model_monitor(s.to_model_monitor()))  # through the partial-file form
    every = np.sort(np.concatenate(parts))
    pts, cum = merged.points()
    assert merged.n == every.size == cum[-1]
    assert np.max(np.abs(cum - np.searchsorted(every, pts, side="right"))) / every.size <= dq.RANK_ERROR


def test_integral_type_inferred_without_schema(tmp_path):
    pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.0, 2.0], "c": ["x", "y", "x"]}).to_csv(tmp_path / "d.csv", index=False)
    stats, cons = dq.run_baseline(str(tmp_path / "d.csv"), str(tmp_path / "none.json"), False, str(tmp_path / "o"))
    assert [f["inferred_type"] for f in stats["features"]] == ["Integral", "Fractional", "String"]
    assert feature(cons, "c")["string_constraints"]["domains"] == ["x", "y"]


# ----------------------------------------------------------------------------- drift

def test_undrifted_data_passes_and_drifted_data_is_flagged(tmp_path, baseline):
    same = check(tmp_path, sample(1000, 2), baseline, name="same")
    assert same["violation_count"] == 0 and same["row_count"] == 1000
    drift = check(tmp_path, sample(1000, 3, shift=0.5, mix=[0.6, 0.2, 0.2]), baseline, name="drift")
    drifted = {v["feature_name"] for v in drift["violations"] if v["constraint_check_type"] == "baseline_drift_check"}
    assert {"x1", "x4", "group"} <= drifted
    for v in drift["violations"]:
        assert v["distance"] > v["threshold"] == 0.1
    mm = json.loads((tmp_path / "drift-out" / "constraint_violations.json").read_text())
    assert [set(v) for v in mm["violations"]] == [{"feature_name", "constraint_check_type", "description"}] * len(
        drift["violations"])
    assert json.loads((tmp_path / "drift-out" / "summary.json").read_text()) == drift


def test_false_alarm_rate_with_default_thresholds(tmp_path, baseline):
    rng = np.random.default_rng(2024)
    runs, alarms = 40, 0
    for i in range(runs):
        n = int(rng.integers(200, 2001))
        summary = check(tmp_path, sample(n, 100 + i), baseline, name=f"r{i}")
        alarms += summary["violation_count"] > 0
    rate = alarms / runs
    assert rate <= 0.05, f"false-alarm rate {rate:.1%} over {runs} resamples"


def test_robust_is_the_simple_distance_minus_the_ks_bound():
    assert dq.drift_distance(0.2, 1000, 1000, "Simple") == 0.2
    robust = dq.drift_distance(0.2, 1000, 1000, "Robust")
    assert robust == pytest.approx(0.2 - 1.8 * np.sqrt(2000 / 1e6))
    assert dq.drift_distance(0.05, 100, 100, "Robust") == 0.0


def test_comparison_method_simple_flags_a_shift_robust_tolerates_on_small_samples(tmp_path, baseline):
    cur = sample(150, 7, shift=0.17)
    robust = check(tmp_path, cur, baseline, name="robust")
    simple_cons = edited(baseline["cons"], lambda c: c["monitoring_config"]["distribution_constraints"].update(
        comparison_method="Simple", comparison_threshold=0.05))
    simple = check(tmp_path, cur, baseline, simple_cons, name="simple")
    assert "baseline_drift_check" not in kinds(robust)
    assert "baseline_drift_check" in kinds(simple)


def test_chi_squared_categorical_drift(tmp_path, baseline):
    cons = edited(baseline["cons"], lambda c: c["monitoring_config"]["distribution_constraints"].update(
        categorical_drift_method="ChiSquared", categorical_comparison_threshold=0.01))
    same = check(tmp_path, sample(2000, 11), baseline, cons, name="chi_same")
    moved = check(tmp_path, sample(2000, 12, mix=shifted_mix((0.08, -0.06, -0.02))), baseline, cons, name="chi_moved")
    assert "baseline_drift_check" not in kinds(same, "group")
    (v,) = [v for v in moved["violations"] if v["feature_name"] == "group"]
    assert v["constraint_check_type"] == "baseline_drift_check" and v["distance"] < 0.01


# ----------------------------------------------------------------------------- check types

def test_each_check_type_on_small_data(tmp_path, baseline):
    df = sample(300, 5).astype({"x1": object, "y": object})
    df.loc[3, "x1"] = "abc"          # text in a numeric column
    df.loc[[1, 2], "x3"] = np.nan    # missing values
    df.loc[7, "group"] = "X"               # unseen category
    df.loc[9, "x2"] = -0.5         # negative value
    df = df.drop(columns=["x7"]).assign(extra=1)
    s = check(tmp_path, df, baseline)
    assert kinds(s, "x1") == ["data_type_check"]
    assert any("'abc' (cur.csv, data row 4)" in v["description"] for v in s["violations"])
    assert kinds(s, "x3") == ["completeness_check"]
    assert kinds(s, "group") == ["categorical_values_check"]
    assert kinds(s, "x2") == ["data_type_check"]  # is_non_negative
    assert kinds(s, "x7") == ["missing_column_check"]
    assert kinds(s, "extra") == ["extra_column_check"]
    assert kinds(s, "y") == []
    group = next(v for v in s["violations"] if v["feature_name"] == "group")
    assert "['X']" in group["description"]


def test_all_null_column_is_a_completeness_violation(tmp_path, baseline):
    df = sample(200, 6)
    df["y"] = np.nan
    s = check(tmp_path, df, baseline)
    assert kinds(s, "y") == ["completeness_check"]
    stats = json.loads((tmp_path / "cur-out" / "statistics.json").read_text())
    target = next(f for f in stats["features"] if f["name"] == "y")
    assert target["inferred_type"] == "Unknown"
    assert target["numerical_statistics"]["common"] == {"num_present": 0, "num_missing": 200}


def test_integral_column_with_fractions_fails_type_check(tmp_path):
    pd.DataFrame({"a": np.arange(50)}).to_csv(tmp_path / "b.csv", index=False)
    dq.run_baseline(str(tmp_path / "b.csv"), str(tmp_path / "none.json"), False, str(tmp_path / "b"))
    pd.DataFrame({"a": np.arange(50) + 0.5}).to_csv(tmp_path / "c.csv", index=False)
    s = dq.run_check(str(tmp_path / "c.csv"), str(tmp_path / "b" / "statistics.json"),
                     str(tmp_path / "b" / "constraints.json"), str(tmp_path / "c"))
    assert "data_type_check" in kinds(s, "a")


# ----------------------------------------------------------------------------- user edits

def test_user_edits_to_constraints_are_honoured(tmp_path, baseline):
    df = sample(1000, 8, shift=0.5).astype({"x1": object})
    df.loc[:49, "x3"] = np.nan
    df.loc[5, "group"] = "X"
    df.loc[6, "x1"] = "n/a?"
    before = check(tmp_path, df, baseline, name="before")
    assert {"completeness_check", "categorical_values_check", "data_type_check", "baseline_drift_check"} <= set(
        kinds(before))

    def relax(c):
        c["monitoring_config"]["datatype_check_threshold"] = 0.99
        c["monitoring_config"]["domain_content_threshold"] = 0.99
        c["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 0.9
        feature(c, "x3")["completeness"] = 0.9
        feature(c, "group")["string_constraints"]["domains"].append("Y")
    relaxed = check(tmp_path, df, baseline, edited(baseline["cons"], relax), name="relaxed")
    assert relaxed["violation_count"] == 0, relaxed["violations"]

    off = edited(baseline["cons"], lambda c: c["monitoring_config"]["distribution_constraints"].update(
        perform_comparison="Disabled"))
    assert "baseline_drift_check" not in kinds(check(tmp_path, df, baseline, off, name="off"))

    def per_feature(c):  # overrides win over the global config
        feature(c, "x1")["monitoringConfigOverrides"] = {"distribution_constraints": {"perform_comparison": False}}
        feature(c, "x2")["monitoringConfigOverrides"] = {"distribution_constraints": {"comparison_threshold": 0.9}}
        feature(c, "group")["string_constraints"]["domains"] = GROUPS + ["X"]
        feature(c, "x3")["monitoringConfigOverrides"] = {"evaluate_constraints": "Disabled"}
    s = check(tmp_path, df, baseline, edited(baseline["cons"], per_feature), name="override")
    assert "baseline_drift_check" not in kinds(s, "x1") and kinds(s, "x2") == []
    assert kinds(s, "x3") == [] and kinds(s, "group") == []
    assert "baseline_drift_check" in kinds(s, "x4")


def test_bad_constraint_value_is_a_clear_error(tmp_path, baseline):
    cons = edited(baseline["cons"], lambda c: c["monitoring_config"]["distribution_constraints"].update(
        comparison_threshold="high"))
    with pytest.raises(dq.DataQualityError, match="comparison_threshold of .* must be a number"):
        check(tmp_path, sample(100, 1), baseline, cons)


# ----------------------------------------------------------------------------- Model Monitor baselines

def mm_feature_numeric(name, values):
    """A numeric statistics entry laid out like Model Monitor's: multi-level KLL, float counts."""
    v = np.sort(values)
    levels = [v[:3].tolist(), v[3:5].tolist(), v[5:][::4].tolist()]  # weights 1, 2, 4 (Deequ compactors)
    lo, hi = float(v[0]), float(v[-1])
    edges = np.linspace(lo, hi, 11)
    counts = np.histogram(v, edges)[0]
    return {"name": name, "inferred_type": "Fractional", "numerical_statistics": {
        "common": {"num_present": len(v), "num_missing": 0}, "mean": float(v.mean()), "sum": float(v.sum()),
        "std_dev": float(v.std()), "min": lo, "max": hi,
        "distribution": {"kll": {
            "buckets": [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
                        for i in range(10)],
            "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": levels}}}}}


def test_model_monitor_written_baseline_is_readable(tmp_path):
    rng = np.random.default_rng(3)
    stats = {"version": 0.0, "dataset": {"item_count": 4005.0}, "features": [
        mm_feature_numeric("x", rng.normal(0, 1, 4005)),
        {"name": "color", "inferred_type": "String", "string_statistics": {
            "common": {"num_present": 4005, "num_missing": 0}, "distinct_count": 2.0,
            "distribution": {"categorical": {"buckets": [{"value": "red", "count": 2000.0},
                                                         {"value": "blue", "count": 2005.0}]}}}}]}
    cons = {"version": 0.0, "features": [
        {"name": "x", "inferred_type": "Fractional", "completeness": 1.0, "num_constraints": {"is_non_negative": False},
         "monitoringConfigOverrides": {}},
        {"name": "color", "inferred_type": "String", "completeness": 1.0,
         "string_constraints": {"domains": ["red", "blue"]}, "monitoringConfigOverrides": {}}],
        "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
                              "datatype_check_threshold": 1.0, "domain_content_threshold": 1.0,
                              "distribution_constraints": {"perform_comparison": "Enabled",
                                                           "comparison_threshold": 0.1, "comparion_method": "Robust"}}}
    pts, cum = dq.sketch_points(stats["features"][0]["numerical_statistics"])
    assert cum[-1] == 3 + 2 * 2 + 4 * len(stats["features"][0]["numerical_statistics"]["distribution"]["kll"]
                                          ["sketch"]["data"][2])
    ok = pd.DataFrame({"x": rng.normal(0, 1, 1500), "color": rng.choice(["red", "blue"], 1500)})
    moved = pd.DataFrame({"x": rng.normal(0.6, 1, 1500), "color": rng.choice(["red", "blue"], 1500, p=[0.8, 0.2])})
    assert check(tmp_path, ok, {}, cons, stats, name="mm_ok")["violation_count"] == 0
    s = check(tmp_path, moved, {}, cons, stats, name="mm_moved")
    assert kinds(s) == ["baseline_drift_check", "baseline_drift_check"]


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    (",".join(["group"] + FLOATS) + "\n", "has a header row but no data rows"),
    ("group,x1\na,0.1\nb,0.2,0.3,0.4\n", "cannot parse input file"),
    ("a,0.5,0.4,0.1,0.5,0.2,0.1,0.1,9\nb,0.5,0.4,0.1,0.5,0.2,0.1,0.1,9\n", "is the header row missing"),
    ("group,group,x1\na,b,0.1\n", "duplicate column names"),
])
def test_bad_input_is_a_clear_error_naming_the_file(tmp_path, baseline, content, message):
    with pytest.raises(dq.DataQualityError, match=message) as err:
        check(tmp_path, content, baseline, name="bad")
    assert "bad.csv" in str(err.value)


def test_directory_input_reads_every_file_and_rejects_mismatched_headers(tmp_path, baseline):
    d = tmp_path / "in"
    d.mkdir()
    sample(100, 1).to_csv(d / "a.csv", index=False)
    sample(150, 2).to_csv(d / "b.csv", index=False)
    s = dq.run_check(str(d), baseline["stats_path"], baseline["cons_path"], str(tmp_path / "o"))
    assert s["row_count"] == 250
    sample(10, 3).drop(columns=["group"]).to_csv(d / "c.csv", index=False)
    with pytest.raises(dq.DataQualityError, match="c.csv has header"):
        dq.run_check(str(d), baseline["stats_path"], baseline["cons_path"], str(tmp_path / "o"))


def test_baseline_rejects_bad_data(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    df = sample(50, 1).astype({"x3": object})
    df.loc[4, "x3"] = "tall"
    df.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(dq.DataQualityError, match=r"column x3 of baseline input .*a.csv .*'tall' \(a.csv, data row 5\)"):
        dq.run_baseline(str(tmp_path / "a.csv"), str(tmp_path / "s.json"), True, str(tmp_path / "o"))
    sample(50, 1).assign(y=np.nan).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(dq.DataQualityError, match="column y .* has no values"):
        dq.run_baseline(str(tmp_path / "b.csv"), str(tmp_path / "s.json"), True, str(tmp_path / "o"))
    sample(50, 1).drop(columns=["x3"]).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(dq.DataQualityError, match=r"lacks schema columns \['x3'\]"):
        dq.run_baseline(str(tmp_path / "c.csv"), str(tmp_path / "s.json"), True, str(tmp_path / "o"))
    sample(50, 1).assign(group="Q").to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(dq.DataQualityError, match="outside the schema categories"):
        dq.run_baseline(str(tmp_path / "d.csv"), str(tmp_path / "s.json"), True, str(tmp_path / "o"))


# ----------------------------------------------------------------------------- CLI

def run_cli(root, *args):
    env = dict(os.environ, SM_CONTAINER_ROOT=str(root))
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_uses_container_paths_under_sm_container_root(tmp_path):
    root = tmp_path / "opt" / "ml"
    base_in = root / "processing" / "input" / "baseline"
    schema_in = root / "processing" / "input" / "schema"
    for d in (base_in, schema_in):
        d.mkdir(parents=True)
    sample(800, 1).to_csv(base_in / "baseline.csv", index=False)
    (schema_in / "dataset_schema.json").write_text(json.dumps(SCHEMA))
    r = run_cli(root, "baseline")
    assert r.returncode == 0, r.stderr
    out = root / "processing" / "output"
    assert {p.name for p in out.iterdir()} == {"statistics.json", "constraints.json"}

    # stage the baseline where the check step expects it, then check a drifted batch
    for kind in ("statistics", "constraints"):
        (root / "processing" / "baseline" / kind).mkdir(parents=True)
        (out / f"{kind}.json").rename(root / "processing" / "baseline" / kind / f"{kind}.json")
    data_in = root / "processing" / "input" / "data_check"
    data_in.mkdir(parents=True)
    sample(600, 2, shift=0.67).to_csv(data_in / "data_check.csv", index=False)
    r = run_cli(root, "check")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["row_count"] == 600 and summary["violation_count"] > 0
    assert (out / "constraint_violations.json").exists() and (out / "statistics.json").exists()

    (data_in / "data_check.csv").write_text("")
    r = run_cli(root, "check")
    assert r.returncode == 1
    message = (root / "output" / "message").read_text()
    assert "data_check.csv is empty" in message and "Traceback" not in r.stderr


def test_cli_missing_baseline_file_fails_with_message(tmp_path):
    (tmp_path / "d.csv").write_text("a\n1\n")
    r = run_cli(tmp_path / "ml", "check", "--input", str(tmp_path / "d.csv"),
                "--baseline-statistics", str(tmp_path / "nope.json"),
                "--baseline-constraints", str(tmp_path / "nope2.json"), "--output", str(tmp_path / "o"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "baseline statistics file" in r.stderr and "nope.json does not exist" in r.stderr


def test_the_schema_is_read_by_the_one_schema_module(tmp_path):
    """The engine validates the schema as every step does (steplib.schema's JSON Schema): a schema the
    preprocessing would refuse is refused here too, naming the file; numeric category labels are compared in
    their canonical spelling, so the cell 1.0 of categories [1, 2] is category 1."""
    data = tmp_path / "baseline.csv"
    data.write_text("size,x,y\n1,0.5,3\n2.0,0.7,4\n1.0,0.2,5\n")
    no_target = {"name": "toy", "columns": [{"name": "size", "type": "categorical", "categories": [1, 2]},
                                            {"name": "x", "type": "float"}, {"name": "y", "type": "float"}]}
    bad = tmp_path / "bad-schema.json"
    bad.write_text(json.dumps(no_target))
    with pytest.raises(dq.DataQualityError.__mro__[1], match="bad-schema.json"):
        dq.run_baseline(str(data), str(bad), True, str(tmp_path / "out-bad"))
    good = tmp_path / "schema.json"
    good.write_text(json.dumps(dict(no_target, target="y")))
    stats, cons = dq.run_baseline(str(data), str(good), True, str(tmp_path / "out"))
    size = next(f for f in cons["features"] if f["name"] == "size")
    assert size["string_constraints"]["domains"] == ["1", "2"]


def test_the_baselines_drift_settings_decide_what_later_checks_flag(tmp_path):
    """The training YAML's data_quality.comparison_threshold/comparison_method reach constraints.json through the
    baseline's command line; every check against that baseline then uses them. A 0.2 sigma shift of 20,000 rows
    stays under the default 0.1 and is flagged at 0.05."""
    root = tmp_path / "opt" / "ml"
    base_in, schema_in = root / "processing" / "input" / "baseline", root / "processing" / "input" / "schema"
    for d in (base_in, schema_in):
        d.mkdir(parents=True)
    sample(20000, 1).to_csv(base_in / "baseline.csv", index=False)
    (schema_in / "dataset_schema.json").write_text(json.dumps(SCHEMA))
    current = sample(20000, 2, shift=0.2)
    flagged = {}
    for label, args in {"default": [], "sensitive": ["--comparison-threshold", "0.05"]}.items():
        r = run_cli(root, "baseline", "--output", str(tmp_path / label), *args)
        assert r.returncode == 0, r.stderr
        cons = json.loads((tmp_path / label / "constraints.json").read_text())
        dist = cons["monitoring_config"]["distribution_constraints"]
        assert dist["comparison_threshold"] == (0.05 if args else 0.1) and dist["comparison_method"] == "Robust"
        result = check(tmp_path, current, {"stats_path": str(tmp_path / label / "statistics.json"),
                                           "cons_path": str(tmp_path / label / "constraints.json")}, name=label)
        flagged[label] = "baseline_drift_check" in kinds(result)
    assert flagged == {"default": False, "sensitive": True}

    r = run_cli(root, "baseline", "--output", str(tmp_path / "simple"), "--comparison-method", "Simple",
                "--categorical-comparison-threshold", "0.2")
    dist = json.loads((tmp_path / "simple" / "constraints.json").read_text())["monitoring_config"]["distribution_constraints"]
    assert (dist["comparison_method"], dist["categorical_comparison_threshold"], dist["comparison_threshold"]) == \
        ("Simple", 0.2, 0.1)
    r = run_cli(root, "baseline", "--comparison-threshold", "1.5")
    assert r.returncode == 2 and "'1.5' is not in (0, 1]" in r.stderr
