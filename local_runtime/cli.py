"""sm-local: run the template's SageMaker pipelines offline (moto + local processes).

AWS calls go to an embedded moto per command by default; its state is snapshotted to <workspace>/aws/
between commands. Set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:5000 of `moto_server`) to use a long-lived
endpoint instead. Workspace: --workspace or SM_LOCAL_WORKSPACE (default .local-sagemaker/).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys


def _params(values):
    out = {}
    for v in values or []:
        if "=" not in v:
            raise SystemExit(f"--param expects K=V, got {v!r}")
        k, val = v.split("=", 1)
        out[k] = val
    return out


UPSERT_MODULES = {"training": "training_pipeline", "hpo": "training_hpo_pipeline", "inference": "inference_pipeline"}


def upsert(rt, names: list[str], env_file: str) -> int:
    """Run the pipeline scripts against the runtime's AWS; exit code 3 of the inference script (no
    approved version yet) is reported, not fatal, as in the GitLab build job."""
    import importlib

    rt.aws.s3.create_bucket(Bucket=rt.tf.vars["bucket_name"])
    worst = 0
    for name in names or list(UPSERT_MODULES):
        module = importlib.import_module(f"pipeline_scripts.{UPSERT_MODULES[name]}")
        code = module.main(["--env-file", str(env_file), "--no-upload"])
        if code == 3 and not names:
            print("inference pipeline skipped until a model version is approved (then run `sm-local upsert inference`)")
            continue
        worst = max(worst, code)
    return worst


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sm-local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", default=None, help="state dir (default: SM_LOCAL_WORKSPACE or .local-sagemaker)")
    p.add_argument("--env-file", default=None,
                   help="tfvars (Terraform variables) to resolve *.tf with (default: env_file of [tool.sm-local])")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the whole MLOps story on the data set and check every expectation")
    d.add_argument("--output", default="demo-output", help="summary.json, reports and the demo workspace go here")
    d.add_argument("--rows", type=int, default=None, help="generate this many training rows instead of using data/*.csv")
    d.add_argument("--inference-rows", type=int, default=1000)
    d.add_argument("--drift-rows", type=int, default=None, help="rows of drifted inference data (default: --inference-rows)")
    up = sub.add_parser("upsert", help="create the bucket (as Terraform would) and upsert the pipelines with "
                                       "pipeline_scripts, exactly as the GitLab build job does")
    up.add_argument("pipelines", nargs="*", metavar="{training,hpo,inference}",
                    help="which pipelines (default: all three; inference only when a version is approved)")
    r = sub.add_parser("run", help="start an execution of an upserted pipeline and process the events it causes")
    r.add_argument("pipeline")
    r.add_argument("--param", action="append", metavar="K=V", help="pipeline parameter override (repeatable)")
    sub.add_parser("executions", help="list executions")
    s = sub.add_parser("steps", help="show the steps of an execution")
    s.add_argument("execution_id")
    s.add_argument("--json", action="store_true", help="print the full execution record")
    a = sub.add_parser("approve", help="approve (or --reject) a model package version")
    a.add_argument("package", help="model package ARN or <group>/<version>")
    a.add_argument("--reject", action="store_true")
    a.add_argument("--comment", default=None)
    sub.add_parser("notifications", help="print the notification outbox")
    rt_ = sub.add_parser("retry", help="retry a failed execution from its failed step")
    rt_.add_argument("execution_id")
    u = sub.add_parser("upload", help="upload a file into the bucket (emits S3 Object Created, may start pipelines)")
    u.add_argument("file")
    u.add_argument("key", help="S3 key inside the tfvars bucket (or s3://bucket/key)")
    sub.add_parser("versions", help="list model package versions with metrics and approval state")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [n for n in getattr(args, "pipelines", None) or [] if n not in UPSERT_MODULES]
    if unknown:
        parser.error(f"upsert: unknown pipeline(s) {', '.join(unknown)}; choose from {', '.join(UPSERT_MODULES)}")
    # Console: the runtime's own progress lines (print) and warnings; Lambda INFO logs go to the
    # workspace's lambda_invocations.jsonl, SDK chatter is dropped.
    from pipeline_scripts.console import configure_logging
    configure_logging(logging.WARNING)
    from botocore.exceptions import ClientError

    from .errors import RuntimeErrorBase
    try:
        return _run(args)
    except (RuntimeErrorBase, FileNotFoundError, KeyError, ClientError) as exc:
        # a wrong name, a missing file or a rejected AWS call: say what, no traceback
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"sm-local: error: {message}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "demo":
        from .demo import run_demo
        return run_demo(output=args.output, env_file=args.env_file, rows=args.rows,
                        inference_rows=args.inference_rows, drift_rows=args.drift_rows, workspace=args.workspace)
    from .runtime import Runtime
    from .workspace import Workspace

    if args.command == "executions":
        ws = Workspace(args.workspace)
        rows = ws.list_executions()
        if not rows:
            print(f"no executions in {ws.root}")
        for e in rows:
            print(f"{e['PipelineExecutionId']}  {e['PipelineName']:<26} {e['PipelineExecutionStatus'] or '-':<10} "
                  f"{e.get('DurationSeconds', 0) or 0:7.1f}s  {e['StartTime']}  {(e.get('FailureReason') or '')[:90]}")
        return 0
    if args.command == "steps":
        rec = Workspace(args.workspace).load_execution(args.execution_id)
        if args.json:
            print(json.dumps(rec, indent=2, default=str))
            return 0
        print(f"{rec['PipelineName']} {rec['PipelineExecutionId']} {rec['PipelineExecutionStatus']}  params={rec.get('Parameters')}")
        for n in rec["StepOrder"]:
            st = rec["Steps"][n]
            meta = ", ".join(f"{k}={v.get('Arn') or v.get('Outcome')}" for k, v in (st.get("Metadata") or {}).items() if isinstance(v, dict))
            print(f"  {n:<30} {st['StepType']:<14} {st['StepStatus']:<10} {st.get('DurationSeconds', 0):6.1f}s  {meta}")
            if st.get("FailureReason"):
                print(f"      reason: {st['FailureReason']}")
        return 0
    if args.command == "notifications":
        ws = Workspace(args.workspace)
        path = ws.root / "outbox" / "notifications.txt"
        print(path.read_text() if path.exists() else f"no notifications in {path}")
        return 0
    from .inspect import format_version

    with Runtime(workspace=args.workspace, env_file=args.env_file) as rt:
        if args.command == "upsert":
            return upsert(rt, args.pipelines, rt.env_file)
        if args.command == "run":
            rt.start_execution(args.pipeline, _params(args.param), {"type": "cli"})
            rt.pump()
            last = rt.workspace.load_execution(rt.executions_run[0])
            return 0 if last["PipelineExecutionStatus"] == "Succeeded" else 1
        if args.command == "retry":
            rt.bus.enqueue(("retry", args.execution_id))
            rt.pump()
            return 0 if rt.workspace.load_execution(args.execution_id)["PipelineExecutionStatus"] == "Succeeded" else 1
        if args.command == "upload":
            key = args.key
            bucket = None
            if key.startswith("s3://"):
                from .aws import split_s3
                bucket, key = split_s3(key)
            rt.upload(args.file, key, bucket)
            rt.pump()
            return 0
        if args.command == "versions":
            for d in rt.list_packages():
                print(format_version(rt, d))
            return 0
        if args.command == "approve":
            arn = rt.package_arn(args.package)
            desc = rt.aws.sm.describe_model_package(ModelPackageName=arn)
            print(format_version(rt, desc))
            desc = rt.approve(arn, approve=not args.reject, comment=args.comment)
            print(f"{arn}: {desc['ModelApprovalStatus']}")
            rt.pump()
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
