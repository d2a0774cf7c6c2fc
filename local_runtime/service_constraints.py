"""The request constraints an AWS service checks itself and botocore leaves to it: ``pattern``, ``enum`` and the
``max`` length, item count and value of every member, read from botocore's service model (the service's own
constraints, not ours).

botocore's client validates required members, types and minimums only, and moto checks almost nothing, so
without this a 20 MB ApprovalDescription (SageMaker: at most 1,024 characters) or an S3 ARN given as a model
package ARN would pass offline and fail in the cloud. The runtime's clients run every request through
:func:`install` (a ``before-parameter-build`` handler) and answer a violation as AWS does, with a
``ValidationException`` whose message counts and names each one; the Lambdas' calls get the same check while
they run (iam.py's handlers, installed in every botocore session); tools/sagemaker_api_check.py applies the
same checks to the requests a pipeline definition's steps make.

A pattern must match the whole value (``fullmatch``, Java's ``String.matches``). Smithy's ``pattern`` trait says
patterns are "not implicitly anchored", but SageMaker refuses ``my_job`` as a TrainingJobName although its
pattern ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`` matches the prefix ``my``: the service matches whole values, the
stricter reading, which is the one taken here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import regex
from botocore.exceptions import ClientError
from botocore.model import Shape


@lru_cache(maxsize=None)
def _pattern(java: str) -> regex.Pattern:
    """The service models' patterns are Java regular expressions: the regex module reads their Unicode classes
    (\\p{L}); Java's UTF-16 surrogate pairs become the code points they encode."""
    return regex.compile(java.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF"))


def _shown(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def violations(value: Any, shape: Shape, path: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """Every pattern, enum and max constraint ``value`` breaks, as "<path>: <why>" (paths in ``skip`` and below
    them are not checked: their values are not known yet, e.g. a pipeline's run-time expressions)."""
    out: list[str] = []
    _walk(value, shape, path, skip, out)
    return out


def _walk(value: Any, shape: Shape, path: str, skip: frozenset[str], out: list[str]) -> None:
    if path in skip:
        return
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                _walk(member, shape.members[key], f"{path}.{key}", skip, out)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"{path}: {len(value)} items, at most {meta['max']} allowed")
        for i, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{i}]", skip, out)
    elif shape.type_name == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"{path}: {len(value)} entries, at most {meta['max']} allowed")
        for key, item in value.items():
            _walk(key, shape.key, f"{path}.<key {key}>", skip, out)
            _walk(item, shape.value, f"{path}.{key}", skip, out)
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            out.append(f"{path}: {_shown(value)} is not one of {', '.join(shape.enum)}")
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"{path}: {len(value)} characters, at most {meta['max']} allowed")
        if "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
            out.append(f"{path}: {_shown(value)} does not match the pattern {meta['pattern']}")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        if "max" in meta and value > meta["max"]:
            out.append(f"{path}: {value} is above the maximum {meta['max']}")


def check_request(params: dict, model: Any, **_: Any) -> None:
    """before-parameter-build handler: refuse the request as the service would, before it is sent."""
    if model.input_shape is None:
        return
    found = violations(params, model.input_shape, model.name)
    if found:
        count = f"{len(found)} validation error{'s' if len(found) > 1 else ''} detected"
        raise ClientError({"Error": {"Code": "ValidationException", "Message": f"{count}: {'; '.join(found)}"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, model.name)


def install(client: Any) -> Any:
    """Check every request of ``client`` against its service's constraints; returns the client."""
    # first among the handlers of every operation: the service checks a request before anything else sees it
    client.meta.events.register_first("before-parameter-build.*.*", check_request)
    return client
