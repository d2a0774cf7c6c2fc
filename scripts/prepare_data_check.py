"""Data-check preparation (contracts/pipelines.json role data_check_preprocess): join one batch's features,
predictions and (its own) ground truth.

The batch is what the execution was started for (pipeline parameter InputObjectKey):
  * an object key ``<inference prefix>/input/<name>`` (data-arrival runs): exactly that object;
  * a key ending in ``/`` (scheduled or hand-started runs: the default is ``<inference prefix>/input/``):
    every object under it, each file its own batch name.
Pairing rule: the ground truth of ``input/<name>`` is ``ground-truth/<name>`` (same relative name), with one
label per line in the same row order. Nothing else is ever used as labels: a batch whose files have no
ground truth of their own is not scored (a clear note says so).

Inputs : /opt/ml/processing/input/batch/ (the batch objects, as the inference preprocessing read them),
         /opt/ml/processing/input/predictions/<batch file>/part-<k>-of-<n>.csv.out (one prediction per line: the
         transform's output of the inference preprocessing's parts of each batch file, part order = row order),
         /opt/ml/processing/input/inference/ground-truth/ (labels), /opt/ml/processing/model/model.tar.gz (dataset_schema.json of the model: the one route).
Outputs: data_check/data_check.csv (header: the schema's feature columns in order: what the data-quality check
         compares with the feature baseline), prediction_check/predictions.csv (header "prediction": what the
         prediction-drift check compares with the model-output baseline),
         model_quality/ground_truth.json (always) + model_quality_input.csv (prediction,ground_truth; when the
         labels are usable), ground_truth/ground_truth.json (the same status, the pipeline's property file),
         feedback/<name> (features + label, headerless training format; only a labelled batch that passes
         the schema), quarantine/<name> + quarantine/reasons.json (a labelled batch that does not).
Predictions pair with the batch file they were computed from by name (<batch file>/part-*.out), their
parts in part order; every part must be there and the row counts must match per file. Labels pair by
position (row n of a file with label n of its ground truth).
"""

import csv
import datetime as dt
import hashlib
import json
import math
import os
import re
import tempfile

from steplib import InputError, Parser, artifacts, container_path, run_main
from steplib.archive import extract
from steplib.csvio import read_table
from steplib.schema import load_schema


def model_schema(model_path):
    """The schema the model was trained with, from its model.tar.gz (the one route, see steplib/schema.py),
    validated and typed by the one schema module."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_schema(extract(model_path, tmp, {"dataset_schema.json"})["dataset_schema.json"])


def relative_files(directory, suffix=""):
    """Relative paths under directory, sorted as the inference preprocessing sorts them (same batch row order)."""
    if not os.path.isdir(directory):
        return []
    found = sorted(os.path.join(d, n) for d, _, ns in os.walk(directory) for n in ns
                   if not n.startswith(".") and n.endswith(suffix))
    return [os.path.relpath(p, directory) for p in found]


def _finite(value):
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def read_csv(path, columns):
    """columns: list of (name, is_numeric). Rows of stripped strings; numeric cells must be finite numbers."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            for row in reader:
                line = reader.line_num
                if not row:
                    raise InputError(f"{path}: line {line}: empty line")
                if len(row) != len(columns):
                    raise InputError(f"{path}: line {line}: expected {len(columns)} columns "
                                     f"({', '.join(n for n, _ in columns)}), found {len(row)}")
                clean = [v.strip() for v in row]
                for (name, numeric), value in zip(columns, clean):
                    if numeric and not _finite(value):
                        raise InputError(f"{path}: line {line}: column '{name}': non-numeric, missing or "
                                         f"non-finite value {value!r}")
                rows.append(clean)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc})") from None
    if not rows:
        raise InputError(f"{path}: file is empty")
    return rows


PART = re.compile(r"part-(\d+)-of-(\d+)\.csv\.out")


