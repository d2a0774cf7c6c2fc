"""The pipeline scripts without AWS, and what every definition they write must hold.

* ``--help`` and ``--definition-out`` run in a clean environment: no region, no credentials, no
  AWS_* variable at all (as on a fresh CI runner or a laptop).
* The definitions of all three pipelines, with both data-quality engines, are checked for the
  project's encryption and network rules, for retry policies, and against botocore's SageMaker
  service model (tools/sagemaker_api_check.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from pipeline_scripts import cli, deploy, errors, sdk_adapter, shipping, step_blocks, training_hpo_pipeline, training_pipeline
from pipeline_scripts.config import load_pipeline_config
from pipeline_scripts.contracts import PIPELINES, STEPS
from tools import sagemaker_api_check

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("builtin", "model_monitor")
JOB_STEP_TYPES = {"Processing", "Training", "Tuning", "Transform"}
MODEL_STEP_TYPES = {"Model", "RegisterModel"}


def clean_env(home: Path) -> dict[str, str]:
    """What a fresh runner has: a PATH and a HOME with no ~/.aws; no AWS_* or SAGEMAKER_* variable."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}


def approved_package_description(cfg) -> dict:
    """A DescribeModelPackage response of an approved version, as `aws sagemaker describe-model-package` prints it."""
    model_dir = cfg.env.s3_uri("artifacts", cfg.env.pipeline_name("training"), "models", "job-1", "output")
    baseline = cfg.env.s3_uri("artifacts", cfg.env.pipeline_name("training"), "run-1", "data-quality-baseline")
    source = {"ContentType": "application/json"}
    return {
        "ModelPackageGroupName": cfg.env.model_package_group_name,
        "ModelPackageVersion": 1,
        "ModelPackageArn": f"arn:aws:sagemaker:{cfg.env.region}:123456789012:model-package/"
                           f"{cfg.env.model_package_group_name}/1",
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                            "ModelDataUrl": f"{model_dir}/model.tar.gz",
                            "Environment": {"SAGEMAKER_PROGRAM": "train.py"}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        "DriftCheckBaselines": {"ModelDataQuality": {
            "Statistics": {**source, "S3Uri": f"{baseline}/statistics.json"},
            "Constraints": {**source, "S3Uri": f"{baseline}/constraints.json"}}},
    }


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """The three definitions with each data-quality engine, written by --definition-out in a
    clean environment (one interpreter: the SDK import costs seconds)."""
    tmp = tmp_path_factory.mktemp("offline")
    cfg = load_pipeline_config("inference")
    description = tmp / "package.json"
    description.write_text(json.dumps(approved_package_description(cfg)))
    runs = []
    for key, contract in PIPELINES.items():
        for engine in ENGINES:
            settings = yaml.safe_load((ROOT / contract.settings).read_text())
            settings["data_quality"]["engine"] = engine
            config = tmp / f"{key}-{engine}.yaml"
            config.write_text(yaml.safe_dump(settings))
            argv = ["--config", str(config), "--definition-out", str(tmp / f"{key}-{engine}.json")]
            if contract.needs_approved_model:
                argv += ["--model-package-description", str(description)]
            runs.append((contract.builder, argv))
    code = ("import importlib, json, sys\n"
            f"for module, argv in {runs!r}:\n"
            "    code = importlib.import_module(module).main(argv)\n"
            "    if code:\n"
            "        sys.exit(f'{module} {argv}: exit {code}')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(tmp / "home"),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return {(key, engine): json.loads((tmp / f"{key}-{engine}.json").read_text())
            for key in PIPELINES for engine in ENGINES}


CASES = [pytest.param(key, engine, id=f"{key}-{engine}") for key in PIPELINES for engine in ENGINES]


def strings(node):
    """Every string value; JSON-encoded ones (hyperparameters) decoded."""
    if isinstance(node, str):
        yield json.loads(node) if node.startswith('"') else node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


# --- no AWS needed ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(PIPELINES))
def test_help_needs_no_region_or_credentials(key, tmp_path):
    """Without a region the SDK cannot even be imported (NoRegionError); --help does not import it."""
    module = PIPELINES[key].builder
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--definition-out" in result.stdout
    assert ("--model-package-arn" in result.stdout) == PIPELINES[key].needs_approved_model
    assert "sagemaker" not in result.stderr.lower()


