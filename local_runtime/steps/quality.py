"""QualityCheck step (Model Monitor data quality): runs the configured engine ([tool.sm-local]
quality_check_engine) in place of the Model Monitor analyzer container, with the same inputs/outputs and the
step's documented properties. The engine is called as ``<engine> baseline --input D --output O`` or
``<engine> check --input D --baseline-constraints C [--baseline-statistics S] --output O``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..aws import read_s3_text, split_s3
from ..errors import StepFailure
from .base import StepContext, StepResult
from .common import relocate
from .processing import run_processing_job

_CONTROL = ("CheckType", "ModelPackageGroupName", "SkipCheck", "RegisterNewBaseline", "FailOnViolation",
            "SuppliedBaselineStatistics", "SuppliedBaselineConstraints", "CheckJobConfig")


class QualityCheckHandler:
    step_types = ("QualityCheck",)

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(*run_quality_check(ctx))


def run_quality_check(ctx: StepContext):
    a = ctx.args
    check_type = a.get("CheckType", "DATA_QUALITY")
    if check_type != "DATA_QUALITY":
        raise StepFailure(f"QualityCheck CheckType {check_type!r} is not supported locally (DATA_QUALITY only)")
    engine = ctx.services.quality_check_engine
    if engine is None:
        raise StepFailure("QualityCheck steps need an engine in place of Model Monitor's analyzer: set "
                          "quality_check_engine in the template's [tool.sm-local] table")
    if not Path(engine).exists():
        raise StepFailure(f"data-quality engine {engine} (quality_check_engine in [tool.sm-local]) not found")
    env = a.get("Environment") or {}
    outputs = (a.get("ProcessingOutputConfig") or {}).get("Outputs", [])
    if not outputs:
        raise StepFailure("QualityCheck has no ProcessingOutputConfig output")
    out_local = env.get("output_path") or outputs[0]["S3Output"]["LocalPath"]
    out_uri = outputs[0]["S3Output"]["S3Uri"].rstrip("/")
    dataset = env.get("dataset_source") or a["ProcessingInputs"][0]["S3Input"]["LocalPath"]
    skip = bool(a.get("SkipCheck", False))
    register_new = bool(a.get("RegisterNewBaseline", False))
    stats_uri, cons_uri = a.get("SuppliedBaselineStatistics"), a.get("SuppliedBaselineConstraints")
    proc_args = {k: v for k, v in a.items() if k not in _CONTROL}
    job_name = ctx.job_name()
    mode = "baseline" if skip or not cons_uri else "check"
    if mode == "check":
        # Supplied baselines become extra processing inputs, as the Model Monitor container receives them.
        extra = []
        for name, uri in (("baseline_statistics", stats_uri), ("baseline_constraints", cons_uri)):
            if uri:
                extra.append({"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/{name}",
                                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}})
        proc_args["ProcessingInputs"] = list(proc_args.get("ProcessingInputs", [])) + extra

    def command(root: Path) -> list[str]:
        if mode == "baseline":
            return [sys.executable, str(engine), "baseline", "--input", relocate(dataset, root),
                    "--output", relocate(out_local, root)]
        cmd = [sys.executable, str(engine), "check", "--input", relocate(dataset, root),
               "--baseline-constraints", relocate(f"/opt/ml/processing/baseline_constraints/{cons_uri.rsplit('/', 1)[-1]}", root),
               "--output", relocate(out_local, root)]
        if stats_uri:
            cmd += ["--baseline-statistics", relocate(f"/opt/ml/processing/baseline_statistics/{stats_uri.rsplit('/', 1)[-1]}", root)]
        return cmd

    record = run_processing_job(ctx, proc_args, job_name, entrypoint_override=command)
    calc_stats, calc_cons = f"{out_uri}/statistics.json", f"{out_uri}/constraints.json"
    props = dict(record, CalculatedBaselineStatistics=calc_stats, CalculatedBaselineConstraints=calc_cons,
                 BaselineUsedForDriftCheckStatistics=calc_stats if (register_new or not stats_uri) else stats_uri,
                 BaselineUsedForDriftCheckConstraints=calc_cons if (register_new or not cons_uri) else cons_uri)
    meta = {"QualityCheck": {"CheckType": check_type, "CheckJobArn": record["ProcessingJobArn"], "SkipCheck": skip,
                             "RegisterNewBaseline": register_new, "ModelPackageGroupName": a.get("ModelPackageGroupName"),
                             "CalculatedBaselineStatistics": calc_stats, "CalculatedBaselineConstraints": calc_cons}}
    if mode == "check":
        meta["QualityCheck"]["ViolationReport"] = f"{out_uri}/constraint_violations.json"
        if a.get("FailOnViolation", True):
            b, k = split_s3(f"{out_uri}/constraint_violations.json")
            viol = json.loads(read_s3_text(ctx.aws.s3, f"s3://{b}/{k}")).get("violations", [])
            if viol:
                raise StepFailure(f"ClientError: Quality check failed: {len(viol)} constraint violation(s); see the "
                                  f"violation report {out_uri}/constraint_violations.json", metadata=meta, properties=props)
    return props, meta
