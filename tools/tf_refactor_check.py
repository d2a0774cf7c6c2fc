"""What a Terraform refactor does to an existing deployment, measured offline.

Applies the root module as it is at a git ref (default: main) against a moto server, then plans the
working tree's module on that state and prints every planned change: moves (migrations.tf), updates
with the attributes they touch, replacements, creations and deletions. A refactor that keeps every
behaviour plans moves only. The base module is planned again on its own state first: what that
re-plan shows is moto not storing an attribute (e.g. a Lambda's logging_config), not the refactor.

    python tools/tf_refactor_check.py [--base main] [--tfvars env_files/prod_env.tfvars]

Needs the terraform binary and the aws provider in a filesystem mirror (TF_PROVIDER_MIRROR, default
/opt/tf-plugins), as tests/component/test_terraform.py does. No network, fake credentials.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.terraform_offline import MIRROR, terraform_env  # noqa: E402
MODULE_FILES = ("contracts/pipelines.json", "contracts/tfvars_rules.json", "tags.json", "scripts/dataset_schema.json")
# Where the contract files lived before contracts/ (a base ref older than the move reads them there).
FORMER_MODULE_FILES = ("contracts.json", "tfvars_rules.json")
SERVICES = ("sts", "iam", "kms", "sns", "sqs", "dynamodb", "lambda", "events", "cloudwatchlogs", "cloudwatch", "s3")


def _override(endpoint: str) -> str:
    """The provider pointed at moto; state stays local (the http backend is GitLab's)."""
    endpoints = "\n".join(f'    {s} = "{endpoint}"' for s in SERVICES)
    return f"""terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {{
{endpoints}
  }}
}}
"""


def _module(dest: Path, files: dict[str, bytes], endpoint: str, lambda_zip: Path) -> Path:
    for name, data in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    (dest / "zz_refactor_check_override.tf").write_text(_override(endpoint))
    (dest / "build").mkdir(exist_ok=True)
    shutil.copy(lambda_zip, dest / "build" / "lambda_function.zip")
    return dest


def _files_at(ref: str) -> dict[str, bytes]:
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    wanted = [n for n in names if n.endswith(".tf") and "/" not in n] + [
        n for n in MODULE_FILES + FORMER_MODULE_FILES if n in names]
    return {n: subprocess.run(["git", "show", f"{ref}:{n}"], cwd=ROOT, capture_output=True, check=True).stdout
            for n in wanted}


def _files_in_worktree() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in ROOT.glob("*.tf")} | {n: (ROOT / n).read_bytes() for n in MODULE_FILES}


def _terraform(args: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"terraform {' '.join(args)} failed in {cwd}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def _changes(cwd: Path, tfvars: Path, env: dict) -> list[str]:
    _terraform(["plan", "-input=false", "-no-color", f"-var-file={tfvars}", "-out=plan.out"], cwd, env)
    plan = json.loads(_terraform(["show", "-json", "plan.out"], cwd, env))
    lines = []
    for rc in plan.get("resource_changes", []):
        actions, before, after = rc["change"]["actions"], rc["change"].get("before") or {}, rc["change"].get("after") or {}
        moved = f"{rc['previous_address']} -> " if rc.get("previous_address") else ""
        if actions == ["no-op"] or actions == ["read"]:
            if moved:
                lines.append(f"moved    {moved}{rc['address']}")
            continue
        touched = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        kind = "replace" if set(actions) == {"create", "delete"} else "+".join(actions)
        lines.append(f"{kind:8} {moved}{rc['address']} ({', '.join(touched)})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git ref whose Terraform is deployed first (default: main)")
    parser.add_argument("--tfvars", type=Path, default=ROOT / "env_files" / "prod_env.tfvars")
    args = parser.parse_args()
    if not shutil.which("terraform") or not MIRROR.is_dir():
        sys.exit(f"needs terraform on PATH and the aws provider under {MIRROR} (TF_PROVIDER_MIRROR)")

    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (test dependency, only this tool needs it)

    from pipeline_scripts import tfmodule  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # the Lambda roles attach AWSLambdaVPCAccessExecutionRole
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="tf-refactor-") as tmp:
            tmp = Path(tmp)
            tfvars = args.tfvars.resolve()
            env = dict(terraform_env(tmp), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                       AWS_DEFAULT_REGION=tfmodule.load(ROOT, tfvars).values["aws_region"])
            import boto3  # noqa: PLC0415
            boto3.client("s3", endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"], aws_access_key_id="testing",
                         aws_secret_access_key="testing").create_bucket(Bucket=tfmodule.load(ROOT, tfvars).values["bucket_name"])
            subprocess.run([sys.executable, str(ROOT / "tools" / "build_lambda.py"), "--out", str(tmp / "lambda.zip")],
                           check=True, capture_output=True)
            base = _module(tmp / "base", _files_at(args.base), endpoint, tmp / "lambda.zip")
            _terraform(["init", "-input=false", "-no-color"], base, env)
            _terraform(["apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={tfvars}"], base, env)
            noise = _changes(base, tfvars, env)
            head = _module(tmp / "head", _files_in_worktree(), endpoint, tmp / "lambda.zip")
            shutil.copy(base / "terraform.tfstate", head / "terraform.tfstate")
            _terraform(["init", "-input=false", "-no-color"], head, env)
            changes = _changes(head, tfvars, env)
    finally:
        server.stop()
    print(f"{args.base} re-planned on its own state (moto not storing attributes): {len(noise)}")
    print("\n".join(f"  {line}" for line in noise))
    print(f"working tree planned on the state of {args.base}: {len(changes)}")
    print("\n".join(f"  {line}" for line in changes))


if __name__ == "__main__":
    main()
