"""sm-local: run the template's SageMaker pipelines offline (moto + local processes).

AWS calls go to an embedded moto per command by default; its state is snapshotted to <workspace>/aws/
between commands. Set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:5000 of `moto_server`) to use a long-lived
endpoint instead. Workspace: --workspace or SM_LOCAL_WORKSPACE (default .local-sagemaker/).
Pipelines are named by their contracts/pipelines.json keys or aliases, or by their full names.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .workspace import DEMO_OUTPUT, demo_workspace_hint

EXIT_CODES = """exit codes:
  0  done (and every execution the command started succeeded)
  1  an execution the command started (run, upload, retry, approve's deploy) failed
  2  bad input: unknown name, missing file, rejected AWS call, malformed state (one error line, no traceback)
  3  upsert: the inference pipeline was skipped because no model version is Approved yet
"""


def _params(values):
    from .errors import UsageError
    out = {}
    for v in values or []:
        if "=" not in v:
            raise UsageError(f"--param expects K=V, got {v!r}")
        k, val = v.split("=", 1)
        out[k] = val
    return out


def _pipeline_choices() -> str:
    """The contract's pipeline keys for help texts, each with its aliases: "training, training_hpo (hpo), ..."."""
    from pipeline_scripts.contracts import PIPELINES
    return ", ".join(k + (f" ({', '.join(p.aliases)})" if p.aliases else "") for k, p in PIPELINES.items())


def upsert(rt, names: list[str], env_file: str) -> int:
    """Run the pipeline scripts against the runtime's AWS; exit code 3 of the inference script (no
    approved version yet) is reported, not fatal, when all pipelines are upserted, as in the GitLab build job."""
    import contextlib
    import importlib
    import io

    from pipeline_scripts.contracts import CONTRACTS, PIPELINES
    rt.aws.s3.create_bucket(Bucket=rt.bucket)
    worst = 0
    keys = [CONTRACTS.pipeline_key(n) for n in names] or list(PIPELINES)
    for key in keys:
        module = importlib.import_module(PIPELINES[key].builder)
        argv = ["--env-file", str(env_file), "--no-upload"]
        if PIPELINES[key].needs_approved_model and not names:
            # expected on a first deploy: say so plainly instead of the script's error line
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = module.main(argv)
            if code == 3:
                print(f"{key} pipeline skipped until a model version is approved (approving one deploys it; "
                      f"or run `sm-local upsert {key}` after approving)")
                continue
            sys.stderr.write(err.getvalue())
        else:
            code = module.main(argv)
        worst = max(worst, code)
    return worst


def build_parser() -> argparse.ArgumentParser:
    from pipeline_scripts.contracts import PIPELINES
    keys = _pipeline_choices()
    gated = ", ".join(k for k, p in PIPELINES.items() if p.needs_approved_model)
    p = argparse.ArgumentParser(prog="sm-local", description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", default=None, help="state dir (default: SM_LOCAL_WORKSPACE or .local-sagemaker)")
    p.add_argument("--env-file", default=None,
                   help="tfvars (Terraform variables) to resolve *.tf with (default: env_file of [tool.sm-local])")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name, help_, json_flag=False):
        sp = sub.add_parser(name, help=help_, description=help_, epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    d = cmd("demo", "run the whole MLOps story on the data set and check every expectation")
    d.add_argument("--output", default=DEMO_OUTPUT, help="summary.json, reports and the demo workspace go here")
    d.add_argument("--rows", type=int, default=None, help="generate this many training rows instead of using data/*.csv")
    d.add_argument("--inference-rows", type=int, default=1000)
    d.add_argument("--drift-rows", type=int, default=None, help="rows of drifted inference data (default: --inference-rows)")
    up = cmd("upsert", "create the bucket (as Terraform would) and upsert the pipelines with pipeline_scripts, "
                       "exactly as the GitLab build job does")
    up.add_argument("pipelines", nargs="*", metavar="PIPELINE",
                    help=f"{keys} (default: all; {gated} only once a version is Approved)")
    r = cmd("run", "start an execution of an upserted pipeline and process the events it causes")
    r.add_argument("pipeline", help=f"{keys} or a pipeline name")
    r.add_argument("--param", action="append", metavar="K=V", help="pipeline parameter override (repeatable)")
    cmd("executions", "list executions", json_flag=True)
    s = cmd("steps", "show the steps of an execution, with their log files", json_flag=True)
    s.add_argument("execution_id", help="execution id or 'latest'")
    lg = cmd("logs", "print the job logs of an execution's steps (all steps, or one)")
    lg.add_argument("execution_id", help="execution id or 'latest'")
    lg.add_argument("step", nargs="?", help="step name (default: every step that has logs)")
    rp = cmd("report", "print the path of an inference execution's HTML report (written if missing)")
    rp.add_argument("execution_id", help="execution id or 'latest' (the latest inference execution)")
    rp.add_argument("--open", action="store_true", help="also open it in the default browser")
    a = cmd("approve", "approve (or --reject) a model package version; the approval event deploys it")
    a.add_argument("package", help="model package ARN or <group>/<version>")
    a.add_argument("--reject", action="store_true")
    a.add_argument("--comment", default=None)
    cmd("notifications", "print the notification outbox", json_flag=True)
    rt_ = cmd("retry", "retry a failed execution from its failed step")
    rt_.add_argument("execution_id")
    u = cmd("upload", "upload a file into the bucket (emits S3 Object Created, may start pipelines)")
    u.add_argument("file")
    u.add_argument("key", help="S3 key inside the tfvars bucket (or s3://bucket/key)")
    cmd("versions", "list model package versions with metrics and approval state", json_flag=True)
    ls = cmd("ls", "list objects in the emulated S3 bucket", json_flag=True)
    ls.add_argument("prefix", nargs="?", default="", help="key prefix inside the tfvars bucket (or s3://bucket/prefix)")
    rm = cmd("rm", "delete objects from the emulated S3 bucket (no event: like `aws s3 rm`)")
    rm.add_argument("key", help="key inside the tfvars bucket (or s3://bucket/key)")
    rm.add_argument("--recursive", action="store_true", help="delete every object under the key as a prefix")
    dl = cmd("download", "copy an object of the emulated S3 bucket to a local file")
    dl.add_argument("key", help="key inside the tfvars bucket (or s3://bucket/key)")
    dl.add_argument("dest", nargs="?", default=None, help="local path (default: the key's file name here)")
    st = cmd("studio", "serve the local studio web page: pipelines, executions, model registry with "
                       "Approve/Reject, reports")
    from .studio.app import DEFAULT_PORT
    st.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    st.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pipeline_scripts.contracts import CONTRACTS
    unknown = [n for n in getattr(args, "pipelines", None) or [] if CONTRACTS.pipeline_key(n) is None]
    if unknown:
        parser.error(f"upsert: unknown pipeline(s) {', '.join(unknown)}; choose from {_pipeline_choices()}")
    # Console: the runtime's own progress lines (print) and warnings; Lambda INFO logs go to the
    # workspace's lambda_invocations.jsonl, SDK chatter is dropped.
    from pipeline_scripts.console import configure_logging
    configure_logging(logging.WARNING)
    from botocore.exceptions import ClientError
    from pipeline_scripts.errors import UserError
    from steplib.errors import InputError

    from .errors import RuntimeErrorBase
    if args.command != "studio":  # a command that ends (the server keeps its collector as is)
        from .gcpolicy import freeze_survivors_of_full_collections
        freeze_survivors_of_full_collections()
    try:
        return _run(args)
    except BrokenPipeError:
        # `sm-local steps --json | head`: the reader left; stop quietly like other Unix tools (128 + SIGPIPE)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (RuntimeErrorBase, UserError, InputError, FileNotFoundError, ClientError) as exc:
        # the user's to fix: a wrong name or argument, a missing file, a bad data or configuration file, a
        # request AWS refused. Say what, no traceback. Anything else is a bug of ours: it keeps its traceback.
        print(f"sm-local: error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, UserError) else 2  # NoApprovedModelError: 3, as in the build job


def _listing(rows: list, as_json: bool, empty: str, line) -> int:
    """A listing command's output: the rows as JSON, or one ``line(row)`` each, or ``empty`` saying where it looked."""
    if as_json:
        _dump(rows)
        return 0
    if not rows:
        print(empty)
    for row in rows:
        print(line(row))
    return 0


def _execution_line(e: dict) -> str:
    failed = f"{e['failed_step']}: {e['failed_step_reason'] or ''}" if e["failed_step"] else ""
    line = f"{e['id']}  {e['pipeline']:<26} {e['status'] or '-':<10} {e['seconds'] or 0:7.1f}s  {e['start']}  {failed[:110]}"
    if e["failed_step_exit_message"]:  # the job's own words: file, line, column, value
        line += f"\n{'':14}exit message: {e['failed_step_exit_message'][:200]}"
    return line


def _dump(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _resolve_execution(ws, ref: str, inference_only: bool = False) -> dict:
    if ref != "latest":
        return ws.load_execution(ref)
    from .errors import NotFoundError
    from .views import is_inference
    recs = [r for r in ws.list_executions() if not inference_only or is_inference(r)]
    if not recs:
        raise NotFoundError(f"no {'inference ' if inference_only else ''}executions in {ws.root}")
    return recs[-1]


def _run(args) -> int:
    if args.command == "demo":
        from .demo import run_demo
        return run_demo(output=args.output, env_file=args.env_file, rows=args.rows,
                        inference_rows=args.inference_rows, drift_rows=args.drift_rows, workspace=args.workspace)
    if args.command == "studio":
        from .studio import serve
        return serve(host=args.host, port=args.port, workspace=args.workspace, env_file=args.env_file)
    from . import views
    from .errors import NotFoundError, StateError
    from .runtime import Runtime
    from .workspace import Workspace

    if args.command == "executions":
        ws = Workspace(args.workspace)
        rows = [views.execution_row(ws, r) for r in ws.list_executions()]
        return _listing(rows, args.json, f"no executions in {ws.root}{demo_workspace_hint(ws.root)}",
                        _execution_line)
    if args.command == "steps":
        ws = Workspace(args.workspace)
        rec = _resolve_execution(ws, args.execution_id)
        if args.json:
            _dump(dict(rec, StepLogs={n: [str(p) for p in views.step_log_files(ws, rec, n)] for n in rec["StepOrder"]}))
            return 0
        print(f"{rec['PipelineName']} {rec['PipelineExecutionId']} {rec['PipelineExecutionStatus']}  params={rec.get('Parameters')}")
        for row in views.step_rows(ws, rec):
            extra = f"  outcome={row['outcome']}" if row["outcome"] else ""
            print(f"  {row['name']:<30} {row['type']:<14} {row['status']:<10} {row['seconds'] or 0:6.1f}s{extra}")
            if row["failure_reason"]:
                print(f"      reason: {row['failure_reason']}")
            if row["exit_message"]:
                print(f"      exit message: {row['exit_message']}")
            for log in row["logs"]:
                print(f"      log: {log}")
        return 0
    if args.command == "logs":
        ws = Workspace(args.workspace)
        rec = _resolve_execution(ws, args.execution_id)
        steps = [args.step] if args.step else rec["StepOrder"]
        printed = 0
        for n in steps:
            for p in views.step_log_files(ws, rec, n):
                print(f"==> {n}: {p} <==")
                sys.stdout.write(p.read_text(errors="replace"))
                printed += 1
        if not printed:
            raise NotFoundError(f"no job logs for {args.step or 'any step'} of {rec['PipelineExecutionId']} "
                                "(condition, fail and registration steps run no job)")
        return 0
    if args.command == "notifications":
        ws = Workspace(args.workspace)
        if args.json:
            _dump(ws.read_jsonl("outbox/notifications.jsonl"))
            return 0
        path = ws.root / "outbox" / "notifications.txt"
        print(path.read_text() if path.exists() else f"no notifications in {path}")
        return 0
    if args.command == "report":
        ws = Workspace(args.workspace)
        rec = _resolve_execution(ws, args.execution_id, inference_only=args.execution_id == "latest")
        path = views.report_path(ws, rec)
        if not path.exists():
            with Runtime(workspace=args.workspace, env_file=args.env_file, quiet=True) as rt:
                path = views.ensure_report(rt, rec)
        if path is None:
            raise NotFoundError(f"execution {rec['PipelineExecutionId']} ({rec['PipelineName']}) has no "
                                "data-quality check, so no report; reports are written for inference executions")
        print(path)
        if args.open:
            import webbrowser
            webbrowser.open(path.resolve().as_uri())
        return 0
    from .views import format_version

    with Runtime(workspace=args.workspace, env_file=args.env_file) as rt:
        if args.command == "upsert":
            return upsert(rt, args.pipelines, rt.env_file)
        if args.command == "run":
            rt.start_execution(views.resolve_pipeline(rt, args.pipeline), _params(args.param), {"type": "cli"})
            rt.pump()
            return _started_outcome(rt)
        if args.command == "retry":
            rec = rt.workspace.load_execution(args.execution_id)
            if rec.get("PipelineExecutionStatus") != "Failed":
                raise StateError(f"execution {args.execution_id} is {rec.get('PipelineExecutionStatus')}; "
                                 "only Failed executions can be retried")
            rt.bus.enqueue(("retry", args.execution_id))
            rt.pump()
            return 0 if rt.workspace.load_execution(args.execution_id)["PipelineExecutionStatus"] == "Succeeded" else 1
        if args.command == "upload":
            bucket, key = _bucket_key(rt, args.key)
            rt.upload(args.file, key, bucket)
            rt.pump()
            return _started_outcome(rt)
        if args.command == "versions":
            return _listing(views.version_rows(rt), args.json, f"no model versions registered in "
                            f"{rt.workspace.root}{demo_workspace_hint(rt.workspace.root)}", format_version_row)
        if args.command == "approve":
            arn = rt.package_arn(args.package)
            desc = rt.aws.sm.describe_model_package(ModelPackageName=arn)
            print(format_version(rt, desc))
            desc = rt.approve(arn, approve=not args.reject, comment=args.comment)
            print(f"{arn}: {desc['ModelApprovalStatus']}")
            rt.pump()
            return _started_outcome(rt)
        if args.command == "ls":
            bucket, prefix = _bucket_key(rt, args.prefix)
            objs = []
            for page in rt.aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                objs += [{"key": o["Key"], "size": o["Size"], "last_modified": o["LastModified"].isoformat()}
                         for o in page.get("Contents", [])]
            return _listing(objs, args.json, f"no objects under s3://{bucket}/{prefix} in {rt.workspace.root}"
                            f"{demo_workspace_hint(rt.workspace.root)}",
                            lambda o: f"{o['last_modified'][:19]}  {o['size']:>12,}  s3://{bucket}/{o['key']}")
        if args.command == "rm":
            bucket, key = _bucket_key(rt, args.key)
            from .aws import list_keys
            keys = list_keys(rt.aws.s3, bucket, key) if args.recursive else [key]
            if not args.recursive:
                _require_object(rt, bucket, key)  # a missing key is an error (exit 2), not a no-op
            if not keys:
                raise NotFoundError(f"no objects under s3://{bucket}/{key}")
            for k in keys:
                rt.aws.s3.delete_object(Bucket=bucket, Key=k)
                print(f"delete: s3://{bucket}/{k}")
            return 0
        if args.command == "download":
            bucket, key = _bucket_key(rt, args.key)
            dest = args.dest or key.rsplit("/", 1)[-1]
            if os.path.isdir(dest):
                dest = os.path.join(dest, key.rsplit("/", 1)[-1])
            _require_object(rt, bucket, key)
            from .aws import get_file
            get_file(rt.aws.s3, bucket, key, dest)
            print(f"download: s3://{bucket}/{key} to {dest}")
            return 0
    return 2


def _bucket_key(rt, ref: str) -> tuple[str, str]:
    if ref.startswith("s3://"):
        from .aws import split_s3
        bucket, key = split_s3(ref)
        if not bucket:
            from .errors import UsageError
            raise UsageError(f"{ref!r} names no bucket: give s3://bucket/key or a key inside the tfvars bucket")
        return bucket, key
    return rt.bucket, ref


def _require_object(rt, bucket: str, key: str) -> None:
    from botocore.exceptions import ClientError

    from .errors import NotFoundError
    try:
        rt.aws.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
            raise
        raise NotFoundError(f"no object s3://{bucket}/{key} (`sm-local ls` lists the bucket)") from exc


def _started_outcome(rt) -> int:
    """1 when an execution this command started (directly or through the events it caused) failed."""
    failed = [e for e in rt.executions_run
              if rt.workspace.load_execution(e).get("PipelineExecutionStatus") != "Succeeded"]
    for e in failed:
        rec = rt.workspace.load_execution(e)
        print(f"sm-local: execution {e} of {rec['PipelineName']} {rec.get('PipelineExecutionStatus')} "
              f"(see `sm-local steps {e}`)", file=sys.stderr)
    return 1 if failed else 0


def format_version_row(v: dict) -> str:
    from .views import fmt_number
    metrics = " ".join(f"{k}={fmt_number(x)}" for k, x in v["metrics"].items())
    serving = " serving" if v["serving"] else ""
    return f"{v['ref']}  {v['status']:<22} {metrics}{serving}  {v['arn']}"


if __name__ == "__main__":
    sys.exit(main())
