"""The studio web app. Every request that needs AWS state opens the runtime (embedded moto restored from
the workspace snapshot, or AWS_ENDPOINT_URL) for that request only, so the page and `sm-local` commands
run in other terminals see the same state; requests are served one at a time for the same reason.

It changes state (approving a model version triggers a deploy), so it answers only its own pages: a request
whose Host is not the address it serves is refused (DNS rebinding), a state-changing one must come from its
own page (Origin, a form token), and bad input gets a 4xx that says what is wrong, never a 500."""
from __future__ import annotations

import contextlib
import io
import secrets
import socket
import threading
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from flask import Flask, abort, redirect, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import HTTPException

from steplib.report import BASE_CSS

from .. import views
from ..errors import NotFoundError, UsageError
from ..gitlab import PIPELINES as GITLAB_PIPELINES
from ..workspace import Workspace, demo_workspace_hint

DEFAULT_PORT = 8642  # documented in the README and `sm-local studio --help`
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MAX_REQUEST_BYTES = 64 * 1024  # a decision form is a few hundred bytes; SageMaker's comment limit is 1,024 characters


def trusted_hosts(bind_host: str) -> list[str]:
    """The Host names a browser uses for this server. On a loopback address, the loopback names only: a page of
    another site that rebinds its DNS name to 127.0.0.1 still sends its own name as Host and is refused. Bound to
    all interfaces (0.0.0.0, an explicit choice), this machine's names as well."""
    hosts = list(LOOPBACK_NAMES)
    if bind_host in ("0.0.0.0", "::"):
        hosts += [socket.gethostname(), socket.getfqdn()]
    elif bind_host not in hosts:
        hosts.append(bind_host)
    return hosts


