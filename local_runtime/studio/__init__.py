"""`sm-local studio`: a local web page over the offline runtime (Flask + Jinja2 templates).

Shows the pipelines and their executions (steps, status, durations, logs), the model versions (metrics,
approval state, Approve / Reject buttons) and the reports. The buttons call UpdateModelPackage like
Studio does on AWS and then process the events it causes, so the same EventBridge rules, Lambdas and
deploy (see local_runtime/gitlab.py) run as after `sm-local approve`.
"""
from .app import DEFAULT_PORT, create_app, serve

__all__ = ["DEFAULT_PORT", "create_app", "serve"]
