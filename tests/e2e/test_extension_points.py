"""What it takes to extend the template (issue 8), tried on a copy of the repository.

* A 4th pipeline is three files: its builder (with its YAML's schema and the settings class the YAML loads into),
  its YAML and its contracts/pipelines.json entry.
  The CI build job (tools/build_pipelines.py), Terraform's pipeline names (for_each over contracts/pipelines.json) and
  the config loader pick it up with no other edit.
* A new algorithm is two files: its entry in scripts/steplib/algorithms.py and the YAML that selects it.
  The config validation, the training script's arguments and the definition follow from the registry.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KEY = "retraining"  # the experiment's pipeline key


def _copy_repository(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    return dest


def _changed_files(repo: Path) -> set[str]:
    """Files of the copy that are new or differ from this checkout."""
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
            and (not (ROOT / p.relative_to(repo)).is_file() or (ROOT / p.relative_to(repo)).read_bytes() != p.read_bytes())}


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    # the copy's modules (and its step library) first, ahead of the editable install of this checkout
    env = dict(os.environ, PYTHONPATH=f"{repo}{os.pathsep}{repo / 'scripts'}", SM_LOCAL_REPO=str(repo))
    return subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def _add_pipeline_and_algorithm(repo: Path) -> set[str]:
    """The edits, and nothing else: returns the files they touch."""
    builder = repo / "pipeline_scripts" / f"{KEY}_pipeline.py"
    builder.write_text(textwrap.dedent(f'''\
        """A scheduled retraining pipeline: the training pipeline with its own settings."""
        from pipeline_scripts import cli
        from pipeline_scripts.config import PipelineConfig
        from pipeline_scripts.settings import TRAINING_SETTINGS, TrainingSettings
        from pipeline_scripts.training_pipeline import build_training_pipeline, training_step

        SETTINGS_SCHEMA = TRAINING_SETTINGS
        SETTINGS_CLASS = TrainingSettings


        def build(cfg: PipelineConfig[TrainingSettings], session):
            return build_training_pipeline(cfg, session, cfg.env.pipeline_name("{KEY}"), training_step)


        def main(argv=None):
            return cli.run_cli("{KEY}", build, "Scheduled retraining", argv)


        if __name__ == "__main__":
            raise SystemExit(main())
    '''))
    settings = yaml.safe_load((ROOT / "pipeline_scripts" / "training_pipeline.yaml").read_text())
    settings["training"]["hyperparameters"] = {"algorithm": "ridge", "alpha": 2.5}
    (repo / "pipeline_scripts" / f"{KEY}_pipeline.yaml").write_text(yaml.safe_dump(settings))
    contracts = json.loads((repo / "contracts" / "pipelines.json").read_text())
    contracts["pipelines"][KEY] = {"builder": f"pipeline_scripts.{KEY}_pipeline",
                                   "settings": f"pipeline_scripts/{KEY}_pipeline.yaml", "name_suffix": KEY,
                                   "description": "Scheduled retraining", "started_by": {}}
    (repo / "contracts" / "pipelines.json").write_text(json.dumps(contracts, indent=2) + "\n")
    # one entry in the registry (appended here; in practice written next to the others)
    registry = repo / "scripts" / "steplib" / "algorithms.py"
    registry.write_text(registry.read_text() + textwrap.dedent('''


        def _ridge(hp):
            from sklearn.linear_model import Ridge

            return Ridge(alpha=hp["alpha"])


        ALGORITHMS["ridge"] = Algorithm(
            "ridge", (Hyperparameter("alpha", float, 1.0, 0.0, 1e6, help="L2 penalty"),), _ridge,
            ("sklearn",), ("sklearn",), "linear least squares with an L2 penalty")
    '''))
    return {"pipeline_scripts/retraining_pipeline.py", "pipeline_scripts/retraining_pipeline.yaml",
            "contracts/pipelines.json", "scripts/steplib/algorithms.py"}


def test_a_fourth_pipeline_takes_three_files_and_a_new_algorithm_two(tmp_path):
    repo = _copy_repository(tmp_path / "repo")
    touched = _add_pipeline_and_algorithm(repo)
    assert _changed_files(repo) == touched  # measured against this checkout: nothing else was edited
    pipeline_files = touched - {"scripts/steplib/algorithms.py"}
    algorithm_files = {"scripts/steplib/algorithms.py", f"pipeline_scripts/{KEY}_pipeline.yaml"}
    assert len(pipeline_files) == 3 and len(algorithm_files) == 2

    # CI's build job upserts it (the build plan comes from contracts/pipelines.json)
    plan = _run(repo, "tools/build_pipelines.py", "--env-file", "env_files/dev_env.tfvars", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"-m pipeline_scripts.{KEY}_pipeline --env-file env_files/dev_env.tfvars" in plan.stdout

    # its builder makes a definition whose training job runs the new algorithm
    out = tmp_path / "definition.json"
    built = _run(repo, "-m", f"pipeline_scripts.{KEY}_pipeline", "--definition-out", str(out))
    assert built.returncode == 0, built.stdout + built.stderr
    definition = json.loads(out.read_text())
    (train,) = [s for s in definition["Steps"] if s["Type"] == "Training"]
    hps = train["Arguments"]["HyperParameters"]
    assert hps["algorithm"].strip('"') == "ridge" and float(hps["alpha"].strip('"')) == 2.5

    # Terraform names it (local.pipeline_names over contracts/pipelines.json), its YAML loads into the settings
    # class its builder names, and the training script accepts its hyperparameters and fits it
    probe = _run(repo, "-c", textwrap.dedent(f"""
        import json, numpy as np
        from pipeline_scripts.config import load_env, load_pipeline_config
        from steplib import algorithms
        names = load_env("env_files/dev_env.tfvars").pipeline_names
        settings = load_pipeline_config("{KEY}").settings
        model = algorithms.get("ridge").estimator({{"alpha": 2.5}})
        x = np.arange(20.0).reshape(10, 2)
        model.fit(x, x[:, 0] * 3 + 1)
        print(json.dumps({{"name": names.get("{KEY}"), "fitted": type(model.regressor_).__name__,
                          "settings": type(settings).__name__, "alpha": settings.training.hyperparameters["alpha"]}}))
    """))
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["name"].endswith(f"-{KEY}") and result["fitted"] == "Ridge"
    assert result["settings"] == "TrainingSettings" and result["alpha"] == 2.5
    usage = _run(repo, "scripts/train.py", "--help")
    assert usage.returncode == 0 and "--alpha" in usage.stdout, usage.stderr
