"""Upsert every pipeline of contracts/pipelines.json for one environment (what the CI build jobs run).

    python tools/build_pipelines.py --env-file env_files/dev_env.tfvars
    python tools/build_pipelines.py --env-file env_files/prod_env.tfvars --model-package-arn ARN
    python tools/build_pipelines.py --env-file env_files/prod_env.tfvars --model-package-arn "" --deploy-reason withdraw
    python tools/build_pipelines.py --env-file ... --dry-run      # print the commands only

The pipelines come from contracts/pipelines.json (a new pipeline needs no CI change). Each builder runs as
`python -m <builder> --env-file F` with AWS_DEFAULT_REGION set from the tfvars' aws_region (the
SageMaker SDK creates a client at import and fails without a region).

A pipeline marked needs_approved_model exits 3 while no version is approved (first deploy): that
is reported and accepted. With --model-package-arn (the approval deploy that deploy_trigger.py
starts), only those pipelines are built, around exactly that version, and exit 3 is a failure. With
--deploy-reason withdraw and no ARN (the deploy after the serving version was rejected and none is Approved), only
those pipelines are built, around the latest Approved version or, with none, as a pipeline that refuses every
batch with the reason; exit 3 cannot happen and would be a failure.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline_scripts.config import load_env  # noqa: E402
from pipeline_scripts.contracts import PIPELINES  # noqa: E402
from pipeline_scripts.errors import ConfigError, NoApprovedModelError  # noqa: E402

NO_APPROVED_MODEL = NoApprovedModelError.exit_code
# arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version> (botocore ModelPackageArn pattern)
PACKAGE_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:model-package/[\S]{1,2048}$")


def plan(env_file: str, model_package_arn: str | None, only: list[str] | None,
         withdraw_if_none: bool = False) -> list[tuple[str, list[str], bool]]:
    """[(pipeline key, argv, exit 3 accepted)] in contract order."""
    keys = list(PIPELINES)
    unknown = sorted(set(only or []) - set(keys))
    if unknown:
        raise SystemExit(f"build_pipelines: unknown pipeline key(s) {', '.join(unknown)} (contracts/pipelines.json: {', '.join(keys)})")
    if only:
        keys = [k for k in keys if k in only]
    if model_package_arn or withdraw_if_none:
        keys = [k for k in keys if PIPELINES[k].needs_approved_model]
    steps = []
    for key in keys:
        contract = PIPELINES[key]
        argv = [sys.executable, "-m", contract.builder, "--env-file", env_file]
        if model_package_arn and contract.needs_approved_model:
            argv += ["--model-package-arn", model_package_arn]
        if withdraw_if_none and contract.needs_approved_model:
            argv += ["--withdraw-if-none"]
        steps.append((key, argv, contract.needs_approved_model and not (model_package_arn or withdraw_if_none)))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env-file", required=True, help="env_files/<env>_env.tfvars")
    parser.add_argument("--model-package-arn", default=None,
                        help="build only the pipelines that serve a model, around this approved version")
    parser.add_argument("--deploy-reason", choices=("approval", "rollback", "withdraw"), default=None,
                        help="the approval deploy's reason (.gitlab-ci.yml input deploy_reason); withdraw, with an "
                             "empty --model-package-arn: build the pipelines that serve a model around the latest "
                             "Approved version, or refusing every batch when none is left")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="contract pipeline keys to build (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and the region, run nothing")
    args = parser.parse_args(argv)
    withdraw = args.deploy_reason == "withdraw"
    if withdraw and args.model_package_arn:
        parser.error("--deploy-reason withdraw deploys no particular version: --model-package-arn must be empty")
    if args.model_package_arn == "" and not withdraw:
        parser.error("--model-package-arn is empty: an approval or rollback deploy serves a version")
    if args.model_package_arn and not PACKAGE_ARN.match(args.model_package_arn):
        parser.error(f"--model-package-arn {args.model_package_arn!r} is not a model package ARN "
                     "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)")
    try:
        env = load_env(args.env_file)
    except ConfigError as exc:
        print(f"build_pipelines: {exc}", file=sys.stderr)
        return exc.exit_code
    child_env = dict(os.environ, AWS_DEFAULT_REGION=env.region)
    print(f"AWS_DEFAULT_REGION={env.region} (from {args.env_file})")
    failed = []
    for key, cmd, exit3_ok in plan(args.env_file, args.model_package_arn or None, args.only, withdraw):
        print(f"$ {shlex.join(cmd[1:])}", flush=True)
        if args.dry_run:
            continue
        rc = subprocess.run(cmd, env=child_env, cwd=ROOT).returncode
        if rc == NO_APPROVED_MODEL and exit3_ok:
            print(f"{key}: skipped, no Approved model version yet (the approval deploy builds it)")
        elif rc != 0:
            failed.append(f"{key} (exit {rc})")
    if failed:
        print(f"build_pipelines: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
