"""Read back what an execution produced (for the CLI, the demo summary and the HTML report)."""
from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError

from .aws import split_s3


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
    return {
        "summary": step_output_file(rt, rec, "DataQualityCheckStep", "summary.json"),
        "statistics": step_output_file(rt, rec, "DataQualityCheckStep", "statistics.json"),
        "violations": step_output_file(rt, rec, "DataQualityCheckStep", "constraint_violations.json"),
        "baseline_statistics": step_input_file(rt, rec, "DataQualityCheckStep", "statistics", "statistics.json"),
        "model_quality": step_output_file(rt, rec, "ModelQualityCalcStep", "model_quality.json"),
        "ground_truth": step_output_file(rt, rec, "DataCheckPreProcessingStep", "ground_truth.json"),
    }


def report_steps(rec: dict) -> list[dict]:
    return [{"name": n, "status": rec["Steps"][n]["StepStatus"], "start": rec["Steps"][n].get("StartTime"),
             "end": rec["Steps"][n].get("EndTime"), "failure_reason": rec["Steps"][n].get("FailureReason")}
            for n in rec.get("StepOrder", []) if n in rec.get("Steps", {})]


def write_inference_report(rt, rec: dict, path: Path) -> Path:
    from .report import write_report
    art = inference_artifacts(rt, rec)
    viol = (art["summary"] or {}).get("violations")
    if viol is None:
        viol = (art["violations"] or {}).get("violations", [])
    write_report(str(path), title=f"Batch inference {rec['PipelineName']} {rec['PipelineExecutionId']}",
                 baseline_statistics=art["baseline_statistics"], current_statistics=art["statistics"],
                 violations=viol, model_quality=art["model_quality"], steps=report_steps(rec),
                 generated_at=rec.get("EndTime"))
    return path


def format_version(rt, desc: dict) -> str:
    m = rt.package_metrics(desc).get("regression_metrics", {})
    metrics = " ".join(f"{k}={v.get('value'):.4g}" for k, v in m.items() if isinstance(v, dict) and v.get("value") is not None)
    return (f"{desc['ModelPackageGroupName']}/{desc.get('ModelPackageVersion')}  {desc['ModelApprovalStatus']:<22} "
            f"{metrics}  {desc['ModelPackageArn']}")
