"""The runtime: workspace + AWS (moto) + Terraform-declared event routing + pipeline executions.

Generic: what is specific to a template (tfvars, Terraform folder, engines, SDK config) comes from its
[tool.sm-local] table (config.py). The executor and the step handlers get narrow services (services.py),
never this object; progress goes to an ExecutionObserver (ConsoleObserver by default).
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

from botocore.exceptions import ClientError

from .aws import Aws, Snapshot, prepare_environment, put_file, split_s3
from .config import RuntimeConfig, find_root
from .constants import ACCOUNT, sagemaker_arn
from .errors import DefinitionError, NotFoundError, UsageError
from .events import EventBus, envelope, load_rules
from .sagemaker_events import model_package_state_change
from .services import ExecutionObserver, ExecutionStore, JobRecorder, ModelStore, Services, TuningTrial
from .workspace import Workspace


class ConsoleObserver(ExecutionObserver):
    """Progress lines on stdout: one when a step starts and when it ends, one per tuning trial."""

    def __init__(self, say):
        self.say = say

    def step_started(self, execution: dict, step: dict) -> None:
        # a line when the step starts, so a long step (tuning, a big transform) is never silent
        self.say(f"  [ ▸ ] {execution['PipelineName']:<24} {step['StepName']:<30} started")

    def step_finished(self, execution: dict, step: dict) -> None:
        status = step["StepStatus"]
        mark = {"Succeeded": "ok ", "Failed": "ERR"}.get(status, "...")
        line = (f"  [{mark}] {execution['PipelineName']:<24} {step['StepName']:<30} {status:<9} "
                f"{step.get('DurationSeconds', 0):6.1f}s")
        if step.get("FailureReason"):
            line += f"  {step['FailureReason'][:160]}"
        if step["StepType"] == "Condition":
            line += f"  outcome={step['Properties'].get('Outcome')}"
        self.say(line)

    def tuning_trial(self, execution: dict, step_name: str, trial: TuningTrial) -> None:
        if trial.objective is None:
            self.say(f"        trial {trial.number}/{trial.total} {trial.status}")
        else:
            self.say(f"        trial {trial.number}/{trial.total} {trial.objective_metric}={trial.objective:.4g} "
                     f"best={trial.best_so_far:.4g}")


class _BusPublisher:
    """EventPublisher onto the runtime's EventBridge bus (events are routed when the bus is pumped)."""

    def __init__(self):
        self.bus = None

    def publish(self, event: dict) -> None:
        self.bus.put(event)


