"""Runs .gitlab-ci.yml offline, job by job, as GitLab runs it (see runner.py)."""