def predictions_by_file(pred_dir, sources):
    """{batch file (path relative to the batch folder): its predictions in row order}. The transform wrote
    <batch file>/part-<k>-of-<n>.csv.out for each part the inference preprocessing cut the file into; all n parts
    must be there, and no prediction file may belong to no batch file (nothing dropped, nothing extra)."""
    found = relative_files(pred_dir, ".out")
    if not found:
        raise InputError(f"{pred_dir}: no prediction files (*.out)")
    parts = {source: {} for source in sources}
    for rel in found:
        match = PART.fullmatch(os.path.basename(rel))
        source = os.path.dirname(rel)
        if not match or source not in parts:
            raise InputError(f"{os.path.join(pred_dir, rel)}: not a prediction part of this batch (expected "
                             f"<batch file>/part-<k>-of-<n>.csv.out for one of {sorted(sources)})")
        parts[source][int(match.group(1))] = (int(match.group(2)), rel)
    predictions = {}
    for source, found_parts in parts.items():
        totals = {n for n, _ in found_parts.values()}
        expected = set(range(totals.pop())) if len(totals) == 1 else None
        if expected is None or set(found_parts) != expected:
            raise InputError(f"{pred_dir}: the predictions of batch file {source} are incomplete: found parts "
                             f"{sorted(rel for _, rel in found_parts.values()) or 'none'}; expected "
                             f"{source}/part-<k>-of-<n>.csv.out for every k < n")
        predictions[source] = [r[0] for k in sorted(found_parts)
                               for r in read_csv(os.path.join(pred_dir, found_parts[k][1]), [("prediction", True)])]
    return predictions


def read_features(path, schema):
    """Raw feature rows as text, read by the step library's strict reader. Missing values and categories the
    schema does not list pass through here: the data-quality check counts and reports them, and the feedback
    check below keeps unknown categories out of training (missing values are imputed there)."""
    features = schema.features
    rows, _ = read_table(path, schema, features, allow_missing=[c.name for c in features],
                         unknown_ok=[c.name for c in features], check_ranges=False, what="raw inference",
                         as_text=True)
    return rows


# ---------------------------------------------------------------- the batch
def batch_files(batch_dir, object_key, input_prefix):
    """[(batch name, local path)] of the batch, in the inference preprocessing's row order."""
    local = relative_files(batch_dir)
    if not local:
        raise InputError(f"{batch_dir}: the batch {object_key!r} has no objects")
    prefix = input_prefix.strip("/") + "/"
    key = object_key.lstrip("/")
    if not key.startswith(prefix):
        raise InputError(f"batch object key {object_key!r} is not under the inference input prefix {prefix!r}")
    if key.endswith("/"):  # a prefix run: every object below it, named relative to the input prefix
        below = key[len(prefix):]
        return [(below + rel, os.path.join(batch_dir, rel)) for rel in local]
    # One object: SageMaker stages it as its file name. A prefix download also brings objects whose keys
    # merely start with this key (batch.csv.bak); the inference preprocessing scored them too, so the batch is
    # ambiguous: refuse it rather than guess which rows belong to it.
    expected = os.path.basename(key)
    others = [rel for rel in local if rel != expected]
    if expected not in local or others:
        raise InputError(f"batch object s3 key {key!r}: the input channel holds {local}, expected exactly "
                         f"[{expected!r}]; keys that extend this key ({others}) are read with it. Rename them.")
    return [(key[len(prefix):], os.path.join(batch_dir, expected))]


