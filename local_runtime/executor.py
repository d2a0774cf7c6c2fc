"""Executes one pipeline execution from its definition JSON, in dependency order, independent steps at once.

Generic: it knows SageMaker's definition format and nothing of any template. Steps run through the handler
registry (steps.HANDLERS, one handler per step type); the record is persisted through the ExecutionStore after
every state change, SageMaker's status-change events go to the EventPublisher, and progress goes to the
ExecutionObserver.

As SageMaker Pipelines does, every step whose dependencies have finished starts at once, up to the execution's
ParallelismConfiguration.MaxParallelExecutionSteps (unset: no limit). A sequential runner would hide what only
concurrency shows, such as two steps writing one S3 prefix. After a step fails nothing new starts; steps already
running finish and are recorded (AWS documents no cancellation of running siblings: a started job runs on).

RetryPolicies are checked as SageMaker checks them (supported step types, exception types, ranges). None of the
failures the runtime produces is of a retryable type (Step.SERVICE_FAULT, Step.THROTTLING and the SageMaker.*
job errors come from AWS's side; a script's error is an AlgorithmError/ClientError, which SageMaker does not
retry either), so no step is retried.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from .aws import read_s3_text
from .errors import DefinitionError, StepFailure
from .expressions import Resolver, evaluate_conditions, step_references
from .sagemaker_events import execution_status_change, step_status_change
from .services import Services
from .steps import HANDLERS
from .steps.base import StepContext

CONTROL = ("Condition", "Fail")

# RetryPolicies (docs: "Retry Policy for Pipeline Steps"; bounds as the SageMaker SDK's retry.py enforces them)
RETRYABLE_STEP_TYPES = {"Processing", "Training", "Tuning", "AutoML", "Model", "RegisterModel", "Transform",
                        "NotebookJob"}
RETRY_EXCEPTION_TYPES = {"Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.JOB_INTERNAL_ERROR",
                         "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"}
MAX_RETRY_ATTEMPTS, MAX_RETRY_EXPIRE_MIN, MAX_RETRY_INTERVAL_S = 20, 14400, 43200


def check_retry_policies(step: dict) -> None:
    """A step's RetryPolicies as SageMaker validates them; DefinitionError names the step and the field."""
    policies = step.get("RetryPolicies")
    if policies is None:
        return
    name, stype = step["Name"], step.get("Type")
    if stype not in RETRYABLE_STEP_TYPES:
        raise DefinitionError(f"step {name!r}: RetryPolicies are not supported on {stype} steps "
                              f"(only {', '.join(sorted(RETRYABLE_STEP_TYPES))})")
    if not isinstance(policies, list):
        raise DefinitionError(f"step {name!r}: RetryPolicies must be a list, got {policies!r}")
    for i, pol in enumerate(policies):
        where = f"step {name!r} RetryPolicies[{i}]"
        types = pol.get("ExceptionType") if isinstance(pol, dict) else None
        if not types or not isinstance(types, list):
            raise DefinitionError(f"{where}: ExceptionType must be a non-empty list, got {types!r}")
        unknown = [t for t in types if t not in RETRY_EXCEPTION_TYPES]
        if unknown:
            raise DefinitionError(f"{where}: unknown ExceptionType {', '.join(map(repr, unknown))} "
                                  f"(known: {', '.join(sorted(RETRY_EXCEPTION_TYPES))})")
        attempts, expire = pol.get("MaxAttempts"), pol.get("ExpireAfterMin")
        if (attempts is None) == (expire is None):
            raise DefinitionError(f"{where}: exactly one of MaxAttempts and ExpireAfterMin must be given")
        for key, value, lo, hi in (("MaxAttempts", attempts, 1, MAX_RETRY_ATTEMPTS),
                                   ("ExpireAfterMin", expire, 0, MAX_RETRY_EXPIRE_MIN),
                                   ("IntervalSeconds", pol.get("IntervalSeconds", 1), 0, MAX_RETRY_INTERVAL_S),
                                   ("BackoffRate", pol.get("BackoffRate", 2.0), 0, float("inf"))):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise DefinitionError(f"{where}: {key} must be a number in [{lo}, {hi}], got {value!r}")


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
            check_retry_policies(s)
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
        self.order = topo_order(self.steps, self.deps)  # also refuses a dependency cycle
        self._lock = threading.RLock()
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

    def _max_parallel(self) -> int:
        limit = (self.rec.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
        return max(1, int(limit)) if limit else max(1, len(self.steps))

    def _settle(self, settled: set, running: set) -> list[str]:
        """Steps that may start now, in definition order; steps that never will (branch not taken, a dependency
        not succeeded, succeeded in the attempt a retry resumes) are settled on the way."""
        steps = self.rec["Steps"]
        ready, changed = [], True
        while changed:
            changed = False
            for name in self.order:
                if name in settled or name in running or name in ready or not self.deps[name] <= settled:
                    continue
                st = steps.get(name)
                if st and st.get("StepStatus") == "Succeeded":
                    settled.add(name)  # retry keeps succeeded steps and their outputs
                elif name in self.parent and not self._branch_taken(name):
                    settled.add(name)
                elif any((steps.get(d) or {}).get("StepStatus") != "Succeeded" for d in self.deps[name]):
                    settled.add(name)
                else:
                    ready.append(name)
                    continue
                changed = True
        return ready

    def _branch_taken(self, name: str) -> bool:
        cond, branch = self.parent[name]
        outcome = (self.rec["Steps"].get(cond) or {}).get("Properties", {}).get("Outcome")
        return outcome is not None and (outcome == "True") == (branch == "If")

    def run(self) -> dict:
        rec, sv = self.rec, self.services
        prev = rec.get("PipelineExecutionStatus")
        rec.update(PipelineExecutionStatus="Executing", EndTime=None, FailureReason=None)
        self._save()
        sv.events.publish(execution_status_change(rec, prev))
        sv.observer.execution_started(rec)
        failure = None
        settled: set[str] = set()
        limit = self._max_parallel()
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="step") as pool:
            running: dict = {}  # future -> step name
            while True:
                if failure is None:
                    for name in self._settle(settled, set(running.values()))[:limit - len(running)]:
                        running[pool.submit(self.run_step, self.steps[name])] = name
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: self.order.index(running[f])):
                    name = running.pop(future)
                    settled.add(name)
                    ok, reason = future.result()
                    if not ok and failure is None:
                        failure = (name, reason)
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
        """Run one step (on a worker thread of run()); the record, store and events are touched under the lock."""
        rec, sv, name, stype = self.rec, self.services, s["Name"], s["Type"]
        with self._lock:
            attempt = (rec["Steps"].get(name) or {}).get("AttemptCount", 0) + 1
            t0 = time.time()
            st = {"StepName": name, "StepType": stype, "StepDisplayName": s.get("DisplayName"),
                  "StepStatus": "Executing", "StartTime": iso(t0), "AttemptCount": attempt, "Metadata": {},
                  "Properties": {}}
            rec["Steps"][name] = st
            if name not in rec["StepOrder"]:
                rec["StepOrder"].append(name)
            self._save()
            sv.events.publish(step_status_change(rec, st, "Starting"))
            sv.observer.step_started(rec, st)
        ctx = None
        try:
            if stype == "Condition":
                holds = "True" if evaluate_conditions(s["Arguments"].get("Conditions", []), self.resolver) else "False"
                props, meta = {"Outcome": holds}, {"Condition": {"Outcome": holds}}
            elif stype == "Fail":
                msg = self.resolver.resolve(s.get("Arguments", {}).get("ErrorMessage", ""))
                raise StepFailure(str(msg), metadata={"Fail": {"ErrorMessage": str(msg)}})
            else:
                args = self.resolver.resolve(s.get("Arguments", {}))
                ctx = StepContext(sv, rec, s, args)
                result = self.handlers[stype].run(ctx)
                props, meta = result.properties, result.metadata
            outcome = {"StepStatus": "Succeeded", "Properties": props, "Metadata": meta}
        except Exception as exc:  # any error fails the step (as a SageMaker job would), never the runtime
            if isinstance(exc, (StepFailure, DefinitionError)):
                reason = getattr(exc, "reason", str(exc))
            else:
                reason = f"InternalError: {type(exc).__name__}: {exc}"
                sv.workspace.append_text("runtime-errors.log", f"{rec['PipelineExecutionId']} {name}:\n{traceback.format_exc()}\n")
            meta = dict(ctx.metadata if ctx else {}, **(getattr(exc, "metadata", None) or {}))
            outcome = {"StepStatus": "Failed", "FailureReason": reason[:1024], "Metadata": meta,
                       "Properties": getattr(exc, "properties", None) or {}}
        with self._lock:
            t1 = time.time()
            st.update(outcome, EndTime=iso(t1), DurationSeconds=round(t1 - t0, 2))
            sv.store.checkpoint()  # the step's outputs first, then the record that says it finished
            self._save()
            sv.observer.step_finished(rec, st)
            sv.events.publish(step_status_change(rec, st, "Executing"))
        return st["StepStatus"] == "Succeeded", st.get("FailureReason")