def create_app(workspace=None, env_file="env_files/dev_env.tfvars", repo_root=None, bind_host="127.0.0.1") -> Flask:
    app = Flask(__name__)
    # TRUSTED_HOSTS: Flask (3.1+) answers 400 to a request whose Host is not one of them, before any view runs
    app.config.update(SM_WORKSPACE=workspace, SM_ENV_FILE=env_file, SM_REPO=repo_root,
                      CSRF_TOKEN=secrets.token_urlsafe(24), TRUSTED_HOSTS=trusted_hosts(bind_host),
                      MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES)
    lock = threading.Lock()

    @app.before_request
    def same_origin_writes_only():
        """A state-changing request must come from this server's own page. Browsers send Origin on every POST
        (the Fetch standard), Referer where an old one does not; a request with neither is refused (the stricter
        reading: no legitimate client of this page omits both)."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        own = request.host_url.rstrip("/")
        origin = request.headers.get("Origin")
        if origin is None and request.headers.get("Referer"):
            parts = urlsplit(request.headers["Referer"])
            origin = f"{parts.scheme}://{parts.netloc}"
        if origin != own:
            abort(403, f"refused: a state-changing request from {origin or 'an unknown origin'}; "
                       f"only pages of {own} may send one")
        return None

    @app.errorhandler(NotFoundError)
    def not_found(exc):
        return _error_page(404, str(exc))

    @app.errorhandler(UsageError)
    def bad_request(exc):
        return _error_page(400, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error_page(exc.code or 500, exc.description or exc.name)

    def _error_page(status: int, message: str):
        return render_template("error.html", status=status, message=message), status

    def ws() -> Workspace:
        return Workspace(app.config["SM_WORKSPACE"])

    def execution_or_404(execution_id: str) -> dict:
        return ws().load_execution(execution_id)  # NotFoundError (named, with what exists) -> 404 below

    @contextlib.contextmanager
    def runtime(capture: io.StringIO | None = None):
        from ..runtime import Runtime
        with lock:
            with Runtime(repo_root=app.config["SM_REPO"], workspace=app.config["SM_WORKSPACE"],
                         env_file=app.config["SM_ENV_FILE"], quiet=capture is None) as rt:
                if capture is None:
                    yield rt
                else:
                    with contextlib.redirect_stdout(capture):
                        yield rt

    @app.context_processor
    def helpers():
        return {"csrf_token": app.config["CSRF_TOKEN"], "fmt_seconds": views.fmt_seconds,
                "fmt_number": views.fmt_number, "base_css": BASE_CSS}

    @app.get("/")
    def index():
        with runtime() as rt:
            pipelines = views.pipeline_overview(rt)
            versions = views.version_rows(rt)
            deploys = rt.workspace.read_jsonl(GITLAB_PIPELINES)[-5:][::-1]
        executions = [views.execution_row(ws(), r) for r in ws().list_executions()][::-1]
        return render_template("index.html", pipelines=pipelines, executions=executions, versions=versions,
                               deploys=deploys, notifications=len(ws().read_jsonl("outbox/notifications.jsonl")),
                               workspace=ws().root, demo_hint=demo_workspace_hint(ws().root).lstrip("; "))

    @app.get("/executions/<execution_id>")
    def execution(execution_id):
        rec = execution_or_404(execution_id)
        steps = views.step_rows(ws(), rec)
        return render_template("execution.html", row=views.execution_row(ws(), rec), rec=rec, steps=steps)

    @app.get("/executions/<execution_id>/logs/<step>")
    def logs(execution_id, step):
        rec = execution_or_404(execution_id)
        files = views.step_log_files(ws(), rec, step)
        if not files:
            abort(404, f"step {step} of {execution_id} has no job logs (condition, fail and registration steps "
                       "run no job)")
        text = "".join(f"==> {p} <==\n{p.read_text(errors='replace')}\n" for p in files)
        return text, 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/executions/<execution_id>/report")
    def report(execution_id):
        rec = execution_or_404(execution_id)
        path = views.report_path(ws(), rec)
        if not path.exists():
            with runtime() as rt:
                path = views.ensure_report(rt, rec)
        if path is None or not path.exists():
            abort(404, f"execution {execution_id} has no report (reports are written for inference executions)")
        return redirect(url_for("report_file", name=path.name))

    # The workspace's reports/ and jobs/ at the same relative places as on disk, so a report's links (relative
    # to its file: its job logs) work here as they do when the file is opened from disk.
    @app.get("/reports/<name>")
    def report_file(name):
        return send_from_directory(ws().root / "reports", name, mimetype="text/html")

    @app.get("/jobs/<job>/logs.txt")
    def job_log(job):
        return send_from_directory(ws().root / "jobs" / job, "logs.txt", mimetype="text/plain")

    @app.get("/notifications")
    def notifications():
        notes = ws().read_jsonl("outbox/notifications.jsonl")[::-1]
        return render_template("notifications.html", notes=notes)

    @app.post("/versions/decision")
    def decision():
        if not secrets.compare_digest(request.form.get("csrf_token", ""), app.config["CSRF_TOKEN"]):
            abort(400, "stale form: reload the page")
        arn, action = request.form.get("package_arn", ""), request.form.get("action")
        if action not in ("approve", "reject") or not arn:
            abort(400, "expected package_arn and action approve|reject")
        # SageMaker checks the ARN's form and the comment's length (UpdateModelPackage: ApprovalDescription at
        # most 1,024 characters); the runtime's client applies the same checks and they come back as a 400
        comment = request.form.get("comment", "").strip() or \
            f"{'approved' if action == 'approve' else 'rejected'} in sm-local studio"
        out = io.StringIO()
        with runtime(capture=out) as rt:
            before = len(rt.workspace.read_jsonl(GITLAB_PIPELINES))
            try:
                desc = rt.approve(arn, approve=action == "approve", comment=comment)
            except ClientError as exc:  # SageMaker refused the user's ARN or comment (later calls are ours)
                message = exc.response["Error"].get("Message") or str(exc)
                missing = "not found" in message or "does not exist" in message  # its words for an unknown ARN
                abort(404 if missing else 400, message)
            rt.pump()  # the rules, Lambdas and deploy this change causes, as in the cloud
            deploys = rt.workspace.read_jsonl(GITLAB_PIPELINES)[before:]
            version = views.version_rows(rt, only=arn)
        return render_template("decision.html", desc=desc, version=version[0] if version else None,
                               deploys=deploys, log=out.getvalue())

    return app


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, workspace=None, env_file="env_files/dev_env.tfvars") -> int:
    app = create_app(workspace=workspace, env_file=env_file, bind_host=host)
    ws = Workspace(workspace)
    hint = "" if ws.list_executions() else demo_workspace_hint(ws.root)
    print(f"sm-local studio on http://{host}:{port}/  (workspace {ws.root}{hint}; Ctrl-C stops)", flush=True)
    # Werkzeug's server, threaded=False: one request at a time (the embedded moto is process-wide).
    app.run(host=host, port=port, threaded=False, use_reloader=False)
    return 0
