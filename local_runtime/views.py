"""Read-only views of the runtime's state for people: what an execution produced (its artifacts, the HTML
report), and the rows and number formats the CLI, the studio and the demo summary show."""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from botocore.exceptions import ClientError
from steplib import artifacts

from .aws import split_s3
from .errors import NotFoundError


def _read_json_s3(rt, uri: str):
    """An artifact of the run, or None when the step did not write it (skipped or failed step)."""
    b, k = split_s3(uri)
    try:
        body = rt.aws.s3.get_object(Bucket=b, Key=k)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def _local_output(props: dict, local_suffix: str, filename: str):
    """Outputs of a failed job are not uploaded; its job dir still has them (SageMaker keeps logs only)."""
    job_dir = props.get("LocalJobDir")
    if not job_dir:
        return None
    for p in Path(job_dir).rglob(filename):
        if local_suffix in str(p):
            try:
                return json.loads(p.read_text())
            except json.JSONDecodeError:
                return None
    return None


def step_output_file(rt, rec: dict, step: str, filename: str):
    st = rec.get("Steps", {}).get(step) or {}
    props = st.get("Properties") or {}
    for out in (props.get("ProcessingOutputConfig") or {}).get("Outputs", []):
        uri = out.get("S3Output", {}).get("S3Uri", "").rstrip("/")
        if st.get("StepStatus") == "Succeeded":
            doc = _read_json_s3(rt, f"{uri}/{filename}")
            if doc is not None:
                return doc
    return _local_output(props, "", filename)


def step_input_file(rt, rec: dict, step: str, local_part: str, filename: str):
    props = (rec.get("Steps", {}).get(step) or {}).get("Properties") or {}
    for inp in props.get("ProcessingInputs", []):
        s3in = inp.get("S3Input") or {}
        if local_part in s3in.get("LocalPath", ""):
            uri = s3in["S3Uri"]
            return _read_json_s3(rt, uri if uri.endswith(".json") else uri.rstrip("/") + "/" + filename)
    return None


def inference_artifacts(rt, rec: dict) -> dict:
    from pipeline_scripts.contracts import STEPS
    dq, mq, prep = STEPS["data_quality_check"], STEPS["model_quality"], STEPS["data_check_preprocess"]
    return {
        "summary": step_output_file(rt, rec, dq, artifacts.file("data_quality_summary")),
        "statistics": step_output_file(rt, rec, dq, artifacts.file("data_quality_statistics")),
        "violations": step_output_file(rt, rec, dq, artifacts.file("data_quality_violations")),
        "baseline_statistics": step_input_file(rt, rec, dq, "statistics", artifacts.file("data_quality_statistics")),
        "model_quality": step_output_file(rt, rec, mq, artifacts.file("model_quality")),
        "ground_truth": step_output_file(rt, rec, prep, artifacts.file("ground_truth")),
    }


def report_steps(rec: dict) -> list[dict]:
    return [{"name": n, "status": rec["Steps"][n]["StepStatus"], "start": rec["Steps"][n].get("StartTime"),
             "end": rec["Steps"][n].get("EndTime"), "failure_reason": rec["Steps"][n].get("FailureReason")}
            for n in rec.get("StepOrder", []) if n in rec.get("Steps", {})]


def scoring_model(rt, rec: dict) -> dict | None:
    """The model version that scored the batch: the package whose model artifact the execution's
    definition deploys (the inference pipeline is rebuilt around one version)."""
    definition = json.dumps(rec.get("Definition") or {})
    for d in reversed(rt.list_packages()):
        containers = (d.get("InferenceSpecification") or {}).get("Containers") or []
        url = containers[0].get("ModelDataUrl") if containers else None
        if url and url in definition:
            return {"ref": f"{d['ModelPackageGroupName']}/{d.get('ModelPackageVersion')}", "arn": d["ModelPackageArn"],
                    "status": d["ModelApprovalStatus"], "metrics": _flat_metrics(rt.package_metrics(d))}
    return None


