"""A loopback stand-in for the parts of GitLab's REST API the template calls, as strict as GitLab.

- Pipeline trigger API, POST /projects/:id/trigger/pipeline (https://docs.gitlab.com/ci/triggers/): form fields
  token, ref, inputs[NAME] (GitLab 18.1+) and variables[NAME]. Inputs are checked against the spec:inputs
  header of the project's .gitlab-ci.yml as GitLab checks them (https://docs.gitlab.com/ci/inputs/): an
  undeclared name, a value outside `options` or not matching `regex` is refused with HTTP 400. Pipeline
  variables are refused with GitLab's "Insufficient permissions to set pipeline variables" unless the
  project allows them: new GitLab.com projects default to pipeline_variables_minimum_override_role =
  no_one_allowed (https://docs.gitlab.com/ci/variables/#restrict-pipeline-variables), so that is the default
  here. A wrong token answers 404, as GitLab does (it hides whether the project exists).
- GitLab-managed Terraform state (https://docs.gitlab.com/user/infrastructure/iac/terraform_state/), the
  protocol of Terraform's http backend (https://developer.hashicorp.com/terraform/language/backend/http):
  GET/POST/DELETE .../terraform/state/:name and POST/DELETE .../terraform/state/:name/lock, HTTP basic auth
  gitlab-ci-token:<CI_JOB_TOKEN> of a running job. No state: 204. A held lock: 423 with the holder's lock info;
  a write under another lock id: 409. Wrong credentials: 401. Without a state directory (the runtime's
  stand-in, gitlab.py), these routes answer 404.
"""
from __future__ import annotations

import base64
import http.server
import json
import re
import secrets
import threading
import urllib.parse
from pathlib import Path
from typing import Callable

import yaml

from .loopback import HOST, LoopbackServer

VARIABLES_REFUSED = "Insufficient permissions to set pipeline variables"


def input_spec(ci_file: Path) -> dict:
    """spec:inputs of a .gitlab-ci.yml (its first YAML document when the file has a header), {} without one."""
    docs = [d for d in yaml.safe_load_all(_without_references(Path(ci_file).read_text())) if d is not None]
    if len(docs) == 2 and isinstance(docs[0], dict) and "spec" in docs[0]:
        return (docs[0]["spec"] or {}).get("inputs") or {}
    return {}


def _without_references(text: str) -> str:
    return text.replace("!reference", "")  # GitLab's YAML tag; the header never uses it


def check_inputs(spec: dict, given: dict) -> tuple[dict, list[str]]:
    """(inputs with defaults filled in, errors) as GitLab validates a pipeline's inputs."""
    errors = [f"unknown input name provided: `{name}`" for name in sorted(set(given) - set(spec))]
    values = {}
    for name, rule in spec.items():
        rule = rule or {}
        if name in given:
            value = given[name]
        elif "default" in rule:
            value = rule["default"]
        else:
            errors.append(f"`{name}` input: required value has not been provided")
            continue
        if "options" in rule and value not in rule["options"]:
            errors.append(f"`{name}` input: `{value}` cannot be used because it is not in the list of allowed options")
        if "regex" in rule and not re.search(rule["regex"], str(value)):
            errors.append(f"`{name}` input: provided value does not match required RegEx pattern")
        values[name] = value
    return values, errors


