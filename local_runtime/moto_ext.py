"""SageMaker APIs moto 5.2.5 lacks that the Lambdas call, answered from the runtime's execution records.

ListPipelineExecutionSteps (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListPipelineExecutionSteps.html):
the notification Lambda's digest reads every step's status, failure reason and job metadata from it, as
in the cloud. The runtime executes the steps itself, so moto has no step records; install() gives moto's
SageMaker responder a provider that reads them (embedded moto and in-process moto servers alike).
Shape: PipelineExecutionSteps[] of StepName, StepDisplayName, StartTime, EndTime, StepStatus,
FailureReason, AttemptCount, Metadata; SortOrder Descending (the API default) or Ascending.
An unknown execution ARN answers ResourceNotFound, as SageMaker does.
"""
from __future__ import annotations

import datetime as dt
import json

_provider = None  # callable(execution_arn) -> execution record or None


def _epoch(value):
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _steps_response(rec: dict, ascending: bool) -> list[dict]:
    out = []
    for name in rec.get("StepOrder", []):
        st = rec["Steps"][name]
        item = {"StepName": name, "StepStatus": st.get("StepStatus"), "AttemptCount": st.get("AttemptCount", 1),
                "Metadata": {k: v for k, v in (st.get("Metadata") or {}).items() if isinstance(v, dict)}}
        for key, src in (("StartTime", "StartTime"), ("EndTime", "EndTime")):
            if st.get(src):
                item[key] = _epoch(st[src])
        if st.get("StepDisplayName"):
            item["StepDisplayName"] = st["StepDisplayName"]
        if st.get("FailureReason"):
            item["FailureReason"] = st["FailureReason"]
        out.append(item)
    return out if ascending else out[::-1]


def list_pipeline_execution_steps(self):
    arn = self._get_param("PipelineExecutionArn")
    rec = _provider(arn) if _provider else None
    if rec is None:
        body = {"__type": "ResourceNotFound", "message": f"Pipeline execution {arn} does not exist."}
        return 400, {"status": 400, "x-amzn-ErrorType": "ResourceNotFound"}, json.dumps(body)
    ascending = self._get_param("SortOrder", "Descending") == "Ascending"
    return json.dumps({"PipelineExecutionSteps": _steps_response(rec, ascending)})


def install(provider) -> None:
    """Answer ListPipelineExecutionSteps from provider(execution_arn) -> execution record | None."""
    global _provider
    from moto.sagemaker.responses import SageMakerResponse
    _provider = provider
    if not hasattr(SageMakerResponse, "list_pipeline_execution_steps"):
        SageMakerResponse.list_pipeline_execution_steps = list_pipeline_execution_steps