class Runtime:
    def __init__(self, repo_root=None, workspace=None, env_file=None, quiet=False, persist=True,
                 observer: ExecutionObserver | None = None, config: RuntimeConfig | None = None):
        self.config = config or RuntimeConfig.load(Path(repo_root or find_root()))
        self.repo_root = self.config.root
        self.workspace = Workspace(workspace or os.environ.get("SM_LOCAL_WORKSPACE") or self.repo_root / ".local-sagemaker")
        env_file = env_file or self.config.env_file
        self.env_file = (self.repo_root / env_file) if not Path(env_file).is_absolute() else Path(env_file)
        self.quiet, self.persist = quiet, persist
        self.observer = observer or ConsoleObserver(self.say)
        self.models = ModelStore()
        self.aws = None
        self.executions_run: list[str] = []
        self.pipeline_configs: dict = {}  # {builder module: YAML} passed as --config (tests use a smaller HPO)
        self.gitlab = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        self._lock = self.workspace.exclusive(self.say)
        self._lock.__enter__()
        try:
            return self._start()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise

    def _start(self):
        from . import container
        from .terraform import Terraform

        container.warm_up()  # the step scripts' interpreter imports its libraries meanwhile

        from . import moto_ext
        from .gitlab import LocalGitLab

        # offline, the approval deploy chain exists as in an account with a GitLab trigger (gitlab.py)
        self.tf = Terraform(self.config.terraform_dir,
                            LocalGitLab.offline_tfvars(self.env_file, self.workspace.root) or self.env_file)
        self._configure_region()
        prepare_environment(self.config.sdk_config)
        self.aws = Aws(bucket_policies=self._bucket_policies(),
                       on_pipeline_start=self._api_start).__enter__()
        self.snapshot = Snapshot(self.workspace.root / "aws")
        if self.aws.embedded and self.persist:
            self.models.update(self.snapshot.restore(self.aws))
        self._recover_orphans()
        if self.aws.embedded and self.persist:
            self._restore_executions()
        self.gitlab = LocalGitLab(self).start()
        moto_ext.install(self._execution_by_arn)  # ListPipelineExecutionSteps for the notification digest
        from .lambdas import Lambdas
        from .notifications import Notifications

        self._create_lambda_dependencies()
        self.notifications = Notifications(self, self.tf)
        self.lambdas = Lambdas(self, self.tf)
        self.gitlab.wire(self.lambdas)  # approval -> deploy Lambda -> local GitLab build job (see gitlab.py)
        publisher = _BusPublisher()
        store = ExecutionStore(self.aws, self.workspace, checkpoint=self.checkpoint)
        self.services = Services(aws=self.aws, workspace=self.workspace, jobs=JobRecorder(self.aws, self.workspace),
                                 events=publisher, store=store, models=self.models,
                                 observer=self.observer, quality_check_engine=self.config.quality_check_engine)
        self.bus = EventBus(self, load_rules(self.tf))
        publisher.bus = self.bus
        self._share_build_sessions()
        return self

    def _share_build_sessions(self) -> None:
        """The template's builds run in this process (upserts, approval deploys) share one boto3 session for
        as long as this runtime and its moto live (pipeline_scripts.sdk_adapter, when the template has it)."""
        try:
            from pipeline_scripts.sdk_adapter import shared_boto3_sessions
        except ImportError:
            self._shared_sessions = None
            return
        self._shared_sessions = shared_boto3_sessions()
        self._shared_sessions.__enter__()

    def __exit__(self, *exc):
        if getattr(self, "_shared_sessions", None) is not None:
            self._shared_sessions.__exit__(*exc)
            self._shared_sessions = None
        if getattr(self, "gitlab", None):
            self.gitlab.stop()
        try:
            self.checkpoint()
        finally:
            try:
                self.aws.__exit__(*exc)
            finally:
                self._lock.__exit__(None, None, None)

    def checkpoint(self) -> None:
        """Persist the emulated AWS state now (after every step, upload and approval), so a crash loses nothing
        that finished. Atomic per file; the next command replays it."""
        if self.aws and self.aws.embedded and self.persist:
            self.snapshot.save(self.aws, self.models)

    def _restore_executions(self) -> None:
        """Executions of earlier commands back into moto, so DescribePipelineExecution (Lambdas, retries) and
        ClientRequestToken idempotency see them as SageMaker would."""
        from moto.sagemaker.models import FakePipelineExecution, sagemaker_backends

        from .constants import region

        backend = sagemaker_backends[ACCOUNT][region()]
        for rec in self.workspace.list_executions():
            pipe = backend.pipelines.get(rec.get("PipelineName"))
            if pipe is None or rec["PipelineExecutionArn"] in pipe.pipeline_executions:
                continue
            ex = FakePipelineExecution(
                pipeline_execution_arn=rec["PipelineExecutionArn"],
                pipeline_execution_display_name=rec.get("PipelineExecutionDisplayName"),
                pipeline_parameters=[{"Name": k, "Value": str(v)} for k, v in (rec.get("ParameterOverrides") or {}).items()],
                pipeline_execution_description=rec.get("PipelineExecutionDescription"),
                parallelism_configuration=None, pipeline_definition=json.dumps(rec.get("Definition") or {}),
                client_request_token=rec.get("ClientRequestToken"))
            ex.pipeline_execution_status = rec.get("PipelineExecutionStatus")
            ex.pipeline_execution_failure_reason = rec.get("FailureReason")
            pipe.pipeline_executions[rec["PipelineExecutionArn"]] = ex

    def _recover_orphans(self) -> None:
        """An execution still 'Executing' here belongs to a command that died (the workspace lock proves no other
        command runs): mark it Failed, as SageMaker fails an execution whose step was lost; `retry` resumes it."""
        from .executor import iso

        for rec in self.workspace.list_executions():
            if rec.get("PipelineExecutionStatus") != "Executing":
                continue
            reason = ("sm-local: the command running this execution ended before it finished (killed or crashed); "
                      f"`sm-local retry {rec['PipelineExecutionId']}` resumes it from the unfinished step")
            for st in rec.get("Steps", {}).values():
                if st.get("StepStatus") in ("Executing", "Starting"):
                    st.update(StepStatus="Failed", FailureReason=reason)
                    rec["FailedStep"] = st["StepName"]
            rec.update(PipelineExecutionStatus="Failed", FailureReason=reason, EndTime=iso(time.time()))
            self.workspace.save_execution(rec)
            self.say(f"  !! execution {rec['PipelineExecutionId']} ({rec['PipelineName']}) was interrupted; marked "
                     "Failed (retry resumes it)")

    def _configure_region(self) -> None:
        """CI exports the environment's tfvars region as AWS_DEFAULT_REGION; the runtime does the same. With no
        region in the environment nor in the tfvars, clients fail with botocore's NoRegionError, as the SDK would."""
        var = self.config.region_variable
        if not os.environ.get("AWS_DEFAULT_REGION") and var and self.tf.vars.get(var):
            os.environ["AWS_DEFAULT_REGION"] = str(self.tf.vars[var])
        from .constants import region
        self.tf.region = region()

    @property
    def kms_key(self) -> str | None:
        var = self.config.kms_key_variable
        return (self.tf.vars.get(var) or None) if var else None

    def _bucket_policies(self) -> dict:
        """The project bucket is a prerequisite whose policy denies uploads not encrypted with the project key
        (README, Deploy to AWS); moto evaluates no policy conditions, so emulation.py enforces it."""
        from .emulation import require_sse_kms_policy

        var = self.config.bucket_variable
        if not (var and self.tf.vars.get(var) and self.kms_key):
            return {}
        return {self.tf.vars[var]: require_sse_kms_policy(self.tf.vars[var], self.kms_key)}

    @property
    def bucket(self) -> str:
        var = self.config.bucket_variable
        if not var or var not in self.tf.vars:
            raise DefinitionError(f"no project bucket: [tool.sm-local] bucket_variable {var!r} is not set in {self.env_file}")
        return self.tf.vars[var]

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

    # ------------------------------------------------------------------ events
    def emit(self, event: dict) -> None:
        self.bus.put(event)

    def pipeline_arn(self, name: str) -> str:
        return sagemaker_arn("pipeline", name.lower())

    def upload(self, path: str | Path, key: str, bucket: str | None = None) -> str:
        """User upload (like `aws s3 cp`): put the object, then emit the S3 'Object Created' EventBridge event."""
        bucket = bucket or self.bucket
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"upload: {path} is not a file")
        s3 = self.aws.s3
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:  # as in the cloud, uploading to a missing bucket is an error
            raise FileNotFoundError(f"upload: bucket {bucket} does not exist; `sm-local upsert` creates the "
                                    "tfvars bucket, as Terraform would in the cloud") from exc
        # as `aws s3 cp --sse aws:kms --sse-kms-key-id <project key>`: the bucket policy denies anything else
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key} if self.kms_key else None
        put_file(s3, path, bucket, key, extra)
        head = s3.head_object(Bucket=bucket, Key=key)
        detail = {"version": "0", "bucket": {"name": bucket},
                  "object": {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                             "sequencer": f"{time.time_ns():X}"},
                  "request-id": secrets.token_hex(8).upper(), "requester": ACCOUNT, "source-ip-address": "127.0.0.1",
                  "reason": "PutObject"}
        self.emit(envelope("Object Created", "aws.s3", detail, [f"arn:aws:s3:::{bucket}"]))
        self.checkpoint()
        self.say(f"  uploaded {path} -> s3://{bucket}/{key}")
        return f"s3://{bucket}/{key}"

    def pump(self) -> int:
        n = self.bus.pump()
        while self.gitlab.pending:  # deploys triggered by the Lambda run after it returned, as in GitLab
            self.gitlab.run_pending()
            n += self.bus.pump()
        return n

    def deploy_inference(self, model_package_arn: str | None = None, withdraw_if_none: bool = False) -> int:
        """The GitLab build job of the approval deploy, in-process so it reaches the embedded moto: the
        commands tools/build_pipelines.py plans for CI (the serving pipelines, around exactly the given
        version), each builder's main() run here. Exit 3 = no Approved version."""
        import importlib

        if str(self.repo_root) not in sys.path:
            sys.path.insert(0, str(self.repo_root))  # tools/ is the repository's, not an installed package
        try:
            from tools.build_pipelines import plan
        except ImportError:  # older checkouts: the inference script alone, as the build job ran it
            plan = None
        from pipeline_scripts.contracts import PIPELINES
        if plan is not None:
            commands = [argv[1:] for _, argv, _ in plan(str(self.env_file), model_package_arn, None, withdraw_if_none)]
        else:
            commands = [["-m", PIPELINES["inference"].builder, "--env-file", str(self.env_file)]
                        + (["--model-package-arn", model_package_arn] if model_package_arn else [])]
        worst = 0
        for cmd in commands:
            builder, argv = cmd[1], cmd[2:] + ["--no-upload"]
            if self.pipeline_configs.get(builder):
                argv += ["--config", str(self.pipeline_configs[builder])]
            try:
                code = int(importlib.import_module(builder).main(argv) or 0)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            worst = max(worst, code)
        return worst

    def save(self, rec: dict) -> None:
        self.services.store.save(rec)

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

    def _api_start(self, pipeline: str, execution_arn: str, parameters: dict) -> None:
        """StartPipelineExecution called by code in this process (a Lambda, a script): run it, as SageMaker would."""
        caller = getattr(self, "api_caller", None) or {}  # set by lambdas.py while a handler runs
        self.bus.enqueue(("start", pipeline, parameters, dict(caller, type="StartPipelineExecution"), execution_arn))

    def execute_pipeline(self, pipeline: str, parameters: dict, trigger: dict, execution_arn: str | None = None) -> dict:
        from .emulation import internal
        from .executor import Executor, iso, parse_parameters
        name, definition = self._definition(pipeline)
        t0 = time.time()
        display = f"execution-{int(t0 * 1000)}"
        # StartPipelineExecution in moto gives the execution its id/ARN, so describe_pipeline_execution works
        # for the Lambda; the steps run here.
        exec_arn = execution_arn
        if exec_arn is None:
            with internal():
                exec_arn = self.aws.sm.start_pipeline_execution(
                    PipelineName=name, PipelineExecutionDisplayName=display,
                    PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()])["PipelineExecutionArn"]
        exec_id = exec_arn.rsplit("/", 1)[-1]
        rec = {"PipelineName": name, "PipelineArn": exec_arn.split("/execution/")[0], "PipelineExecutionId": exec_id,
               "PipelineExecutionArn": exec_arn,
               "PipelineExecutionDisplayName": display, "PipelineExecutionStatus": None,
               "StartTime": iso(t0), "Trigger": trigger, "Sequence": self.workspace.next_sequence(),
               "ParameterOverrides": parameters, "Steps": {}, "StepOrder": [], "Definition": definition, "_t0": t0}
        # the start request's ParallelismConfiguration, else the pipeline's (as DescribePipelineExecution shows it)
        parallelism = self.aws.sm.describe_pipeline_execution(PipelineExecutionArn=exec_arn).get("ParallelismConfiguration")
        if parallelism:
            rec["ParallelismConfiguration"] = parallelism
        try:
            rec["Parameters"] = parse_parameters(definition, parameters)
            executor = Executor(self.services, rec, definition)
        except DefinitionError as exc:
            # SageMaker rejects StartPipelineExecution / fails the execution at validation: record and report it.
            rec.update(PipelineExecutionStatus="Failed", FailureReason=f"DefinitionError: {exc}", EndTime=iso(time.time()),
                       Parameters=parameters)
            self.save(rec)
            self.say(f"  [ERR] {name}: {exc}")
            from .sagemaker_events import execution_status_change
            self.emit(execution_status_change(rec, "Executing"))
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
        from .errors import StateError

        rec = self.workspace.load_execution(exec_id)
        if rec.get("PipelineExecutionStatus") != "Failed":
            raise StateError(f"execution {exec_id} is {rec.get('PipelineExecutionStatus')}: only a Failed execution "
                             "can be retried (SageMaker's RetryPipelineExecution rule)")
        rec["_t0"] = time.time()
        rec["RetryCount"] = rec.get("RetryCount", 0) + 1
        rec.pop("FailedStep", None)
        self.say(f"▶ {rec['PipelineName']} execution {exec_id} retried (attempt {rec['RetryCount'] + 1})")
        rec = Executor(self.services, rec, rec["Definition"]).run()
        self.write_report(rec)
        self.say(f"■ {rec['PipelineName']} execution {exec_id} {rec['PipelineExecutionStatus']}"
                 + (f": {rec['FailureReason']}" if rec["PipelineExecutionStatus"] == "Failed" else ""))
        return rec

    def _execution_by_arn(self, arn: str) -> dict | None:
        try:
            rec = self.workspace.load_execution(str(arn).rsplit("/", 1)[-1])
        except NotFoundError:
            return None
        return rec if rec.get("PipelineExecutionArn") == arn else None

    def write_report(self, rec: dict) -> None:
        """Every inference execution gets its HTML report, written before its terminal event is processed
        (the notification links it). A report that cannot be written is said, never fatal."""
        from .views import ensure_report
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
        self.emit(model_package_state_change(desc))
        self.checkpoint()
        return desc

    def package_arn(self, ref: str) -> str:
        if ref.startswith("arn:"):
            return ref
        group, _, version = ref.rpartition("/")
        if not (group and version.isascii() and version.isdigit()):
            raise UsageError(f"model package {ref!r}: give an ARN or <group>/<version> (version a number, "
                             "e.g. abalone-models/2)")
        return sagemaker_arn("model-package", f"{group.lower()}/{int(version)}")

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
    if t.get("rule"):
        return f"EventBridge rule {t['rule']} -> Lambda {t.get('function')} -> {t.get('type')}"
    return t.get("type", "cli")
