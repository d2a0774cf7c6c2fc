"""The batch inference flow end to end through the offline runtime (the generated definition, events.tf rules,
the notification Lambda): one execution per batch, labels paired by batch name, the breach as a FailStep that
the HPO rule matches, a crash that it does not, and a quarantined labelled batch.

The HPO pipeline is deliberately not upserted: whether a breach would start it is read from the rules that
matched each event (events.jsonl), so the test does not pay for a tuning run (tests/e2e/test_runtime_e2e.py runs
the whole story including HPO).
"""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _breach_rules(rt):
    """The rules that start the HPO pipeline (found by their target or name, not by a retyped rule name)."""
    names = {r.name for r in rt.bus.rules if "breach" in r.name}
    assert names, [r.name for r in rt.bus.rules]
    return names


def _matched(rt, execution_arn):
    """[(event detail, matched rule names)] of the step events of one execution."""
    out = []
    for line in (rt.workspace.root / "events.jsonl").read_text().splitlines():
        item = json.loads(line)
        detail = item["event"].get("detail", {})
        if detail.get("pipelineExecutionArn") == execution_arn and "stepName" in detail:
            out.append((detail, set(item["matched_rules"])))
    return out


def _list(rt, bucket, prefix):
    keys = []
    for page in rt.aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _sse(rt) -> dict:
    """Uploads carry the project key: the bucket policy (as deployed) refuses anything else."""
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": rt.tf.vars["kms_key"]}


