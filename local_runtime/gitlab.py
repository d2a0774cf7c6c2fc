"""Offline stand-in for the GitLab pipeline trigger API, so approval runs the whole cloud chain locally.

In the cloud: UpdateModelPackage -> "SageMaker Model Package State Change" -> the model_approved rule ->
deploy trigger Lambda -> POST {GITLAB_API_URL}/projects/:id/trigger/pipeline -> the GitLab pipeline's
build job re-runs the pipeline scripts, which rebuild the inference pipeline around the latest Approved
version. Offline, when the tfvars leave the GitLab trigger unset, the runtime points those variables at
this loopback server (token in a moto Secrets Manager secret, as in the cloud) and runs the build job
(the inference pipeline script, as `.gitlab-ci.yml` does) once the Lambda has returned.

API reference: https://docs.gitlab.com/ci/triggers/ (POST /projects/:id/trigger/pipeline with form
fields token, ref, inputs[NAME]; answers 201 with the pipeline object). Inputs and pipeline variables are
checked as GitLab checks them (gitlab_api.py: the project's .gitlab-ci.yml spec:inputs; variables refused as
on a new GitLab.com project). A wrong token answers 404 like GitLab does, so a broken secret fails the
Lambda as it would in the cloud.
"""
from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
import urllib.parse
import re
from pathlib import Path

from .gitlab_api import VARIABLES_REFUSED, check_inputs, input_spec

PROJECT_ID = "local%2Fmlops-template"
SECRET_NAME = "sm-local/gitlab-trigger-token"
PLACEHOLDER_URL = "https://gitlab.sm-local.invalid/api/v4"  # valid for variables.tf; replaced by the loopback URL
PLACEHOLDER_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sm-local/gitlab-trigger-token-AbCdEf"


class LocalGitLab:
    def __init__(self, rt):
        self.rt = rt
        self.token = "glptt-" + secrets.token_hex(10)
        self.pending: list[dict] = []
        self._lock = threading.Lock()
        gitlab = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                status, body = gitlab._trigger(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # requests are recorded in gitlab/pipelines.jsonl instead
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="sm-local-gitlab", daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/api/v4"

    def start(self) -> "LocalGitLab":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

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
            arn = sm.create_secret(Name=SECRET_NAME, SecretString=json.dumps({"token": self.token}))["ARN"]
        except sm.exceptions.ResourceExistsException:  # long-lived AWS_ENDPOINT_URL server
            sm.put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps({"token": self.token}))
            arn = sm.describe_secret(SecretId=SECRET_NAME)["ARN"]
        wired = 0
        for fn in lambdas.functions.values():
            if fn["env"].get("GITLAB_API_URL") == PLACEHOLDER_URL:
                fn["env"].update(GITLAB_API_URL=self.api_url, GITLAB_TRIGGER_TOKEN_SECRET_ARN=arn)
                wired += 1
        return wired

    def _trigger(self, path: str, form: dict) -> tuple[int, dict]:
        expected = f"/api/v4/projects/{PROJECT_ID}/trigger/pipeline"
        if urllib.parse.unquote(path) != urllib.parse.unquote(expected):
            return 404, {"message": "404 Project Not Found"}
        if not secrets.compare_digest(form.get("token", ""), self.token):
            return 404, {"message": "404 Not Found"}  # GitLab hides whether the project exists
        if any(k.startswith("variables[") for k in form):
            return 400, {"message": {"base": [VARIABLES_REFUSED]}}
        inputs, errors = check_inputs(input_spec(Path(self.rt.repo_root) / ".gitlab-ci.yml"),
                                      {k[len("inputs["):-1]: v for k, v in form.items() if k.startswith("inputs[")})
        if errors:
            return 400, {"message": {"base": [f"`.gitlab-ci.yml`: {e}" for e in errors]}}
        with self._lock:
            number = len(self.rt.workspace.read_jsonl("gitlab/pipelines.jsonl")) + len(self.pending) + 1
            job = {"id": number, "ref": form.get("ref"), "inputs": inputs, "created_at": time.time(),
                   "web_url": f"{self.api_url[:-7]}/local/mlops-template/-/pipelines/{number}"}
            self.pending.append(job)
        return 201, {"id": number, "status": "created", "ref": form.get("ref"), "web_url": job["web_url"]}

    def run_pending(self) -> int:
        """Run the build job of each triggered pipeline (main thread: it calls moto and the SDK)."""
        with self._lock:
            jobs, self.pending = self.pending, []
        for job in jobs:
            self.rt.say(f"  ⚙ GitLab pipeline #{job['id']} (deploy of {job['inputs'].get('model_package_arn') or '?'}): "
                        "rebuilding the inference pipeline")
            code = self.rt.deploy_inference(job['inputs'].get('model_package_arn') or None)
            job.update(exit_code=code, finished_at=time.time(),
                       outcome={0: "inference pipeline rebuilt", 3: "no Approved version: inference pipeline left as is"}
                       .get(code, f"build job failed (exit {code})"))
            self.rt.workspace.append_jsonl("gitlab/pipelines.jsonl", job)
            self.rt.say(f"  ⚙ GitLab pipeline #{job['id']}: {job['outcome']}")
        return len(jobs)
