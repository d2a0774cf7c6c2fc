"""Pipeline definition expressions: {"Get": ...}, Std:Join, Std:JsonGet, conditions.

The resolver is pure: it is given parameter values, execution variables, step properties and a reader for
property files, so it is unit-testable without AWS.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from .errors import DefinitionError, StepFailure

_TOKEN = re.compile(r"""\.?([A-Za-z_][A-Za-z0-9_:\-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


def parse_path(path: str) -> list:
    """"Outputs['train'].S3Output.S3Uri" -> ["Outputs", "train", "S3Output", "S3Uri"]; "X[0]" -> ["X", 0]."""
    tokens, pos = [], 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise DefinitionError(f"cannot parse property path {path!r} at position {pos}")
        name, idx, key1, key2 = m.groups()
        tokens.append(int(idx) if idx is not None else (name if name is not None else (key1 if key1 is not None else key2)))
        pos = m.end()
    return tokens


def walk(obj: Any, tokens: list, what: str) -> Any:
    """Follow tokens through describe-shaped dicts. Lists of named items (Outputs, ProcessingInputs...) are
    indexed by their name key when the token is a string, as the SDK's PropertiesMap does."""
    cur = obj
    for i, tok in enumerate(tokens):
        if isinstance(tok, int):
            if not isinstance(cur, list) or tok >= len(cur):
                raise StepFailure(f"property {what}: index [{tok}] out of range (have {len(cur) if isinstance(cur, list) else 'no list'})")
            cur = cur[tok]
        elif isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            match = [x for x in cur if isinstance(x, dict) and tok in (x.get("OutputName"), x.get("InputName"),
                                                                        x.get("ChannelName"), x.get("Name"),
                                                                        x.get("MetricName"))]
            if not match:
                raise StepFailure(f"property {what}: no item named {tok!r}")
            cur = match[0]
        else:
            done = ".".join(str(t) for t in tokens[:i]) or "<root>"
            raise StepFailure(f"property {what}: {tok!r} not found after {done}")
    return cur


def json_path_get(doc: Any, path: str, what: str) -> Any:
    """Std:JsonGet path syntax: dotted keys with [n] indexes ("regression_metrics.mse.value", "a[0].b")."""
    return walk(doc, parse_path(path), what)


class Resolver:
    def __init__(self, parameters: dict, execution_vars: dict, step_properties: Callable[[str], dict],
                 property_file: Callable[[str, str], Any]):
        self.parameters = parameters
        self.execution_vars = execution_vars
        self.step_properties = step_properties  # step name -> describe-shaped dict (raises if not available)
        self.property_file = property_file      # (step name, property file name) -> parsed JSON

    def get(self, ref: str) -> Any:
        if not isinstance(ref, str):
            raise DefinitionError(f"'Get' expects a string reference, got {ref!r}")
        head, _, rest = ref.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise DefinitionError(f"reference {ref!r}: no pipeline parameter named {rest!r}")
            return self.parameters[rest]
        if head == "Execution":
            if rest not in self.execution_vars:
                raise DefinitionError(f"reference {ref!r}: unsupported execution variable {rest!r} "
                                      f"(supported: {', '.join(sorted(self.execution_vars))})")
            return self.execution_vars[rest]
        if head == "Steps":
            tokens = parse_path(rest)
            if not tokens or not isinstance(tokens[0], str):
                raise DefinitionError(f"reference {ref!r}: missing step name")
            step = tokens[0]
            if len(tokens) >= 3 and tokens[1] == "PropertyFiles":
                return {"__property_file__": (step, tokens[2])}
            return walk(self.step_properties(step), tokens[1:], ref)
        raise DefinitionError(f"reference {ref!r}: unsupported namespace {head!r} (Parameters, Execution, Steps)")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Get":
                return self.get(arg)
            if key == "Std:Join":
                on = self.resolve(arg.get("On", ""))
                return str(on).join(_to_str(self.resolve(v)) for v in arg.get("Values", []))
            if key == "Std:JsonGet":
                return self.json_get(arg)
            if key.startswith("Std:") or key.startswith("Get:"):
                raise DefinitionError(f"unsupported pipeline function {key!r} (supported: Get, Std:Join, Std:JsonGet)")
        return {k: self.resolve(v) for k, v in value.items()}

    def json_get(self, arg: dict) -> Any:
        path = self.resolve(arg.get("Path"))
        if "PropertyFile" in arg:
            pf = self.resolve(arg["PropertyFile"])
            if not (isinstance(pf, dict) and "__property_file__" in pf):
                raise DefinitionError(f"Std:JsonGet PropertyFile must reference Steps.<step>.PropertyFiles.<name>, got {arg['PropertyFile']!r}")
            step, name = pf["__property_file__"]
            doc = self.property_file(step, name)
            return json_path_get(doc, path, f"JsonGet({step}.{name}, {path})")
        if "S3Uri" in arg:
            uri = self.resolve(arg["S3Uri"])
            doc = self.property_file("", uri)
            return json_path_get(doc, path, f"JsonGet({uri}, {path})")
        raise DefinitionError(f"Std:JsonGet needs PropertyFile or S3Uri: {arg!r}")


def _to_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def step_references(value: Any) -> set[str]:
    """Names of steps a definition fragment reads from (data dependencies)."""
    out: set[str] = set()
    if isinstance(value, list):
        for v in value:
            out |= step_references(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Get" and isinstance(v, str) and v.startswith("Steps."):
                toks = parse_path(v[len("Steps."):])
                if toks and isinstance(toks[0], str):
                    out.add(toks[0])
            else:
                out |= step_references(v)
    return out


# ---------------------------------------------------------------- conditions
def _num(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _compare(a, b):
    a, b = _num(a), _num(b)
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        a, b = str(a), str(b)
    return a, b


def _equals(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return _bool(a) == _bool(b)
    a, b = _compare(a, b)
    return a == b


def _bool(v):
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return bool(v)


_COMPARISONS = {
    "Equals": _equals,
    "GreaterThan": lambda a, b: (lambda x, y: x > y)(*_compare(a, b)),
    "GreaterThanOrEqualTo": lambda a, b: (lambda x, y: x >= y)(*_compare(a, b)),
    "LessThan": lambda a, b: (lambda x, y: x < y)(*_compare(a, b)),
    "LessThanOrEqualTo": lambda a, b: (lambda x, y: x <= y)(*_compare(a, b)),
}


def evaluate_condition(cond: dict, resolver: Resolver) -> bool:
    ctype = cond.get("Type")
    if ctype in _COMPARISONS:
        left, right = resolver.resolve(cond["LeftValue"]), resolver.resolve(cond["RightValue"])
        try:
            return bool(_COMPARISONS[ctype](left, right))
        except TypeError as exc:
            raise StepFailure(f"condition {ctype}({left!r}, {right!r}) cannot be evaluated: {exc}") from exc
    if ctype == "In":
        q = resolver.resolve(cond["QueryValue"])
        return any(_equals(q, resolver.resolve(v)) for v in cond["Values"])
    if ctype == "Not":
        return not evaluate_condition(cond["Condition"], resolver)
    if ctype == "Or":
        return any(evaluate_condition(c, resolver) for c in cond["Conditions"])
    raise DefinitionError(f"unsupported condition type {ctype!r}")


def evaluate_conditions(conditions: list, resolver: Resolver) -> bool:
    """A ConditionStep's list is an implicit AND."""
    return all(evaluate_condition(c, resolver) for c in conditions)
