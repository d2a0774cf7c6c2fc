"""Offline stand-in for the GitLab pipeline trigger API, so approval runs the whole cloud chain locally.

In the cloud: UpdateModelPackage -> "SageMaker Model Package State Change" -> the model_approved rule ->
deploy trigger Lambda -> POST {GITLAB_API_URL}/projects/:id/trigger/pipeline -> the GitLab pipeline's
build job re-runs the pipeline scripts, which rebuild the inference pipeline around the latest Approved
version. Offline, when the tfvars leave the GitLab trigger unset, the runtime points those variables at
this loopback server (token in a moto Secrets Manager secret, as in the cloud) and runs the build job
(the inference pipeline script, as `.gitlab-ci.yml` does) once the Lambda has returned.

The server is gitlab_api.GitLabAPI, the one GitLab stand-in (also the offline CI's, tools/gitlab_ci/): its
trigger API (https://docs.gitlab.com/ci/triggers/) checks token, inputs and pipeline variables as GitLab does
(the project's .gitlab-ci.yml spec:inputs; variables refused as on a new GitLab.com project; a wrong token
answers 404), so a broken secret or a renamed input fails the Lambda as it would in the cloud. What is added
here: the offline tfvars and wiring of the Lambda, and the build job of each triggered pipeline, recorded in
the workspace's gitlab/pipelines.jsonl (pipeline ids go on across sessions).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .gitlab_api import GitLabAPI

PROJECT_ID = "local%2Fmlops-template"
SECRET_NAME = "sm-local/gitlab-trigger-token"
PLACEHOLDER_URL = "https://gitlab.sm-local.invalid/api/v4"  # valid for variables.tf; replaced by the loopback URL
PLACEHOLDER_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sm-local/gitlab-trigger-token-AbCdEf"
PIPELINES = "gitlab/pipelines.jsonl"  # in the workspace: each pipeline and its build job's outcome


class LocalGitLab(GitLabAPI):
    """The project's GitLab for the runtime: its trigger API on loopback; each pipeline it creates waits in
    `pending` until run_pending() runs its build job."""

    def __init__(self, rt):
        super().__init__(Path(rt.repo_root) / ".gitlab-ci.yml", PROJECT_ID, on_trigger=self._queue,
                         pipelines_before=len(rt.workspace.read_jsonl(PIPELINES)))
        self.rt = rt
        self.pending: list[dict] = []

    @staticmethod
    def offline_tfvars(env_file: Path, workspace_root: Path) -> Path | None:
        """When the tfvars leave the GitLab trigger unset (the offline default), a copy of them that sets it to
        valid placeholders, so Terraform's deploy-trigger rule and Lambda exist offline as they do in an
        account with a trigger; wire() then points that Lambda at this server. None = the tfvars name a
        GitLab of their own (left alone)."""
        text = Path(env_file).read_text()
        keys = ("gitlab_project_id", "gitlab_api_url", "gitlab_trigger_token_secret_arn")
        set_ = {k: re.search(rf'^\s*{k}\s*=\s*"([^"]*)"', text, re.M) for k in keys}
        if set_["gitlab_project_id"] and set_["gitlab_project_id"].group(1) and \
                set_["gitlab_trigger_token_secret_arn"] and set_["gitlab_trigger_token_secret_arn"].group(1):
            return None
        kept = [line for line in text.splitlines() if not re.match(rf"^\s*({'|'.join(keys)})\s*=", line)]
        kept += ["", "# sm-local: the GitLab trigger points at the loopback stand-in (local_runtime/gitlab.py)",
                 f'gitlab_project_id = "{PROJECT_ID}"', f'gitlab_api_url = "{PLACEHOLDER_URL}"',
                 f'gitlab_trigger_token_secret_arn = "{PLACEHOLDER_SECRET}"']
        out = Path(workspace_root) / "gitlab" / f"offline-{Path(env_file).name}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(kept) + "\n")
        return out

    def wire(self, lambdas) -> int:
        """Point the deploy-trigger Lambda(s) set up from offline_tfvars() at this server, the token in a
        Secrets Manager secret as in the cloud; returns how many functions were wired."""
        sm = self.rt.aws.client("secretsmanager")
        try:
            arn = sm.create_secret(Name=SECRET_NAME, SecretString=json.dumps({"token": self.trigger_token}))["ARN"]
        except sm.exceptions.ResourceExistsException:  # long-lived AWS_ENDPOINT_URL server
            sm.put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps({"token": self.trigger_token}))
            arn = sm.describe_secret(SecretId=SECRET_NAME)["ARN"]
        wired = 0
        for fn in lambdas.functions.values():
            if fn["env"].get("GITLAB_API_URL") == PLACEHOLDER_URL:
                fn["env"].update(GITLAB_API_URL=self.api_url, GITLAB_TRIGGER_TOKEN_SECRET_ARN=arn)
                wired += 1
        return wired

    def _queue(self, pipeline: dict) -> None:
        """GitLabAPI's on_trigger: the pipeline's build job runs later, in the main thread (run_pending)."""
        job = {k: pipeline[k] for k in ("id", "ref", "inputs", "web_url")}
        with self._lock:
            self.pending.append(dict(job, created_at=time.time()))

    def run_pending(self) -> int:
        """Run the build job of each triggered pipeline (main thread: it calls moto and the SDK)."""
        with self._lock:
            jobs, self.pending = self.pending, []
        for job in jobs:
            withdraw = job["inputs"].get("deploy_reason") == "withdraw"
            what = "withdrawal: no version Approved" if withdraw else \
                f"deploy of {job['inputs'].get('model_package_arn') or '?'}"
            self.rt.say(f"  ⚙ GitLab pipeline #{job['id']} ({what}): rebuilding the inference pipeline")
            code = self.rt.deploy_inference(job['inputs'].get('model_package_arn') or None, withdraw_if_none=withdraw)
            job.update(exit_code=code, finished_at=time.time(),
                       outcome={0: "inference pipeline withdrawn (refuses batches until a version is approved)"
                                if withdraw else "inference pipeline rebuilt",
                                3: "no Approved version: inference pipeline left as is"}
                       .get(code, f"build job failed (exit {code})"))
            self.rt.workspace.append_jsonl(PIPELINES, job)
            self.rt.say(f"  ⚙ GitLab pipeline #{job['id']}: {job['outcome']}")
        return len(jobs)