def prediction_drift(rt, rec: dict) -> dict | None:
    """The prediction-drift check's results and the version's prediction baseline; None when the execution
    has no such step (the version has no prediction baseline)."""
    from pipeline_scripts.contracts import STEPS
    step = STEPS["prediction_drift_check"]
    if step not in rec.get("Steps", {}):
        return None
    statistics = artifacts.file("data_quality_statistics")  # the same engine and files as the features' check
    return {"current_statistics": step_output_file(rt, rec, step, statistics),
            "violations": (step_output_file(rt, rec, step, artifacts.file("data_quality_summary")) or {})
            .get("violations", []),
            "baseline_statistics": step_input_file(rt, rec, step, "statistics", statistics)}


def mse_trend(rt, rec: dict, limit: int = 10) -> list[dict]:
    """MSE of this pipeline's earlier executions (those that evaluated model quality) and of this one."""
    earlier = [r for r in rt.workspace.list_executions()
               if r["PipelineName"] == rec["PipelineName"] and r.get("Sequence", 0) < rec.get("Sequence", 0)]
    points = []
    for r in earlier[-(limit - 1):] + [rec]:
        mq = step_output_file(rt, r, _mq_step(), artifacts.file("model_quality")) or {}
        mse = ((mq.get("regression_metrics") or {}).get("mse") or {}).get("value")
        if isinstance(mse, (int, float)):
            points.append({"label": "this run" if r is rec else f"{r['PipelineExecutionId']} ({(r.get('StartTime') or '')[:16]})",
                           "mse": mse})
    return points


def _mq_step() -> str:
    from pipeline_scripts.contracts import STEPS
    return STEPS["model_quality"]


def write_inference_report(rt, rec: dict, path: Path) -> Path:
    from steplib.report import write_report
    art = inference_artifacts(rt, rec)
    viol = (art["summary"] or {}).get("violations")
    if viol is None:
        viol = (art["violations"] or {}).get("violations", [])
    # Links relative to the report file, so that they work where it is opened: from disk, and in the studio,
    # which serves the workspace's reports/ and jobs/ at the same relative places (file:// links are dead there).
    logs = {}
    for n in rec.get("StepOrder", []):
        files = step_log_files(rt.workspace, rec, n)
        if files:
            logs[n] = quote(Path(os.path.relpath(files[0].resolve(), path.resolve().parent)).as_posix())
    write_report(str(path), title=f"Batch inference {rec['PipelineName']} {rec['PipelineExecutionId']}",
                 baseline_statistics=art["baseline_statistics"], current_statistics=art["statistics"],
                 violations=viol, model_quality=art["model_quality"], steps=report_steps(rec),
                 generated_at=rec.get("EndTime"), model=scoring_model(rt, rec), prediction_drift=prediction_drift(rt, rec),
                 log_links=logs, mse_trend=mse_trend(rt, rec))
    return path


# ---------------------------------------------------------------- shared by the CLI, the studio and the demo
def fmt_seconds(s) -> str:
    if s is None:
        return "–"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s"


def fmt_number(x, digits: int = 3) -> str:
    """Round for people: 6.7193 -> 6.72, 0.000123 -> 0.000123, 12345.6 -> 12,346."""
    if x is None:
        return "–"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def pipeline_names(rt) -> dict[str, str]:
    """contracts/pipelines.json key -> pipeline name: Terraform's local.pipeline_names when the Terraform files define
    it, else the tfvars pipeline_* values matched by the contract's name suffix."""
    from pipeline_scripts.contracts import PIPELINES
    resolved = getattr(rt.tf, "pipeline_names", None)
    if isinstance(resolved, dict) and resolved:
        return {k: v for k, v in resolved.items() if k in PIPELINES}
    names = [v for k, v in rt.tf.vars.items() if k.startswith("pipeline_") and isinstance(v, str)]
    out = {}
    for key, c in sorted(PIPELINES.items(), key=lambda kv: -len(kv[1].name_suffix)):
        match = next((n for n in names if n.lower().endswith(c.name_suffix) and n not in out.values()), None)
        if match:
            out[key] = match
    return out


