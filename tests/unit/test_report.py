"""The report renderer (scripts/steplib/report.py, which the offline runtime imports as steplib.report): self-contained HTML with charts, violations, model quality and steps."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

from tools import synth

ROOT = Path(__file__).resolve().parents[2]


def _load(name, path):  # by path: scripts/ is no package and local_runtime's __init__ is the lead's
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


report = _load("report_under_test", ROOT / "scripts" / "steplib" / "report.py")
dq = _load("data_quality_for_report", ROOT / "scripts" / "data_quality.py")
COLUMNS = ["group", "x1"]  # the features; the generator's target "y" plays the model's predictions


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    # a categorical, a numeric feature and the target of the generator's own shape (not the data set's)
    base = synth.generate(synth.SAMPLE_SCHEMA, 1500, 0)[[*COLUMNS, "y"]]
    cur = synth.generate(synth.SAMPLE_SCHEMA, 600, 1, shift=2.0)[[*COLUMNS, "y"]]  # x1 moved by two standard deviations
    cur.loc[::7, "group"] = "<b>X</b>"  # an unseen category whose text must be escaped
    base[COLUMNS].to_csv(d / "b.csv", index=False)
    cur[COLUMNS].to_csv(d / "c.csv", index=False)
    # the model-output baseline and check as the evaluation and the prediction-drift step make them
    pb_stats, _ = dq.run_values_baseline("prediction", base["y"].to_numpy(), str(d / "pb"))
    cur["y"].rename("prediction").to_frame().assign(prediction=lambda f: f["prediction"] * 3).to_csv(d / "p.csv", index=False)
    p_summary = dq.run_check(str(d / "p.csv"), str(d / "pb" / "statistics.json"), str(d / "pb" / "constraints.json"),
                             str(d / "pc"))
    prediction_drift = {"baseline_statistics": pb_stats, "violations": p_summary["violations"],
                        "current_statistics": json.loads((d / "pc" / "statistics.json").read_text())}
    b_stats, _ = dq.run_baseline(str(d / "b.csv"), str(d / "none.json"), False, str(d / "b"))
    summary = dq.run_check(str(d / "c.csv"), str(d / "b" / "statistics.json"), str(d / "b" / "constraints.json"),
                           str(d / "c"))
    c_stats = json.loads((d / "c" / "statistics.json").read_text())
    steps = [{"name": "DataQualityCheckStep", "status": "Succeeded", "start": "2026-01-15T08:00:00Z",
              "end": "2026-01-15T08:01:30Z", "failure_reason": None},
             {"name": "ModelQualityCalcStep", "status": "Failed", "start": "2026-01-15T08:01:30Z",
              "end": "2026-01-15T08:02:00Z", "failure_reason": "ModelQualityBreach: mse=6.4 exceeds threshold=5.5"}]
    mq = {"regression_metrics": {"mse": {"value": 6.4, "standard_deviation": 0.3}, "r2": {"value": 0.41}},
          "threshold": {"metric": "mse", "value": 5.5, "passed": False}}
    kwargs = dict(title="Run <1>", baseline_statistics=b_stats, current_statistics=c_stats,
                  violations=summary["violations"], model_quality=mq, steps=steps,
                  generated_at="2026-01-15 08:02:00 UTC")
    return {"kwargs": kwargs, "summary": summary, "html": report.render_report(**kwargs),
            "prediction_drift": prediction_drift}


def test_page_is_self_contained(run):
    page = run["html"]
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "<link" not in page.lower() and "@import" not in page


def test_feature_distributions_are_inline_svg_charts(run):
    page = run["html"]
    assert page.count("<svg") == 2  # one chart per feature
    for name in COLUMNS:
        assert f"<span>{name}</span>" in page
    assert "<polyline" in page  # numeric current outline over baseline bars
    assert page.count("<rect") > 20


def test_violations_table_has_distance_and_threshold(run):
    page, summary = run["html"], run["summary"]
    drift = next(v for v in summary["violations"]
                 if v["constraint_check_type"] == "baseline_drift_check" and v["feature_name"] == "x1")
    assert f"{drift['distance']:.4g}" in page and ">0.1<" in page
    assert "categorical_values_check" in page
    assert f"Data-quality violations ({summary['violation_count']})" in page


def test_model_quality_and_steps(run):
    page = run["html"]
    assert "6.4" in page and "threshold 5.5" in page and '<span class="badge bad">failed</span>' in page
    assert "DataQualityCheckStep" in page and "1 min 30 s" in page and "30.0 s" in page
    assert "ModelQualityBreach: mse=6.4 exceeds threshold=5.5" in page


def test_text_from_data_is_escaped(run):
    page = run["html"]
    assert "<b>X</b>" not in page and "&lt;b&gt;X&lt;/b&gt;" in page
    assert "<title>Run &lt;1&gt;</title>" in page


def test_threshold_argument_and_passing_model(run):
    kwargs = dict(run["kwargs"], model_quality={"regression_metrics": {"mse": {"value": 4.0}}}, threshold=5.5)
    page = report.render_report(**kwargs)
    assert '<span class="badge ok">passed</span>' in page


def test_no_ground_truth_and_no_violations():
    stats = {"version": 0.0, "dataset": {"item_count": 10}, "features": []}
    page = report.render_report(title="t", baseline_statistics=stats, current_statistics=stats, violations=[],
                                steps=[], generated_at=None)
    assert "Not evaluated" in page and "All constraints of the baseline hold" in page
    assert "Not checked: the model version has no prediction baseline" in page


def test_model_monitor_statistics_without_sketch_use_buckets():
    def feat(lo, hi, counts):
        w = (hi - lo) / len(counts)
        return {"name": "x", "inferred_type": "Fractional", "numerical_statistics": {
            "common": {"num_present": sum(counts), "num_missing": 0.0}, "mean": 0.0, "sum": 0.0, "std_dev": 1.0,
            "min": lo, "max": hi, "distribution": {"kll": {"buckets": [
                {"lower_bound": lo + i * w, "upper_bound": lo + (i + 1) * w, "count": float(c)}
                for i, c in enumerate(counts)]}}}}
    b = {"dataset": {"item_count": 100.0}, "features": [feat(0.0, 10.0, [10] * 10)]}
    c = {"dataset": {"item_count": 100.0}, "features": [feat(5.0, 15.0, [10] * 10)]}
    mass = report._bucket_mass(b["features"][0]["numerical_statistics"], 0.0, 15.0, 3)
    assert mass == pytest.approx([1 / 2, 1 / 2, 0.0])
    page = report.render_report(title="mm", baseline_statistics=b, current_statistics=c,
                                violations={"violations": []}, steps=[], generated_at=0)
    assert page.count("<svg") == 1 and "1970-01-01 00:00:00 UTC" in page


def test_write_report_creates_the_file(tmp_path, run):
    path = report.write_report(str(tmp_path / "sub" / "report.html"), **run["kwargs"])
    assert Path(path).read_text(encoding="utf-8") == run["html"]


def test_verdict_model_prediction_distance_order_logs_and_trend(run):
    """The additions of issue 12: which model scored the batch, a verdict line, the prediction column
    labelled, cards ordered by drift distance (shown), log links and the MSE trend."""
    kwargs = dict(run["kwargs"], prediction_drift=run["prediction_drift"],
                  model={"ref": "abalone-models/3", "arn": "arn:aws:sagemaker:us-east-1:1:model-package/abalone-models/3",
                         "status": "Approved", "metrics": {"mse": 4.5012, "r2": 0.52}},
                  log_links={"ModelQualityCalcStep": "file:///tmp/jobs/mq/logs.txt"},
                  mse_trend=[{"label": "run 1", "mse": 4.1}, {"label": "run 2", "mse": 4.3}, {"label": "this run", "mse": 6.4}])
    page = report.render_report(**kwargs)
    drifted = {v["feature_name"] for v in run["summary"]["violations"]}
    verdict = re.search(r'<p class="verdict" id="verdict">([^<]*)</p>', page).group(1)
    assert verdict.startswith(f"{len(drifted)}/2 features drifted") and "MSE 6.4 &gt; 5.5" in verdict
    assert "predictions drifted" in verdict  # reported apart, never counted among the features
    assert "failed at ModelQualityCalcStep" in verdict
    assert "Model version abalone-models/3" in page and "4.501" in page
    order = re.findall(r'data-feature="([^"]+)"', page)
    shown = [float(x) for x in re.findall(r"L∞ distance ([0-9.]+)", page)]
    assert sorted(order[:2]) == COLUMNS and order[2:] == ["prediction"] and shown[:2] == sorted(shown[:2], reverse=True)
    assert order[0] == "x1"  # shifted by two standard deviations: by far the largest distance
    section = page[page.index('<section id="prediction-drift">'):]
    card = section[section.index('data-feature="prediction"'):]
    assert 'badge info">prediction' in card[:400] and "the model&#x27;s prediction for each row" in card[:600]
    assert "baseline_drift_check" in section[:section.index("</section>")]
    assert 'href="file:///tmp/jobs/mq/logs.txt"' in page
    assert "MSE over the last 3 runs" in page and page.count('class="bar" style="width:240px;background:#cf222e"') == 1
