"""`sm-local demo`: the whole MLOps loop offline, checked step by step.

upsert pipelines -> training data upload (rule starts training) -> version pending -> approve -> deploy
(re-run the inference pipeline script) -> ground truth + inference upload (rule starts inference) ->
drifted data -> model-quality breach (FailStep with the breach marker) -> rule starts HPO (which also learns from the labelled drifted batch)
-> better version pending -> approve -> deploy -> a later drifted batch passes. Exit 0 only when every
expectation held.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from pipeline_scripts.contracts import MARKERS, PIPELINES, STEPS

from .config import find_root
from .gitlab import PIPELINES as GITLAB_PIPELINES
from .runtime import Runtime
from .workspace import as_typed


class Story:
    def __init__(self):
        self.checks: list[dict] = []

    def expect(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"expectation": name, "ok": bool(ok), "detail": detail})
        print(f"  {'✔' if ok else '✘'} {name}" + (f" — {detail}" if detail else ""), flush=True)
        return bool(ok)


def _chapter(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _new_executions(rt, before: set, pipeline: str | None = None) -> list[dict]:
    recs = [r for r in rt.workspace.list_executions() if r["PipelineExecutionId"] not in before]
    return [r for r in recs if pipeline is None or r["PipelineName"] == pipeline]


def _breach_rules(rt) -> set:
    """Names of the model-quality breach rules of events.tf (they start HPO through the starter Lambda)."""
    return {body["name"] for res, body in rt.tf.resources.get("aws_cloudwatch_event_rule", {}).items()
            if res.startswith("model_quality_breach")}


def _ids(rt) -> set:
    return {r["PipelineExecutionId"] for r in rt.workspace.list_executions()}


_CONFIGS: dict = {}  # builder module -> YAML path given as --config


def _upsert(key: str, env_file: Path) -> int:
    """Run the builder contracts/pipelines.json names for pipeline `key`, as the CI build job does."""
    import importlib
    builder = PIPELINES[key].builder
    mod = importlib.import_module(builder)
    argv = ["--env-file", str(env_file), "--no-upload"]
    if _CONFIGS.get(builder):
        argv += ["--config", str(_CONFIGS[builder])]
    try:
        return int(mod.main(argv) or 0)
    except SystemExit as exc:  # argparse or explicit sys.exit in the script
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1


def _data_sets(repo: Path, out: Path, rows, inference_rows, drift_rows, env_file: Path):
    """Normal, drifted and later drifted batches derived from the current schema (tools/demo_data.py)."""
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tools import demo_data
    return demo_data.demo_batches(repo, out, env_file, rows, inference_rows, drift_rows)


def run_demo(output="demo-output", env_file=None, rows=None, inference_rows=1000,
             drift_rows=None, workspace=None, repo_root=None, configs=None) -> int:
    """configs: optional {builder module's name: YAML path} passed as --config (tests use smaller HPO)."""
    t_start = time.time()
    _CONFIGS.clear()
    builders = {p.builder.rsplit(".", 1)[-1]: p.builder for p in PIPELINES.values()}
    _CONFIGS.update({builders[name]: path for name, path in (configs or {}).items() if name in builders})
    repo = Path(repo_root or find_root()).resolve()
    out = Path(output).resolve()
    if out.exists():
        shutil.rmtree(out)  # the demo always starts from an empty workspace
    out.mkdir(parents=True)
    ws = Path(workspace).resolve() if workspace else out / "workspace"
    if workspace and ws.exists():
        shutil.rmtree(ws)
    if env_file is None:
        from .config import RuntimeConfig
        env_file = RuntimeConfig.load(repo).env_file
    env_path = (repo / env_file) if not Path(env_file).is_absolute() else Path(env_file)
    story = Story()
    normal, drift, drift_later = _data_sets(repo, out, rows, inference_rows, drift_rows, env_path)
    reports = []
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    with Runtime(repo_root=repo, workspace=ws, env_file=env_path) as rt:
        rt.pipeline_configs.update(_CONFIGS)
        v = rt.tf.vars
        bucket, prefix = rt.bucket, v["bucket_prefix"]
        train_key = f"{prefix}/{v['bucket_train_prefix']}/training-data.csv"
        # one batch = input/<name> plus its own labels at ground-truth/<name> (the pairing rule)
        batch_keys = {name: (f"{prefix}/{v['bucket_inf_prefix']}/ground-truth/{name}.csv",
                             f"{prefix}/{v['bucket_inf_prefix']}/input/{name}.csv")
                      for name in ("batch-1", "batch-2-drifted", "batch-3-drifted")}
        names = rt.tf.pipeline_names
        p_train, p_hpo, p_inf = names["training"], names["training_hpo"], names["inference"]
        group = rt.tf.model_package_group_name

        _chapter("1. Terraform-managed bucket and pipeline upserts (pipeline_scripts mains)")
        rt.aws.s3.create_bucket(Bucket=bucket)
        story.expect(f"training pipeline {p_train} upserted", _upsert("training", env_path) == 0)
        story.expect(f"HPO pipeline {p_hpo} upserted", _upsert("training_hpo", env_path) == 0)
        rc = _upsert("inference", env_path)
        story.expect("inference pipeline refuses to deploy without an Approved model", rc == 3, f"exit code {rc}")

        _chapter("2. Training data arrives -> EventBridge rule starts training")
        before = _ids(rt)
        rt.upload(normal / "training-data.csv", train_key)
        rt.pump()
        tr = _new_executions(rt, before, p_train)
        story.expect("training pipeline started by the data-arrival rule and succeeded",
                     len(tr) == 1 and tr[0]["PipelineExecutionStatus"] == "Succeeded",
                     ", ".join(f"{r['PipelineExecutionId']}={r['PipelineExecutionStatus']}" for r in tr))
        pk = rt.list_packages(group) if _has_group(rt, group) else []
        story.expect("one model version registered PendingManualApproval",
                     len(pk) == 1 and pk[0]["ModelApprovalStatus"] == "PendingManualApproval",
                     ", ".join(f"v{p['ModelPackageVersion']}={p['ModelApprovalStatus']}" for p in pk))

        _chapter("3. Approve version 1: approval event -> deploy Lambda -> GitLab build job rebuilds inference")
        deploys = _show_and_approve(rt, pk[-1], "approved by the demo (data scientist)") if pk else []
        story.expect("approval deployed: the inference pipeline was rebuilt around the approved model",
                     _deployed(rt, deploys, pk[-1] if pk else None), _deploy_text(deploys))

        _chapter("4. Ground truth, then inference data -> rule starts batch inference")
        _, inf1 = _score_batch(rt, normal, *batch_keys["batch-1"], p_inf, out, reports)
        # scored against its own labels (the model-quality condition ran), not merely "no ground truth, nothing to check"
        ok1 = (len(inf1) == 1 and inf1[0]["PipelineExecutionStatus"] == "Succeeded"
               and ((inf1[0]["Steps"].get(STEPS["model_quality_condition"]) or {}).get("Properties") or {}).get("Outcome") == "True")
        story.expect("inference on normal data succeeded (model quality within threshold)", ok1,
                     ", ".join(f"{r['PipelineExecutionId']}={r['PipelineExecutionStatus']} {r.get('FailureReason') or ''}" for r in inf1))
        _check_outputs(rt, story, inf1, normal)

        _chapter(f"5. DRIFTED ground truth + inference data -> {MARKERS['model_quality_breach']} -> HPO retraining")
        before, inf2 = _score_batch(rt, drift, *batch_keys["batch-2-drifted"], p_inf, out, reports)
        breach = [r for r in inf2 if _breach_reason(r).startswith(MARKERS["model_quality_breach"])
                  and (r["Steps"].get(STEPS["model_quality"]) or {}).get("StepStatus") == "Succeeded"]
        story.expect(f"model quality scored and {STEPS['model_quality_breach']} failed the execution with "
                     f"{MARKERS['model_quality_breach']} on drifted data", len(breach) == 1,
                     "; ".join(_breach_reason(r) or f"{r['PipelineExecutionStatus']} {r.get('FailureReason') or ''}"
                               for r in inf2))
        viol = _violations(rt, inf2[0]) if inf2 else None
        story.expect("data-quality violations reported for drifted data", bool(viol), f"{viol} violation(s)")
        hpo = _new_executions(rt, before, p_hpo)
        story.expect("HPO pipeline started by the model-quality-breach rule and succeeded",
                     len(hpo) == 1 and hpo[0]["PipelineExecutionStatus"] == "Succeeded"
                     and hpo[0]["Trigger"].get("rule") in _breach_rules(rt),
                     ", ".join(f"{r['PipelineExecutionId']}={r['PipelineExecutionStatus']} {r.get('FailureReason') or ''}" for r in hpo))
        pk = rt.list_packages(group)
        story.expect("a second version registered PendingManualApproval (review board)",
                     len(pk) == 2 and pk[-1]["ModelApprovalStatus"] == "PendingManualApproval",
                     ", ".join(f"v{p['ModelPackageVersion']}={p['ModelApprovalStatus']}" for p in pk))

        _chapter("6. Review board approves version 2 (deployed by the approval), a later drifted batch is scored")
        deploys = _show_and_approve(rt, pk[-1], "approved by the review board") if len(pk) == 2 else []
        story.expect("approval deployed: the inference pipeline was rebuilt around the new approved model",
                     _deployed(rt, deploys, pk[-1] if len(pk) == 2 else None), _deploy_text(deploys))
        _, inf3 = _score_batch(rt, drift_later, *batch_keys["batch-3-drifted"], p_inf, out, reports)
        gate = (inf3[0]["Steps"].get(STEPS["model_quality_condition"]) or {}) if inf3 else {}
        story.expect("a later drifted batch passes model quality with the retrained model",
                     len(inf3) == 1 and inf3[0]["PipelineExecutionStatus"] == "Succeeded"
                     and (gate.get("Properties") or {}).get("Outcome") == "True",
                     (f"{inf3[0]['PipelineExecutionStatus']} {inf3[0].get('FailureReason') or ''}, "
                      f"{STEPS['model_quality_condition']} outcome {(gate.get('Properties') or {}).get('Outcome')}")
                     if inf3 else "no execution")
        story.expect("no Lambda invocation failed", not rt.lambdas.errors,
                     "; ".join(e["error"] for e in rt.lambdas.errors[:3]))
        story.expect("no event went to a dead-letter queue", not rt.bus.dead_letters,
                     "; ".join(d["error"] for d in rt.bus.dead_letters[:3]))
        story.expect("notifications were published", len(rt.notifications.received) > 0,
                     f"{len(rt.notifications.received)} message(s)")
        summary = _summary(rt, story, reports, time.time() - t_start)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _print_summary(summary, out)
    return 0 if all(c["ok"] for c in story.checks) else 1


def _score_batch(rt, data_dir: Path, gt_key: str, inf_key: str, pipeline: str, out: Path, reports: list):
    """Upload a batch's ground truth, then its inference data (whose arrival starts the pipeline), process
    the events; returns the execution ids from before and the new inference executions (reports written)."""
    before = _ids(rt)
    rt.upload(data_dir / "ground-truth.csv", gt_key)
    rt.upload(data_dir / "inference-data.csv", inf_key)
    rt.pump()
    new = _new_executions(rt, before, pipeline)
    reports.extend(_report(rt, r, out) for r in new)
    return before, new


def _breach_reason(rec) -> str:
    """The breach FailStep's message, when the execution reached it."""
    st = rec["Steps"].get(STEPS["model_quality_breach"]) or {}
    return st.get("FailureReason") or "" if st.get("StepStatus") == "Failed" else ""


def _has_group(rt, group):
    try:
        rt.aws.sm.describe_model_package_group(ModelPackageGroupName=group)
        return True
    except Exception:
        return False


def _show_and_approve(rt, desc, comment) -> list[dict]:
    """Approve like Studio (UpdateModelPackage), process the events; returns the deploys it caused."""
    from .views import format_version
    print("  " + format_version(rt, desc))
    before = len(rt.workspace.read_jsonl(GITLAB_PIPELINES))
    new = rt.approve(desc["ModelPackageArn"], approve=True, comment=comment)
    print(f"  -> {new['ModelPackageArn']} {new['ModelApprovalStatus']}")
    rt.pump()
    return rt.workspace.read_jsonl(GITLAB_PIPELINES)[before:]


def _deployed(rt, deploys, desc) -> bool:
    """Exactly one deploy, of this version, that rebuilt the inference pipeline (now in the account)."""
    if desc is None or len(deploys) != 1:
        return False
    d = deploys[0]
    from .views import pipeline_names
    name = pipeline_names(rt).get("inference")
    upserted = {p["PipelineName"] for p in rt.aws.sm.list_pipelines()["PipelineSummaries"]}
    return (d.get("inputs") or {}).get("model_package_arn") == desc["ModelPackageArn"] and d["exit_code"] == 0 and name in upserted


def _deploy_text(deploys) -> str:
    return "; ".join(f"GitLab pipeline #{d['id']}: {d['outcome']}" for d in deploys) or "no deploy triggered"


def _violations(rt, rec):
    from .views import inference_artifacts
    s = inference_artifacts(rt, rec)["summary"]
    return None if s is None else s.get("violation_count")


def _report(rt, rec, out: Path):
    """The runtime wrote the execution's report into the workspace (as for every execution); the demo keeps
    a copy beside summary.json."""
    from .views import ensure_report, write_inference_report
    try:
        if ensure_report(rt, rec) is None:
            return None
        path = out / "reports" / f"inference-{rec['PipelineExecutionId']}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_inference_report(rt, rec, path)  # not a copy: its log links are relative to where it lies
        return str(path)
    except Exception as exc:
        print(f"  report for {rec['PipelineExecutionId']} failed: {exc}")
        return None


def _check_outputs(rt, story, recs, data_dir):
    """The transform output keeps order and count: one prediction per input line."""
    for r in recs:
        st = r["Steps"].get(STEPS["batch_transform"]) or {}
        out_uri = ((st.get("Properties") or {}).get("TransformOutput") or {}).get("S3OutputPath")
        if not out_uri:
            continue
        from .aws import list_keys, split_s3
        b, p = split_s3(out_uri)
        keys = [k for k in list_keys(rt.aws.s3, b, p) if k.endswith(".out")]
        n_out = sum(rt.aws.s3.get_object(Bucket=b, Key=k)["Body"].read().decode().count("\n") for k in keys)
        n_in = sum(1 for line in open(data_dir / "inference-data.csv") if line.strip())
        story.expect("batch transform wrote one prediction per input row", n_out == n_in, f"{n_out} predictions for {n_in} rows")


def _summary(rt, story, reports, wall):
    from .views import inference_artifacts, prediction_drift
    execs = []
    for r in rt.workspace.list_executions():
        e = {k: r.get(k) for k in ("PipelineExecutionId", "PipelineName", "PipelineExecutionStatus", "FailureReason",
                                   "DurationSeconds", "StartTime", "Trigger", "Parameters")}
        e["steps"] = [{"name": n, "status": r["Steps"][n]["StepStatus"], "seconds": r["Steps"][n].get("DurationSeconds"),
                       "failure_reason": r["Steps"][n].get("FailureReason")} for n in r["StepOrder"]]
        if STEPS["data_quality_check"] in r["Steps"]:
            art = inference_artifacts(rt, r)
            e["data_quality"] = art["summary"]
            e["model_quality"] = art["model_quality"]
            drift = prediction_drift(rt, r)  # None: the version has no prediction baseline
            e["prediction_drift"] = None if drift is None else {"violations": drift["violations"]}
        execs.append(e)
    versions = []
    for d in rt.list_packages():
        versions.append({"arn": d["ModelPackageArn"], "version": d.get("ModelPackageVersion"),
                         "approval": d["ModelApprovalStatus"], "approval_description": d.get("ApprovalDescription"),
                         "metrics": rt.package_metrics(d).get("regression_metrics")})
    return {"ok": all(c["ok"] for c in story.checks), "wall_seconds": round(wall, 1), "expectations": story.checks,
            "executions": execs, "model_versions": versions, "notifications": rt.notifications.received,
            "lambda_errors": rt.lambdas.errors, "reports": [r for r in reports if r],
            "workspace": str(rt.workspace.root)}


def _print_summary(s, out):
    print("\n== Summary")
    for e in s["executions"]:
        dq = e.get("data_quality") or {}
        extra = f" violations={dq.get('violation_count')}" if dq else ""
        if e.get("prediction_drift") is not None:
            extra += f" prediction-drift={len(e['prediction_drift']['violations'])}"
        print(f"  {e['PipelineName']:<26} {e['PipelineExecutionId']} {e['PipelineExecutionStatus']:<9} "
              f"{e.get('DurationSeconds') or 0:6.1f}s{extra} {(e.get('FailureReason') or '')[:80]}")
    for v in s["model_versions"]:
        m = v.get("metrics") or {}
        mse = (m.get("mse") or {}).get("value")
        print(f"  model v{v['version']}: {v['approval']:<22} mse={mse if mse is None else round(mse, 4)}")
    print(f"  notifications: {len(s['notifications'])} (outbox: {s['workspace']}/outbox/notifications.txt)")
    failed = [c for c in s["expectations"] if not c["ok"]]
    print(f"  expectations: {len(s['expectations']) - len(failed)}/{len(s['expectations'])} held; wall {s['wall_seconds']}s")
    for c in failed:
        print(f"  FAILED: {c['expectation']} — {c['detail']}")
    print(f"  summary: {out / 'summary.json'}")
    shown = as_typed(Path(s["workspace"]))
    print(f"  explore it: make studio WORKSPACE={shown}   (or: .venv/bin/sm-local --workspace {shown} executions)")
