"""The three pipeline definitions, built with the SageMaker SDK v3 against moto.

Checks the structure an EventBridge rule or a SageMaker execution relies on: step names and
types, data dependencies, that every property reference points at an existing step and
output, parameter defaults from the configuration, and upsert into the (emulated) account.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from pipeline_scripts import cli, deploy, inference_pipeline, training_hpo_pipeline, training_pipeline
from pipeline_scripts.errors import NoApprovedModelError
from pipeline_scripts.config import DEFAULT_ENV_FILE, load_pipeline_config
from pipeline_scripts.contracts import PREDICTION_BASELINE

from shared_setups import approve_a_model

ROOT = Path(__file__).resolve().parents[2]
EXECUTION_VARIABLES = {"PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "PipelineArn",
                       "StartDateTime", "CurrentDateTime"}

TRAINING_STEPS = {
    "TrainingPreProcessStep": "Processing", "DataQualityBaselineStep": "Processing", "TrainingStep": "Training",
    "TrainingEval": "Processing", "MSECond": "Condition", "ModelRegisterStep": "RegisterModel",
    "MSEThresholdFail": "Fail",
}
HPO_STEPS = {**{k: v for k, v in TRAINING_STEPS.items() if k != "TrainingStep"}, "HyperparameterTuningStep": "Tuning"}
INFERENCE_STEPS = {
    "CreateModelStep": "Model", "DataPreProcessingStep": "Processing", "BatchInferenceStep": "Transform",
    "DataCheckPreProcessingStep": "Processing", "DataQualityCheckStep": "Processing",
    "PredictionDriftCheckStep": "Processing",
    "GroundTruthAvailableCond": "Condition", "ModelQualityCalcStep": "Processing",
    "FeedbackAcceptedCond": "Condition", "FeedbackQuarantinedFail": "Fail",
    "ModelQualityCond": "Condition", "ModelQualityBreachFail": "Fail", "InferenceReportStep": "Processing",
}


# --- helpers ---------------------------------------------------------------------------------

def flatten(steps: list[dict]) -> dict[str, dict]:
    """All steps by name, including those nested in condition branches."""
    found: dict[str, dict] = {}
    for step in steps:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(flatten(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]))
    return found


def references(node, prefix: str) -> list[str]:
    """Every {"Get": "<prefix>..."} below node."""
    out: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("Get"), str) and node["Get"].startswith(prefix):
            out.append(node["Get"])
        for value in node.values():
            out.extend(references(value, prefix))
    elif isinstance(node, list):
        for value in node:
            out.extend(references(value, prefix))
    return out


def step_inputs(step: dict) -> set[str]:
    """Names of the steps whose properties this step reads (its data dependencies)."""
    if step["Type"] == "Condition":  # a condition's own dependencies, not its branches'
        node = step["Arguments"]["Conditions"]
    else:
        node = {k: v for k, v in step.items() if k != "Name"}
    return {ref.split(".")[1] for ref in references(node, "Steps.")}


def check_references(definition: dict) -> None:
    steps = flatten(definition["Steps"])
    parameters = {p["Name"] for p in definition["Parameters"]}
    for ref in references(definition, ""):
        kind, _, rest = ref.partition(".")
        if kind == "Parameters":
            assert rest in parameters, f"{ref}: no such parameter"
        elif kind == "Execution":
            assert rest in EXECUTION_VARIABLES, f"{ref}: no such execution variable"
        elif kind == "Steps":
            name = rest.split(".")[0]
            assert name in steps, f"{ref}: no step {name}"
            target = steps[name]
            output = re.search(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]", ref)
            if output:
                outputs = {o["OutputName"] for o in target["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
                assert output.group(1) in outputs, f"{ref}: step {name} has no output {output.group(1)}"
            property_file = re.search(r"PropertyFiles\.(\w+)", ref)
            if property_file:
                files = {f["PropertyFileName"]: f for f in target.get("PropertyFiles", [])}
                assert property_file.group(1) in files, f"{ref}: step {name} has no property file"
                outputs = {o["OutputName"] for o in target["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
                assert files[property_file.group(1)]["OutputName"] in outputs
        else:
            pytest.fail(f"unknown reference {ref}")


def by_name(items: list[dict], key: str = "Name") -> dict[str, dict]:
    return {item[key]: item for item in items}


@pytest.fixture
def account(aws):
    cfg = load_pipeline_config("training")
    boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
    return cfg


def definition_of(module, kind: str, **load_args) -> dict:
    cfg = load_pipeline_config(kind, **load_args)
    return json.loads(module.build(cfg, cli.make_session(cfg)).definition())


@pytest.fixture(scope="module")
def built():
    """The three definitions, built once (the SDK takes seconds per build) in a moto account
    that holds two approved versions, so the inference pipeline must pick the newer one."""
    from moto import mock_aws

    with mock_aws():
        cfg = load_pipeline_config("training")
        boto3.client("s3").create_bucket(Bucket=cfg.env.bucket_name)
        training = definition_of(training_pipeline, "training")
        hpo = definition_of(training_hpo_pipeline, "training_hpo")
        approve_a_model(cfg)
        newest = approve_a_model(cfg)
        package = boto3.client("sagemaker").describe_model_package(ModelPackageName=newest)
        inference = definition_of(inference_pipeline, "inference")
    return {"training": training, "training_hpo": hpo, "inference": inference, "package": package}


# --- training -------------------------------------------------------------------------------

def test_training_definition_structure(built):
    definition = built["training"]
    steps = flatten(definition["Steps"])
    assert {n: s["Type"] for n, s in steps.items()} == TRAINING_STEPS
    check_references(definition)
    assert step_inputs(steps["DataQualityBaselineStep"]) == {"TrainingPreProcessStep"}
    assert step_inputs(steps["TrainingStep"]) == {"TrainingPreProcessStep"}
    assert step_inputs(steps["TrainingEval"]) == {"TrainingPreProcessStep", "TrainingStep"}
    assert step_inputs(steps["MSECond"]) == {"TrainingEval"}
    assert step_inputs(steps["ModelRegisterStep"]) == {"TrainingStep", "TrainingEval", "DataQualityBaselineStep"}

    condition = steps["MSECond"]["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == ["ModelRegisterStep"]
    assert [s["Name"] for s in condition["ElseSteps"]] == ["MSEThresholdFail"]
    (check,) = condition["Conditions"]
    assert check["Type"] == "LessThanOrEqualTo"
    assert check["LeftValue"]["Std:JsonGet"]["Path"] == "regression_metrics.mse.value"
    assert check["RightValue"] == {"Get": "Parameters.MseThreshold"}


def test_training_parameters_and_settings_come_from_config(built):
    cfg = load_pipeline_config("training")
    definition = built["training"]
    parameters = by_name(definition["Parameters"])
    assert "FeedbackData" not in parameters  # plain training uses the training data only
    assert parameters["TrainingData"]["DefaultValue"] == cfg.env.training_data_uri
    assert parameters["MseThreshold"]["DefaultValue"] == cfg.mse_threshold
    assert parameters["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"

    steps = flatten(definition["Steps"])
    training = steps["TrainingStep"]["Arguments"]
    expected = {k: str(v) for k, v in cfg.settings.training.hyperparameters.items()}
    assert {k: training["HyperParameters"][k] for k in expected} == expected
    assert training["ResourceConfig"]["InstanceType"] == cfg.settings.training.instance_type
    assert training["OutputDataConfig"]["KmsKeyId"] == cfg.env.kms_key
    assert training["VpcConfig"]["Subnets"] == [cfg.env.subnet_id]
    assert {c["ChannelName"] for c in training["InputDataConfig"]} >= {"train", "validation", "preprocessor"}

    preprocess = steps["TrainingPreProcessStep"]["Arguments"]
    assert preprocess["ProcessingResources"]["ClusterConfig"]["InstanceType"] == cfg.settings.processing.instance_type
    assert preprocess["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == cfg.env.kms_key
    assert preprocess["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    args = preprocess["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--test-ratio") + 1] == str(cfg.settings.split.test_ratio)

    register = steps["ModelRegisterStep"]["Arguments"]
    assert register["ModelPackageGroupName"] == cfg.env.model_package_group_name
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == {"Get": "Steps.TrainingStep.ModelArtifacts.S3ModelArtifacts"}
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"
    # metrics and drift baselines are attached to the version
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    baselines = register["DriftCheckBaselines"]["ModelDataQuality"]
    assert baselines["Statistics"]["S3Uri"]["Std:Join"]["Values"][-1] == "statistics.json"
    assert baselines["Constraints"]["S3Uri"]["Std:Join"]["Values"][-1] == "constraints.json"
    # the model-output baseline the evaluation writes, for the inference pipeline's prediction-drift check
    evaluation_out = {"Get": "Steps.TrainingEval.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}
    for kind in ("statistics", "constraints"):
        assert register["CustomerMetadataProperties"][PREDICTION_BASELINE[kind]] == {
            "Std:Join": {"On": "/", "Values": [evaluation_out, f"prediction-baseline/{kind}.json"]}}


def test_training_scripts_are_uploaded_and_referenced(account):
    definition = definition_of(training_pipeline, "training")
    steps = flatten(definition["Steps"])
    s3 = boto3.client("s3")
    for name in ("TrainingPreProcessStep", "DataQualityBaselineStep", "TrainingEval"):
        arguments = steps[name]["Arguments"]
        code = by_name(arguments["ProcessingInputs"], "InputName")["code"]["S3Input"]["S3Uri"]
        bucket, key = code[len("s3://"):].split("/", 1)
        script = Path(arguments["AppSpecification"]["ContainerEntrypoint"][-1]).name
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == (ROOT / "scripts" / script).read_bytes()


def test_model_monitor_option_uses_quality_check_step(account, tmp_path):
    data = yaml.safe_load((ROOT / "pipeline_scripts" / "training_pipeline.yaml").read_text())
    data["data_quality"]["engine"] = "model_monitor"
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(data))
    definition = definition_of(training_pipeline, "training", settings_file=path)
    steps = flatten(definition["Steps"])
    assert steps["DataQualityBaselineStep"]["Type"] == "QualityCheck"
    check_references(definition)


# --- training with HPO -------------------------------------------------------------------------

def test_hpo_definition_tunes_several_hyperparameters(built):
    cfg = load_pipeline_config("training_hpo")
    definition = built["training_hpo"]
    steps = flatten(definition["Steps"])
    assert {n: s["Type"] for n, s in steps.items()} == HPO_STEPS
    check_references(definition)

    tuning = steps["HyperparameterTuningStep"]["Arguments"]
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == cfg.settings.tuning.strategy
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == cfg.settings.tuning.max_jobs
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "validation:mse"}
    ranges = {r["Name"]: r for kind in config["ParameterRanges"].values() for r in kind}
    assert set(ranges) == set(cfg.settings.tuning.ranges)
    for name, spec in cfg.settings.tuning.ranges.items():
        assert float(ranges[name]["MinValue"]) == spec.min and float(ranges[name]["MaxValue"]) == spec.max
    metric = tuning["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"][0]
    assert re.search(metric["Regex"], "epoch done validation:mse=4.125").group(1) == "4.125"

    # the best training job's model is evaluated and registered
    assert "Steps.HyperparameterTuningStep.TrainingJobSummaries[0].TrainingJobName" in json.dumps(steps["TrainingEval"])
    register = steps["ModelRegisterStep"]["Arguments"]
    assert register["CustomerMetadataProperties"]["approver"] == "review-board"

    # retraining also learns from the labelled batches the inference pipeline writes
    parameters = by_name(definition["Parameters"])
    assert parameters["FeedbackData"]["DefaultValue"] == cfg.env.feedback_uri
    preprocess = steps["TrainingPreProcessStep"]["Arguments"]
    feedback = by_name(preprocess["ProcessingInputs"], "InputName")["feedback"]["S3Input"]
    assert feedback["S3Uri"] == {"Get": "Parameters.FeedbackData"}
    args = preprocess["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--feedback-dir") + 1] == feedback["LocalPath"]
    # ... a bounded window of them (training_hpo_pipeline.yaml feedback.max_batches)
    assert args[args.index("--feedback-window") + 1] == str(cfg.settings.feedback.max_batches)


# --- inference ----------------------------------------------------------------------------------

def test_inference_definition_uses_latest_approved_model(built):
    cfg = load_pipeline_config("inference")
    package, definition = built["package"], built["inference"]
    steps = flatten(definition["Steps"])
    assert {n: s["Type"] for n, s in steps.items()} == INFERENCE_STEPS
    check_references(definition)

    container = steps["CreateModelStep"]["Arguments"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert step_inputs(steps["BatchInferenceStep"]) == {"CreateModelStep", "DataPreProcessingStep"}
    assert step_inputs(steps["DataCheckPreProcessingStep"]) == {"BatchInferenceStep"}
    assert step_inputs(steps["DataQualityCheckStep"]) == {"DataCheckPreProcessingStep"}
    assert step_inputs(steps["ModelQualityCalcStep"]) == {"DataCheckPreProcessingStep"}
    # the report comes after data and model quality, the verdicts after the report
    assert step_inputs(steps["InferenceReportStep"]) == {"ModelQualityCalcStep", "DataCheckPreProcessingStep",
                                                         "PredictionDriftCheckStep"}
    # model-output drift: the batch's predictions against the version's own prediction baseline
    assert step_inputs(steps["PredictionDriftCheckStep"]) == {"DataCheckPreProcessingStep"}
    drift_in = by_name(steps["PredictionDriftCheckStep"]["Arguments"]["ProcessingInputs"], "InputName")
    metadata = package["CustomerMetadataProperties"]
    assert drift_in["baseline_statistics"]["S3Input"]["S3Uri"] == metadata[PREDICTION_BASELINE["statistics"]]
    assert drift_in["baseline_constraints"]["S3Input"]["S3Uri"] == metadata[PREDICTION_BASELINE["constraints"]]
    assert drift_in["prediction_check"]["S3Input"]["S3Uri"] == {
        "Get": "Steps.DataCheckPreProcessingStep.ProcessingOutputConfig.Outputs['prediction_check'].S3Output.S3Uri"}
    assert steps["InferenceReportStep"]["DependsOn"] == ["DataQualityCheckStep"]
    assert steps["FeedbackAcceptedCond"]["DependsOn"] == ["InferenceReportStep"]
    report_out = by_name(steps["InferenceReportStep"]["Arguments"]["ProcessingOutputConfig"]["Outputs"], "OutputName")
    dq_out = by_name(steps["DataQualityCheckStep"]["Arguments"]["ProcessingOutputConfig"]["Outputs"], "OutputName")
    assert report_out["report"]["S3Output"]["S3Uri"] == dq_out["data_quality"]["S3Output"]["S3Uri"]

    transform = steps["BatchInferenceStep"]["Arguments"]
    assert transform["TransformInput"]["SplitType"] == "Line"
    assert transform["BatchStrategy"] == "MultiRecord" and transform["TransformOutput"]["AssembleWith"] == "Line"

    # preprocessing at inference reads the artifact fitted at training time
    preprocess = by_name(steps["DataPreProcessingStep"]["Arguments"]["ProcessingInputs"], "InputName")
    assert preprocess["model"]["S3Input"]["S3Uri"] == container["ModelDataUrl"]
    # the data-quality check compares against the baseline registered with that version
    check = by_name(steps["DataQualityCheckStep"]["Arguments"]["ProcessingInputs"], "InputName")
    baselines = package["DriftCheckBaselines"]["ModelDataQuality"]
    assert check["baseline_statistics"]["S3Input"]["S3Uri"] == baselines["Statistics"]["S3Uri"]
    assert check["baseline_constraints"]["S3Input"]["S3Uri"] == baselines["Constraints"]["S3Uri"]

    # batch-bound: both readers of the batch read exactly the object named by InputObjectKey
    parameters = by_name(definition["Parameters"])
    key = {"Get": "Parameters.InputObjectKey"}
    batch_uri = {"Std:Join": {"On": "", "Values": [f"s3://{cfg.env.bucket_name}/", key]}}
    assert by_name(steps["DataPreProcessingStep"]["Arguments"]["ProcessingInputs"], "InputName")["data"]["S3Input"]["S3Uri"] == batch_uri
    data_check = steps["DataCheckPreProcessingStep"]["Arguments"]
    assert by_name(data_check["ProcessingInputs"], "InputName")["batch"]["S3Input"]["S3Uri"] == batch_uri
    args = data_check["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--object-key") + 1] == key
    input_prefix = f"{cfg.env.bucket_prefix}/{cfg.env.bucket_inf_prefix}/input"
    assert args[args.index("--input-prefix") + 1] == input_prefix
    assert parameters["InputObjectKey"]["DefaultValue"] == input_prefix + "/"  # schedules: the whole input prefix
    assert parameters["MseThreshold"]["DefaultValue"] == cfg.mse_threshold

    # feedback where HPO reads it, quarantine outside it
    outputs = by_name(data_check["ProcessingOutputConfig"]["Outputs"], "OutputName")
    assert outputs["feedback"]["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] == cfg.env.feedback_uri
    quarantine = outputs["quarantine"]["S3Output"]["S3Uri"]["Std:Join"]["Values"][0]
    assert not quarantine.startswith(cfg.env.feedback_uri + "/")

    # verdict tree: quarantine first, then ground truth, then mse <= threshold; the breach is a FailStep whose
    # message starts with the contract's marker and carries the mse and the threshold
    verdict = steps["FeedbackAcceptedCond"]["Arguments"]
    assert verdict["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"] == "quarantined"
    assert [s["Name"] for s in verdict["IfSteps"]] == ["GroundTruthAvailableCond"]
    assert [s["Name"] for s in verdict["ElseSteps"]] == ["FeedbackQuarantinedFail"]
    gate = steps["GroundTruthAvailableCond"]["Arguments"]
    assert gate["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"] == "available"
    assert [s["Name"] for s in gate["IfSteps"]] == ["ModelQualityCond"] and gate["ElseSteps"] == []
    mse_gate = steps["ModelQualityCond"]["Arguments"]
    (condition,) = mse_gate["Conditions"]
    assert condition["Type"] == "LessThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "regression_metrics.mse.value"
    assert condition["RightValue"] == {"Get": "Parameters.MseThreshold"}
    assert mse_gate["IfSteps"] == [] and [s["Name"] for s in mse_gate["ElseSteps"]] == ["ModelQualityBreachFail"]
    message = steps["ModelQualityBreachFail"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[0] == "ModelQualityBreach: mse=" and condition["LeftValue"] in message
    assert {"Get": "Parameters.MseThreshold"} in message and key in message


def test_a_version_without_a_prediction_baseline_is_served_without_the_prediction_drift_check(account, capsys):
    """Versions registered before the training pipelines wrote a prediction baseline: scored and checked for
    feature drift as before, with a warning at build time and a report that says the check did not run."""
    cfg = load_pipeline_config("inference")
    arn = approve_a_model(cfg, prediction_baseline=False)
    steps = flatten(definition_of(inference_pipeline, "inference")["Steps"])
    assert "PredictionDriftCheckStep" not in steps and "DataQualityCheckStep" in steps
    assert "prediction_drift" not in by_name(steps["InferenceReportStep"]["Arguments"]["ProcessingInputs"], "InputName")
    assert f"model package {arn} has no prediction baseline" in capsys.readouterr().out


def test_inference_without_approved_model_stops_with_clear_message(account, capsys):
    cfg = load_pipeline_config("inference")
    deploy.ensure_model_package_group(cfg)
    assert inference_pipeline.main(["--no-upload"]) == NoApprovedModelError.exit_code == 3
    err = capsys.readouterr().err
    assert "no Approved model version" in err and cfg.env.model_package_group_name in err


def test_without_an_approved_model_withdraw_if_none_upserts_a_pipeline_that_refuses_every_batch(account, built):
    """The deploy after the serving version was rejected and none is left: the same name and parameters as the
    real pipeline (the data-arrival rule still starts it), one FailStep naming the batch and the reason, and a
    request the service accepts."""
    from pipeline_scripts.contracts import CONTRACTS, MARKERS, STEPS
    from tools import sagemaker_api_check
    cfg = load_pipeline_config("inference")
    deploy.ensure_model_package_group(cfg)
    assert inference_pipeline.main(["--no-upload", "--withdraw-if-none"]) == 0
    described = boto3.client("sagemaker").describe_pipeline(PipelineName=cfg.env.pipeline_name("inference"))
    withdrawn = json.loads(described["PipelineDefinition"])
    assert withdrawn["Parameters"] == built["inference"]["Parameters"]
    (step,) = withdrawn["Steps"]
    assert (step["Name"], step["Type"]) == (STEPS["no_serving_model"], "Fail")
    message = step["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    parameter = CONTRACTS.pipeline("inference").started_by["object_parameter"]
    assert message[0] == f"{MARKERS['no_serving_model']}: batch " and message[1] == {"Get": f"Parameters.{parameter}"}
    assert f"no version of model package group '{cfg.env.model_package_group_name}' is Approved" in message[2]
    assert sagemaker_api_check.check_definition(withdrawn) == []


# --- upsert, recreate, upload, import --------------------------------------------------------------

def test_upsert_then_describe(account):
    cfg = load_pipeline_config("training")
    assert training_pipeline.main(["--no-upload"]) == 0
    described = boto3.client("sagemaker").describe_pipeline(PipelineName=cfg.env.pipeline_name("training"))
    stored = json.loads(described["PipelineDefinition"])
    assert set(flatten(stored["Steps"])) == set(TRAINING_STEPS)
    assert described["RoleArn"] == cfg.env.role_arn
    # a second run updates in place
    assert training_pipeline.main(["--no-upload"]) == 0
    assert boto3.client("sagemaker").describe_pipeline(PipelineName=cfg.env.pipeline_name("training"))["PipelineArn"] == \
        described["PipelineArn"]


def _env_file_with(tmp_path: Path, **values: str) -> Path:
    text = DEFAULT_ENV_FILE.read_text()
    for key, value in values.items():
        text = re.sub(rf"(?m)^{key}\s*=\s*\S+", f"{key} = {value}", text)
    path = tmp_path / "env.tfvars"
    path.write_text(text)
    return path


def test_recreate_pipelines_deletes_before_creating(account, tmp_path):
    cfg = load_pipeline_config("training")
    sm = boto3.client("sagemaker")
    assert training_pipeline.main(["--no-upload"]) == 0
    first = sm.describe_pipeline(PipelineName=cfg.env.pipeline_name("training"))["CreationTime"]
    env_file = _env_file_with(tmp_path, recreate_pipelines="true")
    assert training_pipeline.main(["--no-upload", "--env-file", str(env_file)]) == 0
    second = sm.describe_pipeline(PipelineName=cfg.env.pipeline_name("training"))["CreationTime"]
    assert second > first


def test_upload_flags_upload_ground_truth_before_inference_data(account, tmp_path):
    env_file = _env_file_with(tmp_path, upload_training_data="true", upload_inference_data="true")
    cfg = load_pipeline_config("training", env_file=env_file)
    uploaded = deploy.upload_data(cfg)
    assert uploaded == [f"{cfg.env.training_data_uri}/training-data.csv",
                        f"{cfg.env.ground_truth_uri}/ground-truth.csv",
                        f"{cfg.env.inference_input_uri}/inference-data.csv"]
    s3 = boto3.client("s3")
    stored = s3.get_object(Bucket=cfg.env.bucket_name, Key=uploaded[0].split("/", 3)[3])
    assert stored["Body"].read() == (ROOT / "data" / "training-data.csv").read_bytes()
    assert stored["ServerSideEncryption"] == "aws:kms" and stored["SSEKMSKeyId"] == cfg.env.kms_key


def test_definition_out_writes_json_without_upserting(account, tmp_path):
    out = tmp_path / "training.json"
    assert training_pipeline.main(["--definition-out", str(out)]) == 0
    assert set(flatten(json.loads(out.read_text())["Steps"])) == set(TRAINING_STEPS)
    sm = boto3.client("sagemaker")
    assert sm.list_pipelines()["PipelineSummaries"] == []
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_importing_a_pipeline_script_does_nothing():
    # An unreachable endpoint: any AWS call at import time would fail the import.
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    code = "import pipeline_scripts.training_pipeline, pipeline_scripts.training_hpo_pipeline, " \
           "pipeline_scripts.inference_pipeline"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_broken_tfvars_stops_the_script_with_its_name(tmp_path, capsys):
    bad = _env_file_with(tmp_path, accuracy_mse_threshold='"high"')
    assert training_pipeline.main(["--env-file", str(bad), "--definition-out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "accuracy_mse_threshold" in err
