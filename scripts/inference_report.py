"""Report step (contracts/pipelines.json role report): the run's self-contained HTML report, written next to the data-quality results.

It runs after the data-quality and model-quality steps and before the pipeline's verdicts (the FailSteps of a
breach or a quarantined batch), so every run that got that far has a report, breach or not.

Inputs : /opt/ml/processing/input/data_quality/ (statistics.json, constraint_violations.json[, summary.json]),
         /opt/ml/processing/input/baseline/ (the approved model's baseline statistics.json),
         /opt/ml/processing/input/model_quality/model_quality.json,
         /opt/ml/processing/input/ground_truth/ground_truth.json (the batch and its labels),
         /opt/ml/processing/input/prediction_drift/ + prediction_baseline/ (the prediction-drift check's results and
         the version's prediction baseline; absent when the version has none).
Output : /opt/ml/processing/output/report/report.html (uploaded into the data-quality results folder).
The renderer is the one the offline runtime uses (steplib.report).
"""

import os

from steplib import Parser, artifacts, container_path, run_main
from steplib.report import write_report


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--title", required=True)
    p.add_argument("--model-package", default="", help="the model version that scored the batch")
    p.add_argument("--generated-at", default="")
    p.add_argument("--input-dir", default="/opt/ml/processing/input")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/report")
    args = p.parse_args(argv)
    inp = container_path(args.input_dir)
    dq = os.path.join(inp, "data_quality")
    statistics = artifacts.read("data_quality_statistics", dq)
    violations = artifacts.read("data_quality_violations", dq, required=False)
    summary = artifacts.read("data_quality_summary", dq, required=False)  # Model Monitor's engine writes none
    baseline = artifacts.read("data_quality_statistics", os.path.join(inp, "baseline"))  # the same format
    model_quality = artifacts.read("model_quality", os.path.join(inp, "model_quality"))
    ground_truth = artifacts.read("ground_truth", os.path.join(inp, "ground_truth"))
    prediction_drift = None  # no channel: the version has no prediction baseline, nothing was checked
    if os.path.isdir(os.path.join(inp, "prediction_drift")):
        drift = os.path.join(inp, "prediction_drift")
        prediction_drift = {"current_statistics": artifacts.read("data_quality_statistics", drift),
                            "violations": artifacts.read("data_quality_summary", drift)["violations"],
                            "baseline_statistics": artifacts.read("data_quality_statistics",
                                                                  os.path.join(inp, "prediction_baseline"), required=False)}
    listed = (summary or {}).get("violations")
    if listed is None:
        listed = (violations or {}).get("violations", [])
    batches = ", ".join(ground_truth.get("batches") or []) or "?"
    title = f"{args.title} · batch {batches}" + (f" · model {args.model_package}" if args.model_package else "")
    # the data-check note (batch without labels, quarantined labels) shows under model quality
    model_quality = dict(model_quality, ground_truth=ground_truth)
    out = container_path(args.output_dir)
    path = write_report(artifacts.path("report", out), title=title, baseline_statistics=baseline,
                        current_statistics=statistics, violations=listed, model_quality=model_quality,
                        prediction_drift=prediction_drift, steps=(), generated_at=args.generated_at or None)
    print(f"wrote {path}: {len(listed)} violation(s), model quality "
          f"{model_quality.get('threshold')}")


if __name__ == "__main__":
    run_main(main, "inference_report")
