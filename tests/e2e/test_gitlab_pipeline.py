"""The whole .gitlab-ci.yml run offline, job by job, as GitLab runs it (make ci, tools/gitlab_ci/): each job in an
environment as bare as its image, with only the variables GitLab gives it, against a local AWS and GitLab API.

Skips, saying so, only where node (gitlab-ci-local) or the terraform binary is absent."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.gitlab_ci import images, runner  # noqa: E402
from tools.gitlab_ci.aws import operation_of, trust_allows  # noqa: E402

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/gitlab.com"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {"gitlab.com:aud": "sts.amazonaws.com",
                                   "gitlab.com:sub": "project_path:g/p:ref_type:branch:ref:main"}}}]}


def _needs_tools():
    missing = [what for what, ok in (("node", images.node()), ("terraform", images.terraform_version()),
                                     ("rsync", shutil.which("rsync"))) if not ok]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: the offline GitLab pipeline cannot run here")
    if not runner.GCL.exists() or not runner.UV_CACHE.is_dir():
        pytest.fail("gitlab-ci-local or the package mirror is missing: `make .ci-tools/.installed .ci-tools/.mirror`")


def test_sts_trust_allows_only_the_pinned_project_and_branch():
    """STS checks the role's trust policy conditions on the token's claims
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_oidc.html); GitLab's sub claim is
    project_path:<path>:ref_type:<type>:ref:<ref> (https://docs.gitlab.com/ci/secrets/id_token_authentication/)."""
    main = {"iss": "https://gitlab.com", "aud": "sts.amazonaws.com", "sub": "project_path:g/p:ref_type:branch:ref:main"}
    assert trust_allows(TRUST, {PROVIDER}, main)
    assert not trust_allows(TRUST, {PROVIDER}, dict(main, sub="project_path:g/p:ref_type:branch:ref:feature"))
    assert not trust_allows(TRUST, {PROVIDER}, dict(main, aud="other"))
    assert not trust_allows(TRUST, set(), main), "the provider must exist in the account"
    assert not trust_allows(TRUST, {PROVIDER}, dict(main, iss="https://gitlab.example.com"))


def test_requests_are_named_as_botocore_names_them():
    """The recorder names JSON (X-Amz-Target), query (Action=) and REST (method + requestUri) calls."""
    auth = lambda svc: {"Authorization": f"AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/{svc}/aws4_request"}  # noqa: E731
    assert operation_of("POST", "/", "", dict(auth("sagemaker"), **{"X-Amz-Target": "SageMaker.CreatePipeline"}),
                        b'{"PipelineName": "p"}')[:2] == ("sagemaker", "CreatePipeline")
    assert operation_of("POST", "/", "", auth("iam"), b"Action=GetRole&RoleName=r")[:2] == ("iam", "GetRole")
    assert operation_of("PUT", "/bucket/key.txt", "", auth("s3"), b"data")[:2] == ("s3", "PutObject")
    assert operation_of("GET", "/2015-03-31/functions/f", "", auth("lambda"), b"")[:2] == ("lambda", "GetFunction")


def test_the_pipelines_run_as_gitlab_runs_them(tmp_path):
    """Default-branch (dev promoted), approval trigger, withdrawal, merge-request and destroy pipelines: every job
    passes. The merge-request jobs get no AWS role; the deploy trigger Lambda's inputs create the trigger
    pipelines; rejecting the only version withdraws the inference pipeline."""
    _needs_tools()
    run = runner.Runner(tmp_path / "run", promote=("dev",), log=lambda *a: None)
    (tmp_path / "run").mkdir()
    assert run.run(["default", "trigger", "withdraw", "mr", "destroy"]) == 0, json.loads((tmp_path / "run" / "summary.json").read_text())["failed"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    done = {(j["pipeline"], j["job"]): j["status"] for j in summary["jobs"]}
    for job in ("lambda-package", "validate", "plan:dev", "plan:prod", "apply:dev", "build-pipelines:dev"):
        assert done[("default", job)] == "passed", job
    assert done[("default", "apply:staging")] == "not played" and done[("default", "build-pipelines:staging")] == "not played"
    assert done[("trigger", "deploy-model:dev")] == "passed" and done[("withdraw", "deploy-model:dev")] == "passed"
    assert {j for p, j in done if p == "mr"} == {"test", "lambda-package", "validate"}
    assert done[("destroy-dev", "destroy:dev")] == "passed"
    trigger, withdrawal = summary["triggered"]
    assert trigger["inputs"]["deploy_environment"] == "dev" and not trigger["variables"]
    assert (withdrawal["inputs"]["deploy_reason"], withdrawal["inputs"]["model_package_arn"]) == ("withdraw", "")
    log = (tmp_path / "run" / "logs" / "withdraw-deploy-model-dev.log").read_text()
    assert "--withdraw-if-none" in log and "upserted arn:aws:sagemaker:" in log
    # the build jobs assumed the deploy role through OIDC and upserted the pipelines through it
    calls = json.loads((tmp_path / "run" / "calls.json").read_text())
    built = {c["operation"] for c in calls if c["job"] == "default/build-pipelines:dev"}
    assert {"CreatePipeline"} <= built and all(c["role"] for c in calls if c["job"] == "default/build-pipelines:dev")
    assert not [c for c in calls if (c["job"] or "").startswith("mr/")], "merge requests must not reach AWS"
    # every call of the deploy roles is allowed by the policy bootstrap/ wrote (moto itself evaluates no IAM)
    assert summary["iam_denied"] == [] and len([c for c in calls if c["role"]]) > 100


def test_the_old_lambda_package_job_fails_in_its_bare_image(tmp_path):
    """The job as it was (build_lambda.py with nothing installed) fails in python:*-slim, as in GitLab: the image
    has no Powertools. gitlab-ci-local's own environment would have hidden it."""
    _needs_tools()
    run = runner.Runner(tmp_path / "run", log=lambda *a: None)
    (tmp_path / "run").mkdir()
    run.snapshot()
    ci = run.project / ".gitlab-ci.yml"
    text = ci.read_text()
    start = text.index("lambda-package:")
    script = text.index("  script:", start)
    end = text.index("  artifacts:", start)
    ci.write_text(text[:script] + '  script:\n    - python tools/build_lambda.py --out "$LAMBDA_ZIP"\n' + text[end:])
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(git + ["commit", "-qam", "old lambda-package"], cwd=run.project, check=True)
    run.jobs = runner._resolve_jobs(ci)
    run.start_services()
    try:
        run.role_arns = {}
        with pytest.raises(runner.PipelineFailed, match="aws-lambda-powertools not installed"):
            run.run_pipeline("mr", "merge_request_event", runner.FEATURE_BRANCH)
    finally:
        run.stop_services()


def test_terraform_job_scripts_are_posix_sh(tmp_path):
    """hashicorp/terraform runs scripts with busybox sh, not bash: the scripts parse with `sh -n` (dash)."""
    if not shutil.which("dash") and not shutil.which("sh"):
        pytest.skip("no POSIX sh")
    for name, job in runner._resolve_jobs(ROOT / ".gitlab-ci.yml").items():
        if job["_image"] and "terraform" in job["_image"]:
            text = "\n".join(job.get("before_script", []) + job.get("script", []))
            proc = subprocess.run([shutil.which("dash") or "sh", "-n"], input=text, capture_output=True, text=True)
            assert proc.returncode == 0, f"{name}: {proc.stderr}"
