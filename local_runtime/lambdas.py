"""Lambda targets run in-process: module/handler from the function's handler attribute, code from the
archive_file source_dir the function is built from (else [tool.sm-local] lambda_code_dir), environment from
the resolved environment block, remaining time from its timeout.

Execution environments are reused as Lambda reuses them: the first invocation of a function imports its
module (the cold start: module-level code runs with the function's environment); later invocations of that
function call the same module's handler (warm starts), so module-level clients and caches persist, as AWS
documents ("Lambda execution environment lifecycle", https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html:
"the execution environment ... is reused for the next invocation"; code must not rely on it, and a new
environment may come at any time). Each function has its own environment (two functions sharing a file never
share module state); a changed code file starts a new one, as a deployment would. That includes the modules a
handler imports from its own code (``from idempotency import once``): each function keeps its own copies, put
in sys.modules only while it runs. Libraries outside the code dir (boto3, Powertools) stay shared by the one
Python process, where AWS gives every environment its own; the functions' code must not rely on either.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import iam
from .errors import TerraformError


class _Context:
    def __init__(self, name, arn, timeout_s: float, memory_mb: int):
        self.function_name = name
        self.invoked_function_arn = arn
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = memory_mb
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self):
        """Counts down from the function's timeout, as in Lambda (idempotency leases depend on it)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Capture(logging.Handler):
    """The invocation's log lines, kept with its record (CloudWatch Logs stand-in)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


class Lambdas:
    def __init__(self, rt, tf):
        self.rt = rt
        self.functions = {}
        for res, body in tf.resources.get("aws_lambda_function", {}).items():
            if not tf.enabled("aws_lambda_function", res):
                continue
            where = f"{body['__file__']}: aws_lambda_function.{res}"
            name = tf.attr("aws_lambda_function", res, "function_name")
            handler = tf.attr("aws_lambda_function", res, "handler")
            if not handler or "." not in handler:
                raise TerraformError(f"{where}: handler must be <module>.<function>, got {handler!r}")
            env_block = body.get("environment")
            env = {}
            if env_block:
                env = tf.eval(env_block[0] if isinstance(env_block, list) else env_block, where).get("variables") or {}
            arn = tf.resource_attr("aws_lambda_function", res, ["arn"], where)
            # Lambda's defaults when Terraform sets none: 3 s, 128 MB
            timeout = float(tf.attr("aws_lambda_function", res, "timeout", 3) or 3)
            memory = int(tf.attr("aws_lambda_function", res, "memory_size", 128) or 128)
            dlq = tf.eval((body.get("dead_letter_config") or {}).get("target_arn"), where)
            self.functions[arn] = {"name": name, "handler": handler, "env": {k: str(v) for k, v in env.items()},
                                   "code_dir": self._code_dir(tf, body, where), "where": where,
                                   "timeout": timeout, "memory": memory, "dlq": dlq}
        self.errors: list[dict] = []
        self._environments: dict[str, tuple[tuple, object]] = {}  # function ARN -> (code version, module)
        self._own_modules: dict[str, dict] = {}  # function ARN -> the modules it imported from its code dir

    @contextmanager
    def _environment_of(self, arn: str, fn: dict):
        """While a function runs: its code dir first on sys.path, and sys.modules holding its own copies of the
        modules from that dir (anyone else's hidden, then put back)."""
        code_dir = str(fn["code_dir"])
        prefix = code_dir.rstrip(os.sep) + os.sep

        def from_code_dir() -> list[str]:
            return [name for name, m in list(sys.modules.items()) if (getattr(m, "__file__", None) or "").startswith(prefix)]

        hidden = {name: sys.modules.pop(name) for name in from_code_dir()}
        own = self._own_modules.setdefault(arn, {})
        sys.modules.update(own)
        sys.path.insert(0, code_dir)
        try:
            yield
        finally:
            sys.path.remove(code_dir)
            for name in from_code_dir():
                own[name] = sys.modules.pop(name)
            sys.modules.update(hidden)

    def _module(self, arn: str, fn: dict, module_name: str, path: Path):
        """The function's warm module, or a cold start: import it (fresh module object) with its code dir on
        sys.path. The code version is the (mtime, size) of every .py file of the code dir."""
        version = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in fn["code_dir"].rglob("*.py")))
        warm = self._environments.get(arn)
        if warm is not None and warm[0] == version:
            return warm[1]
        spec = importlib.util.spec_from_file_location(f"_sm_local_lambda_{module_name}", path)
        mod = importlib.util.module_from_spec(spec)
        self._own_modules[arn] = {}  # a cold start imports its code afresh
        with self._environment_of(arn, fn):
            spec.loader.exec_module(mod)
        self._environments[arn] = (version, mod)
        return mod

    def _executions(self) -> dict:
        """{execution ARN: pipeline name} in the emulator (AWS_ENDPOINT_URL mode only)."""
        sm, found = self.rt.aws.sm, {}
        for p in sm.list_pipelines().get("PipelineSummaries", []):
            for e in sm.list_pipeline_executions(PipelineName=p["PipelineName"]).get("PipelineExecutionSummaries", []):
                found[e["PipelineExecutionArn"]] = p["PipelineName"]
        return found

    def _run_started_elsewhere(self, before: dict) -> None:
        """With a moto_server (AWS_ENDPOINT_URL) emulation.py's start listener is not installed: executions the
        handler started there are found by listing, and run like API starts. (moto_server does not honour
        ClientRequestToken; the embedded runtime does.)"""
        sm = self.rt.aws.sm
        for arn, pipeline in self._executions().items():
            if arn not in before:
                params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn).get("PipelineParameters", [])
                self.rt._api_start(pipeline, arn, {p["Name"]: p["Value"] for p in params})

    def _code_dir(self, tf, body, where) -> Path | None:
        default = self.rt.config.lambda_code_dir
        for dres, dbody in tf.data.get("archive_file", {}).items():
            src = dbody.get("source_dir")
            if src:
                try:
                    p = tf.eval(src, where).replace("${path.module}", ".").replace("path.module", ".")
                except TerraformError:
                    continue
                cand = (Path(self.rt.repo_root) / p).resolve()
                if cand.is_dir():
                    return cand
        return default

    def invoke(self, arn: str, payload, rule_name: str) -> None:
        fn = self.functions.get(arn)
        if fn is None:
            raise TerraformError(f"rule {rule_name}: target {arn} is not an aws_lambda_function in the Terraform files")
        module_name, func_name = fn["handler"].rsplit(".", 1)
        if fn["code_dir"] is None:
            raise TerraformError(f"{fn['where']}: no archive_file source_dir and no lambda_code_dir in [tool.sm-local]: "
                                 "cannot find the function's code")
        path = fn["code_dir"] / (module_name.replace(".", "/") + ".py")
        saved = {k: os.environ.get(k) for k in fn["env"]}
        os.environ.update(fn["env"])
        record = {"function": fn["name"], "rule": rule_name}
        capture = _Capture()
        logging.getLogger().addHandler(capture)
        # StartPipelineExecution calls the handler makes are runs the runtime starts (emulation.py): they
        # record which function, invoked by which rule, started them.
        self.rt.api_caller = {"function": fn["name"], "rule": rule_name}
        before = None if self.rt.aws.embedded else self._executions()
        try:
            if not path.exists():
                raise FileNotFoundError(f"{fn['where']}: handler module {path} does not exist")
            # init and handler run as the function's role: each AWS call is checked against its Terraform policies
            with iam.enforce(self.rt.tf, arn, fn["name"], fn["env"]):
                mod = self._module(arn, fn, module_name, path)
                handler = getattr(mod, func_name, None)
                if handler is None:
                    raise AttributeError(f"{path} has no function {func_name}")
                with self._environment_of(arn, fn):  # the handler's own lazy imports resolve in its environment
                    result = handler(payload, _Context(fn["name"], arn, fn["timeout"], fn["memory"]))
            record["result"] = result
            if before is not None:
                self._run_started_elsewhere(before)
        except Exception as exc:  # a failing Lambda is reported, and the demo counts it as a failure
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()
            self.errors.append(record)
            self.rt.say(f"  !! lambda {fn['name']} failed (rule {rule_name}): {record['error']}")
            if fn.get("dlq"):
                # Asynchronous invocation (EventBridge): after Lambda's retries the event goes to the
                # function's dead-letter queue (lambda.tf dead_letter_config). A deterministic error fails
                # every retry alike, so the letter is written after this one attempt.
                letter = {"rule": rule_name, "function": fn["name"], "error": record["error"], "dlq": fn["dlq"],
                          "payload": payload}
                self.rt.bus.dead_letters.append(letter)
                self.rt.workspace.append_jsonl("dead_letters.jsonl", letter)
        finally:
            self.rt.api_caller = None
            logging.getLogger().removeHandler(capture)
            record["logs"] = capture.lines
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.rt.workspace.append_jsonl("lambda_invocations.jsonl", dict(record, payload=payload))
        self.rt.notifications.drain()