class GitLabAPI(LoopbackServer):
    """project_id: the project's numeric id or its path (either form is accepted in request paths, as GitLab
    does). state_dir: where the Terraform states are kept (None: no Terraform state API). pipelines_before: how
    many pipelines the project ran before this server (ids go on from there). on_trigger: called with each
    pipeline the trigger API creates (in the request's thread, before the answer)."""

    def __init__(self, ci_file: Path, project_id: str, state_dir: Path | None = None,
                 allow_pipeline_variables: bool = False, on_trigger: Callable[[dict], None] | None = None,
                 pipelines_before: int = 0):
        self.ci_file, self.project_id = Path(ci_file), str(project_id)
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.allow_pipeline_variables = allow_pipeline_variables
        self.on_trigger = on_trigger
        self.pipelines_before = pipelines_before
        self.trigger_token = "glptt-" + secrets.token_hex(10)
        self.job_tokens: set[str] = set()
        self.triggered: list[dict] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body=None):
                data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = api.handle(method, self.path, self.headers, body)
                self._answer(status, answer)

            def do_GET(self):  # noqa: N802 (http.server API)
                self._route("GET")

            def do_POST(self):  # noqa: N802
                self._route("POST")

            def do_DELETE(self):  # noqa: N802
                self._route("DELETE")

            def log_message(self, *args):  # requests are kept in api.requests
                pass

        super().__init__(http.server.ThreadingHTTPServer((HOST, 0), Handler), "gitlab-api")

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    def _web_url(self, pipeline_id: int) -> str:
        """A pipeline's page: under the project's path when the project is named by its path."""
        project = urllib.parse.unquote(self.project_id)
        return f"{self.url}{'' if project.isdigit() else '/' + project}/-/pipelines/{pipeline_id}"

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, object]:
        path = urllib.parse.urlsplit(raw_path)
        project = urllib.parse.quote(urllib.parse.unquote(self.project_id), safe="")
        prefix = f"/api/v4/projects/{project}/"
        route = path.path
        # GitLab accepts the project's id or its URL-encoded path; compare encoded forms
        if not urllib.parse.quote(urllib.parse.unquote(route), safe="/").startswith(urllib.parse.quote(urllib.parse.unquote(prefix), safe="/")):
            return 404, {"message": "404 Project Not Found"}
        rest = urllib.parse.unquote(route)[len(urllib.parse.unquote(prefix)):]
        with self._lock:
            self.requests.append({"method": method, "path": rest})
        if rest == "trigger/pipeline" and method == "POST":
            return self._trigger(dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)))
        m = re.fullmatch(r"terraform/state/([A-Za-z0-9._-]+)(/lock)?", rest)
        if m and self.state_dir is not None:
            if not self._job_authenticated(headers):
                return 401, {"message": "401 Unauthorized"}
            query = dict(urllib.parse.parse_qsl(path.query))
            return self._state(method, m.group(1), bool(m.group(2)), query, body)
        return 404, {"message": "404 Not Found"}

    def _job_authenticated(self, headers) -> bool:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user == "gitlab-ci-token" and password in self.job_tokens

    # ------------------------------------------------------------------ trigger API
    def _trigger(self, form: dict) -> tuple[int, object]:
        if not secrets.compare_digest(form.get("token", ""), self.trigger_token):
            return 404, {"message": "404 Not Found"}
        if not form.get("ref"):
            return 400, {"error": "ref is missing"}
        variables = {k[len("variables["):-1]: v for k, v in form.items() if k.startswith("variables[")}
        given = {k[len("inputs["):-1]: v for k, v in form.items() if k.startswith("inputs[")}
        if variables and not self.allow_pipeline_variables:
            return 400, {"message": {"base": [VARIABLES_REFUSED]}}
        inputs, errors = check_inputs(input_spec(self.ci_file), given)
        if errors:
            return 400, {"message": {"base": [f"`.gitlab-ci.yml`: {e}" for e in errors]}}
        with self._lock:
            number = self.pipelines_before + len(self.triggered) + 1
            pipeline = {"id": number, "ref": form["ref"], "source": "trigger", "inputs": inputs,
                        "variables": variables, "status": "created", "web_url": self._web_url(number)}
            self.triggered.append(pipeline)
        if self.on_trigger:
            self.on_trigger(pipeline)
        return 201, {k: pipeline[k] for k in ("id", "status", "ref", "source", "web_url")}

    # ------------------------------------------------------------------ Terraform state
    def _state(self, method: str, name: str, is_lock: bool, query: dict, body: bytes) -> tuple[int, object]:
        state, lock = self.state_dir / f"{name}.tfstate", self.state_dir / f"{name}.lock.json"
        with self._lock:
            held = json.loads(lock.read_text()) if lock.exists() else None
            if is_lock and method == "POST":
                if held is not None:
                    return 423, held
                lock.write_bytes(body)
                return 200, json.loads(body or b"{}")
            if is_lock and method == "DELETE":
                info = json.loads(body or b"{}")
                if held is not None and info.get("ID") and info["ID"] != held.get("ID"):
                    return 409, held
                lock.unlink(missing_ok=True)
                return 200, None
            if method == "GET":
                return (200, state.read_bytes()) if state.exists() else (204, None)
            if method == "POST":
                if held is not None and query.get("ID") != held.get("ID"):
                    return 409, held
                state.write_bytes(body)
                return 200, None
            if method == "DELETE":
                state.unlink(missing_ok=True)
                return 200, None
        return 405, {"message": "405 Method Not Allowed"}