def _json(rt, bucket, key):
    return json.loads(rt.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A trained, approved model and the inference pipeline built around it."""
    from local_runtime.runtime import Runtime
    from pipeline_scripts import inference_pipeline, training_pipeline
    sys.path.insert(0, str(ROOT))
    from pipeline_scripts.config import load_env
    from tools import synth
    tmp = tmp_path_factory.mktemp("inference-e2e")
    # from the current schema, scaled to the tfvars threshold: a fitted model passes it, a drifted batch does not
    schema = synth.load_schema(ROOT / "scripts" / "dataset_schema.json")
    scales = synth.scales_for_threshold(float(load_env().accuracy_mse_threshold))
    synth.write_split(synth.generate(schema, 1500, 11, **scales), schema, tmp / "data", training=True)
    synth.write_split(synth.generate(schema, 300, 12, **scales), schema, tmp / "data", training=False)
    synth.write_split(synth.generate(schema, 300, 1011, drift=True, **scales), schema, tmp / "drift", training=False)
    with Runtime(repo_root=ROOT, workspace=tmp / "ws", quiet=True, persist=False) as rt:
        v = rt.tf.vars
        rt.aws.s3.create_bucket(Bucket=v["bucket_name"])
        assert training_pipeline.main(["--no-upload"]) == 0
        rt.upload(tmp / "data" / "training-data.csv", f"{v['bucket_prefix']}/{v['bucket_train_prefix']}/training-data.csv")
        rt.pump()
        (package,) = rt.list_packages(v["model_package_group_name"])
        rt.approve(package["ModelPackageArn"])
        rt.pump()
        assert inference_pipeline.main(["--no-upload"]) == 0
        yield rt, tmp


def score(rt, data_dir: Path, name: str, labels: bool = True, parameters: dict | None = None,
          truth_text: str | None = None, features_text: str | None = None) -> dict:
    """Put a batch (and its own labels) in place, start the inference pipeline for exactly that object."""
    from pipeline_scripts.contracts import CONTRACTS
    v = rt.tf.vars
    base = f"{v['bucket_prefix']}/{v['bucket_inf_prefix']}"
    if labels:
        rt.aws.s3.put_object(Bucket=v["bucket_name"], Key=f"{base}/ground-truth/{name}", **_sse(rt),
                             Body=truth_text if truth_text is not None else (data_dir / "ground-truth.csv").read_bytes())
    key = f"{base}/input/{name}"
    rt.aws.s3.put_object(Bucket=v["bucket_name"], Key=key, **_sse(rt),
                         Body=features_text if features_text is not None else (data_dir / "inference-data.csv").read_bytes())
    param = CONTRACTS.pipeline("inference").started_by["object_parameter"]
    rt.start_execution(rt.tf.pipeline_names["inference"], {param: key, **(parameters or {})})
    rt.pump()
    return rt.workspace.load_execution(rt.executions_run[-1])


def report_html(rt, rec) -> str:
    """report.html, next to the data-quality results of the execution."""
    from pipeline_scripts.contracts import STEPS
    assert rec["Steps"][STEPS["report"]]["StepStatus"] == "Succeeded"
    outs = rec["Steps"][STEPS["data_quality_check"]]["Properties"]["ProcessingOutputConfig"]["Outputs"]
    bucket, prefix = outs[0]["S3Output"]["S3Uri"][len("s3://"):].split("/", 1)
    return rt.aws.s3.get_object(Bucket=bucket, Key=prefix.rstrip("/") + "/report.html")["Body"].read().decode()


def outcome(rec, step):
    return ((rec["Steps"].get(step) or {}).get("Properties") or {}).get("Outcome")


def test_batches_are_scored_against_their_own_labels_and_feed_back(deployed):
    from pipeline_scripts.contracts import STEPS
    rt, tmp = deployed
    v = rt.tf.vars
    first = score(rt, tmp / "data", "batch-a.csv")
    assert first["PipelineExecutionStatus"] == "Succeeded", first.get("FailureReason")
    assert outcome(first, STEPS["model_quality_condition"]) == "True"
    feedback = f"{v['bucket_prefix']}/feedback/{first['PipelineExecutionId']}/"
    assert sorted(_list(rt, v["bucket_name"], feedback)) == [feedback + "data/batch-a.csv", feedback + "manifest.json"]

    # A new batch without labels of its own, while batch-a's labels sit in ground-truth/: not scored.
    second = score(rt, tmp / "drift", "batch-b.csv", labels=False)
    assert second["PipelineExecutionStatus"] == "Succeeded", second.get("FailureReason")
    assert outcome(second, STEPS["ground_truth_condition"]) == "False"
    assert STEPS["model_quality_condition"] not in second["Steps"]
    mq = second["Steps"][STEPS["model_quality"]]["Properties"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, prefix = mq[len("s3://"):].split("/", 1)
    report = _json(rt, bucket, prefix.rstrip("/") + "/model_quality.json")
    assert report["threshold"]["passed"] is None and "ground-truth/batch-b.csv" in report["ground_truth"]["note"]
    assert not _list(rt, v["bucket_name"], f"{v['bucket_prefix']}/feedback/{second['PipelineExecutionId']}/")
    # each execution processed exactly its own object
    rows = sum(1 for _ in open(tmp / "drift" / "inference-data.csv"))
    assert second["Steps"][STEPS["data_check_preprocess"]]["StepStatus"] == "Succeeded"
    check = second["Steps"][STEPS["data_check_preprocess"]]["Properties"]["ProcessingOutputConfig"]["Outputs"]
    uri = next(o for o in check if o["OutputName"] == "ground_truth")["S3Output"]["S3Uri"]
    bucket, prefix = uri[len("s3://"):].split("/", 1)
    status = _json(rt, bucket, prefix.rstrip("/") + "/ground_truth.json")
    assert status["batches"] == ["batch-b.csv"] and status["available"] is False
    data_check = next(o for o in check if o["OutputName"] == "data_check")["S3Output"]["S3Uri"]
    bucket, prefix = data_check[len("s3://"):].split("/", 1)
    body = rt.aws.s3.get_object(Bucket=bucket, Key=prefix.rstrip("/") + "/data_check.csv")["Body"].read().decode()
    assert len(body.splitlines()) == rows + 1
    page = report_html(rt, second)
    assert "batch-b.csv" in page and "Not evaluated" in page and "ground-truth/batch-b.csv" in page


def test_a_breach_fails_at_the_fail_step_and_matches_the_hpo_rule(deployed):
    from pipeline_scripts.contracts import MARKERS, STEPS
    rt, tmp = deployed
    rec = score(rt, tmp / "drift", "batch-c.csv", parameters={"MseThreshold": "0.0001"})
    assert rec["PipelineExecutionStatus"] == "Failed"
    assert rec["Steps"][STEPS["model_quality"]]["StepStatus"] == "Succeeded"  # the job itself did not fail
    fail = rec["Steps"][STEPS["model_quality_breach"]]
    assert fail["StepStatus"] == "Failed" and fail["FailureReason"].startswith(f"{MARKERS['model_quality_breach']}: mse=")
    assert "threshold=0.0001" in fail["FailureReason"] and "batch-c.csv" in fail["FailureReason"]
    breach_rules = _breach_rules(rt)
    matched = [(d["stepName"], d["currentStepStatus"]) for d, rules in _matched(rt, rec["PipelineExecutionArn"])
               if rules & breach_rules]
    assert matched == [(STEPS["model_quality_breach"], "Failed")]
    # the report was written before the verdict, breach or not
    order = rec["StepOrder"]
    assert order.index(STEPS["report"]) < order.index(STEPS["model_quality_breach"])
    page = report_html(rt, rec)
    assert "batch-c.csv" in page and "threshold" in page and "badge bad" in page


def test_a_model_quality_crash_never_matches_the_hpo_rule(deployed):
    """AWS-shaped crash: the job fails; whatever its reason says, the FailStep is never reached."""
    from pipeline_scripts.contracts import MARKERS, STEPS
    rt, tmp = deployed
    v = rt.tf.vars
    definition = json.loads(rt.aws.sm.describe_pipeline(PipelineName=rt.tf.pipeline_names["inference"])["PipelineDefinition"])
    step = next(s for s in definition["Steps"] if s["Name"] == STEPS["model_quality"])
    code = next(i["S3Input"]["S3Uri"] for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    bucket, key = code[len("s3://"):].split("/", 1)
    good = rt.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    # even a crash that prints the marker must not look like a breach
    rt.aws.s3.put_object(Bucket=bucket, Key=key, **_sse(rt), Body=(
        f"import sys\nprint('{MARKERS['model_quality_breach']}: not really', file=sys.stderr)\n"
        "raise RuntimeError('model quality exploded')\n").encode())
    try:
        rec = score(rt, tmp / "drift", "batch-d.csv", parameters={"MseThreshold": "0.0001"})
    finally:
        rt.aws.s3.put_object(Bucket=bucket, Key=key, Body=good, **_sse(rt))
    assert rec["PipelineExecutionStatus"] == "Failed"
    assert rec["Steps"][STEPS["model_quality"]]["StepStatus"] == "Failed"
    assert STEPS["model_quality_breach"] not in rec["Steps"]
    breach_rules = _breach_rules(rt)
    events = _matched(rt, rec["PipelineExecutionArn"])
    assert any(d["stepName"] == STEPS["model_quality"] and d["currentStepStatus"] == "Failed" for d, _ in events)
    assert not [d["stepName"] for d, rules in events if rules & breach_rules]


def test_a_labelled_batch_outside_the_schema_is_quarantined_and_notified(deployed):
    """A typo'd label (issue 10): the batch is never scored against it nor trained on. (An unknown category
    in the features stops earlier, at DataPreProcessingStep, under the schema's default unknown_category
    policy 'error'; the data-check unit tests cover the other policies.)"""
    from pipeline_scripts.contracts import MARKERS, STEPS
    rt, tmp = deployed
    v = rt.tf.vars
    labels = (tmp / "data" / "ground-truth.csv").read_text().splitlines()
    labels[1] = "inf"
    sent_before = len(rt.notifications.received)
    rec = score(rt, tmp / "data", "batch-e.csv", truth_text="\n".join(labels) + "\n")
    assert rec["PipelineExecutionStatus"] == "Failed"
    fail = rec["Steps"][STEPS["feedback_quarantined"]]
    assert fail["FailureReason"].startswith(f"{MARKERS['feedback_quarantined']}: ")
    assert "line 2" in fail["FailureReason"] and "'inf'" in fail["FailureReason"]
    # scored against its labels all the same? no: bad data never reaches the breach decision or retraining
    assert STEPS["model_quality_breach"] not in rec["Steps"]
    execution = rec["PipelineExecutionId"]
    assert not _list(rt, v["bucket_name"], f"{v['bucket_prefix']}/feedback/{execution}/")
    quarantine = _list(rt, v["bucket_name"], f"{v['bucket_prefix']}/feedback-quarantine/{execution}/")
    assert any(k.endswith(("data/batch-e.csv", "data/batch-e.csv.ground-truth")) for k in quarantine)
    assert any(k.endswith("reasons.json") for k in quarantine)
    new = [n["message"] for n in rt.notifications.received[sent_before:]]
    assert any(MARKERS["feedback_quarantined"] in m for m in new), new


def test_a_data_arrival_starts_one_execution_bound_to_that_object(deployed):
    """Through events.tf: the uploaded object's key becomes the execution's InputObjectKey, and a later
    upload of another batch does not re-score the first one."""
    from pipeline_scripts.contracts import CONTRACTS, STEPS
    rt, tmp = deployed
    v = rt.tf.vars
    param = CONTRACTS.pipeline("inference").started_by["object_parameter"]
    base = f"{v['bucket_prefix']}/{v['bucket_inf_prefix']}"
    rt.upload(tmp / "data" / "ground-truth.csv", f"{base}/ground-truth/batch-f.csv")
    before = len(rt.executions_run)
    rt.upload(tmp / "data" / "inference-data.csv", f"{base}/input/batch-f.csv")
    rt.pump()
    (execution,) = rt.executions_run[before:]
    rec = rt.workspace.load_execution(execution)
    assert rec["Parameters"][param] == f"{base}/input/batch-f.csv"
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
    assert outcome(rec, STEPS["model_quality_condition"]) == "True"


def test_rejecting_the_only_serving_version_withdraws_inference_until_a_version_is_approved(deployed):
    """Through the whole chain (rule -> deploy trigger -> GitLab deploy): with no version Approved any more, the
    inference pipeline is withdrawn, so the next batch is not scored by the rejected model; it ends Failed
    with the reason, and one digest says so. Approving again deploys the real pipeline. (Last in this module:
    it restores the approval it takes away.)"""
    from pipeline_scripts.contracts import MARKERS, STEPS
    rt, tmp = deployed
    v = rt.tf.vars
    (package,) = rt.list_packages(rt.tf.model_package_group_name)
    arn = package["ModelPackageArn"]
    deploys = len(rt.workspace.read_jsonl("gitlab/pipelines.jsonl"))
    try:
        rt.approve(arn, approve=False, comment="bad model")
        rt.pump()
        (job,) = rt.workspace.read_jsonl("gitlab/pipelines.jsonl")[deploys:]
        assert job["inputs"]["deploy_reason"] == "withdraw" and job["exit_code"] == 0, job
        sent_before = len(rt.notifications.received)
        rec = score(rt, tmp / "data", "batch-w.csv")
        assert rec["PipelineExecutionStatus"] == "Failed" and rec["StepOrder"] == [STEPS["no_serving_model"]]
        reason = rec["Steps"][STEPS["no_serving_model"]]["FailureReason"]
        key = f"{v['bucket_prefix']}/{v['bucket_inf_prefix']}/input/batch-w.csv"
        assert reason.startswith(f"{MARKERS['no_serving_model']}: batch {key} was not scored: no version of model "
                                 f"package group '{rt.tf.model_package_group_name}' is Approved; approving one")
        digests = [n for n in rt.notifications.received[sent_before:] if "FAILED" in (n["subject"] or "")]
        assert len(digests) == 1 and f"Failed step: {STEPS['no_serving_model']}: {reason}" in digests[0]["message"]
    finally:
        rt.approve(arn, comment="approved again")
        rt.pump()
    rec = score(rt, tmp / "data", "batch-x.csv")  # the real pipeline is back
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