def test_definition_out_as_a_command_in_a_clean_environment(tmp_path):
    out = tmp_path / "training.json"
    result = subprocess.run([sys.executable, "-m", PIPELINES["training"].builder, "--definition-out", str(out)],
                            cwd=ROOT, env=clean_env(tmp_path / "home"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(out.read_text())["Steps"]


def test_definition_only_sessions_make_no_aws_call(aws):
    """Under moto with no bucket at all: the build neither looks up nor writes anything."""
    cfg = load_pipeline_config("training_hpo")
    sessions = cli.open_sessions(cfg, definition_only=True)
    definition = json.loads(training_hpo_pipeline.build(cfg, sessions.pipeline).definition())
    # Only the SDK's optional probe is refused before it is sent: before staging code it asks IAM
    # whether the role may write to the bucket, and keeps the bucket when it cannot tell
    # (sagemaker/train/model_trainer.py, _resolve_staging_bucket).
    assert set(sessions.blocked_calls) <= {"iam.SimulatePrincipalPolicy"}
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    # the definition still names the code where an upsert puts it
    tuning = next(s for s in definition["Steps"] if s["Type"] == "Tuning")["Arguments"]
    (submit,) = strings(tuning["TrainingJobDefinition"]["StaticHyperParameters"]["sagemaker_submit_directory"])
    assert submit == shipping.upload_training_code(cfg, sessions.pipeline)


def test_definition_only_refuses_an_aws_call_before_signing(tmp_path):
    sessions = sdk_adapter.Sessions(region="us-east-1", definition_only=True)
    with pytest.raises(errors.AwsCallBlocked, match="sts.GetCallerIdentity"):
        sessions.client("sts").get_caller_identity()
    assert sessions.blocked_calls == ["sts.GetCallerIdentity"]


def test_model_package_arn_selects_that_version(aws, tmp_path):
    """The approval deploy names the approved version; the build uses it, not the group's latest."""
    cfg = load_pipeline_config("inference")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    sm = boto3.client("sagemaker")
    deploy.ensure_model_package_group(cfg)
    described = approved_package_description(cfg)
    spec = described["InferenceSpecification"]
    arns = []
    for version in (1, 2):
        spec = json.loads(json.dumps(spec).replace("model.tar.gz", f"model-{version}.tar.gz"))
        arns.append(sm.create_model_package(ModelPackageGroupName=cfg.env.model_package_group_name,
                                            InferenceSpecification=spec, ModelApprovalStatus="Approved",
                                            DriftCheckBaselines=described["DriftCheckBaselines"])["ModelPackageArn"])
    from pipeline_scripts import inference_pipeline

    assert inference_pipeline.main(["--model-package-arn", arns[0], "--no-upload"]) == 0
    stored = sm.describe_pipeline(PipelineName=cfg.env.pipeline_name("inference"))["PipelineDefinition"]
    create_model = next(s for s in json.loads(stored)["Steps"] if s["Type"] == "Model")
    assert create_model["Arguments"]["PrimaryContainer"]["ModelDataUrl"].endswith("model-1.tar.gz")


def test_definition_out_of_inference_needs_a_saved_description(tmp_path, capsys):
    from pipeline_scripts import inference_pipeline

    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone-models/1"
    code = inference_pipeline.main(["--model-package-arn", arn, "--definition-out", str(tmp_path / "x.json")])
    assert code == errors.ConfigError.exit_code
    assert "--model-package-description" in capsys.readouterr().err


def test_model_package_description_must_be_an_approved_package(tmp_path, capsys):
    cfg = load_pipeline_config("inference")
    described = approved_package_description(cfg)
    described["ModelApprovalStatus"] = "Rejected"
    path = tmp_path / "package.json"
    path.write_text(json.dumps(described))
    from pipeline_scripts import inference_pipeline

    code = inference_pipeline.main(["--model-package-description", str(path), "--definition-out", str(tmp_path / "x")])
    assert code == errors.ConfigError.exit_code
    assert "Rejected, not Approved" in capsys.readouterr().err


# --- encryption, network, retries ------------------------------------------------------------------

@pytest.mark.parametrize("key, engine", CASES)
def test_every_job_is_encrypted_and_in_the_vpc(offline, key, engine):
    cfg = load_pipeline_config(key)
    kms, vpc = cfg.env.kms_key, step_blocks.vpc_config(cfg)
    steps = sagemaker_api_check.steps_of(offline[key, engine])
    assert {s["Type"] for s in steps} >= ({"QualityCheck"} if engine == "model_monitor" else {"Processing"})
    for step in steps:
        args, where = step.get("Arguments", {}), step["Name"]
        if step["Type"] in ("Processing", "QualityCheck"):
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == kms, where
            assert args["ProcessingOutputConfig"]["KmsKeyId"] == kms, where
            assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True, where
            assert args["NetworkConfig"]["VpcConfig"] == vpc, where
        elif step["Type"] in ("Training", "Tuning"):
            job = args["TrainingJobDefinition"] if step["Type"] == "Tuning" else args
            assert job["ResourceConfig"]["VolumeKmsKeyId"] == kms, where
            assert job["OutputDataConfig"]["KmsKeyId"] == kms, where
            assert job["EnableInterContainerTrafficEncryption"] is True, where
            assert job["VpcConfig"] == vpc, where
        elif step["Type"] == "Transform":  # runs in the model's VPC (CreateModel below)
            assert args["TransformOutput"]["KmsKeyId"] == kms, where
            assert args["TransformResources"]["VolumeKmsKeyId"] == kms, where
        elif step["Type"] == "Model":
            assert args["VpcConfig"] == vpc, where


@pytest.mark.parametrize("key, engine", CASES)
def test_every_s3_location_is_under_the_project_prefix(offline, key, engine):
    cfg = load_pipeline_config(key)
    definition = offline[key, engine]
    bucket_uris = [s for s in strings(definition) if s.startswith(f"s3://{cfg.env.bucket_name}")]
    assert bucket_uris
    outside = [uri for uri in bucket_uris if not uri.startswith(cfg.env.s3_uri() + "/")]
    object_parameter = PIPELINES[key].started_by.get("object_parameter")
    if object_parameter:
        # The batch URI is the bucket root joined with the object key the data-arrival rule passes (it only
        # matches keys under the input prefix); the key's default is under the prefix too.
        batch_uri = {"Std:Join": {"On": "", "Values": [f"s3://{cfg.env.bucket_name}/",
                                                        {"Get": f"Parameters.{object_parameter}"}]}}
        assert batch_uri["Std:Join"] in [j["Std:Join"] for j in _joins(definition)]
        default = next(p["DefaultValue"] for p in definition["Parameters"] if p["Name"] == object_parameter)
        assert default.startswith(f"{cfg.env.bucket_prefix}/")
        outside = [uri for uri in outside if uri != f"s3://{cfg.env.bucket_name}/"]
    assert outside == []


def _joins(node):
    if isinstance(node, dict):
        if "Std:Join" in node:
            yield node
        for value in node.values():
            yield from _joins(value)
    elif isinstance(node, list):
        for value in node:
            yield from _joins(value)


@pytest.mark.parametrize("key, engine", CASES)
def test_retry_policies_on_every_job_step(offline, key, engine):
    """https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html: job steps retry
    throttling, service faults, internal, capacity and quota errors; model steps the step-level
    ones (the SDK allows no job policy there); QualityCheck steps take none."""
    for step in sagemaker_api_check.steps_of(offline[key, engine]):
        retried = sorted(t for policy in step.get("RetryPolicies", []) for t in policy["ExceptionType"])
        if step["Type"] in JOB_STEP_TYPES:
            assert retried == ["SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR",
                               "SageMaker.RESOURCE_LIMIT", "Step.SERVICE_FAULT", "Step.THROTTLING"], step["Name"]
        elif step["Type"] in MODEL_STEP_TYPES:
            assert retried == ["Step.SERVICE_FAULT", "Step.THROTTLING"], step["Name"]
        else:
            assert retried == [], step["Name"]
        for policy in step.get("RetryPolicies", []):
            assert 1 <= policy["IntervalSeconds"] <= 43200 and policy["MaxAttempts"] >= 1


# --- the definitions against botocore's SageMaker model --------------------------------------------

@pytest.mark.parametrize("key, engine", CASES)
def test_step_arguments_are_valid_sagemaker_requests(offline, key, engine):
    definition = offline[key, engine]
    checked = [s for s in sagemaker_api_check.steps_of(definition) if s["Type"] in sagemaker_api_check.OPERATIONS]
    assert len(checked) >= 5
    assert [str(p) for p in sagemaker_api_check.check_definition(definition)] == []


def test_api_check_reports_what_the_service_would_reject(offline):
    """Each kind of fault botocore's validator or the service model's constraints catch."""
    steps = {s["Name"]: s for s in sagemaker_api_check.steps_of(offline["training", "builtin"])}
    processing = json.loads(json.dumps(next(s for s in steps.values() if s["Type"] == "Processing")))
    args = processing["Arguments"]
    args["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.huge"      # enum
    args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 101              # max value
    args["RoleArn"] = "sagemaker-role"                                               # pattern
    args["StoppingCondition"]["MaxRuntimeInSeconds"] = 0                             # min value (botocore)
    args["AppSpecification"]["ImageUri"] = "x" * 256                                # max length
    args["Surprise"] = True                                                          # unknown member
    del args["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"]               # required member
    args["Environment"] = {"K": {"Std:Join": {"On": "", "Values": ["a"]}}}           # a Join is a string: fine
    problems = "\n".join(str(p) for p in sagemaker_api_check.check_step(processing))
    for expected in ("ml.m5.huge", "above the maximum 100", "sagemaker-role", "MaxRuntimeInSeconds",
                     "at most 255 allowed", "Surprise", "VolumeSizeInGB"):
        assert expected in problems
    assert "Environment.K" not in problems and "parameter Environment" not in problems


def test_every_upload_of_an_upsert_is_under_the_prefix_with_the_project_key(aws):
    """What an upsert writes (schema, step scripts, training code for tuning): a prefix-scoped role
    or a bucket policy that requires SSE-KMS with the project key accepts every object."""
    cfg = load_pipeline_config("training_hpo")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=cfg.env.bucket_name)
    assert training_hpo_pipeline.main(["--no-upload"]) == 0
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=cfg.env.bucket_name)["Contents"]]
    assert any(k.endswith("sourcedir.tar.gz") for k in keys)
    for key in keys:
        assert key.startswith(f"{cfg.env.bucket_prefix}/"), key
        head = s3.head_object(Bucket=cfg.env.bucket_name, Key=key)
        assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", cfg.env.kms_key), key


