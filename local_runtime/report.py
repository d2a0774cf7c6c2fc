"""The HTML report of a batch-inference run: one renderer, scripts/steplib/report.py.

It lives in the step library so that the cloud pipeline's report step renders the same page the
offline runtime writes; this module keeps the offline import path (local_runtime.report).
"""
from steplib.report import BASE_CSS, render_report, write_report  # noqa: F401