def resolve_pipeline(rt, name: str) -> str:
    """A contracts/pipelines.json key or alias, or a pipeline name -> pipeline name."""
    from pipeline_scripts.contracts import CONTRACTS
    return pipeline_names(rt).get(CONTRACTS.pipeline_key(name) or name, name)


def pipeline_overview(rt) -> list[dict]:
    from pipeline_scripts.contracts import PIPELINES
    names = pipeline_names(rt)
    upserted = {p["PipelineName"] for p in rt.aws.sm.list_pipelines().get("PipelineSummaries", [])}
    execs = rt.workspace.list_executions()
    out = []
    for key, c in PIPELINES.items():
        name = names.get(key)
        mine = [e for e in execs if e["PipelineName"] == name]
        out.append({"key": key, "name": name, "description": c.description, "upserted": name in upserted,
                    "executions": len(mine), "last": execution_row(rt.workspace, mine[-1]) if mine else None})
    return out


def exit_messages(ws, step: dict) -> list[str]:
    """The ExitMessage of each job the step ran, as DescribeProcessingJob/DescribeTrainingJob return it: where a
    job puts the line that names the bad file, row and value (its FailureReason is often AWS's generic
    "AlgorithmError: See job logs for more information"). Read from the job records the runtime keeps."""
    messages = []
    for meta in (step.get("Metadata") or {}).values():
        arn = meta.get("Arn") if isinstance(meta, dict) else None
        if not arn or ":tuning-job/" in arn:  # a tuning job has no ExitMessage (its trials are training jobs)
            continue
        record = ws.job_record(arn.rsplit("/", 1)[-1])
        try:
            message = json.loads(record.read_text()).get("ExitMessage")
        except (OSError, json.JSONDecodeError):
            continue  # no record (the job never ran) or a torn one: nothing to show, the reason still is
        if message and message.strip() not in (step.get("FailureReason") or ""):
            messages.append(message.strip())
    return messages


def execution_row(ws, rec: dict) -> dict:
    failed = rec.get("FailedStep") or next((n for n in rec.get("StepOrder", [])
                                            if rec["Steps"][n].get("StepStatus") == "Failed"), None)
    failed_step = (rec["Steps"].get(failed) or {}) if failed else {}
    return {"id": rec["PipelineExecutionId"], "pipeline": rec["PipelineName"], "status": rec.get("PipelineExecutionStatus"),
            "start": rec.get("StartTime"), "end": rec.get("EndTime"), "seconds": rec.get("DurationSeconds"),
            "trigger": _trigger_text(rec.get("Trigger") or {}), "failure_reason": rec.get("FailureReason"),
            "failed_step": failed, "failed_step_reason": failed_step.get("FailureReason"),
            "failed_step_exit_message": "\n".join(exit_messages(ws, failed_step)) if failed else None,
            "report": str(report_path(ws, rec)) if report_path(ws, rec).exists() else None,
            "parameters": rec.get("Parameters") or {}}


def _trigger_text(t: dict) -> str:
    if t.get("type") == "EventBridge":
        return f"rule {t.get('rule')}"
    return t.get("type") or "cli"


def step_log_files(ws, rec: dict, step: str) -> list[Path]:
    """The step's job logs (CloudWatch stand-in): its job's logs.txt, for a tuning step every trial's."""
    st = (rec.get("Steps") or {}).get(step)
    if st is None:
        raise NotFoundError(f"execution {rec['PipelineExecutionId']} has no step {step!r} "
                            f"(steps: {', '.join(rec.get('StepOrder', []))})")
    found = []
    props = st.get("Properties") or {}
    for key in ("LogFile",):
        if props.get(key):
            found.append(Path(props[key]))
    jobs = Path(ws.root) / "jobs"
    if not found and jobs.is_dir():
        slug = f"pipelines-{rec['PipelineExecutionId']}-{step}".lower()[:50]
        found = sorted(jobs.glob(f"{slug}*/logs.txt"))
        if not found and st.get("StepType") == "Tuning":
            found = sorted(jobs.glob(f"{rec['PipelineExecutionId'][:12].lower()}-*/logs.txt"))
    return [p for p in found if p.exists()]


