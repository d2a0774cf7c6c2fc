"""Executes one pipeline execution from its definition JSON, step by step, in dependency order.

Generic: it knows SageMaker's definition format and nothing of any template. Steps run through the handler
registry (steps.HANDLERS, one handler per step type); the record is persisted through the ExecutionStore after
every state change, SageMaker's status-change events go to the EventPublisher, and progress goes to the
ExecutionObserver.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import traceback

from .aws import read_s3_text
from .errors import DefinitionError, StepFailure
from .expressions import Resolver, evaluate_conditions, step_references
from .sagemaker_events import execution_status_change, step_status_change
from .services import Services
from .steps import HANDLERS
from .steps.base import StepContext

CONTROL = ("Condition", "Fail")


def iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z" if t else None


def flatten(definition: dict, handlers: dict | None = None) -> tuple[dict, dict]:
    """All steps by name (condition branches included) and, for branch steps, (condition, 'If'|'Else')."""
    handlers = HANDLERS if handlers is None else handlers
    steps, parent = {}, {}

    def add(lst, par):
        for s in lst:
            name = s.get("Name")
            if not name:
                raise DefinitionError(f"step without Name: {json.dumps(s)[:200]}")
            if name in steps:
                raise DefinitionError(f"duplicate step name {name!r}")
            stype = s.get("Type")
            if stype not in handlers and stype not in CONTROL:
                raise DefinitionError(f"step {name!r}: unsupported step type {stype!r} "
                                      f"(supported: {', '.join(sorted(set(handlers) | set(CONTROL)))})")
            steps[name] = s
            if par:
                parent[name] = par
            if stype == "Condition":
                add(s.get("Arguments", {}).get("IfSteps", []), (name, "If"))
                add(s.get("Arguments", {}).get("ElseSteps", []), (name, "Else"))

    add(definition.get("Steps", []), None)
    return steps, parent


def dependencies(steps: dict, parent: dict) -> dict[str, set]:
    deps = {}
    for name, s in steps.items():
        args = dict(s.get("Arguments", {}))
        if s.get("Type") == "Condition":
            args = {"Conditions": args.get("Conditions", [])}
        d = set(s.get("DependsOn", []) or []) | step_references(args)
        if name in parent:
            d.add(parent[name][0])
        d.discard(name)
        for x in d:
            if x not in steps:
                raise DefinitionError(f"step {name!r} depends on unknown step {x!r}")
        deps[name] = d
    return deps


def topo_order(steps: dict, deps: dict) -> list[str]:
    order, done, names = [], set(), list(steps)
    while len(order) < len(names):
        ready = [n for n in names if n not in done and deps[n] <= done]
        if not ready:
            cyc = sorted(n for n in names if n not in done)
            raise DefinitionError(f"dependency cycle among steps: {', '.join(cyc)}")
        order.append(ready[0])  # definition order among ready steps
        done.add(ready[0])
    return order


def parse_parameters(definition: dict, overrides: dict) -> dict:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DefinitionError(f"unknown pipeline parameter(s) {', '.join(unknown)} (declared: {', '.join(sorted(declared)) or 'none'})")
    out = {}
    for name, p in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "DefaultValue" in p:
            raw = p["DefaultValue"]
        else:
            raise DefinitionError(f"pipeline parameter {name!r} has no default and no value was given")
        ptype = p.get("Type", "String")
        try:
            if ptype == "Integer":
                out[name] = int(raw)
            elif ptype == "Float":
                out[name] = float(raw)
            elif ptype == "Boolean":
                out[name] = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            else:
                out[name] = str(raw) if not isinstance(raw, (dict, list)) else raw
        except (TypeError, ValueError) as exc:
            raise DefinitionError(f"pipeline parameter {name!r}: {raw!r} is not a valid {ptype}") from exc
    return out


class Executor:
    def __init__(self, services: Services, record: dict, definition: dict, handlers: dict | None = None):
        self.services, self.rec, self.definition = services, record, definition
        self.handlers = HANDLERS if handlers is None else handlers
        self.steps, self.parent = flatten(definition, self.handlers)
        self.deps = dependencies(self.steps, self.parent)
        self.order = topo_order(self.steps, self.deps)
        self.resolver = Resolver(record["Parameters"], self._exec_vars(), self._step_props, self._property_file)

    def _exec_vars(self) -> dict:
        r = self.rec
        return {"PipelineExecutionId": r["PipelineExecutionId"], "PipelineExecutionArn": r["PipelineExecutionArn"],
                "PipelineName": r["PipelineName"], "PipelineArn": r["PipelineArn"],
                "StartDateTime": r["StartTime"], "CurrentDateTime": iso(time.time())}

    def _step_props(self, name: str) -> dict:
        st = self.rec["Steps"].get(name)
        if not st or st.get("StepStatus") != "Succeeded":
            raise StepFailure(f"step {name!r} has no properties yet (status {st.get('StepStatus') if st else 'NotStarted'})")
        return st.get("Properties", {})

    def _property_file(self, step: str, name: str):
        if step == "":  # JsonGet with S3Uri
            return json.loads(read_s3_text(self.services.aws.s3, name))
        sdef = self.steps.get(step)
        if sdef is None:
            raise DefinitionError(f"JsonGet: unknown step {step!r}")
        pf = next((p for p in sdef.get("PropertyFiles", []) if p.get("PropertyFileName") == name), None)
        if pf is None:
            raise DefinitionError(f"JsonGet: step {step!r} declares no property file {name!r}")
        props = self._step_props(step)
        outs = (props.get("ProcessingOutputConfig") or {}).get("Outputs", [])
        out = next((o for o in outs if o.get("OutputName") == pf["OutputName"]), None)
        if out is None:
            raise DefinitionError(f"property file {name!r}: step {step!r} has no output {pf['OutputName']!r}")
        uri = out["S3Output"]["S3Uri"].rstrip("/") + "/" + pf["FilePath"]
        try:
            return json.loads(read_s3_text(self.services.aws.s3, uri))
        except json.JSONDecodeError as exc:
            raise StepFailure(f"property file {name!r} at {uri} is not valid JSON: {exc}") from exc
        except Exception as exc:
            raise StepFailure(f"property file {name!r}: cannot read {uri}: {exc}") from exc

    # ------------------------------------------------------------------ running
    def _save(self) -> None:
        self.services.store.save(self.rec)

    def run(self) -> dict:
        rec, sv = self.rec, self.services
        prev = rec.get("PipelineExecutionStatus")
        rec.update(PipelineExecutionStatus="Executing", EndTime=None, FailureReason=None)
        self._save()
        sv.events.publish(execution_status_change(rec, prev))
        sv.observer.execution_started(rec)
        failure = None
        for name in self.order:
            s = self.steps[name]
            st = rec["Steps"].get(name)
            if st and st.get("StepStatus") == "Succeeded":
                continue  # retry keeps succeeded steps and their outputs
            if name in self.parent:
                cond, branch = self.parent[name]
                outcome = (rec["Steps"].get(cond) or {}).get("Properties", {}).get("Outcome")
                if outcome is None or (outcome == "True") != (branch == "If"):
                    continue
            if any((rec["Steps"].get(d) or {}).get("StepStatus") != "Succeeded" for d in self.deps[name]):
                continue
            ok, reason = self.run_step(s)
            if not ok:
                failure = (name, reason)
                break
        rec["EndTime"] = iso(time.time())
        prev = rec["PipelineExecutionStatus"]
        if failure:
            fail_step = self.steps[failure[0]].get("Type") == "Fail"
            rec.update(PipelineExecutionStatus="Failed",
                       FailureReason=failure[1] if fail_step else "Step failure: One or multiple steps failed.",
                       FailedStep=failure[0])
        else:
            rec["PipelineExecutionStatus"] = "Succeeded"
        rec["DurationSeconds"] = round(time.time() - rec["_t0"], 2)
        self._save()
        sv.events.publish(execution_status_change(rec, prev))
        sv.observer.execution_finished(rec)
        return rec

    def run_step(self, s: dict) -> tuple[bool, str | None]:
        rec, sv, name, stype = self.rec, self.services, s["Name"], s["Type"]
        attempt = (rec["Steps"].get(name) or {}).get("AttemptCount", 0) + 1
        t0 = time.time()
        st = {"StepName": name, "StepType": stype, "StepDisplayName": s.get("DisplayName"), "StepStatus": "Executing",
              "StartTime": iso(t0), "AttemptCount": attempt, "Metadata": {}, "Properties": {}}
        rec["Steps"][name] = st
        if name not in rec["StepOrder"]:
            rec["StepOrder"].append(name)
        self._save()
        sv.events.publish(step_status_change(rec, st, "Starting"))
        sv.observer.step_started(rec, st)
        ctx = None
        try:
            if stype == "Condition":
                outcome = evaluate_conditions(s["Arguments"].get("Conditions", []), self.resolver)
                props, meta = {"Outcome": "True" if outcome else "False"}, {"Condition": {"Outcome": "True" if outcome else "False"}}
            elif stype == "Fail":
                msg = self.resolver.resolve(s.get("Arguments", {}).get("ErrorMessage", ""))
                raise StepFailure(str(msg), metadata={"Fail": {"ErrorMessage": str(msg)}})
            else:
                args = self.resolver.resolve(s.get("Arguments", {}))
                ctx = StepContext(sv, rec, s, args)
                result = self.handlers[stype].run(ctx)
                props, meta = result.properties, result.metadata
            st.update(StepStatus="Succeeded", Properties=props, Metadata=meta)
        except Exception as exc:  # any error fails the step (as a SageMaker job would), never the runtime
            if isinstance(exc, (StepFailure, DefinitionError)):
                reason = getattr(exc, "reason", str(exc))
            else:
                reason = f"InternalError: {type(exc).__name__}: {exc}"
                sv.workspace.append_text("runtime-errors.log", f"{rec['PipelineExecutionId']} {name}:\n{traceback.format_exc()}\n")
            meta = dict(ctx.metadata if ctx else {}, **(getattr(exc, "metadata", None) or {}))
            st.update(StepStatus="Failed", FailureReason=reason[:1024], Metadata=meta,
                      Properties=getattr(exc, "properties", None) or {})
        t1 = time.time()
        st.update(EndTime=iso(t1), DurationSeconds=round(t1 - t0, 2))
        sv.store.checkpoint()  # the step's outputs first, then the record that says it finished
        self._save()
        sv.observer.step_finished(rec, st)
        sv.events.publish(step_status_change(rec, st, "Executing"))
        return st["StepStatus"] == "Succeeded", st.get("FailureReason")
