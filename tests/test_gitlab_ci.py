"""The GitLab CI/CD definition: schema, stages, promotion gates, merge-request scope."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI_FILE = ROOT / ".gitlab-ci.yml"
ENVS = ("dev", "staging", "prod")
KEYWORDS = {"stages", "workflow", "variables", "default", "include"}


@pytest.fixture(scope="module")
def ci():
    return yaml.safe_load(CI_FILE.read_text())


def _resolve(ci, name):
    """The job with its `extends` chain merged (GitLab's deep merge of hashes; lists replace)."""
    def merge(base, over):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    job = ci[name]
    parents = job.get("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    resolved = {}
    for parent in parents:
        resolved = merge(resolved, _resolve(ci, parent))
    return merge(resolved, {k: v for k, v in job.items() if k != "extends"})


def _jobs(ci):
    return {n: _resolve(ci, n) for n in ci if n not in KEYWORDS and not n.startswith(".")}


def _eval(expr, env):
    """Evaluate the rule `if:` forms used here: $VAR, $A == "x", $A == $B, joined by &&."""
    def term(t):
        t = t.strip()
        m = re.fullmatch(r"(\$\w+)\s*(==|!=)\s*(\$\w+|\"[^\"]*\")", t)
        if m:
            left = env.get(m.group(1)[1:], "")
            right = env.get(m.group(3)[1:], "") if m.group(3).startswith("$") else m.group(3)[1:-1]
            return (left == right) == (m.group(2) == "==")
        m = re.fullmatch(r"\$(\w+)", t)
        assert m, f"test cannot evaluate rule term {t!r}"
        return bool(env.get(m.group(1)))
    return all(term(t) for t in expr.split("&&"))


def _when(job, env):
    """'never' / 'on_success' / 'manual' for a job under the given predefined variables."""
    for rule in job.get("rules", [{}]):
        if "if" not in rule or _eval(rule["if"], env):
            return rule.get("when", "on_success")
    return "never"


MR = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main", "CI_MERGE_REQUEST_IID": "7"}
MAIN = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
FEATURE = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "CI_DEFAULT_BRANCH": "main"}


def test_schema_is_valid():
    exe = Path(sys.executable).with_name("check-jsonschema")
    exe = str(exe) if exe.exists() else shutil.which("check-jsonschema")
    if not exe:
        pytest.fail("check-jsonschema is not installed (it is a pinned test dependency)")
    proc = subprocess.run([exe, "--builtin-schema", "vendor.gitlab-ci", str(CI_FILE)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f".gitlab-ci.yml does not match GitLab's schema:\n{proc.stdout}\n{proc.stderr}"


def test_stages(ci):
    assert ci["stages"] == ["test", "build-pipelines", "init", "validate", "plan", "apply", "destroy"]


def test_test_job_runs_make_test(ci):
    job = _jobs(ci)["test"]
    assert job["stage"] == "test"
    assert "make test" in job["script"]
    assert job["variables"]["REQUIRE_CHECKOV"] == "1"


def _build_commands(script_line):
    """The builder commands a build job's tools/build_pipelines.py line runs (its --dry-run plan)."""
    args = shlex.split(script_line.replace("${TF_ENV}", "dev").replace("$MODEL_PACKAGE_ARN", PACKAGE))
    assert args[:2] == ["python", "tools/build_pipelines.py"], script_line
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "build_pipelines.py"), *args[2:], "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone-models/7"


def test_build_jobs_cover_every_contract_pipeline_with_the_tfvars_region(ci):
    """The CI jobs come from contracts.json: every pipeline there is built, none is listed in CI."""
    from pipeline_scripts.contracts import PIPELINES
    jobs = _jobs(ci)
    for env in ENVS:
        job = jobs[f"build-pipelines:{env}"]
        assert job["stage"] == "build-pipelines"
        (line,) = [l for l in job["script"] if "build_pipelines.py" in l]
        printed = _build_commands(line)
        assert "AWS_DEFAULT_REGION=us-east-1 (from env_files/dev_env.tfvars)" in printed
        for key, contract in PIPELINES.items():
            assert f"-m {contract.builder} --env-file env_files/dev_env.tfvars" in printed, key
    assert "pipeline_scripts." not in CI_FILE.read_text(), "CI must not list pipelines: they come from the contract"


def test_approval_trigger_runs_only_the_approved_environment_with_that_arn(ci):
    """deploy_trigger.py starts a pipeline through the trigger API (CI_PIPELINE_SOURCE=trigger) with
    DEPLOY_ENVIRONMENT and MODEL_PACKAGE_ARN: exactly that environment's deploy-model job runs."""
    from pipeline_scripts.contracts import PIPELINES
    source = (ROOT / "code" / "lambda_function" / "deploy_trigger.py").read_text()
    assert '"DEPLOY_ENVIRONMENT"' in source and '"MODEL_PACKAGE_ARN"' in source
    jobs = _jobs(ci)
    for env in ENVS:
        trigger = dict(MAIN, CI_PIPELINE_SOURCE="trigger", DEPLOY_ENVIRONMENT=env, MODEL_PACKAGE_ARN=PACKAGE)
        running = sorted(n for n, j in jobs.items() if _when(j, trigger) != "never")
        assert running == [f"deploy-model:{env}"], (env, running)
        job = jobs[f"deploy-model:{env}"]
        assert job["environment"]["name"] == env and job["needs"] == []
        (line,) = [l for l in job["script"] if "build_pipelines.py" in l]
        printed = _build_commands(line)
        served = [k for k, p in PIPELINES.items() if p.needs_approved_model]
        assert served and all(f"-m {PIPELINES[k].builder} --env-file env_files/dev_env.tfvars --model-package-arn {PACKAGE}" in printed
                              for k in served)
        assert not any(f"-m {p.builder} " in printed for k, p in PIPELINES.items() if k not in served)
    # a trigger without an ARN runs nothing; no deploy-model job runs in push or MR pipelines
    assert not [n for n, j in jobs.items() if _when(j, dict(MAIN, CI_PIPELINE_SOURCE="trigger", DEPLOY_ENVIRONMENT="dev")) != "never"]
    for env in ENVS:
        assert _when(jobs[f"deploy-model:{env}"], MAIN) == "never" and _when(jobs[f"deploy-model:{env}"], MR) == "never"


def test_lock_file_travels_from_plan_to_apply(ci):
    jobs = _jobs(ci)
    for env in ENVS:
        assert ".terraform.lock.hcl" in jobs[f"plan:{env}"]["artifacts"]["paths"]
        assert any((n if isinstance(n, str) else n["job"]) == f"plan:{env}" for n in jobs[f"apply:{env}"]["needs"])


def test_every_environment_has_the_full_chain(ci):
    jobs = _jobs(ci)
    for env in ENVS:
        for kind, stage in (("init", "init"), ("validate", "validate"), ("plan", "plan"), ("apply", "apply"), ("destroy", "destroy")):
            job = jobs[f"{kind}:{env}"]
            assert job["stage"] == stage and job["variables"]["TF_ENV"] == env
            assert any("terraform" in line for line in job["script"]), f"{kind}:{env} runs no terraform"
        plan = jobs[f"plan:{env}"]
        assert "terraform show -json plan.cache > plan.json" in plan["script"]
        assert "plan.json" in plan["artifacts"]["paths"]
        assert jobs[f"plan-report:{env}"]["artifacts"]["reports"]["terraform"] == "plan-summary.json"
        assert any("fmt -check" in line for line in jobs[f"validate:{env}"]["script"])


def test_apply_and_destroy_are_manual_on_main_only(ci):
    jobs = _jobs(ci)
    for env in ENVS:
        for kind in ("apply", "destroy"):
            job = jobs[f"{kind}:{env}"]
            assert _when(job, MAIN) == "manual", f"{kind}:{env} must be manual on main"
            assert _when(job, MR) == "never" and _when(job, FEATURE) == "never", f"{kind}:{env} must not run outside main"
        assert jobs[f"apply:{env}"].get("allow_failure") is False, "a manual gate must block the pipeline"
        assert jobs[f"destroy:{env}"]["environment"]["action"] == "stop"
        assert jobs[f"destroy:{env}"]["allow_failure"] is True, "a manual destroy must not block the pipeline"
        assert "plan.cache" in " ".join(jobs[f"apply:{env}"]["script"]), "apply must apply the reviewed plan"


def test_promotion_dev_staging_prod(ci):
    jobs = _jobs(ci)

    def needs(name):
        return {n if isinstance(n, str) else n["job"] for n in jobs[name].get("needs", [])}

    assert "apply:dev" in needs("apply:staging") and "apply:staging" in needs("apply:prod")
    # prod's pipelines and its destroy come after staging
    assert "build-pipelines:staging" in needs("build-pipelines:prod") and "apply:staging" in needs("destroy:prod")
    assert "test" in needs("build-pipelines:dev")
    for env in ("staging", "prod"):
        # Promotion starts with a manual, blocking job.
        assert _when(jobs[f"build-pipelines:{env}"], MAIN) == "manual"
        assert jobs[f"build-pipelines:{env}"].get("allow_failure") is False


def test_needs_point_to_same_or_earlier_stages(ci):
    # GitLab rejects a pipeline whose job needs a job of a later stage (gitlab-ci-local found it).
    jobs = _jobs(ci)
    order = {stage: i for i, stage in enumerate(ci["stages"])}
    for name, job in jobs.items():
        for need in job.get("needs", []):
            target = need if isinstance(need, str) else need["job"]
            assert target in jobs, f"{name} needs unknown job {target}"
            assert order[jobs[target]["stage"]] <= order[job["stage"]], f"{name} needs {target} of a later stage"


def test_merge_requests_run_test_and_plan_only(ci):
    jobs = _jobs(ci)
    running = {n: j for n, j in jobs.items() if _when(j, MR) != "never"}
    assert {j["stage"] for j in running.values()} <= {"test", "plan"}
    assert "test" in running and "plan:dev" in running
    # needs of MR jobs must exist in the MR pipeline (or be optional).
    for name, job in running.items():
        for need in job.get("needs", []):
            if isinstance(need, dict) and need.get("optional"):
                continue
            target = need if isinstance(need, str) else need["job"]
            assert target in running, f"{name} needs {target}, which does not run in merge requests"


def test_images_hold_the_tools_and_are_pinned(ci):
    jobs = _jobs(ci)
    variables = ci["variables"]
    for name, job in jobs.items():
        image = job.get("image")
        image = image["name"] if isinstance(image, dict) else image
        assert image, f"{name} has no image"
        image = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], image)
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image} is not pinned"
        if name.split(":")[0] in ("init", "validate", "plan", "apply", "destroy"):
            assert image.startswith("hashicorp/terraform:"), name
    text = CI_FILE.read_text()
    assert not re.search(r"(pip install|apt-get install|apk add)[^\n]*awscli", text), "do not install the AWS CLI per run"
    assert "AWS_SECRET_ACCESS_KEY" not in text, "use OIDC (id_tokens), not static keys"


