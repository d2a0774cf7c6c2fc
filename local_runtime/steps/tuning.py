"""Tuning step: a seeded random search (not SageMaker's Bayesian optimiser) over ParameterRanges.

Whatever Strategy the definition names (Bayesian, Random, Hyperband), the local runtime draws
MaxNumberOfTrainingJobs candidates at random with a seed derived from the step name and ranges (so a re-run
draws the same candidates), runs up to MaxParallelTrainingJobs at a time (capped by CPU count), reads the
objective from each job's log with the MetricDefinitions regex and ranks the jobs. Grid enumerates values.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..constants import sagemaker_arn as arn
from ..errors import StepFailure
from ..services import TuningTrial
from .base import StepContext, StepResult
from .training import run_training_job


def _scaled(rng, lo: float, hi: float, scaling: str) -> float:
    if scaling == "Logarithmic":
        if lo <= 0:
            raise StepFailure(f"Logarithmic scaling needs MinValue > 0, got {lo}")
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if scaling == "ReverseLogarithmic":
        if hi >= 1:
            raise StepFailure(f"ReverseLogarithmic scaling needs MaxValue < 1, got {hi}")
        return 1 - math.exp(rng.uniform(math.log(1 - hi), math.log(1 - lo)))
    return rng.uniform(lo, hi)


def sample_candidates(ranges: dict, n: int, seed: int, strategy: str = "Random") -> list[dict]:
    ints = ranges.get("IntegerParameterRanges", [])
    conts = ranges.get("ContinuousParameterRanges", [])
    cats = ranges.get("CategoricalParameterRanges", [])
    if strategy == "Grid":
        if ints or conts:
            raise StepFailure("Grid strategy supports only CategoricalParameterRanges (as SageMaker)")
        names = [c["Name"] for c in cats]
        combos = list(itertools.product(*[c["Values"] for c in cats]))
        return [dict(zip(names, combo)) for combo in combos][:n]
    import numpy as np  # only tuning needs it: keeps the runtime's import light
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for _ in range(n * 20):
        if len(out) == n:
            break
        cand = {}
        for r in ints:
            lo, hi = int(float(r["MinValue"])), int(float(r["MaxValue"]))
            v = _scaled(rng, lo, hi + 1 - 1e-9, r.get("ScalingType", "Auto"))  # uniform over integers
            cand[r["Name"]] = str(min(hi, max(lo, int(math.floor(v)))))
        for r in conts:
            v = _scaled(rng, float(r["MinValue"]), float(r["MaxValue"]), r.get("ScalingType", "Auto"))
            cand[r["Name"]] = repr(round(v, 6))
        for r in cats:
            cand[r["Name"]] = str(r["Values"][int(rng.integers(len(r["Values"])))])
        key = json.dumps(cand, sort_keys=True)
        if key in seen:  # duplicate draws waste a training job; SageMaker avoids them too
            continue
        seen.add(key)
        out.append(cand)
    return out


class TuningHandler:
    step_types = ("Tuning",)

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(*run_tuning(ctx))


def run_tuning(ctx: StepContext):
    cfg = ctx.args.get("HyperParameterTuningJobConfig") or {}
    tdef = ctx.args.get("TrainingJobDefinition")
    if not tdef:
        if ctx.args.get("TrainingJobDefinitions"):
            raise StepFailure("TrainingJobDefinitions (multi-algorithm tuning) is not supported locally")
        raise StepFailure("Tuning step has no TrainingJobDefinition")
    objective = cfg.get("HyperParameterTuningJobObjective") or {}
    metric, direction = objective.get("MetricName"), objective.get("Type", "Minimize")
    limits = cfg.get("ResourceLimits") or {}
    n_jobs = int(limits.get("MaxNumberOfTrainingJobs", 1))
    n_par = max(1, min(int(limits.get("MaxParallelTrainingJobs", 1)), os.cpu_count() or 1))
    cpus_per_trial = max(1, (os.cpu_count() or 1) // n_par)  # the machine's cores, split among the running trials
    strategy = cfg.get("Strategy", "Bayesian")
    ranges = cfg.get("ParameterRanges") or {}
    # the definition's RandomSeed when given (tuning.seed in the YAML), else one derived from the step
    seed = int(cfg["RandomSeed"]) if "RandomSeed" in cfg else \
        int(hashlib.sha256((ctx.name + json.dumps(ranges, sort_keys=True)).encode()).hexdigest()[:8], 16)
    candidates = sample_candidates(ranges, n_jobs, seed, strategy)
    # Tuning job names are limited to 32 characters.
    tuning_name = f"{ctx.execution['PipelineExecutionId'][:12]}-{secrets.token_hex(4)}"[:32].lower()
    tuning_arn = arn("hyper-parameter-tuning-job", tuning_name)
    ctx.metadata.update({"TuningJob": {"Arn": tuning_arn}})
    static = dict(tdef.get("StaticHyperParameters") or {})
    started = time.time()
    sign = 1 if direction == "Minimize" else -1
    progress = {"done": 0, "best": None}
    progress_lock = threading.Lock()

    def report(summary: dict) -> None:
        value = (summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        with progress_lock:  # trials finish on pool threads; the observer hears them one at a time, in order
            progress["done"] += 1
            if value is not None and (progress["best"] is None or sign * value < sign * progress["best"]):
                progress["best"] = value
            ctx.services.observer.tuning_trial(ctx.execution, ctx.name, TuningTrial(
                number=progress["done"], total=len(candidates), job_name=summary["TrainingJobName"],
                status=summary["TrainingJobStatus"], objective_metric=metric, objective=value,
                best_so_far=progress["best"], hyperparameters=summary["TunedHyperParameters"]))

    def one(i_cand):
        i, cand = i_cand
        job_name = f"{tuning_name}-{i + 1:03d}-{secrets.token_hex(4)}"
        args = {k: v for k, v in tdef.items() if k not in ("StaticHyperParameters", "DefinitionName", "TuningObjective",
                                                             "HyperParameterRanges")}
        args["HyperParameters"] = dict(static, **cand)
        try:
            rec = run_training_job(ctx, args, job_name, tuning_job=tuning_name, cpus=cpus_per_trial)
        except StepFailure as exc:
            rec = dict(exc.properties or {"TrainingJobName": job_name}, TrainingJobStatus="Failed", FailureReason=exc.reason)
        value = next((m["Value"] for m in rec.get("FinalMetricDataList", []) if m["MetricName"] == metric), None)
        summary = {
            "TrainingJobName": job_name, "TrainingJobArn": arn("training-job", job_name),
            "TuningJobName": tuning_name, "TrainingJobStatus": rec.get("TrainingJobStatus", "Failed"),
            "TunedHyperParameters": cand, "CreationTime": rec.get("TrainingStartTime"),
            "TrainingStartTime": rec.get("TrainingStartTime"), "TrainingEndTime": rec.get("TrainingEndTime"),
            "ObjectiveStatus": "Succeeded" if value is not None and rec.get("TrainingJobStatus") == "Completed" else "Failed",
        }
        if value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": direction, "MetricName": metric, "Value": value}
        if rec.get("FailureReason"):
            summary["FailureReason"] = rec["FailureReason"]
        report(summary)
        return summary

    with ThreadPoolExecutor(max_workers=n_par) as pool:
        summaries = list(pool.map(one, enumerate(candidates)))
    ok = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
    failed = [s for s in summaries if s["TrainingJobStatus"] != "Completed"]
    ok.sort(key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    ranked = ok + [s for s in summaries if s not in ok]
    props = {
        "HyperParameterTuningJobName": tuning_name, "HyperParameterTuningJobArn": tuning_arn,
        "HyperParameterTuningJobConfig": cfg, "TrainingJobDefinition": tdef,
        "HyperParameterTuningStartTime": started, "HyperParameterTuningEndTime": time.time(),
        "TrainingJobStatusCounters": {"Completed": len(summaries) - len(failed), "InProgress": 0, "RetryableError": 0,
                                      "NonRetryableError": len(failed), "Stopped": 0},
        "ObjectiveStatusCounters": {"Succeeded": len(ok), "Pending": 0, "Failed": len(summaries) - len(ok)},
        "TrainingJobSummaries": ranked,
        "LocalSearch": f"seeded random search (seed {seed}), {len(candidates)} candidates, strategy {strategy!r} requested",
    }
    if not ok:
        reasons = "; ".join(sorted({s.get("FailureReason", "objective metric not found in log") for s in summaries}))[:800]
        props.update(HyperParameterTuningJobStatus="Failed",
                     FailureReason=f"No training job succeeded with objective {metric!r}: {reasons}")
        raise StepFailure(props["FailureReason"], properties=props)
    props["BestTrainingJob"] = ok[0]
    props["HyperParameterTuningJobStatus"] = "Completed"
    return props, {"TuningJob": {"Arn": tuning_arn}}
