"""Sharded data quality in the pipeline definitions: with processing.instance_counts.<role> above 1 the
baseline (training) and the check (inference) run as a ShardedByS3Key step writing partial profiles plus a
one-instance merge step under the name the rest of the pipeline refers to.

ShardedByS3Key: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html
("ShardedByS3Key ... each instance receives 1/n of the objects").
"""
import json
from dataclasses import replace

import boto3

from pipeline_scripts import cli, inference_pipeline, training_pipeline
from pipeline_scripts.config import load_pipeline_config
from pipeline_scripts.contracts import STEPS


def _steps(definition):
    return {s["Name"]: s for s in definition["Steps"]}


def _inputs(step):
    return {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}


def _count(step):
    return step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]


def _with_instances(cfg, **counts):
    """cfg with processing.instance_counts set for these step roles (the settings are frozen: a changed copy)."""
    processing = replace(cfg.settings.processing, instance_counts={**cfg.settings.processing.instance_counts, **counts})
    return replace(cfg, settings=replace(cfg.settings, processing=processing))


def _check_sharded(steps, shards_name, merge_name, data_input, command):
    shards, merge = steps[shards_name], steps[merge_name]
    assert _count(shards) == 3 and _count(merge) == 1
    assert _inputs(shards)[data_input]["S3DataDistributionType"] == "ShardedByS3Key"
    assert shards["Arguments"]["AppSpecification"]["ContainerArguments"] == [command, "--partial"]
    assert merge["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        command, "--partials", "/opt/ml/processing/input/partials"]
    assert _inputs(merge)["partials"]["S3Uri"] == {
        "Get": f"Steps.{shards_name}.ProcessingOutputConfig.Outputs['partials'].S3Output.S3Uri"}
    assert data_input not in _inputs(merge)


def test_training_baseline_shards_and_merges(aws):
    cfg = load_pipeline_config("training")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    cfg = _with_instances(cfg, data_quality_baseline=3)
    steps = _steps(json.loads(training_pipeline.build(cfg, cli.make_session(cfg)).definition()))
    _check_sharded(steps, STEPS["data_quality_baseline_shards"], STEPS["data_quality_baseline"], "baseline", "baseline")


def test_inference_check_shards_and_merges(aws):
    from shared_setups import approve_a_model  # a registered, approved version

    cfg = load_pipeline_config("inference")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    approve_a_model(cfg)
    cfg = _with_instances(cfg, data_quality_check=3)
    steps = _steps(json.loads(inference_pipeline.build(cfg, cli.make_session(cfg)).definition()))
    _check_sharded(steps, STEPS["data_quality_check_shards"], STEPS["data_quality_check"], "data_check", "check")
    merge_inputs = _inputs(steps[STEPS["data_quality_check"]])
    assert {"baseline_statistics", "baseline_constraints", "partials"} <= set(merge_inputs)


def test_one_instance_keeps_the_single_step(aws):
    cfg = load_pipeline_config("training")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    steps = _steps(json.loads(training_pipeline.build(cfg, cli.make_session(cfg)).definition()))
    assert STEPS["data_quality_baseline_shards"] not in steps
    assert _inputs(steps[STEPS["data_quality_baseline"]])["baseline"]["S3DataDistributionType"] == "FullyReplicated"
