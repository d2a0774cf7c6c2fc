"""Lambda execution environments in the offline runtime (local_runtime/lambdas.py).

"Lambda execution environment lifecycle" (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):
the Init phase runs the function's static code once per execution environment; after an invocation the
environment may be reused for the next one (module state persists), and each function has environments of
its own. A new deployment of the code gets new environments.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aws_samples import doc_pipeline_status

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rt(tmp_path):
    from local_runtime.runtime import Runtime

    with Runtime(repo_root=ROOT, workspace=tmp_path / "ws", quiet=True, persist=False) as runtime:
        yield runtime


def _notification(rt):
    """The notification function (subscribed to pipeline status changes), with its code in a copy we may edit."""
    (arn, fn), = [(arn, fn) for arn, fn in rt.lambdas.functions.items() if fn["handler"].startswith("notification.")]
    return arn, fn


def _invoke(rt, arn, pipeline_status_event):
    rt.lambdas.invoke(arn, pipeline_status_event, "test-rule")
    assert not rt.lambdas.errors, rt.lambdas.errors


def test_a_function_keeps_its_environment_between_invocations_and_a_new_deployment_starts_a_new_one(rt, tmp_path):
    arn, fn = _notification(rt)
    code = tmp_path / "code"
    shutil.copytree(fn["code_dir"], code)
    fn["code_dir"] = code
    event = doc_pipeline_status(rt.tf.pipeline_names["training"], "Succeeded")

    _invoke(rt, arn, event)
    first = rt.lambdas._environments[arn][1]
    first.warm_marker = "set by an earlier invocation"  # module state, as a cached client would be
    _invoke(rt, arn, event)
    assert rt.lambdas._environments[arn][1] is first  # warm start: the same module, its state kept

    handler = code / "notification.py"
    handler.write_text(handler.read_text() + "\n# a new deployment\n")
    _invoke(rt, arn, event)
    fresh = rt.lambdas._environments[arn][1]
    assert fresh is not first and not hasattr(fresh, "warm_marker")  # cold start on the new code


def _notification_and_its_twin_invoked(rt):
    """The notification function and a second function built from the same code, each invoked once."""
    arn, fn = _notification(rt)
    twin = "arn:aws:lambda:us-east-1:123456789012:function:twin-of-notification"
    rt.lambdas.functions[twin] = dict(fn, name="twin-of-notification")
    event = doc_pipeline_status(rt.tf.pipeline_names["training"], "Succeeded")
    _invoke(rt, arn, event)
    _invoke(rt, twin, event)
    return arn, twin, event


def test_functions_never_share_an_environment(rt):
    arn, twin, _ = _notification_and_its_twin_invoked(rt)
    assert rt.lambdas._environments[arn][1] is not rt.lambdas._environments[twin][1]


def test_modules_a_handler_imports_from_its_code_are_its_own(rt):
    """Functions built from one code dir (deploy_trigger and notification both import the idempotency module
    beside them) each keep their own copy of it: module-level clients and caches are per environment on AWS.
    None of the copies stays in sys.modules."""
    import sys

    arn, twin, event = _notification_and_its_twin_invoked(rt)
    mine, theirs = rt.lambdas._own_modules[arn]["idempotency"], rt.lambdas._own_modules[twin]["idempotency"]
    assert mine is not theirs
    assert rt.lambdas._environments[arn][1].once.__module__ == "idempotency"
    assert rt.lambdas._environments[arn][1].once is mine.once  # the handler uses its own environment's copy
    assert "idempotency" not in sys.modules or sys.modules["idempotency"] not in (mine, theirs)
    mine.marker = "state of the first function's environment"
    _invoke(rt, arn, event)
    assert rt.lambdas._own_modules[arn]["idempotency"] is mine  # warm: kept
    assert not hasattr(rt.lambdas._own_modules[twin]["idempotency"], "marker")
