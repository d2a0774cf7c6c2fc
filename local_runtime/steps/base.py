"""The step-handler interface (as kfp.local's task handlers): one handler per SageMaker step type.

A handler gets a ``StepContext`` (the resolved Arguments plus narrow services) and returns a ``StepResult``
(the describe-shaped properties later steps read with ``Steps.<name>...``, and the step metadata that
ListPipelineExecutionSteps shows). It raises ``StepFailure`` to fail the step.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from ..services import Services


@dataclass
class StepResult:
    properties: dict
    metadata: dict


@dataclass
class StepContext:
    services: Services
    execution: dict        # execution record
    step: dict             # step definition
    args: dict             # resolved Arguments
    metadata: dict = field(default_factory=dict)  # filled early so failure events carry the job ARN

    @property
    def name(self) -> str:
        return self.step["Name"]

    # The services a handler uses most, by their short names.
    aws = property(lambda self: self.services.aws)
    workspace = property(lambda self: self.services.workspace)
    jobs = property(lambda self: self.services.jobs)
    events = property(lambda self: self.services.events)

    def job_name(self, max_len: int = 63) -> str:
        """pipelines-<execution id>-<step>-<random> like SageMaker, cut to the API's name limit."""
        step = re.sub(r"[^a-zA-Z0-9-]", "-", self.name)
        suffix = secrets.token_hex(3)
        base = f"pipelines-{self.execution['PipelineExecutionId']}-{step}"
        return f"{base[: max_len - len(suffix) - 1]}-{suffix}".lower()


class StepHandler(Protocol):
    step_types: tuple[str, ...]   # the definition's "Type" values this handler runs

    def run(self, ctx: StepContext) -> StepResult: ...
