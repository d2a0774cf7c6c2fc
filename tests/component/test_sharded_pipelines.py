"""The three pipelines with every instance count above 1: what the definitions say, what the settings refuse,
and the offline demo story holding with processing and transform instances set to 2.

ShardedByS3Key: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html
Batch transform spreads whole S3 objects over its instances:
https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html
"""
import json
from pathlib import Path

import boto3
import pytest
import yaml
from shared_setups import approve_a_model
from shared_setups import small_hpo_config

from pipeline_scripts import cli, inference_pipeline, training_hpo_pipeline, training_pipeline
from pipeline_scripts.config import ConfigError, load_pipeline_config
from pipeline_scripts.contracts import PIPELINES, STEPS
from tools import sagemaker_api_check

ROOT = Path(__file__).resolve().parents[2]


def scaled_settings(tmp_path, instances=2, **transform) -> dict[str, Path]:
    """{pipeline key: a settings YAML} with every processing step that shards and the batch transform on
    ``instances`` instances (training stays on 1: see test_training_runs_on_one_instance)."""
    paths = {}
    for key in PIPELINES:
        source = small_hpo_config(tmp_path) if key == "training_hpo" else ROOT / PIPELINES[key].settings
        settings = yaml.safe_load(Path(source).read_text())
        settings["processing"]["instance_count"] = instances
        if "transform" in settings:
            settings["transform"].update(instance_count=instances, **transform)
        paths[key] = tmp_path / f"{key}-x{instances}.yaml"
        paths[key].write_text(yaml.safe_dump(settings))
    return paths


def _steps(definition):
    return {s["Name"]: s for s in definition["Steps"]}


def _count(step):
    resources = step["Arguments"].get("ProcessingResources") or step["Arguments"].get("TransformResources")
    return (resources.get("ClusterConfig") or resources)["InstanceCount"]


def _inputs(step):
    return {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}


