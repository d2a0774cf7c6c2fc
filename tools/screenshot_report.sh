#!/usr/bin/env bash
# Render a sample run report and screenshot it with headless Chromium.
#
# Usage: tools/screenshot_report.sh [OUTPUT_PNG]     (default: docs/report-screenshot.png)
#
# What it does:
#   1. generates a baseline and a drifted "current" batch with tools/synth.py (seeded, its sample shape),
#   2. runs scripts/data_quality.py baseline + check on them,
#   3. renders scripts/steplib/report.py's HTML page (with sample model quality and steps),
#   4. screenshots it with Debian's Chromium (installed with apt-get when missing).
# Env: PYTHON (default .venv/bin/python, else python3), KEEP_HTML=path to keep the HTML page.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/docs/report-screenshot.png}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" - "$ROOT" "$WORK" <<'PY'
import datetime as dt
import importlib.util
import json
import os
import sys

import numpy as np

root, work = sys.argv[1], sys.argv[2]


def load(name, path):  # by path: scripts/ is not a package, local_runtime may not be yet
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


dq = load("data_quality", os.path.join(root, "scripts", "data_quality.py"))
report = load("report", os.path.join(root, "scripts", "steplib", "report.py"))


sys.path.insert(0, root)
from tools import synth  # the project's seeded generator, on its own sample shape (not the data set's)

schema = synth.SAMPLE_SCHEMA
schema_path = os.path.join(work, "dataset_schema.json")
with open(schema_path, "w") as fh:
    json.dump(schema, fh)
mix = synth.category_mix(schema, "group")
synth.generate(schema, 2900, 1).to_csv(os.path.join(work, "baseline.csv"), index=False, float_format="%.4f")
moved = [mix[0] + 0.2, mix[1] - 0.12, mix[2] - 0.08]  # another group mix, and every feature +0.6 sigma
cur = synth.generate(schema, 800, 2, shift=0.6, category_probs={"group": moved})
cur.loc[:5, "x3"] = np.nan  # a few missing values -> completeness violation
cur.to_csv(os.path.join(work, "current.csv"), index=False, float_format="%.4f")

b_stats, _ = dq.run_baseline(os.path.join(work, "baseline.csv"), schema_path, True, os.path.join(work, "b"))
summary = dq.run_check(os.path.join(work, "current.csv"), os.path.join(work, "b", "statistics.json"),
                       os.path.join(work, "b", "constraints.json"), os.path.join(work, "c"))
with open(os.path.join(work, "c", "statistics.json")) as fh:
    c_stats = json.load(fh)

# A sample run of the inference pipeline up to the report step; names and the breach marker from contracts/pipelines.json.
sys.path.insert(0, root)
from pipeline_scripts.contracts import MARKERS, STEPS  # noqa: E402

t0 = dt.datetime(2026, 1, 15, 8, 0, 0, tzinfo=dt.timezone.utc)
breach = (f"{MARKERS['model_quality_breach']}: mse=6.42 > threshold=5.5 on batch "
          "abalone/inference/input/batch-2.csv; HPO retraining starts")  # as inference_pipeline.breach_message
spans = [("create_model", 4, None), ("inference_preprocess", 95, None), ("batch_transform", 412, None),
         ("data_check_preprocess", 71, None), ("data_quality_check", 88, None), ("model_quality", 64, None),
         ("ground_truth_condition", 1, None), ("model_quality_condition", 1, None), ("model_quality_breach", 0, breach)]
steps, t = [], t0
for role, secs, failure in spans:
    end = t + dt.timedelta(seconds=secs)
    steps.append({"name": STEPS[role], "status": "Failed" if failure else "Succeeded", "start": t.isoformat(),
                  "end": end.isoformat(), "failure_reason": failure})
    t = end
model_quality = {"regression_metrics": {"mse": {"value": 6.42, "standard_deviation": 0.31},
                                        "rmse": {"value": 2.534, "standard_deviation": 0.06},
                                        "mae": {"value": 1.87, "standard_deviation": 0.04},
                                        "r2": {"value": 0.41, "standard_deviation": 0.02}},
                 "threshold": {"metric": "mse", "value": 5.5, "passed": False}}
html_path = os.environ.get("KEEP_HTML") or os.path.join(work, "report.html")
report.write_report(html_path, title="Batch inference run: sample-batch-inference (sample)",
                    baseline_statistics=b_stats, current_statistics=c_stats, violations=summary["violations"],
                    model_quality=model_quality, threshold=None, steps=steps, generated_at=t)
with open(os.path.join(work, "html_path"), "w") as fh:
    fh.write(html_path)
print(f"report: {html_path} ({summary['violation_count']} violations)")
PY

CHROME="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROME" ]; then
    echo "chromium not found: installing Debian's chromium package" >&2
    apt-get update && apt-get install -y chromium
    CHROME="$(command -v chromium)"
fi
mkdir -p "$(dirname "$OUT")"
HTML="$(cat "$WORK/html_path")"
"$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d -p "$WORK")" --hide-scrollbars \
    --screenshot="$OUT" --window-size=1400,2400 "file://$HTML" 2>"$WORK/chromium.log" \
    || { cat "$WORK/chromium.log" >&2; exit 1; }
[ -s "$OUT" ] || { echo "no screenshot written to $OUT" >&2; cat "$WORK/chromium.log" >&2; exit 1; }
echo "screenshot: $OUT"
