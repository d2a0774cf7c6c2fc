"""The EventBridge events SageMaker emits, shaped as AWS documents them
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html):
pipeline execution status change, pipeline step status change, model package state change."""
from __future__ import annotations

import json

from .events import envelope


def _lower_first(key: str) -> str:
    return key[0].lower() + key[1:]


def execution_status_change(rec: dict, previous: str | None) -> dict:
    detail = {"pipelineExecutionDisplayName": rec["PipelineExecutionDisplayName"],
              "currentPipelineExecutionStatus": rec["PipelineExecutionStatus"],
              "previousPipelineExecutionStatus": previous or "",
              "executionStartTime": rec["StartTime"], "executionEndTime": rec.get("EndTime") or "",
              "pipelineExecutionDescription": rec.get("PipelineExecutionDescription", ""),
              "pipelineArn": rec["PipelineArn"], "pipelineExecutionArn": rec["PipelineExecutionArn"]}
    return envelope("SageMaker Model Building Pipeline Execution Status Change", "aws.sagemaker", detail,
                    [rec["PipelineArn"], rec["PipelineExecutionArn"]])


def step_status_change(rec: dict, st: dict, previous: str) -> dict:
    meta = {}
    for k, v in (st.get("Metadata") or {}).items():
        meta[_lower_first(k)] = {_lower_first(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v
    detail = {"metadata": meta, "stepStartTime": st.get("StartTime"), "stepEndTime": st.get("EndTime") or "",
              "stepName": st["StepName"], "stepType": st["StepType"], "previousStepStatus": previous,
              "currentStepStatus": st["StepStatus"], "pipelineArn": rec["PipelineArn"],
              "pipelineExecutionArn": rec["PipelineExecutionArn"]}
    if st.get("StepStatus") == "Failed":
        detail["failureReason"] = st.get("FailureReason", "")
    return envelope("SageMaker Model Building Pipeline Execution Step Status Change", "aws.sagemaker", detail,
                    [rec["PipelineArn"], rec["PipelineExecutionArn"]])


def model_package_state_change(desc: dict) -> dict:
    detail = {k: v for k, v in desc.items() if k != "ResponseMetadata"}
    for k, v in list(detail.items()):
        if hasattr(v, "isoformat"):
            detail[k] = v.astimezone().strftime("%Y-%m-%dT%H:%M:%SZ") if v.tzinfo else v.isoformat() + "Z"
    detail = json.loads(json.dumps(detail, default=str))
    return envelope("SageMaker Model Package State Change", "aws.sagemaker", detail, [desc["ModelPackageArn"]])
