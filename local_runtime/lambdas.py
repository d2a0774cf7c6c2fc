"""Lambda targets run in-process: module/handler from lambda.tf's handler attribute, code from
code/lambda_function/ (or the archive_file source_dir the function is built from), environment from the
resolved environment block."""
from __future__ import annotations

import importlib.util
import json
import logging
import threading
import os
import sys
import traceback
import uuid
from pathlib import Path

from .errors import TerraformError


class _Context:
    def __init__(self, name, arn):
        self.function_name = name
        self.invoked_function_arn = arn
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 128
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self):
        return 300000


class _Capture(logging.Handler):
    """The invocation's log lines, kept with its record (CloudWatch Logs stand-in)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


class _SageMakerStarts:
    """StartPipelineExecution calls made by Lambda code, served as SageMaker serves them.

    The call is answered here (a botocore before-call handler on the session the Lambda's clients
    come from): the execution is created in moto, so its ARN is real and describe/list see it, and
    queued for the runtime to run after the invocation, like SageMaker runs it asynchronously.
    ClientRequestToken (required by the API, 32-128 characters) makes the call idempotent: "An
    idempotent operation completes no more than once" (SageMaker API Reference,
    StartPipelineExecution). A repeated token returns the first execution's ARN and starts nothing.
    AWS does not document how long a token is remembered; the stricter reading for idempotency
    (never forgotten within a workspace) is what the template relies on, so a duplicate event
    arriving later than AWS's window would be the one case the cloud differs (the event max age
    of the targets, 1 hour, bounds it). A repeated token with other parameters is rejected, as
    AWS's idempotency contracts do (the stricter reading: SageMaker does not document it).
    """

    TOKENS = "client_request_tokens.jsonl"

    def __init__(self, rt):
        self.rt = rt
        self._busy = threading.local()
        self.caller: dict = {}  # the invocation making the calls: function and the rule that invoked it

    def __call__(self, params, model, **kwargs):
        if getattr(self._busy, "on", False):
            return None  # the runtime's own call below: let it through to moto
        body = json.loads(params.get("body") or b"{}")
        token = body.get("ClientRequestToken")
        if not isinstance(token, str) or not 32 <= len(token) <= 128:
            return self._error(400, "ValidationException", "ClientRequestToken must be 32-128 characters")
        name = body["PipelineName"].rsplit(":pipeline/", 1)[-1]
        existing = {p["PipelineName"].lower() for p in self.rt.aws.sm.list_pipelines().get("PipelineSummaries", [])}
        if name.lower() not in existing:  # API Reference: StartPipelineExecution errors include ResourceNotFound
            return self._error(400, "ResourceNotFound", f"Pipeline '{name}' does not exist.")
        parameters = {p["Name"]: p["Value"] for p in body.get("PipelineParameters") or []}
        for seen in self.rt.workspace.read_jsonl(self.TOKENS):
            if seen["token"] == token:
                if seen["pipeline"].lower() != name.lower() or seen["parameters"] != parameters:
                    return self._error(400, "ValidationException",
                                       f"ClientRequestToken {token} was already used with other arguments")
                self.rt.say(f"  -> StartPipelineExecution {name}: token seen before, execution "
                            f"{seen['arn'].rsplit('/', 1)[-1]} (no new execution)")
                return self._ok({"PipelineExecutionArn": seen["arn"]})
        self._busy.on = True
        try:
            arn = self.rt.aws.sm.start_pipeline_execution(
                PipelineName=name, ClientRequestToken=token,
                PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
                **{k: body[k] for k in ("PipelineExecutionDescription", "PipelineExecutionDisplayName") if k in body},
            )["PipelineExecutionArn"]
        finally:
            self._busy.on = False
        self.rt.workspace.append_jsonl(self.TOKENS, {"token": token, "pipeline": name, "parameters": parameters, "arn": arn})
        self.rt.bus.enqueue(("start", name, parameters, dict(self.caller, type="Lambda", token=token),
                             {"PipelineExecutionArn": arn}))
        return self._ok({"PipelineExecutionArn": arn})

    @staticmethod
    def _ok(parsed):
        from botocore.awsrequest import AWSResponse
        return AWSResponse("https://sagemaker.local", 200, {}, None), dict(parsed, ResponseMetadata={"HTTPStatusCode": 200})

    @staticmethod
    def _error(status, code, message):
        from botocore.awsrequest import AWSResponse
        return (AWSResponse("https://sagemaker.local", status, {}, None),
                {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}})


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
            dlq = tf.eval((body.get("dead_letter_config") or {}).get("target_arn"), where)
            self.functions[arn] = {"name": name, "handler": handler, "env": {k: str(v) for k, v in env.items()}, "dlq": dlq,
                                   "code_dir": self._code_dir(tf, body, where), "where": where}
        self.errors: list[dict] = []
        self._starts = _SageMakerStarts(rt)

    def _code_dir(self, tf, body, where) -> Path:
        default = Path(self.rt.repo_root) / "code" / "lambda_function"
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
        path = fn["code_dir"] / (module_name.replace(".", "/") + ".py")
        saved = {k: os.environ.get(k) for k in fn["env"]}
        os.environ.update(fn["env"])
        record = {"function": fn["name"], "rule": rule_name}
        capture = _Capture()
        logging.getLogger().addHandler(capture)
        import boto3
        self.rt.aws.sm  # the runtime's own client exists before the handler is registered, so it never copies it
        events = boto3._get_default_session().events  # the Lambda's clients are created from it (and copy its handlers)
        self._starts.caller = {"function": fn["name"], "rule": rule_name}
        events.register_first("before-call.sagemaker.StartPipelineExecution", self._starts, unique_id="sm-local-starts")
        try:
            if not path.exists():
                raise FileNotFoundError(f"{fn['where']}: handler module {path} does not exist")
            # Fresh import per invocation: module-level clients and env reads see this function's environment.
            spec = importlib.util.spec_from_file_location(f"_sm_local_lambda_{module_name}", path)
            mod = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(fn["code_dir"]))
            try:
                spec.loader.exec_module(mod)
            finally:
                sys.path.remove(str(fn["code_dir"]))
            handler = getattr(mod, func_name, None)
            if handler is None:
                raise AttributeError(f"{path} has no function {func_name}")
            result = handler(payload, _Context(fn["name"], arn))
            record["result"] = result
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
            events.unregister("before-call.sagemaker.StartPipelineExecution", unique_id="sm-local-starts")
            logging.getLogger().removeHandler(capture)
            record["logs"] = capture.lines
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.rt.workspace.append_jsonl("lambda_invocations.jsonl", dict(record, payload=payload))
        self.rt.notifications.drain()
