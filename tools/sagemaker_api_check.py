"""Check a SageMaker pipeline definition's step Arguments against botocore's SageMaker service model.

Each job or model step's Arguments are the request of one SageMaker API call, made by the
pipeline service when the step runs (https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps-types.html).
This checks them as botocore would check that request, and more:

* botocore's own ``ParamValidator``: required and unknown members, types, minimum lengths/values;
* what botocore leaves to the service: ``pattern``, ``enum``, ``max`` length/value
  (local_runtime/service_constraints.py, which the offline runtime's clients apply to every request).

Values that the pipeline service resolves at run time (``{"Get": ...}``, ``{"Std:Join": ...}``,
``{"Std:JsonGet": ...}``) are checked for their type only (a Join makes a string); their
content is not known before the run. Names the service assigns to each run (the job or model
name the SDK leaves out of the definition) are filled in with a valid name.

    python -m tools.sagemaker_api_check definition.json [...]
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from local_runtime import service_constraints

# step type -> (API operation, the run-assigned name the pipeline service adds to the request)
OPERATIONS: dict[str, tuple[str, str | None]] = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "QualityCheck": ("CreateProcessingJob", "ProcessingJobName"),
    "ClarifyCheck": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "Model": ("CreateModel", "ModelName"),
    "RegisterModel": ("CreateModelPackage", None),
}
RUN_NAME = "pipelines-0123456789ab-Step-AbCdEfGhIj"  # the shape of names the pipeline service assigns (cut to the API's maximum)
RUNTIME_KEYS = ("Get", "Std:Join", "Std:JsonGet")


@lru_cache(maxsize=None)
def _service_model():
    return botocore.session.get_session().get_service_model("sagemaker")


def operation(name: str) -> OperationModel:
    return _service_model().operation_model(name)


def _is_runtime(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in RUNTIME_KEYS


def _placeholder(shape: Shape, value: dict) -> Any:
    """A value of the shape's type standing in for one resolved at run time (type-checked here)."""
    kind = next(iter(value))
    if kind == "Std:Join" and shape.type_name != "string":
        return value  # a Join makes a string: botocore reports the type mismatch
    if shape.type_name == "string":
        return "x" * max(1, shape.metadata.get("min", 1))
    if shape.type_name in ("integer", "long"):
        return int(shape.metadata.get("min", 1))
    if shape.type_name in ("float", "double"):
        return float(shape.metadata.get("min", 1))
    if shape.type_name == "boolean":
        return True
    return value


def _resolve(value: Any, shape: Shape, path: str, runtime: list[str]) -> Any:
    """``value`` with run-time expressions replaced by typed placeholders (their paths recorded)."""
    if _is_runtime(value) and not (shape.type_name == "structure" and next(iter(value)) in shape.members):
        runtime.append(path)
        return _placeholder(shape, value)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _resolve(v, shape.members[k], f"{path}.{k}", runtime) if k in shape.members else v
                for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_resolve(v, shape.member, f"{path}[{i}]", runtime) for i, v in enumerate(value)]
    if shape.type_name == "map" and isinstance(value, dict):
        return {_resolve(k, shape.key, f"{path}.<key>", runtime): _resolve(v, shape.value, f"{path}.{k}", runtime)
                for k, v in value.items()}
    return value


def check_step(step: dict) -> list[str]:
    """What the service would reject in one step's Arguments as the request of its Create* call ([] when
    valid), each as "<step>: <where in the request: operation and member path>: <why>"."""
    if step["Type"] not in OPERATIONS:
        return []
    name, run_name = OPERATIONS[step["Type"]]
    shape = operation(name).input_shape
    arguments = dict(step["Arguments"])
    if run_name and run_name not in arguments:
        arguments[run_name] = RUN_NAME[:shape.members[run_name].metadata.get("max", len(RUN_NAME))]
    runtime: list[str] = []
    request = _resolve(arguments, shape, name, runtime)
    found = [f"{name}: {line.strip()}" for line in _botocore_report(request, shape).splitlines() if line.strip()]
    found += service_constraints.violations(request, shape, name, frozenset(runtime))
    return [f"{step['Name']}: {problem}" for problem in found]


def _botocore_report(request: dict, shape: Shape) -> str:
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else ""


def steps_of(definition: dict) -> list[dict]:
    """Every step, including those inside condition branches."""
    found = []
    for step in definition["Steps"]:
        found.append(step)
        if step["Type"] == "Condition":
            found += steps_of({"Steps": step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])})
    return found


def check_definition(definition: dict) -> list[str]:
    return [problem for step in steps_of(definition) for problem in check_step(step)]


def main(argv: list[str] | None = None) -> int:
    worst = 0
    for path in argv if argv is not None else sys.argv[1:]:
        problems = check_definition(json.loads(Path(path).read_text()))
        for problem in problems:
            print(f"{path}: {problem}")
        worst = max(worst, 1 if problems else 0)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
