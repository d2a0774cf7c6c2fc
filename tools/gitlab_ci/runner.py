"""Run .gitlab-ci.yml offline, job by job, as GitLab runs it: `make ci` (python -m tools.gitlab_ci).

Five pipelines, each as GitLab would create it:
  default   a push to the protected default branch: every job its rules select, the manual gates played in
            order (apply:dev, then staging and prod), against a local AWS and GitLab;
  trigger   the approval deploy: a model version is approved, the deploy trigger Lambda's handler
            (code/lambda_function/deploy_trigger.py) calls the GitLab trigger API, and the pipeline that call
            creates runs with its inputs;
  withdraw  that version, the only one, is rejected: the Lambda triggers a withdrawal (deploy_reason withdraw)
            and the pipeline rebuilds inference as a pipeline that refuses every batch;
  mr        a merge request from an unprotected branch: no protected variables, no AWS role;
  destroy   "Run pipeline" on the default branch with destroy_environment=<env>, for each environment.

Jobs are selected by GitLab's own rules, evaluated by gitlab-ci-local (--list-json), and run one at a time by it
(shell executor, --shell-isolation: each job in its own copy of the project, with the artifacts of its needs).
Each job gets what GitLab would give it and nothing else:
  - an environment as bare as its image (images.py), started with `env -i`;
  - GitLab's predefined variables for that pipeline (source, ref, protection, CI_JOB_TOKEN, CI_API_V4_URL);
  - project CI/CD variables: AWS_ROLE_ARN, environment-scoped and protected (only jobs of that environment on a
    protected ref get it);
  - AWS_ID_TOKEN only for jobs that declare id_tokens, with GitLab's claims (sub names project, ref type, ref);
  - a runner configuration: AWS_ENDPOINT_URL (moto, aws.py, which checks role trust against the token),
    a Terraform provider mirror (TF_CLI_CONFIG_FILE) and a package mirror (uv cache, offline; a wheelhouse
    for pip), as a company runner would have. Nothing reaches the network.
GitLab's API (Terraform state, trigger) is local_runtime/gitlab_api.py. Before the push, bootstrap/ is applied as an
admin would; after the pipelines, every AWS call a deploy role made is checked against the policy bootstrap/ gave
it (iam_policy_check.py): moto evaluates no IAM, so a missing permission would otherwise pass offline. The test job (`make test`) is the suite
that runs this, so it is skipped unless --with-test.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from local_runtime.gitlab_api import GitLabAPI  # noqa: E402
from tools.gitlab_ci import images  # noqa: E402
from tools.gitlab_ci.aws import LocalAWS  # noqa: E402

TOOLS = ROOT / ".ci-tools"
GCL = TOOLS / "node_modules" / "gitlab-ci-local" / "dist" / "index.js"
UV_CACHE = TOOLS / "uv-cache"
WHEELHOUSE = TOOLS / "wheelhouse"
ACCOUNT, REGION = "123456789012", "us-east-1"
PROJECT_PATH = "local/mlops-template"
PROJECT_ID = "1001"
SERVER = "https://gitlab.com"
ENVIRONMENTS = ("dev", "staging", "prod")
PROTECTED_REFS = ("main",)
FEATURE_BRANCH = "feature/ci-check"


# Calls the deploy role is denied on purpose and whose callers carry on, as they do in AWS: the SageMaker SDK's
# look for its default bucket (ListBuckets; the bucket is named in the tfvars) and the provider's read of the
# data bucket's website configuration (aws_s3_bucket data source: an AccessDenied leaves the attribute empty).
TOLERATED_DENIALS = {"s3:ListAllMyBuckets": "SageMaker SDK default-bucket lookup",
                     "s3:GetBucketWebsite": "aws_s3_bucket data source, optional attribute"}


class PipelineFailed(RuntimeError):
    pass


def _jwt(claims: dict) -> str:
    """An ID token as GitLab issues it (RS256 JWT). Unsigned here: the offline STS checks claims, not keys."""
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'RS256', 'typ': 'JWT', 'kid': 'offline'})}.{b64(claims)}.offline-signature"


def _resolve_jobs(ci_file: Path) -> dict[str, dict]:
    """Jobs with `extends` merged (GitLab deep-merges hashes; lists replace), for id_tokens/environment/image."""
    docs = [d for d in yaml.safe_load_all(ci_file.read_text()) if d is not None]
    ci = docs[-1]

    def merge(base, over):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    def resolve(name):
        job = ci[name]
        parents = job.get("extends", [])
        resolved = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            resolved = merge(resolved, resolve(parent))
        return merge(resolved, {k: v for k, v in job.items() if k != "extends"})

    keywords = {"stages", "workflow", "variables", "default", "include", "spec"}
    jobs = {n: resolve(n) for n in ci if n not in keywords and not n.startswith(".")}
    for job in jobs.values():
        image = job.get("image") or (ci.get("default") or {}).get("image")
        image = image.get("name") if isinstance(image, dict) else image
        job["_image"] = ci["variables"][image[1:]] if image and image.startswith("$") else image
    return jobs


class Runner:
    def __init__(self, work: Path, with_test: bool = False, promote: tuple[str, ...] = ENVIRONMENTS, log=print):
        self.work, self.with_test, self.promote, self.log = work, with_test, promote, log
        self.strict_iam, self.iam_denied = True, []
        self.project = work / "project"
        self.results: list[dict] = []
        self.job_ids: dict[str, str] = {}
        self._next_job_id = 5000
        self.approved: dict[str, str] = {}  # environment -> the version approve_and_trigger approved
        self.trigger_secrets: dict[str, str] = {}  # environment -> the trigger token's secret ARN

    # ------------------------------------------------------------------ setup
    def snapshot(self) -> None:
        """The project as a fresh git checkout of the working tree (tracked and untracked, not ignored)."""
        shutil.rmtree(self.project, ignore_errors=True)
        self.project.mkdir(parents=True)
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                               check=True).stdout.decode().split("\0")
        for name in filter(None, files):
            src = ROOT / name
            if src.is_file():
                (self.project / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, self.project / name)
        git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "offline CI"],
                     ["remote", "add", "origin", f"{SERVER}/{PROJECT_PATH}.git"]):
            subprocess.run(git + args, cwd=self.project, check=True, capture_output=True)
        self.jobs = _resolve_jobs(self.project / ".gitlab-ci.yml")

    def start_services(self) -> None:
        import logging
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        # AWS managed policies exist in every account (the Lambda roles attach AWSLambdaVPCAccessExecutionRole)
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        self.aws = LocalAWS(ACCOUNT, REGION).start()
        self.gitlab = GitLabAPI(self.project / ".gitlab-ci.yml", PROJECT_ID, self.work / "terraform-state").start()
        self.tf_config = self.work / "terraformrc"
        mirror = os.environ.get("TF_PROVIDER_MIRROR", "/opt/tf-plugins")
        self.tf_config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n'
                                  "disable_checkpoint = true\n")

    def stop_services(self) -> None:
        self.gitlab.stop()
        self.aws.stop()

    def bootstrap_account(self) -> None:
        """What an admin does once per account before the first push (README: Deploy to AWS): the data buckets
        and SageMaker execution roles the tfvars name (the SDK checks at build time that the role exists and
        trusts sagemaker.amazonaws.com), then `terraform apply` of bootstrap/ per environment with that
        environment's tfvars: the GitLab OIDC provider and the deploy role, its trust and its policy."""
        from pipeline_scripts.config import load_env
        s3, iam = self._admin("s3"), self._admin("iam")
        sagemaker_trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        self.role_arns, self.policies = {}, {}
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.work / "gcl-home"), "TF_IN_AUTOMATION": "1",
               "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(self.tf_config),
               "AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "admin", "AWS_REGION": REGION,
               "AWS_ENDPOINT_URL": self.aws.endpoint}
        for i, name in enumerate(ENVIRONMENTS):
            tfvars = self.project / "env_files" / f"{name}_env.tfvars"
            cfg = load_env(str(tfvars))
            try:
                s3.create_bucket(Bucket=cfg.bucket_name)
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
            try:
                iam.create_role(RoleName=cfg.role_arn.rsplit("/", 1)[-1], AssumeRolePolicyDocument=json.dumps(sagemaker_trust))
            except iam.exceptions.EntityAlreadyExistsException:
                pass
            module = self.work / "bootstrap" / name
            shutil.copytree(self.project, module.parent / "src", dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git*"))
            workdir = module.parent / "src" / "bootstrap"
            state = module.with_suffix(".tfstate")
            args = [f"-var-file={tfvars}", f"-var=gitlab_project_path={PROJECT_PATH}", f"-var=gitlab_url={SERVER}",
                    f"-var=create_oidc_provider={'true' if i == 0 else 'false'}", f"-state={state}"]
            for cmd in (["init", "-input=false", "-no-color"],
                        ["apply", "-auto-approve", "-input=false", "-no-color", *args]):
                proc = subprocess.run(["terraform", *cmd], cwd=workdir, env=env, capture_output=True, text=True,
                                      timeout=600)
                if proc.returncode != 0:
                    raise PipelineFailed(f"bootstrap/ for {name}: terraform {cmd[0]} failed:\n"
                                         f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
            out = json.loads(subprocess.run(["terraform", "output", "-json", f"-state={state}"], cwd=workdir, env=env,
                                            capture_output=True, text=True, check=True).stdout)
            role = out["role_arn"]["value"]
            self.role_arns[name] = role
            role_name = role.rsplit("/", 1)[-1]
            self.policies[role] = [iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
                                   for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]]
            self.log(f"  bootstrap/ applied for {name}: {role}")

    def denied_calls(self) -> list[dict]:
        """The calls the deploy roles made that their policies (as bootstrap/ wrote them) do not allow. A KMS
        call carries its key's tags (aws:ResourceTag conditions), read from the account as IAM reads them."""
        from tools.gitlab_ci.iam_policy_check import denied_calls
        kms = self._admin("kms")
        tags: dict[str, dict] = {}

        def key_tags(key_id: str) -> dict:
            if key_id not in tags:
                try:
                    key = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"]
                    tags[key_id] = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]}
                except Exception:  # noqa: BLE001 (a key destroyed since: its tags are unknown, the check stays strict)
                    tags[key_id] = {}
            return tags[key_id]

        denied = []
        for role, documents in self.policies.items():
            calls = []
            for c in self.aws.calls:
                if c.get("role") != role:
                    continue
                call = dict(c, job=self.job_ids.get(c.get("job") or "", c.get("job")), params=dict(c.get("params") or {}))
                params = call["params"]
                key_ref = next((v for v in (params.get("KeyId"), params.get("TargetKeyId"), params.get("KMSKeyArn"),
                                            (params.get("SSESpecification") or {}).get("KMSMasterKeyId"))
                                if isinstance(v, str) and v), None)
                if key_ref:
                    call["resource_tags"] = key_tags(key_ref)
                if c["service"] == "kms" and str(params.get("KeyId", "")).startswith("alias/"):
                    # KMS authorizes an alias request on the key it names; kms:RequestAlias carries the alias
                    call["context"] = {"kms:RequestAlias": params["KeyId"]}
                    try:
                        params["KeyId"] = kms.describe_key(KeyId=params["KeyId"])["KeyMetadata"]["Arn"]
                    except Exception:  # noqa: BLE001 (an alias that does not exist: checked as named)
                        pass
                calls.append(call)
            docs = [json.loads(urllib.parse.unquote(d)) if isinstance(d, str) else d for d in documents]
            denied += [d for d in denied_calls(calls, docs, region=REGION, account=ACCOUNT)
                       if d["action"] not in TOLERATED_DENIALS]
        return denied

    # ------------------------------------------------------------------ one pipeline
    def _gcl(self, args: list[str], variables: dict, inputs: dict, unset: list[str], env: dict,
             capture: bool = True) -> subprocess.CompletedProcess:
        node = images.node()
        cmd = [node, str(GCL), "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source",
               "--state-dir", ".gitlab-ci-local", "--ignore-predefined-vars", ",".join(sorted(variables))]
        for k, v in variables.items():
            cmd += ["--variable", f"{k}={v}"]
        for k, v in inputs.items():
            cmd += ["--input", f"{k}={v}"]
        for k in unset:
            cmd += ["--unset-variable", k]
        # gitlab-ci-local itself needs git and rsync on its own PATH; the job's PATH is a variable
        base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.work / "gcl-home"), "LANG": "C.UTF-8"}
        (self.work / "gcl-home").mkdir(exist_ok=True)
        return subprocess.run(cmd + args, cwd=self.project, env={**base, **env}, capture_output=capture, text=True,
                              timeout=1800)

    def _pipeline_variables(self, kind: str, ref: str, protected: bool) -> tuple[dict, list[str]]:
        v = {"CI_PIPELINE_SOURCE": kind, "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_REF_NAME": ref,
             "CI_COMMIT_REF_SLUG": ref.replace("/", "-"), "CI_COMMIT_REF_PROTECTED": str(protected).lower(),
             "CI_API_V4_URL": self.gitlab.api_url, "CI_PROJECT_ID": PROJECT_ID, "CI_PROJECT_PATH": PROJECT_PATH,
             "CI_SERVER_URL": SERVER}
        unset = []
        if kind == "merge_request_event":
            v.update(CI_MERGE_REQUEST_IID="7", CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=ref,
                     CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main")
            unset.append("CI_COMMIT_BRANCH")  # GitLab does not set it in merge request pipelines
        else:
            v["CI_COMMIT_BRANCH"] = ref
        return v, unset

    def run_pipeline(self, name: str, kind: str, ref: str, inputs: dict | None = None) -> list[dict]:
        inputs = inputs or {}
        protected = ref in PROTECTED_REFS and kind != "merge_request_event"
        variables, unset = self._pipeline_variables(kind, ref, protected)
        listed = self._gcl(["--list-json"], variables, inputs, unset, {})
        if listed.returncode != 0:
            raise PipelineFailed(f"{name}: gitlab-ci-local refused the pipeline:\n{listed.stdout[-2000:]}{listed.stderr[-2000:]}")
        jobs = [j for j in json.loads(listed.stdout[listed.stdout.index("["):]) if j["when"] != "never"]
        if not jobs:
            # GitLab creates no pipeline whose rules select no job: the API answers 400 "No stages / jobs for
            # this pipeline" (and a trigger call fails), so an empty pipeline is a failure here, not a pass
            raise PipelineFailed(f"{name}: no job's rules select this pipeline ({kind}, ref {ref}, inputs "
                                 f"{json.dumps(inputs)}): GitLab would refuse to create it")
        self.log(f"\n== pipeline {name} ({kind}, ref {ref}{', protected' if protected else ''}"
                 f"{', inputs ' + json.dumps(inputs) if inputs else ''}): {', '.join(j['name'] for j in jobs)}")
        results, not_run = [], set()
        for job in jobs:
            spec = self.jobs[job["name"]]
            environment = (spec.get("environment") or {}).get("name")
            needs = {n if isinstance(n, str) else n["job"] for n in spec.get("needs") or []}
            if (job["when"] == "manual" and kind != "web" and environment not in self.promote) or needs & not_run:
                # an optional manual gate nobody plays, and what needs it: GitLab leaves them waiting
                not_run.add(job["name"])
                self.log(f"  - {job['name']}: not played (manual promotion of {environment or 'a job'} not requested)"
                         if job["when"] == "manual" else f"  - {job['name']}: waits for {', '.join(sorted(needs & not_run))}")
                self.results.append({"pipeline": name, "job": job["name"], "status": "not played", "seconds": 0.0})
                continue
            results.append(self._run_job(name, job, variables, inputs, unset, protected, ref))
            if results[-1]["status"] == "failed":
                raise PipelineFailed(f"{name}: job {job['name']} failed:\n{results[-1]['log']}")
        return results

    def _run_job(self, pipeline: str, job: dict, variables: dict, inputs: dict, unset: list[str], protected: bool,
                 ref: str) -> dict:
        name = job["name"]
        if name == "test" and not self.with_test:
            self.log(f"  - {name}: skipped (it is `make test`, the suite that runs this; --with-test runs it)")
            result = {"pipeline": pipeline, "job": name, "status": "skipped", "seconds": 0.0}
            self.results.append(result)
            return result
        spec = self.jobs[name]
        self._next_job_id += 1
        job_id = str(self._next_job_id)
        self.job_ids[job_id] = f"{pipeline}/{name}"
        token = "glcbt-" + secrets.token_hex(12)
        self.gitlab.job_tokens.add(token)
        job_vars = dict(variables, CI_JOB_TOKEN=token, CI_JOB_ID=job_id, CI_PROJECT_DIR=str(_gcl_build_dir(self.project, name)))
        environment = (spec.get("environment") or {}).get("name")
        # project CI/CD variables: AWS_ROLE_ARN is environment-scoped and protected
        if environment in self.role_arns and protected:
            job_vars["AWS_ROLE_ARN"] = self.role_arns[environment]
        for token_name, token_spec in (spec.get("id_tokens") or {}).items():
            job_vars[token_name] = _jwt({
                "iss": SERVER, "aud": token_spec["aud"], "sub": f"project_path:{PROJECT_PATH}:ref_type:branch:ref:{ref}",
                "project_path": PROJECT_PATH, "ref": ref, "ref_type": "branch", "ref_protected": str(protected).lower(),
                "environment": environment or "", "job_id": job_id, "pipeline_source": variables["CI_PIPELINE_SOURCE"]})
        image_env = images.prepare(spec["_image"], self.work / "jobs" / job_id)
        # the runner's configuration, as a company runner would set it (not GitLab variables of the project)
        # the SDKs' credential providers call STS before any service endpoint applies: AWS_ENDPOINT_URL_STS
        job_vars.update(PATH=image_env["PATH"], AWS_ENDPOINT_URL=self.aws.endpoint, AWS_ENDPOINT_URL_STS=self.aws.endpoint, TF_CLI_CONFIG_FILE=str(self.tf_config),
                        UV_CACHE_DIR=str(UV_CACHE), UV_OFFLINE="1", UV_LINK_MODE="copy", UV_NO_PROGRESS="1",
                        PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE), PIP_DISABLE_PIP_VERSION_CHECK="1",
                        PIP_ROOT_USER_ACTION="ignore")
        if "VIRTUAL_ENV" in image_env:  # the job's shell needs it; gitlab-ci-local itself does not
            job_vars["VIRTUAL_ENV"] = image_env["VIRTUAL_ENV"]
        env = {"HOME": image_env["HOME"]}
        manual = ["--manual", name] if job["when"] == "manual" else []
        t0 = time.monotonic()
        proc = self._gcl(manual + [name], job_vars, inputs, unset, env)
        seconds = time.monotonic() - t0
        log = (proc.stdout + proc.stderr)
        status = "passed" if proc.returncode == 0 else "failed"
        self.log(f"  {'✓' if status == 'passed' else '✗'} {name} ({job['when']}, {spec['_image']}) {seconds:.1f} s")
        result = {"pipeline": pipeline, "job": name, "status": status, "seconds": round(seconds, 1), "when": job["when"],
                  "image": spec["_image"], "log": log[-6000:]}
        (self.work / "logs").mkdir(exist_ok=True)
        (self.work / "logs" / f"{pipeline}-{name.replace(':', '-')}.log").write_text(log)
        self.results.append(result)
        return result

    # ------------------------------------------------------------------ the approval deploy
    def _admin(self, service: str):
        """A client of the local AWS with the account's admin credentials (not a deploy role)."""
        import boto3
        return boto3.client(service, endpoint_url=self.aws.endpoint, region_name=REGION, aws_access_key_id="admin",
                            aws_secret_access_key="admin")

    def approve_and_trigger(self, env: str = "dev") -> dict:
        """Register and approve a model version, run the deploy trigger Lambda's handler with the environment
        Terraform gives it (GitLab settings pointed at the local GitLab), and return the pipeline it created."""
        from pipeline_scripts.config import load_env
        cfg = load_env(str(ROOT / "env_files" / f"{env}_env.tfvars"))
        sm = self._admin("sagemaker")
        group = cfg.model_package_group_name
        try:
            sm.create_model_package_group(ModelPackageGroupName=group)
        except sm.exceptions.ClientError:
            pass
        image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
        # what the training pipeline's registration step writes (the pipelines run in SageMaker, not in CI)
        baseline = {"ContentType": "application/json"}
        arn = sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": image, "ModelDataUrl": cfg.s3_uri("model", "model.tar.gz")}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            DriftCheckBaselines={"ModelDataQuality": {
                "Statistics": dict(baseline, S3Uri=cfg.s3_uri("baseline", "statistics.json")),
                "Constraints": dict(baseline, S3Uri=cfg.s3_uri("baseline", "constraints.json"))}})["ModelPackageArn"]
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        self.approved[env] = arn
        return self._deploy_trigger(env, group, arn, "Approved")

    def reject_and_trigger(self, env: str = "dev") -> dict:
        """Reject the version approve_and_trigger approved, the only one: the deploy trigger Lambda withdraws the
        inference pipeline (deploy_reason withdraw); returns the pipeline it created."""
        from pipeline_scripts.config import load_env
        arn = self.approved.pop(env)
        self._admin("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
        return self._deploy_trigger(env, load_env(str(ROOT / "env_files" / f"{env}_env.tfvars")).model_package_group_name,
                                    arn, "Rejected")

    def _deploy_trigger(self, env: str, group: str, arn: str, status: str) -> dict:
        """The deploy trigger Lambda's handler on the state change of ``arn``, in a process of its own with the
        environment Terraform gives it; returns the GitLab pipeline it created."""
        if env not in self.trigger_secrets:
            self.trigger_secrets[env] = self._admin("secretsmanager").create_secret(
                Name=f"gitlab-trigger-{env}", SecretString=json.dumps({"token": self.gitlab.trigger_token}))["ARN"]
        secret = self.trigger_secrets[env]
        table = next(t for t in self._admin("dynamodb").list_tables()["TableNames"] if "idempotency" in t and env in t)
        lambda_env = {"GITLAB_API_URL": self.gitlab.api_url, "GITLAB_PROJECT_ID": PROJECT_ID,
                      "GITLAB_TRIGGER_TOKEN_SECRET_ARN": secret, "GITLAB_TRIGGER_REF": "main",
                      "MODEL_PACKAGE_GROUP_NAME": group, "DEPLOY_ENVIRONMENT": env, "IDEMPOTENCY_TABLE": table,
                      "AWS_ENDPOINT_URL": self.aws.endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                      "AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "admin"}
        event = {"version": "0", "id": f"offline-{status.lower()}-{secrets.token_hex(4)}", "source": "aws.sagemaker",
                 "detail-type": "SageMaker Model Package State Change", "account": ACCOUNT, "region": REGION,
                 "time": "2026-01-01T00:00:00Z", "resources": [arn],
                 "detail": {"ModelPackageGroupName": group, "ModelPackageArn": arn,
                            "ModelPackageVersion": int(arn.rsplit("/", 1)[-1]), "ModelApprovalStatus": status}}
        code = self.project / "code" / "lambda_function"
        script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import deploy_trigger\n"
                  "class Ctx:\n    aws_request_id = 'offline'\n    function_name = 'deploy-trigger'\n"
                  "    def get_remaining_time_in_millis(self): return 60000\n"
                  "print(json.dumps(deploy_trigger.lambda_handler(json.loads(sys.argv[2]), Ctx())))")
        triggered_before = len(self.gitlab.triggered)
        proc = subprocess.run([sys.executable, "-c", script, str(code), json.dumps(event)], capture_output=True,
                              text=True, env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **lambda_env},
                              timeout=120)
        if proc.returncode != 0:
            raise PipelineFailed(f"deploy trigger Lambda failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        if len(self.gitlab.triggered) == triggered_before:
            raise PipelineFailed(f"deploy trigger Lambda created no pipeline: {proc.stdout}")
        self.log(f"\n  {status} {arn} -> deploy trigger Lambda -> GitLab pipeline #{self.gitlab.triggered[-1]['id']}")
        return self.gitlab.triggered[-1]

    # ------------------------------------------------------------------ all of it
    def run(self, pipelines: list[str]) -> int:
        self.snapshot()
        self.start_services()
        failed = None
        try:
            self.bootstrap_account()
            for name in pipelines:
                if name == "default":
                    self.run_pipeline("default", "push", "main")
                elif name == "trigger":
                    triggered = self.approve_and_trigger("dev")
                    self.run_pipeline("trigger", "trigger", triggered["ref"], triggered["inputs"])
                elif name == "withdraw":
                    triggered = self.reject_and_trigger("dev")
                    self.run_pipeline("withdraw", "trigger", triggered["ref"], triggered["inputs"])
                elif name == "mr":
                    self.run_pipeline("mr", "merge_request_event", FEATURE_BRANCH)
                elif name == "destroy":
                    for env in reversed(self.promote):
                        self.run_pipeline(f"destroy-{env}", "web", "main", {"destroy_environment": env})
                else:
                    raise SystemExit(f"unknown pipeline {name!r} (default, trigger, withdraw, mr, destroy)")
            # moto does not evaluate IAM: every call the deploy roles made is checked against the policy bootstrap/
            # gave them (a condition the request cannot show reads as denied, the stricter reading)
            self.iam_denied = self.denied_calls()
            (self.work / "iam-denied.json").write_text(json.dumps(self.iam_denied, indent=1))
            self.log(f"\n  IAM: {len(self.iam_denied)} of {sum(bool(c.get('role')) for c in self.aws.calls)} calls of the "
                     f"deploy roles not allowed by bootstrap/'s policy (listed in {self.work / 'iam-denied.json'})")
            if self.iam_denied and self.strict_iam:
                raise PipelineFailed("calls the deploy role's policy (bootstrap/) does not allow:\n" + "\n".join(
                    f"  {d['job']}: {d['action']} on {d['resource']}" for d in self.iam_denied[:40]))
        except PipelineFailed as exc:
            failed = str(exc)
        finally:
            self.stop_services()
            self._write_summary(failed)
        if failed:
            self.log(f"\nFAILED: {failed}")
            return 1
        passed = sum(r["status"] == "passed" for r in self.results)
        skipped = sum(r["status"] == "skipped" for r in self.results)
        self.log(f"\n{passed} jobs passed, 0 failed, {skipped} skipped; calls to AWS: {len(self.aws.calls)}; "
                 f"summary: {self.work / 'summary.json'}")
        return 0

    def _write_summary(self, failed: str | None) -> None:
        calls = [dict(c, job=self.job_ids.get(c.get("job") or "", c.get("job"))) for c in self.aws.calls]
        (self.work / "calls.json").write_text(json.dumps(calls, indent=1, default=str))
        (self.work / "summary.json").write_text(json.dumps({
            "failed": failed, "jobs": [{k: v for k, v in r.items() if k != "log"} for r in self.results],
            "refused_assume_role": self.aws.refused, "triggered": self.gitlab.triggered,
            "iam_denied": self.iam_denied}, indent=1, default=str))


def _gcl_build_dir(project: Path, job: str) -> Path:
    """Where gitlab-ci-local's --shell-isolation runs a job: its safe job name, each run of [^\\w-] characters
    replaced by its unpadded base64url (`plan:dev` -> `planOgdev`)."""
    safe = re.sub(r"[^\w-]+", lambda m: base64.urlsafe_b64encode(m.group(0).encode()).decode().rstrip("="), job)
    return project / ".gitlab-ci-local" / "builds" / safe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="default,trigger,withdraw,mr,destroy",
                        help="which pipelines, in order (default: default,trigger,mr,destroy)")
    parser.add_argument("--with-test", action="store_true", help="also run the test job (make test, minutes)")
    parser.add_argument("--promote", default=",".join(ENVIRONMENTS),
                        help="environments whose manual apply is played, and later destroyed (default: dev,staging,prod)")
    parser.add_argument("--no-iam-gate", action="store_true",
                        help="report calls the deploy role's policy does not allow, without failing (to draft a policy)")
    parser.add_argument("--work", type=Path, default=TOOLS / "run", help="working folder (wiped)")
    args = parser.parse_args(argv)
    missing = [what for what, ok in (("node", images.node()), ("gitlab-ci-local (make .ci-tools/.installed)", GCL.exists()),
                                     ("rsync", shutil.which("rsync")), ("terraform", images.terraform_version()),
                                     ("the package mirror (make .ci-tools/.installed)", UV_CACHE.is_dir()))
               if not ok]
    if missing:
        print(f"gitlab_ci: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    promote = tuple(e for e in ENVIRONMENTS if e in args.promote.split(","))
    if "dev" not in promote:
        parser.error("--promote must include dev (staging and prod are promoted from it)")
    runner = Runner(args.work, with_test=args.with_test, promote=promote)
    runner.strict_iam = not args.no_iam_gate
    return runner.run(args.pipelines.split(","))


if __name__ == "__main__":
    sys.exit(main())
