"""The GitLab CI/CD definition: schema, stages, promotion gates, merge-request scope, inputs. The whole file is
also run job by job, as GitLab runs it, by tests/e2e/test_gitlab_pipeline.py (make ci)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CI_FILE = ROOT / ".gitlab-ci.yml"
ENVS = ("dev", "staging", "prod")
KEYWORDS = {"stages", "workflow", "variables", "default", "include"}


def _documents():
    """The spec:inputs header and the configuration (GitLab's two YAML documents)."""
    header, config = yaml.safe_load_all(CI_FILE.read_text())
    return header, config


@pytest.fixture(scope="module")
def ci():
    return _documents()[1]


@pytest.fixture(scope="module")
def spec():
    return _documents()[0]["spec"]["inputs"]


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
    """Evaluate the rule `if:` forms used here: $VAR, $A == "x", $A == $B, joined by && and ||."""
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
    return any(all(term(t) for t in alt.split("&&")) for alt in expr.split("||"))


def _when(job, env):
    """'never' / 'on_success' / 'manual' for a job under the given predefined variables."""
    for rule in job.get("rules", [{}]):
        if "if" not in rule or _eval(rule["if"], env):
            return rule.get("when", "on_success")
    return "never"


# the input defaults, as the configuration's variables carry them into every pipeline
INPUTS = {"DEPLOY_ENVIRONMENT": "none", "MODEL_PACKAGE_ARN": "", "DESTROY_ENVIRONMENT": "none"}
MR = dict(INPUTS, CI_PIPELINE_SOURCE="merge_request_event", CI_DEFAULT_BRANCH="main", CI_MERGE_REQUEST_IID="7")
MAIN = dict(INPUTS, CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="main", CI_DEFAULT_BRANCH="main")
FEATURE = dict(INPUTS, CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="feature", CI_DEFAULT_BRANCH="main")


def test_schema_is_valid(tmp_path):
    """Both documents (the spec:inputs header, https://docs.gitlab.com/ci/inputs/, and the configuration)
    against GitLab's CI schema."""
    exe = Path(sys.executable).with_name("check-jsonschema")
    exe = str(exe) if exe.exists() else shutil.which("check-jsonschema")
    if not exe:
        pytest.fail("check-jsonschema is not installed (it is a pinned test dependency)")
    for i, doc in enumerate(_documents()):
        path = tmp_path / f"doc{i}.yml"
        path.write_text(yaml.safe_dump(doc))
        proc = subprocess.run([exe, "--builtin-schema", "vendor.gitlab-ci", str(path)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f".gitlab-ci.yml document {i} does not match GitLab's schema:\n{proc.stdout}\n{proc.stderr}"


def test_stages(ci):
    assert ci["stages"] == ["test", "plan", "dev", "staging", "prod", "destroy"]


def test_inputs_become_the_variables_rules_read(ci, spec):
    """Every input is carried into a variable of the same name in capitals ($[[ inputs.x ]] interpolation)."""
    for name in spec:
        assert ci["variables"][name.upper()] == f"$[[ inputs.{name} ]]", name
    assert spec["deploy_environment"]["options"] == ["none", *ENVS] and spec["destroy_environment"]["options"] == ["none", *ENVS]


def test_no_job_level_when_beside_rules(ci):
    """GitLab refuses `when` at job level in a job with `rules` ("config key may not be used with rules")."""
    for name, job in _jobs(ci).items():
        assert not ("rules" in job and "when" in job), f"{name}: put when: in its rules"


def test_test_job_runs_make_test(ci):
    job = _jobs(ci)["test"]
    assert job["stage"] == "test"
    assert "make test" in job["script"]
    assert job["variables"]["REQUIRE_CHECKOV"] == "1"


def _build_commands(script_line, package=None, reason="approval"):
    """The builder commands a build job's tools/build_pipelines.py line runs (its --dry-run plan), with the
    trigger's inputs as the job's variables."""
    package = PACKAGE if package is None else package
    args = shlex.split(script_line.replace("${TF_ENV}", "dev").replace("$MODEL_PACKAGE_ARN", package)
                       .replace("$DEPLOY_REASON", reason))
    assert args[:2] == ["python", "tools/build_pipelines.py"], script_line
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "build_pipelines.py"), *args[2:], "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone-models/7"


def test_build_jobs_cover_every_contract_pipeline_with_the_tfvars_region(ci):
    """The CI jobs come from contracts/pipelines.json: every pipeline there is built, none is listed in CI."""
    from pipeline_scripts.contracts import PIPELINES
    jobs = _jobs(ci)
    for env in ENVS:
        job = jobs[f"build-pipelines:{env}"]
        assert job["stage"] == env
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
    assert '"deploy_environment"' in source and '"model_package_arn"' in source
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
    # a trigger without an ARN runs nothing, unless it is a withdrawal (the only version rejected): then that
    # environment's deploy-model job rebuilds the serving pipelines to refuse batches; none runs in push or MR pipelines
    assert not [n for n, j in jobs.items() if _when(j, dict(MAIN, CI_PIPELINE_SOURCE="trigger", DEPLOY_ENVIRONMENT="dev")) != "never"]
    for env in ENVS:
        withdrawal = dict(MAIN, CI_PIPELINE_SOURCE="trigger", DEPLOY_ENVIRONMENT=env, DEPLOY_REASON="withdraw")
        assert sorted(n for n, j in jobs.items() if _when(j, withdrawal) != "never") == [f"deploy-model:{env}"]
    (line,) = [l for l in jobs["deploy-model:dev"]["script"] if "build_pipelines.py" in l]
    printed = _build_commands(line, package="", reason="withdraw")
    assert all(f"-m {PIPELINES[k].builder} --env-file env_files/dev_env.tfvars --withdraw-if-none" in printed
               for k in served)
    for env in ENVS:
        assert _when(jobs[f"deploy-model:{env}"], MAIN) == "never" and _when(jobs[f"deploy-model:{env}"], MR) == "never"


def test_lock_file_travels_from_plan_to_apply(ci):
    jobs = _jobs(ci)
    for env in ENVS:
        assert ".terraform.lock.hcl" in jobs[f"plan:{env}"]["artifacts"]["paths"]
        assert any((n if isinstance(n, str) else n["job"]) == f"plan:{env}" for n in jobs[f"apply:{env}"]["needs"])


def test_every_environment_has_plan_apply_build_and_destroy(ci):
    jobs = _jobs(ci)
    for env in ENVS:
        for kind, stage in (("plan", "plan"), ("apply", env), ("build-pipelines", env), ("destroy", "destroy")):
            job = jobs[f"{kind}:{env}"]
            assert job["stage"] == stage and job["variables"]["TF_ENV"] == env, f"{kind}:{env}"
        plan = jobs[f"plan:{env}"]
        assert "terraform show -json plan.cache > plan.json" in plan["script"]
        assert {"plan.json", ".terraform.lock.hcl"} <= set(plan["artifacts"]["paths"])
        assert jobs[f"plan-report:{env}"]["artifacts"]["reports"]["terraform"] == "plan-summary.json"
        for kind in ("plan", "apply", "destroy"):
            # the committed lock file pins the provider build; init must not change it
            assert any("-lockfile=readonly" in line for line in jobs[f"{kind}:{env}"]["script"]), kind
    assert (ROOT / ".terraform.lock.hcl").is_file(), "commit the provider lock file"
    assert any("fmt -check" in line for line in jobs["validate"]["script"])


def test_apply_is_manual_on_main_only_and_only_dev_blocks(ci):
    jobs = _jobs(ci)
    for env in ENVS:
        job = jobs[f"apply:{env}"]
        assert _when(job, MAIN) == "manual", f"apply:{env} must be manual on main"
        assert _when(job, MR) == "never" and _when(job, FEATURE) == "never"
        assert "plan.cache" in " ".join(job["script"]), "apply must apply the reviewed plan"
    # the push's deploy gate blocks; promotions are optional (the pipeline passes once dev is deployed)
    assert jobs["apply:dev"]["allow_failure"] is False
    assert jobs["apply:staging"]["allow_failure"] is True and jobs["apply:prod"]["allow_failure"] is True


def test_destroy_only_in_a_pipeline_run_for_it_and_after_confirmation(ci):
    """destroy:<env> exists only in a pipeline run by hand (web) with destroy_environment=<env>, never in push,
    merge-request or trigger pipelines, so an old pipeline offers no destroy; it asks before it runs
    (manual_confirmation, https://docs.gitlab.com/ci/yaml/#manual_confirmation)."""
    jobs = _jobs(ci)
    for env in ENVS:
        job = jobs[f"destroy:{env}"]
        assert _when(job, MAIN) == "never" and _when(job, MR) == "never"
        assert _when(job, dict(MAIN, CI_PIPELINE_SOURCE="web")) == "never"
        assert _when(job, dict(MAIN, CI_PIPELINE_SOURCE="web", DESTROY_ENVIRONMENT=env)) == "manual"
        other = next(e for e in ENVS if e != env)
        assert _when(job, dict(MAIN, CI_PIPELINE_SOURCE="web", DESTROY_ENVIRONMENT=other)) == "never"
        assert job["manual_confirmation"] and job["environment"]["action"] == "stop"
    destroy_pipeline = dict(MAIN, CI_PIPELINE_SOURCE="web", DESTROY_ENVIRONMENT="dev")
    running = sorted(n for n, j in jobs.items() if _when(j, destroy_pipeline) != "never")
    assert running == ["destroy:dev", "lambda-package"]


def test_promotion_order_holds_for_terraform_and_pipelines(ci):
    """An environment's SageMaker pipelines change only after its Terraform, and staging/prod only after the
    environment before them: apply:<env> -> build-pipelines:<env> -> apply:<next env>."""
    jobs = _jobs(ci)

    def needs(name):
        return {n if isinstance(n, str) else n["job"] for n in jobs[name].get("needs", [])}

    assert "apply:dev" in needs("build-pipelines:dev") and "test" in needs("apply:dev")
    assert "build-pipelines:dev" in needs("apply:staging") and "apply:staging" in needs("build-pipelines:staging")
    assert "build-pipelines:staging" in needs("apply:prod") and "apply:prod" in needs("build-pipelines:prod")


def test_needs_point_to_same_or_earlier_stages(ci):
    # GitLab rejects a pipeline whose job needs a job of a later stage (gitlab-ci-local found it).
    jobs = _jobs(ci)
    order = {stage: i for i, stage in enumerate(ci["stages"])}
    for name, job in jobs.items():
        for need in job.get("needs", []):
            target = need if isinstance(need, str) else need["job"]
            assert target in jobs, f"{name} needs unknown job {target}"
            assert order[jobs[target]["stage"]] <= order[job["stage"]], f"{name} needs {target} of a later stage"


def test_merge_requests_get_no_aws_access(ci):
    """Protected variables (AWS_ROLE_ARN) reach protected refs only, and the deploy role trusts only the default
    branch: merge requests run test, the Lambda package and fmt/validate, none of them with an ID token."""
    jobs = _jobs(ci)
    running = {n: j for n, j in jobs.items() if _when(j, MR) != "never"}
    assert sorted(running) == ["lambda-package", "test", "validate"]
    assert not [n for n, j in running.items() if j.get("id_tokens")]


def test_build_jobs_install_the_lock_file(ci):
    jobs = _jobs(ci)
    for name in [f"build-pipelines:{e}" for e in ENVS] + [f"deploy-model:{e}" for e in ENVS]:
        script = " ".join(jobs[name]["script"])
        assert "-r requirements.lock" in script and "pip install -e ." not in script, name


def test_uv_pin_is_the_one_make_lock_uses(ci):
    assert f'"uv=={ci["variables"]["UV_VERSION"]}"' in (ROOT / "Makefile").read_text()


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


# ---------------------------------------------------------------- the same, by gitlab-ci-local
GCL = ROOT / ".ci-tools" / "node_modules" / ".bin" / "gitlab-ci-local"


def _gitlab_ci_local_list(tmp_path, variables, inputs=None):
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
    for k, v in (inputs or {}).items():
        cmd += ["--input", f"{k}={v}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=repo, env=dict(os.environ, HOME=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("name "))
    return [l.split()[0] for l in lines[start + 1:] if l.strip()]


@pytest.mark.parametrize("env", ENVS)
def test_gitlab_ci_local_trigger_pipeline_runs_only_the_approved_environment(tmp_path, env):
    """The trigger source as deploy_trigger.py makes it (GitLab trigger API: CI_PIPELINE_SOURCE=trigger, inputs
    deploy_environment and model_package_arn), evaluated by gitlab-ci-local."""
    jobs = _gitlab_ci_local_list(tmp_path, {"CI_PIPELINE_SOURCE": "trigger"},
                                 {"deploy_environment": env, "model_package_arn": PACKAGE})
    assert jobs == [f"deploy-model:{env}"]
