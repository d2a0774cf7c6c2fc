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

import argparse
import json
import os
import sys
import traceback

from steplib.report import write_report


def container_path(path):  # env SM_CONTAINER_ROOT relocates /opt/ml (offline runtime, tests)
    root = os.environ.get("SM_CONTAINER_ROOT")
    return path.replace("/opt/ml", root, 1) if root and path.startswith("/opt/ml") else path


class InputError(Exception):
    """Bad input: the message names the file and the problem."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad arguments also end in a failure message, not a bare exit 2
        raise InputError(f"bad arguments: {message}")


def read_json(directory, name, required=True):
    """The first file called `name` under directory (a channel may hold it in a subfolder)."""
    for folder, _, files in sorted(os.walk(directory)):
        if name in files:
            path = os.path.join(folder, name)
            try:
                with open(path) as f:
                    return json.load(f)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: not valid JSON ({exc})") from None
    if required:
        raise InputError(f"{directory}: no {name}")
    return None


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--title", required=True)
    p.add_argument("--model-package", default="", help="the model version that scored the batch")
    p.add_argument("--generated-at", default="")
    p.add_argument("--input-dir", default="/opt/ml/processing/input")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/report")
    args = p.parse_args(argv)
    inp = container_path(args.input_dir)
    statistics = read_json(os.path.join(inp, "data_quality"), "statistics.json")
    violations = read_json(os.path.join(inp, "data_quality"), "constraint_violations.json", required=False)
    summary = read_json(os.path.join(inp, "data_quality"), "summary.json", required=False)
    baseline = read_json(os.path.join(inp, "baseline"), "statistics.json")
    model_quality = read_json(os.path.join(inp, "model_quality"), "model_quality.json")
    ground_truth = read_json(os.path.join(inp, "ground_truth"), "ground_truth.json")
    prediction_drift = None  # no channel: the version has no prediction baseline, nothing was checked
    if os.path.isdir(os.path.join(inp, "prediction_drift")):
        prediction_drift = {"current_statistics": read_json(os.path.join(inp, "prediction_drift"), "statistics.json"),
                            "violations": (read_json(os.path.join(inp, "prediction_drift"), "summary.json") or {})
                            .get("violations", []),
                            "baseline_statistics": read_json(os.path.join(inp, "prediction_baseline"),
                                                             "statistics.json", required=False)}
    listed = (summary or {}).get("violations")
    if listed is None:
        listed = (violations or {}).get("violations", [])
    batches = ", ".join(ground_truth.get("batches") or []) or "?"
    title = f"{args.title} · batch {batches}" + (f" · model {args.model_package}" if args.model_package else "")
    # the data-check note (batch without labels, quarantined labels) shows under model quality
    model_quality = dict(model_quality, ground_truth=ground_truth)
    out = container_path(args.output_dir)
    path = write_report(os.path.join(out, "report.html"), title=title, baseline_statistics=baseline,
                        current_statistics=statistics, violations=listed, model_quality=model_quality,
                        prediction_drift=prediction_drift, steps=(), generated_at=args.generated_at or None)
    print(f"wrote {path}: {len(listed)} violation(s), model quality "
          f"{model_quality.get('threshold')}")


def fail(message):
    message = " ".join(str(message).split())[:1000]  # one line: SageMaker keeps the first 1 KB as ExitMessage
    print(f"ERROR: {message}", file=sys.stderr)
    path = container_path("/opt/ml/output/message")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(message + "\n")
    sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed: traceback + failure message
        traceback.print_exc()
        fail(f"inference_report failed: {type(exc).__name__}: {exc}")