def schema_problems(rows, columns, target, path):
    """Why a labelled batch may not become training data: unknown categories, values outside the schema's
    declared ranges, non-finite numbers. One entry per problem (file, line, column, value), capped.
    ``columns``: the typed schema columns (steplib.schema), so labels compare in their canonical spelling."""
    problems = []
    for line, row in enumerate(rows, start=1):
        for col, value in zip(columns, row):
            name = col.name
            if value == "":  # missing: imputed by the preprocessing fitted at training, not a schema problem
                continue
            if col.is_categorical:
                if col.category(value) is None:
                    problems.append(f"{path}: line {line}: column '{name}': unknown category {value!r} "
                                    f"(allowed: {', '.join(col.categories)})")
                continue
            number = float(value)
            if not math.isfinite(number):
                problems.append(f"{path}: line {line}: column '{name}': non-finite value {value!r}")
            elif col.min is not None and number < col.min:
                problems.append(f"{path}: line {line}: column '{name}': {value} is below the schema minimum {col.min:g}")
            elif col.max is not None and number > col.max:
                problems.append(f"{path}: line {line}: column '{name}': {value} is above the schema maximum {col.max:g}")
            if len(problems) >= 20:
                return problems + ["(more problems not listed)"]
    return problems


CONSTANT_LABELS_MIN_ROWS = 30


def constant_labels(truth, path):
    """Refuse a label file whose labels are all one value: a placeholder or a wrong column, which would be
    scored as a breach and trained on. Only from 30 rows: a short batch of equal labels can be real (a count
    target's common value), while 30 labels of one value drawn from the population have probability p**30,
    about 1e-5 even when the value is the 68 % of zeros of a zero-inflated target (statsmodels' fair data)."""
    values = {float(t) for t in truth}
    if len(truth) >= CONSTANT_LABELS_MIN_ROWS and len(values) == 1:
        raise InputError(f"{path}: every one of its {len(truth)} labels is {truth[0]}: a placeholder or a wrong "
                         "column? Such labels are not scored or trained on")