def test_the_three_pipelines_build_with_two_instances(aws, tmp_path):
    paths = scaled_settings(tmp_path)
    built = {}
    for key, module in (("training", training_pipeline), ("training_hpo", training_hpo_pipeline),
                        ("inference", inference_pipeline)):
        cfg = load_pipeline_config(key, settings_file=paths[key])
        boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
        if key == "inference":
            approve_a_model(cfg)
        definition = json.loads(module.build(cfg, cli.make_session(cfg)).definition())
        # every request as botocore's SageMaker API model accepts it (CreateProcessingJob, CreateTransformJob)
        assert [str(p) for p in sagemaker_api_check.check_definition(definition)] == [], key
        built[key] = _steps(definition)
    for key in ("training", "training_hpo"):
        steps = built[key]
        shards, merge = steps[STEPS["training_preprocess_shards"]], steps[STEPS["training_preprocess"]]
        assert _count(shards) == 2 and _count(merge) == 1
        assert _inputs(shards)["data"]["S3DataDistributionType"] == "ShardedByS3Key"
        assert shards["Arguments"]["AppSpecification"]["ContainerArguments"] == ["--partial"]
        assert "data" not in _inputs(merge) and _inputs(merge)["parts"]["S3Uri"] == {
            "Get": f"Steps.{STEPS['training_preprocess_shards']}.ProcessingOutputConfig.Outputs['parts'].S3Output.S3Uri"}
        assert merge["Arguments"]["AppSpecification"]["ContainerArguments"][-2:] == [
            "--parts-dir", "/opt/ml/processing/input/parts"]
        assert (key == "training_hpo") == ("feedback" in _inputs(merge))  # the feedback window is global
        assert _count(steps[STEPS["data_quality_baseline_shards"]]) == 2
        assert _count(steps[STEPS["data_quality_baseline"]]) == 1 and _count(steps[STEPS["evaluation"]]) == 1
    steps = built["inference"]
    pre = steps[STEPS["inference_preprocess"]]
    assert _count(pre) == 2 and _inputs(pre)["data"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert _inputs(pre)["model"]["S3DataDistributionType"] == "FullyReplicated"
    assert pre["Arguments"]["AppSpecification"]["ContainerArguments"] == ["--part-files", "2"]
    assert _count(steps[STEPS["batch_transform"]]) == 2
    assert _count(steps[STEPS["data_quality_check_shards"]]) == 2
    for role in ("data_check_preprocess", "data_quality_check", "model_quality", "report"):
        assert _count(steps[STEPS[role]]) == 1, role


def test_part_files_follow_the_setting(aws, tmp_path):
    cfg = load_pipeline_config("inference", settings_file=scaled_settings(tmp_path, part_files=8)["inference"])
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    approve_a_model(cfg)
    steps = _steps(json.loads(inference_pipeline.build(cfg, cli.make_session(cfg)).definition()))
    assert steps[STEPS["inference_preprocess"]]["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        "--part-files", "8"]


def _settings_with(tmp_path, key, change):
    settings = yaml.safe_load((ROOT / PIPELINES[key].settings).read_text())
    change(settings)
    path = tmp_path / f"{key}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_training_runs_on_one_instance(tmp_path):
    """SageMaker's SKLearn estimator refuses instance_count != 1 ("Scikit-Learn does not support distributed
    training", sagemaker-python-sdk src/sagemaker/sklearn/estimator.py); train.py is that kind of script."""
    path = _settings_with(tmp_path, "training", lambda s: s["training"].update(instance_count=2))
    with pytest.raises(ConfigError, match="training.instance_count': expected 1, got 2"):
        load_pipeline_config("training", settings_file=path)


@pytest.mark.parametrize("instances", [1, 2])
def test_the_training_yamls_drift_settings_reach_the_step_that_writes_constraints(aws, tmp_path, instances):
    """data_quality.comparison_threshold & co. become the baseline's arguments: of the one baseline step, or of
    the merge that writes constraints.json when the baseline is sharded (the shards write partials only)."""
    drift = {"comparison_threshold": 0.05, "comparison_method": "Simple", "categorical_comparison_threshold": 0.2}
    path = _settings_with(tmp_path, "training", lambda s: (s["data_quality"].update(drift),
                                                           s["processing"].update(instance_count=instances)))
    cfg = load_pipeline_config("training", settings_file=path)
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    steps = _steps(json.loads(training_pipeline.build(cfg, cli.make_session(cfg)).definition()))
    args = steps[STEPS["data_quality_baseline"]]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert args[0] == "baseline" and args[-6:] == ["--comparison-threshold", "0.05", "--comparison-method", "Simple",
                                                   "--categorical-comparison-threshold", "0.2"]
    if instances > 1:
        shards = steps[STEPS["data_quality_baseline_shards"]]["Arguments"]["AppSpecification"]["ContainerArguments"]
        assert shards == ["baseline", "--partial"]


def test_drift_settings_are_checked(tmp_path):
    for change, message in (
            (lambda s: s["data_quality"].update(comparison_threshold=0), "comparison_threshold'"),
            (lambda s: s["data_quality"].update(comparison_method="Fancy"), "comparison_method'"),
            (lambda s: s["data_quality"].update(engine="model_monitor", comparison_threshold=0.05),
             "only the builtin engine writes it into the baseline")):
        with pytest.raises(ConfigError, match=message):
            load_pipeline_config("training", settings_file=_settings_with(tmp_path, "training", change))
    # inference checks against the baseline's constraints: the setting belongs to the training YAMLs
    path = _settings_with(tmp_path, "inference", lambda s: s["data_quality"].update(comparison_threshold=0.05))
    with pytest.raises(ConfigError, match="data_quality"):
        load_pipeline_config("inference", settings_file=path)


def test_settings_refuse_counts_that_cannot_take_effect(tmp_path):
    path = _settings_with(tmp_path, "inference", lambda s: s["transform"].update(instance_count=4, part_files=2))
    with pytest.raises(ConfigError, match="transform.part_files': expected >= transform.instance_count"):
        load_pipeline_config("inference", settings_file=path)
    # the evaluation reads its whole input: a second instance would only redo it
    path = _settings_with(tmp_path, "training", lambda s: s["processing"].update(instance_counts={"evaluation": 2}))
    with pytest.raises(ConfigError, match="evaluation"):
        load_pipeline_config("training", settings_file=path)


def test_demo_story_holds_with_two_instances(tmp_path):
    """The whole offline story with the sharded steps and the batch transform on 2 instances each: the same
    expectations as the one-instance demo; the transforms really used both instances, every instance saw its
    own resourceconfig.json."""
    from local_runtime.demo import run_demo
    out = tmp_path / "demo"
    paths = scaled_settings(tmp_path)
    rc = run_demo(output=str(out), rows=1500, inference_rows=200, drift_rows=300, repo_root=ROOT,
                  configs={PIPELINES[key].builder.rsplit(".", 1)[-1]: path for key, path in paths.items()})
    summary = json.loads((out / "summary.json").read_text())
    failed = [c for c in summary["expectations"] if not c["ok"]]
    assert rc == 0 and not failed, failed
    workspace = out / "workspace"
    transforms = [p.parent for p in workspace.rglob("spec-algo-1.json")]
    assert len(transforms) == 3  # one per inference execution
    for job in transforms:
        records = {p.name: json.loads(p.read_text()) for p in job.glob("records-*.json")}
        assert sorted(records) == ["records-algo-1.json", "records-algo-2.json"], job
        assert all(counts for counts in records.values())  # each instance scored a part
    configs = [json.loads(p.read_text()) for p in workspace.rglob("algo-2/opt/ml/config/resourceconfig.json")]
    assert configs and all(c["current_host"] == "algo-2" and c["hosts"] == ["algo-1", "algo-2"] for c in configs)
