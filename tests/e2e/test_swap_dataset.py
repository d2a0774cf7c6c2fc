"""Bring your own data set, as the README says, in a copy of the repository: a schema the code has never seen
(target second, not last; a categorical with numeric labels; an int column with a range; missing values),
imported from a CSV whose header lists the columns in another order, then the whole offline loop on it
(upsert, training, approve, inference, drift, breach -> HPO, approve, a later drifted batch passes).

Only the README's three edits are made in the copy: scripts/dataset_schema.json, data/ (by the import
command), and accuracy_mse_threshold in the tfvars. No .py file is touched. The loop runs in a subprocess
whose imports come from the copy, so the copy's schema is the one every step reads.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = {
    "name": "cars",
    "description": "a data set the template has never seen: target second, numeric category labels",
    "columns": [
        {"name": "origin", "type": "categorical", "categories": ["usa", "europe", "japan"]},
        {"name": "mpg", "type": "float", "min": 0},
        {"name": "displacement", "type": "float"},
        {"name": "cylinders", "type": "categorical", "categories": [3, 4, 5, 6, 8]},
        {"name": "horsepower", "type": "float"},
        {"name": "model_year", "type": "int", "min": 70, "max": 82},
        {"name": "weight", "type": "float"},
    ],
    "target": "mpg",
    "missing_values": {"tokens": ["", "NA", "?"]},
}
THRESHOLD = 9.0
# Share of feature cells left empty in the source CSV (kept by the import, imputed by the preprocessing).
FEATURE_MISSING = 0.02
SOURCE_ORDER = ["weight", "cylinders", "mpg", "origin", "horsepower", "model_year", "displacement"]


def _copy_repo(dest: Path) -> Path:
    """The working tree without environments, outputs and caches (no git needed)."""
    skip = shutil.ignore_patterns(".git", ".venv*", "demo-output", ".local-sagemaker", "__pycache__", "*.egg-info",
                                  ".pytest_cache", "bench-output")
    shutil.copytree(ROOT, dest, ignore=skip)
    return dest


def _py_digest(repo: Path) -> dict:
    return {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*.py") if "demo-output" not in p.parts}


def test_a_new_data_set_needs_only_the_readme_steps(tmp_path, synth):
    repo = _copy_repo(tmp_path / "repo")
    before = _py_digest(repo)
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{repo / 'scripts'}", "SM_LOCAL_REPO": str(repo)}

    # Step 1: describe the data set
    (repo / "scripts" / "dataset_schema.json").write_text(json.dumps(SCHEMA, indent=2))
    # Your CSV: a header in its own column order, a few missing values, two rows without a target
    frame = synth.generate(SCHEMA, 1400, 21, missing=FEATURE_MISSING, missing_target=0.002,
                           **synth.scales_for_threshold(THRESHOLD))
    typed = synth.as_schema(SCHEMA)
    rows = synth.rows_text(frame, [typed.column(n) for n in SOURCE_ORDER])
    source = tmp_path / "my-cars.csv"
    source.write_text(",".join(SOURCE_ORDER) + "\n" + "".join(",".join(r).replace(",,", ",NA,") + "\n" for r in rows))

    # Step 2: import it (holding rows out for the scored batches)
    proc = subprocess.run([sys.executable, "-m", "tools.make_data", "import", "--from", str(source),
                           "--holdout", "400"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "columns matched by header" in proc.stdout and "rows have missing values" in proc.stdout
    n_unlabelled = int(frame["mpg"].isna().sum())
    if n_unlabelled:
        assert f"{n_unlabelled} rows have no value for the target 'mpg'" in proc.stdout
    train = (repo / "data" / "training-data.csv").read_text().splitlines()
    assert len(train) == 1400 - 400 - n_unlabelled
    assert all(row.split(",")[1] != "" for row in train)  # the target sits second, as the schema says
    assert {row.split(",")[3] for row in train} <= {"3", "4", "5", "6", "8", ""}

    # Step 3: the threshold in the tfvars
    tfvars = repo / "env_files" / "dev_env.tfvars"
    text, n = re.subn(r"(?m)^(accuracy_mse_threshold\s*=\s*)[0-9.]+", rf"\g<1>{THRESHOLD}", tfvars.read_text())
    assert n == 1
    tfvars.write_text(text)

    # The whole loop in the copy (smaller HPO to keep it quick)
    hpo = yaml.safe_load((repo / "pipeline_scripts" / "training_hpo_pipeline.yaml").read_text())
    hpo["tuning"]["max_jobs"] = 3
    hpo["tuning"]["ranges"]["n_estimators"] = {"type": "integer", "min": 30, "max": 60}
    (tmp_path / "hpo.yaml").write_text(yaml.safe_dump(hpo))
    script = (
        "import json, sys, local_runtime, steplib\n"
        "from local_runtime.demo import run_demo\n"
        f"assert local_runtime.__file__.startswith({str(repo)!r}), local_runtime.__file__\n"
        f"assert steplib.__file__.startswith({str(repo)!r}), steplib.__file__\n"
        f"sys.exit(run_demo(output={str(tmp_path / 'out')!r}, repo_root={str(repo)!r},"
        f" configs={{'training_hpo_pipeline': {str(tmp_path / 'hpo.yaml')!r}}}))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=900)
    summary_path = tmp_path / "out" / "summary.json"
    assert summary_path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    failed = [c for c in summary["expectations"] if not c["ok"]]
    why = [(e["PipelineName"], [(s["name"], s["failure_reason"]) for s in e["steps"] if s["status"] == "Failed"])
           for e in summary["executions"] if e["PipelineExecutionStatus"] == "Failed"]
    assert proc.returncode == 0 and not failed, (failed, why)
    assert "demo data: " + str(repo / "data") in proc.stdout  # the imported files, not synthetic ones
    statuses = [(e["PipelineName"], e["PipelineExecutionStatus"]) for e in summary["executions"]]
    assert [s for _, s in statuses].count("Failed") == 1  # the breach, nothing else
    assert [v["approval"] for v in summary["model_versions"]] == ["Approved", "Approved"]
    breach = next(e for e in summary["executions"] if e["PipelineExecutionStatus"] == "Failed")
    assert "ModelQualityBreach" in breach["FailureReason"] or any(
        "ModelQualityBreach" in (s["failure_reason"] or "") for s in breach["steps"])
    assert _py_digest(repo) == before  # no .py file changed


def test_a_schema_swapped_before_its_data_stops_the_demo_with_one_line_naming_the_file(tmp_path):
    """README order is schema, then import; running the demo in between must not misread the old data."""
    repo = _copy_repo(tmp_path / "repo")
    (repo / "scripts" / "dataset_schema.json").write_text(json.dumps(SCHEMA, indent=2))
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{repo / 'scripts'}", "SM_LOCAL_REPO": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "local_runtime", "demo", "--output", str(tmp_path / "out")],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    first = (repo / "data" / "training-data.csv").read_text().splitlines()[0]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        f"sm-local: error: {repo / 'data' / 'training-data.csv'}: line 1: expected {len(SCHEMA['columns'])} columns "
        f"({', '.join(c['name'] for c in SCHEMA['columns'])}), found {len(first.split(','))}")