def write(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header is not None:  # None: headerless, like the training data
            writer.writerow(header)
        writer.writerows(rows)


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--object-key", required=True, help="the batch: one object key, or a prefix ending in /")
    p.add_argument("--input-prefix", required=True, help="key prefix of inference inputs (<prefix>/<inf>/input)")
    p.add_argument("--execution", default="", help="pipeline execution id (recorded with the feedback)")
    p.add_argument("--batch-dir", default="/opt/ml/processing/input/batch")
    p.add_argument("--inference-dir", default="/opt/ml/processing/input/inference")
    p.add_argument("--predictions-dir", default="/opt/ml/processing/input/predictions")
    p.add_argument("--model-path", default="/opt/ml/processing/model/model.tar.gz")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    args = p.parse_args(argv)

    typed_schema = model_schema(container_path(args.model_path))
    columns, target = typed_schema.columns, typed_schema.target
    names = [c.name for c in columns]

    batch_dir = container_path(args.batch_dir)
    files = batch_files(batch_dir, args.object_key, args.input_prefix)
    pred_dir = container_path(args.predictions_dir)
    preds = predictions_by_file(pred_dir, [os.path.relpath(path, batch_dir) for _, path in files])
    truth_dir = os.path.join(container_path(args.inference_dir), "ground-truth")

    # Row n of a batch file is prediction n of its parts (the inference preprocessing and the transform keep
    # order and count within a file; the count is checked here).
    batches, start = [], 0
    for name, path in files:
        rows = read_features(path, typed_schema)
        own = preds[os.path.relpath(path, batch_dir)]
        if len(own) != len(rows):
            raise InputError(f"row count mismatch: batch file {name} ({path}) has {len(rows)} rows, its "
                             f"predictions under {pred_dir}/{os.path.relpath(path, batch_dir)}/ have {len(own)}")
        batches.append({"name": name, "path": path, "rows": rows, "preds": own})
        start += len(rows)
        print(f"batch {name}: {len(rows)} rows from {path}, paired with its {len(own)} predictions")

    def with_target(feats, value):
        values = iter(feats)
        return [value if n == target else next(values) for n in names]

    out = container_path(args.output_dir)
    # features and predictions apart: a model's outputs are not labels, and checking them against the
    # training labels' baseline flagged clean batches (narrower, sign-free predictions of a zero-inflated target)
    write(artifacts.path("data_check", os.path.join(out, "data_check")), typed_schema.feature_names,
          [f for b in batches for f in b["rows"]])
    write(artifacts.path("prediction_check", os.path.join(out, "prediction_check")), artifacts.columns("prediction_check"),
          [[v] for b in batches for v in b["preds"]])

    pairs, notes, quarantined, reasons = [], [], [], {}
    labelled = []
    for b in batches:
        gt_path = os.path.join(truth_dir, b["name"])
        if not os.path.isfile(gt_path):
            notes.append(f"{b['name']}: no ground truth at ground-truth/{b['name']}")
            continue
        try:
            truth = [r[0] for r in read_csv(gt_path, [(target, True)])]
            if len(truth) != len(b["rows"]):
                raise InputError(f"{gt_path}: {len(truth)} labels for {len(b['rows'])} rows of input/{b['name']} "
                                 "(labels pair with rows by position)")
            constant_labels(truth, gt_path)
        except InputError as exc:  # unusable labels: never scored, never trained on
            reasons[b["name"]] = [str(exc)]
            quarantined.append((b, None))
            continue
        full = [with_target(f, t) for f, t in zip(b["rows"], truth)]
        problems = schema_problems(full, columns, target, f"input/{b['name']} + ground-truth/{b['name']}")
        label_problems = [pr for pr in problems if f"column '{target}'" in pr]
        if label_problems:  # labels outside the target's range are not scored either
            reasons[b["name"]] = problems
            quarantined.append((b, full))
            continue
        pairs.extend(zip(b["preds"], truth))
        labelled.append(b["name"])
        if problems:  # labels fine (scored), features outside the schema: not training data
            reasons[b["name"]] = problems
            quarantined.append((b, full))
        else:
            write(os.path.join(out, "feedback", "data", b["name"]), None, full)
            digest = hashlib.sha256("\n".join(",".join(r) for r in full).encode()).hexdigest()
            b["feedback"] = {"batch": b["name"], "rows": len(full), "sha256": digest}

    for b, full in quarantined:
        dest = os.path.join(out, "quarantine", "data", b["name"])
        if full is not None:
            write(dest, None, full)
        else:  # labels unreadable: keep both files as they came
            write(dest, None, b["rows"])
            with open(os.path.join(truth_dir, b["name"]), "rb") as src:
                os.makedirs(os.path.dirname(dest + ".ground-truth"), exist_ok=True)
                with open(dest + ".ground-truth", "wb") as dst:
                    dst.write(src.read())
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    accepted = [b["feedback"] for b in batches if "feedback" in b]
    if accepted:  # what the HPO pipeline's feedback window orders and de-duplicates by
        write_json(os.path.join(out, "feedback", "manifest.json"),
                   {"execution": args.execution, "created": now, "object_key": args.object_key, "batches": accepted})
    if quarantined:
        write_json(os.path.join(out, "quarantine", "reasons.json"),
                   {"execution": args.execution, "created": now, "object_key": args.object_key, "reasons": reasons})

    available = bool(pairs)
    summary = []
    if reasons:
        first = next(iter(reasons.items()))
        summary.append(f"quarantined {len(reasons)} labelled batch(es) that fail the schema: "
                       f"{first[0]}: {first[1][0]}")
    summary.extend(notes)
    if not available and not reasons:
        summary.insert(0, "model quality not scored: this batch has no ground truth of its own")
    status = {"available": available, "rows": len(pairs), "batches": [b["name"] for b in batches],
              "labelled": labelled, "quarantined": bool(reasons), "note": "; ".join(summary)[:900]}
    artifacts.write("ground_truth", os.path.join(out, "ground_truth"), status)  # the pipeline's property file
    artifacts.write("ground_truth", os.path.join(out, "model_quality"), status)  # and the model-quality step's input
    if available:
        write(artifacts.path("model_quality_input", os.path.join(out, "model_quality")),
              artifacts.columns("model_quality_input"), pairs)
    print(f"joined {start} rows; ground truth: {json.dumps(status)}")


if __name__ == "__main__":
    run_main(main, "prepare_data_check")