def step_rows(ws, rec: dict) -> list[dict]:
    rows = []
    for n in rec.get("StepOrder", []):
        st = rec["Steps"][n]
        jobs = [f"{k}: {v.get('Arn')}" for k, v in (st.get("Metadata") or {}).items() if isinstance(v, dict) and v.get("Arn")]
        outcome = (st.get("Properties") or {}).get("Outcome") if st.get("StepType") == "Condition" else None
        rows.append({"name": n, "type": st.get("StepType"), "status": st.get("StepStatus"), "start": st.get("StartTime"),
                     "seconds": st.get("DurationSeconds"), "failure_reason": st.get("FailureReason"),
                     "exit_message": "\n".join(exit_messages(ws, st)) or None, "jobs": jobs, "outcome": outcome,
                     "logs": [str(p) for p in step_log_files(ws, rec, n)]})
    return rows


def version_rows(rt, only: str | None = None) -> list[dict]:
    """Model versions with metrics, approval state, and which one serves (the latest Approved, which the
    inference pipeline script deploys)."""
    descs = rt.list_packages()
    approved = [d for d in descs if d["ModelApprovalStatus"] == "Approved"]
    serving = max(approved, key=lambda d: d.get("ModelPackageVersion", 0)) if approved else None
    serving_metrics = _flat_metrics(rt.package_metrics(serving)) if serving else {}
    rows = []
    for d in descs:
        if only and d["ModelPackageArn"] != only:
            continue
        metrics = _flat_metrics(rt.package_metrics(d))
        vs = {k: v - serving_metrics[k] for k, v in metrics.items()
              if serving and d is not serving and isinstance(serving_metrics.get(k), (int, float))}
        rows.append({"arn": d["ModelPackageArn"], "group": d["ModelPackageGroupName"], "version": d.get("ModelPackageVersion"),
                     "ref": f"{d['ModelPackageGroupName']}/{d.get('ModelPackageVersion')}",
                     "status": d["ModelApprovalStatus"], "comment": d.get("ApprovalDescription"),
                     "created": d.get("CreationTime"), "metrics": metrics, "vs_serving": vs,
                     "serving": serving is not None and d["ModelPackageArn"] == serving["ModelPackageArn"]})
    return rows


def _flat_metrics(doc: dict) -> dict:
    m = (doc or {}).get("regression_metrics") or {}
    return {k: v.get("value") for k, v in m.items() if isinstance(v, dict) and isinstance(v.get("value"), (int, float))}


def report_path(ws, rec: dict) -> Path:
    return Path(ws.root) / "reports" / f"{rec['PipelineExecutionId']}.html"


def is_inference(rec: dict) -> bool:
    from pipeline_scripts.contracts import STEPS
    return STEPS["data_quality_check"] in (rec.get("Steps") or {})


def ensure_report(rt, rec: dict, refresh: bool = False) -> Path | None:
    """The execution's HTML report in <workspace>/reports/ (written when missing); None for executions
    that have no data-quality check (training)."""
    path = report_path(rt.workspace, rec)
    if path.exists() and not refresh:
        return path
    if not is_inference(rec):
        return None
    return write_inference_report(rt, rec, path)


def format_version(rt, desc: dict) -> str:
    m = rt.package_metrics(desc).get("regression_metrics", {})
    metrics = " ".join(f"{k}={fmt_number(v.get('value'))}" for k, v in m.items() if isinstance(v, dict) and v.get("value") is not None)
    return (f"{desc['ModelPackageGroupName']}/{desc.get('ModelPackageVersion')}  {desc['ModelApprovalStatus']:<22} "
            f"{metrics}  {desc['ModelPackageArn']}")