def test_training_code_archive_is_reproducible(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "pkg" / "lib.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "lib.cpython-311.pyc").write_bytes(b"\0")
    first = shipping.source_archive(tmp_path)
    os.utime(tmp_path / "train.py", (0, 0))
    assert shipping.source_archive(tmp_path) == first
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["pkg/lib.py", "train.py"]


def test_instance_counts_per_processing_step(tmp_path):
    settings = yaml.safe_load((ROOT / PIPELINES["training"].settings).read_text())
    settings["processing"]["instance_counts"] = {"training_preprocess": 3, "data_quality_baseline": 2}
    settings["processing"]["instance_count"] = 4  # the evaluation reads its whole input: one instance anyway
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(settings))
    cfg = load_pipeline_config("training", settings_file=path)
    definition = json.loads(training_pipeline.build(cfg, cli.open_sessions(cfg, definition_only=True).pipeline)
                            .definition())
    counts = {s["Name"]: s["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
              for s in sagemaker_api_check.steps_of(definition) if s["Type"] == "Processing"}
    # a sharded step, then the one-instance merge under the usual name
    assert counts == {STEPS["training_preprocess_shards"]: 3, STEPS["training_preprocess"]: 1,
                      STEPS["data_quality_baseline_shards"]: 2, STEPS["data_quality_baseline"]: 1,
                      STEPS["evaluation"]: 1}


def test_instance_counts_name_known_step_roles(tmp_path):
    from pipeline_scripts.config import ConfigError

    settings = yaml.safe_load((ROOT / PIPELINES["training"].settings).read_text())
    settings["processing"]["instance_counts"] = {"preprocessing": 2}
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError, match="preprocessing"):
        load_pipeline_config("training", settings_file=path)


def test_sharded_processing_input_splits_objects_across_instances():
    """ShardedByS3Key: each instance gets a share of the objects
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html)."""
    sdk_adapter.load_sdk("us-east-1")
    sharded = step_blocks.processing_input("data", "s3://b/p", "/opt/ml/processing/input/data", sharded=True)
    replicated = step_blocks.processing_input("data", "s3://b/p", "/opt/ml/processing/input/data")
    assert sharded.s3_input.s3_data_distribution_type == "ShardedByS3Key"
    assert replicated.s3_input.s3_data_distribution_type == "FullyReplicated"