def test_ci_local_script_documents_its_result():
    script = ROOT / "tools" / "ci_local.sh"
    assert script.is_file()
    text = script.read_text()
    assert "gitlab-ci-local" in text and "lambda-package" in text


# ---------------------------------------------------------------- the same, by gitlab-ci-local
GCL = ROOT / ".ci-tools" / "node_modules" / ".bin" / "gitlab-ci-local"


def _gitlab_ci_local_list(tmp_path, variables):
    """Jobs gitlab-ci-local would run (`--list` evaluates workflow and job rules) for a pipeline of
    the given predefined variables, on a throwaway clone holding only .gitlab-ci.yml on branch main."""
    if not shutil.which("node"):
        pytest.skip("node is not installed: gitlab-ci-local cannot run (the Python rule evaluation above still ran)")
    exe = str(GCL) if GCL.exists() else shutil.which("gitlab-ci-local")
    if not exe:
        pytest.fail(f"gitlab-ci-local is missing: `make .ci-tools/.installed` installs it into {GCL.parent.parent.parent}")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(CI_FILE, repo / ".gitlab-ci.yml")
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "ci"]):
        subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
    cmd = [exe, "--list", "--ignore-predefined-vars", ",".join(sorted(variables))]
    for k, v in variables.items():
        cmd += ["--variable", f"{k}={v}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=repo, env=dict(os.environ, HOME=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("name "))
    return [l.split()[0] for l in lines[start + 1:] if l.strip()]


@pytest.mark.parametrize("env", ENVS)
def test_gitlab_ci_local_trigger_pipeline_runs_only_the_approved_environment(tmp_path, env):
    """The trigger source as deploy_trigger.py makes it (GitLab trigger API: CI_PIPELINE_SOURCE=trigger,
    DEPLOY_ENVIRONMENT, MODEL_PACKAGE_ARN), evaluated by gitlab-ci-local."""
    jobs = _gitlab_ci_local_list(tmp_path, {"CI_PIPELINE_SOURCE": "trigger", "DEPLOY_ENVIRONMENT": env,
                                            "MODEL_PACKAGE_ARN": PACKAGE})
    assert jobs == [f"deploy-model:{env}"]
