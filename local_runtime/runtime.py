"""The runtime: workspace + AWS (moto) + Terraform-declared event routing + pipeline executions."""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

from botocore.exceptions import ClientError

from .aws import ACCOUNT, Aws, Snapshot, prepare_environment, split_s3
from .errors import DefinitionError
from .events import EventBus, envelope, load_rules
from .workspace import Workspace, atomic_write_json

REGION = "us-east-1"


def find_repo_root(start: Path | None = None) -> Path:
    env = os.environ.get("SM_LOCAL_REPO")
    if env:
        return Path(env).resolve()
    for p in [Path(start or Path.cwd()).resolve(), *Path(start or Path.cwd()).resolve().parents]:
        if (p / "events.tf").exists() and (p / "env_files").is_dir():
            return p
    return Path(__file__).resolve().parents[1]


class Runtime:
    def __init__(self, repo_root=None, workspace=None, env_file="env_files/dev_env.tfvars", quiet=False, persist=True):
        self.repo_root = Path(repo_root or find_repo_root()).resolve()
        self.workspace = Workspace(workspace or os.environ.get("SM_LOCAL_WORKSPACE") or self.repo_root / ".local-sagemaker")
        self.env_file = (self.repo_root / env_file) if not Path(env_file).is_absolute() else Path(env_file)
        self.quiet, self.persist = quiet, persist
        self.models: dict = {}
        self.aws = None
        self.executions_run: list[str] = []
        self.pipeline_configs: dict = {}  # {builder module: YAML} passed as --config (tests use a smaller HPO)
        self.gitlab = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        prepare_environment(self.repo_root, self.workspace.root)
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        self.aws = Aws().__enter__()
        self.snapshot = Snapshot(self.workspace.root / "aws")
        if self.aws.embedded and self.persist:
            self.models = self.snapshot.restore(self.aws)
        from .lambdas import Lambdas
        from .notifications import Notifications
        from .terraform import Terraform

        self.tf = Terraform(self.repo_root, self.env_file)
        from .gitlab import LocalGitLab
        self.gitlab = LocalGitLab(self).start()
        self.gitlab.wire(self.tf)  # approval -> deploy Lambda -> local GitLab build job (see gitlab.py)
        from . import moto_ext
        moto_ext.install(self._execution_by_arn)  # ListPipelineExecutionSteps for the notification digest
        self._create_lambda_dependencies()
        self.notifications = Notifications(self, self.tf)
        self.lambdas = Lambdas(self, self.tf)
        self.bus = EventBus(self, load_rules(self.tf))
        return self

    def __exit__(self, *exc):
        if getattr(self, "gitlab", None):
            self.gitlab.stop()
        try:
            if self.aws and self.aws.embedded and self.persist:
                self.snapshot.save(self.aws, self.models)
        finally:
            self.aws.__exit__(*exc)

    def _create_lambda_dependencies(self):
        """Resources the Lambda code calls at run time (DynamoDB tables), created as Terraform would."""
        ddb = None
        for res, body in self.tf.resources.get("aws_dynamodb_table", {}).items():
            if not self.tf.enabled("aws_dynamodb_table", res):
                continue
            ddb = ddb or self.aws.client("dynamodb")
            name = self.tf.attr("aws_dynamodb_table", res, "name")
            hash_key = self.tf.attr("aws_dynamodb_table", res, "hash_key")
            attrs = self.tf.eval(body.get("attribute", []), f"aws_dynamodb_table.{res}")
            attrs = attrs if isinstance(attrs, list) else [attrs]
            try:
                ddb.create_table(TableName=name, KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": a["name"], "AttributeType": a["type"]} for a in attrs],
                                 BillingMode="PAY_PER_REQUEST")
            except ddb.exceptions.ResourceInUseException:
                pass  # already there (AWS_ENDPOINT_URL server)

    # ------------------------------------------------------------------ output
    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    def step_progress(self, rec: dict, st: dict) -> None:
        status = st["StepStatus"]
        mark = {"Succeeded": "ok ", "Failed": "ERR"}.get(status, "...")
        line = f"  [{mark}] {rec['PipelineName']:<24} {st['StepName']:<30} {status:<9} {st.get('DurationSeconds', 0):6.1f}s"
        if st.get("FailureReason"):
            line += f"  {st['FailureReason'][:160]}"
        if st["StepType"] == "Condition":
            line += f"  outcome={st['Properties'].get('Outcome')}"
        self.say(line)

    # ------------------------------------------------------------------ jobs (records in moto for describe_*)
    def record_job(self, kind: str, request: dict) -> None:
        sm = self.aws.sm
        req = {k: v for k, v in request.items() if k not in ("LocalJobDir", "LogFile")}
        if kind == "processing":
            sm.create_processing_job(**req)
        elif kind == "training":
            req.pop("TuningJobArn", None)
            sm.create_training_job(**req)
        elif kind == "transform":
            sm.create_transform_job(**req)

    def finish_job(self, kind: str, name: str, record: dict) -> None:
        atomic_write_json(self.workspace.job_dir(name) / "job.json", dict(record, JobKind=kind))

    # ------------------------------------------------------------------ events
    def emit(self, event: dict) -> None:
        self.bus.put(event)

    def pipeline_arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name.lower()}"

    def emit_execution_event(self, rec: dict, previous: str | None) -> None:
        detail = {"pipelineExecutionDisplayName": rec["PipelineExecutionDisplayName"],
                  "currentPipelineExecutionStatus": rec["PipelineExecutionStatus"],
                  "previousPipelineExecutionStatus": previous or "",
                  "executionStartTime": rec["StartTime"], "executionEndTime": rec.get("EndTime") or "",
                  "pipelineExecutionDescription": rec.get("PipelineExecutionDescription", ""),
                  "pipelineArn": rec["PipelineArn"], "pipelineExecutionArn": rec["PipelineExecutionArn"]}
        self.emit(envelope("SageMaker Model Building Pipeline Execution Status Change", "aws.sagemaker", detail,
                           [rec["PipelineArn"], rec["PipelineExecutionArn"]]))

    def emit_step_event(self, rec: dict, st: dict, previous: str) -> None:
        meta = {}
        for k, v in (st.get("Metadata") or {}).items():
            key = k[0].lower() + k[1:]
            meta[key] = {kk[0].lower() + kk[1:]: vv for kk, vv in v.items()} if isinstance(v, dict) else v
        detail = {"metadata": meta, "stepStartTime": st.get("StartTime"), "stepEndTime": st.get("EndTime") or "",
                  "stepName": st["StepName"], "stepType": st["StepType"], "previousStepStatus": previous,
                  "currentStepStatus": st["StepStatus"], "pipelineArn": rec["PipelineArn"],
                  "pipelineExecutionArn": rec["PipelineExecutionArn"]}
        if st.get("StepStatus") == "Failed":
            detail["failureReason"] = st.get("FailureReason", "")
        self.emit(envelope("SageMaker Model Building Pipeline Execution Step Status Change", "aws.sagemaker", detail,
                           [rec["PipelineArn"], rec["PipelineExecutionArn"]]))

    def emit_model_package_event(self, desc: dict) -> None:
        detail = {k: v for k, v in desc.items() if k != "ResponseMetadata"}
        for k, v in list(detail.items()):
            if hasattr(v, "isoformat"):
                detail[k] = v.astimezone().strftime("%Y-%m-%dT%H:%M:%SZ") if v.tzinfo else v.isoformat() + "Z"
        detail = json.loads(json.dumps(detail, default=str))
        self.emit(envelope("SageMaker Model Package State Change", "aws.sagemaker", detail, [desc["ModelPackageArn"]]))

    def upload(self, path: str | Path, key: str, bucket: str | None = None) -> str:
        """User upload (like `aws s3 cp`): put the object, then emit the S3 'Object Created' EventBridge event."""
        bucket = bucket or self.tf.vars["bucket_name"]
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"upload: {path} is not a file")
        s3 = self.aws.s3
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:  # as in the cloud, uploading to a missing bucket is an error
            raise FileNotFoundError(f"upload: bucket {bucket} does not exist; `sm-local upsert` creates the "
                                    "tfvars bucket, as Terraform would in the cloud") from exc
        s3.upload_file(str(path), bucket, key)
        head = s3.head_object(Bucket=bucket, Key=key)
        detail = {"version": "0", "bucket": {"name": bucket},
                  "object": {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                             "sequencer": f"{time.time_ns():X}"},
                  "request-id": secrets.token_hex(8).upper(), "requester": ACCOUNT, "source-ip-address": "127.0.0.1",
                  "reason": "PutObject"}
        self.emit(envelope("Object Created", "aws.s3", detail, [f"arn:aws:s3:::{bucket}"]))
        self.say(f"  uploaded {path} -> s3://{bucket}/{key}")
        return f"s3://{bucket}/{key}"

    def pump(self) -> int:
        n = self.bus.pump()
        while self.gitlab.pending:  # deploys triggered by the Lambda run after it returned, as in GitLab
            self.gitlab.run_pending()
            n += self.bus.pump()
        return n

    def deploy_inference(self) -> int:
        """The GitLab build job's deploy step: the inference pipeline script (exit 3 = no Approved version)."""
        import importlib

        from pipeline_scripts.contracts import PIPELINES
        builder = PIPELINES["inference"].builder
        argv = ["--env-file", str(self.env_file), "--no-upload"]
        if self.pipeline_configs.get(builder):
            argv += ["--config", str(self.pipeline_configs[builder])]
        try:
            return int(importlib.import_module(builder).main(argv) or 0)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1

    # ------------------------------------------------------------------ executions
    def save(self, rec: dict) -> None:
        self.workspace.save_execution({k: v for k, v in rec.items() if not k.startswith("_")})
        self._sync_moto_execution(rec)

    def _sync_moto_execution(self, rec: dict) -> None:
        """moto has no API to set an execution's status/FailureReason (SageMaker sets them itself), so in embedded
        mode the record in moto's backend is updated directly; describe_pipeline_execution then tells the truth."""
        if not (self.aws and self.aws.embedded and rec.get("PipelineExecutionStatus")):
            return
        from moto.sagemaker.models import sagemaker_backends
        backend = sagemaker_backends[ACCOUNT][os.environ.get("AWS_DEFAULT_REGION", REGION)]
        pipe = backend.pipelines.get(rec["PipelineName"])
        ex = pipe.pipeline_executions.get(rec["PipelineExecutionArn"]) if pipe else None
        if ex is not None:
            ex.pipeline_execution_status = rec["PipelineExecutionStatus"]
            ex.pipeline_execution_failure_reason = rec.get("FailureReason")

    def _definition(self, pipeline: str) -> tuple[str, dict]:
        sm = self.aws.sm
        names = {p["PipelineName"] for p in sm.list_pipelines().get("PipelineSummaries", [])}
        real = next((n for n in names if n == pipeline), None) or next((n for n in names if n.lower() == pipeline.lower()), None)
        if real is None:
            raise DefinitionError(f"pipeline {pipeline!r} does not exist (upserted: {', '.join(sorted(names)) or 'none'}); "
                                  "run `sm-local upsert` (the pipeline scripts) first")
        d = sm.describe_pipeline(PipelineName=real)
        try:
            return real, json.loads(d["PipelineDefinition"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise DefinitionError(f"pipeline {real}: definition is not valid JSON: {exc}") from exc

    def start_execution(self, pipeline: str, parameters: dict | None = None, trigger: dict | None = None) -> None:
        self.bus.enqueue(("start", pipeline, parameters or {}, trigger or {"type": "cli"}))

    def execute_pipeline(self, pipeline: str, parameters: dict, trigger: dict) -> dict:
        from .executor import Executor, iso, parse_parameters
        name, definition = self._definition(pipeline)
        t0 = time.time()
        display = f"execution-{int(t0 * 1000)}"
        # StartPipelineExecution in moto gives the execution its id/ARN, so describe_pipeline_execution works
        # for the Lambda; the steps run here.
        exec_arn = self.aws.sm.start_pipeline_execution(
            PipelineName=name, PipelineExecutionDisplayName=display,
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()])["PipelineExecutionArn"]
        exec_id = exec_arn.rsplit("/", 1)[-1]
        rec = {"PipelineName": name, "PipelineArn": exec_arn.split("/execution/")[0], "PipelineExecutionId": exec_id,
               "PipelineExecutionArn": exec_arn,
               "PipelineExecutionDisplayName": display, "PipelineExecutionStatus": None,
               "StartTime": iso(t0), "Trigger": trigger, "Sequence": self.workspace.next_sequence(),
               "ParameterOverrides": parameters, "Steps": {}, "StepOrder": [], "Definition": definition, "_t0": t0}
        try:
            rec["Parameters"] = parse_parameters(definition, parameters)
            executor = Executor(self, rec, definition)
        except DefinitionError as exc:
            # SageMaker rejects StartPipelineExecution / fails the execution at validation: record and report it.
            rec.update(PipelineExecutionStatus="Failed", FailureReason=f"DefinitionError: {exc}", EndTime=iso(time.time()),
                       Parameters=parameters)
            self.save(rec)
            self.say(f"  [ERR] {name}: {exc}")
            self.emit_execution_event(rec, "Executing")
            self.executions_run.append(exec_id)
            return rec
        self.say(f"▶ {name} execution {exec_id} started (trigger: {_trigger_text(trigger)})")
        rec = executor.run()
        self.executions_run.append(exec_id)
        self.write_report(rec)
        status = rec["PipelineExecutionStatus"]
        self.say(f"■ {name} execution {exec_id} {status} in {rec['DurationSeconds']:.1f}s"
                 + (f": {rec['FailureReason']}" if status == "Failed" else ""))
        return rec

    def retry_execution(self, exec_id: str) -> dict:
        """RetryPipelineExecution: same definition and parameters; succeeded steps keep their outputs."""
        from .executor import Executor
        rec = self.workspace.load_execution(exec_id)
        if rec.get("PipelineExecutionStatus") != "Failed":
            raise ValueError(f"execution {exec_id} is {rec.get('PipelineExecutionStatus')}; only Failed executions can be retried")
        rec["_t0"] = time.time()
        rec["RetryCount"] = rec.get("RetryCount", 0) + 1
        rec.pop("FailedStep", None)
        self.say(f"▶ {rec['PipelineName']} execution {exec_id} retried (attempt {rec['RetryCount'] + 1})")
        rec = Executor(self, rec, rec["Definition"]).run()
        self.write_report(rec)
        self.say(f"■ {rec['PipelineName']} execution {exec_id} {rec['PipelineExecutionStatus']}"
                 + (f": {rec['FailureReason']}" if rec["PipelineExecutionStatus"] == "Failed" else ""))
        return rec

    def _execution_by_arn(self, arn: str) -> dict | None:
        try:
            rec = self.workspace.load_execution(str(arn).rsplit("/", 1)[-1])
        except KeyError:
            return None
        return rec if rec.get("PipelineExecutionArn") == arn else None

    def write_report(self, rec: dict) -> None:
        """Every inference execution gets its HTML report, written before its terminal event is processed
        (the notification links it). A report that cannot be written is said, never fatal."""
        from .inspect import ensure_report
        try:
            path = ensure_report(self, rec, refresh=True)
        except Exception as exc:  # noqa: BLE001 (the execution's outcome stands; the report is extra)
            self.say(f"  !! report of {rec['PipelineExecutionId']} not written: {type(exc).__name__}: {exc}")
            return
        if path:
            self.say(f"  report: {path}")

    # ------------------------------------------------------------------ registry
    def approve(self, package: str, approve: bool = True, comment: str | None = None) -> dict:
        sm = self.aws.sm
        arn = self.package_arn(package)
        desc = sm.describe_model_package(ModelPackageName=arn)
        status = "Approved" if approve else "Rejected"
        kwargs = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if comment:
            kwargs["ApprovalDescription"] = comment
        sm.update_model_package(**kwargs)
        desc = sm.describe_model_package(ModelPackageName=arn)
        self.emit_model_package_event(desc)
        return desc

    def package_arn(self, ref: str) -> str:
        if ref.startswith("arn:"):
            return ref
        if "/" in ref:
            group, version = ref.rsplit("/", 1)
            return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group.lower()}/{int(version)}"
        raise ValueError(f"model package {ref!r}: give an ARN or <group>/<version>")

    def list_packages(self, group: str | None = None) -> list[dict]:
        sm = self.aws.sm
        groups = [group] if group else [g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]]
        out = []
        for g in groups:
            for s in sm.list_model_packages(ModelPackageGroupName=g, SortBy="CreationTime", SortOrder="Ascending")["ModelPackageSummaryList"]:
                out.append(sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]))
        return out

    def package_metrics(self, desc: dict) -> dict:
        """Model statistics (evaluation.json) referenced by the package's ModelMetrics."""
        uri = (((desc.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
        if not uri:
            return {}
        try:
            b, k = split_s3(uri)
            return json.loads(self.aws.s3.get_object(Bucket=b, Key=k)["Body"].read())
        except Exception as exc:
            return {"error": f"cannot read {uri}: {exc}"}


def _trigger_text(t: dict) -> str:
    if t.get("type") == "EventBridge":
        return f"EventBridge rule {t.get('rule')} on {t.get('event')}"
    return t.get("type", "cli")


def log_err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
