"""Batch transform sends as many requests per instance as the instance has vCPUs, unless the YAML says.

CreateTransformJob's MaxConcurrentTransforms defaults to 1 when unset and the container serves no
execution-parameters (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html).
"""
import json
from dataclasses import replace

import boto3
import pytest

from pipeline_scripts import cli, inference_pipeline
from pipeline_scripts.config import load_pipeline_config
from pipeline_scripts.instances import vcpus


@pytest.mark.parametrize("instance_type, expected", [
    ("ml.m5.large", 2), ("ml.m5.xlarge", 4), ("ml.c5.2xlarge", 8), ("ml.m5.24xlarge", 96),
    ("ml.t3.medium", 2), ("ml.g4dn.xlarge", 4), ("local", 1),
])
def test_vcpus_from_the_instance_size(instance_type, expected):
    assert vcpus(instance_type) == expected


def test_inference_transform_defaults_to_one_request_per_vcpu(aws):
    from shared_setups import approve_a_model  # a registered, approved version

    cfg = load_pipeline_config("inference")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    approve_a_model(cfg)
    assert cfg.settings.transform.max_concurrent_transforms is None  # not set in the YAML
    definition = json.loads(inference_pipeline.build(cfg, cli.make_session(cfg)).definition())
    (transform,) = [s["Arguments"] for s in definition["Steps"] if s["Type"] == "Transform"]
    assert transform["MaxConcurrentTransforms"] == vcpus(cfg.settings.transform.instance_type)

    # an explicit setting wins (the settings are frozen: a changed copy)
    cfg = replace(cfg, settings=replace(cfg.settings, transform=replace(cfg.settings.transform, max_concurrent_transforms=3)))
    definition = json.loads(inference_pipeline.build(cfg, cli.make_session(cfg)).definition())
    (transform,) = [s["Arguments"] for s in definition["Steps"] if s["Type"] == "Transform"]
    assert transform["MaxConcurrentTransforms"] == 3
