"""The studio web app. Every request that needs AWS state opens the runtime (embedded moto restored from
the workspace snapshot, or AWS_ENDPOINT_URL) for that request only, so the page and `sm-local` commands
run in other terminals see the same state; requests are served one at a time for the same reason."""
from __future__ import annotations

import contextlib
import io
import secrets
import threading

from flask import Flask, abort, render_template, request, send_file

from steplib.report import BASE_CSS

from .. import views
from ..errors import NotFoundError
from ..workspace import Workspace

DEFAULT_PORT = 8642  # documented in the README and `sm-local studio --help`


def create_app(workspace=None, env_file="env_files/dev_env.tfvars", repo_root=None) -> Flask:
    app = Flask(__name__)
    app.config.update(SM_WORKSPACE=workspace, SM_ENV_FILE=env_file, SM_REPO=repo_root,
                      CSRF_TOKEN=secrets.token_urlsafe(24))
    lock = threading.Lock()

    def ws() -> Workspace:
        return Workspace(app.config["SM_WORKSPACE"])

    def execution_or_404(execution_id: str) -> dict:
        try:
            return ws().load_execution(execution_id)
        except NotFoundError:
            abort(404)

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
            deploys = rt.workspace.read_jsonl("gitlab/pipelines.jsonl")[-5:][::-1]
        executions = [views.execution_row(ws(), r) for r in ws().list_executions()][::-1]
        return render_template("index.html", pipelines=pipelines, executions=executions, versions=versions,
                               deploys=deploys, notifications=len(ws().read_jsonl("outbox/notifications.jsonl")))

    @app.get("/executions/<execution_id>")
    def execution(execution_id):
        rec = execution_or_404(execution_id)
        steps = views.step_rows(ws(), rec)
        return render_template("execution.html", row=views.execution_row(ws(), rec), rec=rec, steps=steps)

    @app.get("/executions/<execution_id>/logs/<step>")
    def logs(execution_id, step):
        rec = execution_or_404(execution_id)
        try:
            files = views.step_log_files(ws(), rec, step)
        except NotFoundError:
            abort(404)
        if not files:
            abort(404)
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
            abort(404)
        return send_file(path, mimetype="text/html")

    @app.get("/notifications")
    def notifications():
        notes = ws().read_jsonl("outbox/notifications.jsonl")[::-1]
        return render_template("notifications.html", notes=notes)

    @app.post("/versions/decision")
    def decision():
        if not secrets.compare_digest(request.form.get("csrf_token", ""), app.config["CSRF_TOKEN"]):
            abort(400, "stale form: reload the page")
        arn, action = request.form.get("package_arn", ""), request.form.get("action")
        if action not in ("approve", "reject") or not arn.startswith("arn:"):
            abort(400, "expected package_arn and action approve|reject")
        comment = request.form.get("comment") or f"{action}d in sm-local studio"
        out = io.StringIO()
        with runtime(capture=out) as rt:
            before = len(rt.workspace.read_jsonl("gitlab/pipelines.jsonl"))
            desc = rt.approve(arn, approve=action == "approve", comment=comment)
            rt.pump()  # the rules, Lambdas and deploy this change causes, as in the cloud
            deploys = rt.workspace.read_jsonl("gitlab/pipelines.jsonl")[before:]
            version = views.version_rows(rt, only=arn)
        return render_template("decision.html", desc=desc, version=version[0] if version else None,
                               deploys=deploys, log=out.getvalue())

    return app


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, workspace=None, env_file="env_files/dev_env.tfvars") -> int:
    app = create_app(workspace=workspace, env_file=env_file)
    print(f"sm-local studio on http://{host}:{port}/  (workspace {Workspace(workspace).root}; Ctrl-C stops)", flush=True)
    # Werkzeug's server, threaded=False: one request at a time (the embedded moto is process-wide).
    app.run(host=host, port=port, threaded=False, use_reloader=False)
    return 0
