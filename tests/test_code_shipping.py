"""How the step library reaches the jobs: an S3 input on PYTHONPATH for processing jobs (content-addressed, KMS or
SSE), the source_dir for training, model.tar.gz for serving -- and the offline runtime resolves imports the same way
(a job sees only what its inputs bring, never the repository's copy)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from local_runtime import container
from pipeline_scripts import common, training_pipeline
from pipeline_scripts.config import load_pipeline_config

ROOT = Path(__file__).resolve().parents[1]


def test_every_processing_step_mounts_the_uploaded_step_library(aws):
    """ProcessingInput S3Prefix semantics: keys below the prefix land below LocalPath
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html)."""
    cfg = load_pipeline_config("training")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=cfg.env.bucket_name)
    definition = json.loads(training_pipeline.build(cfg, common.make_session(cfg)).definition())
    processing = [s for s in definition["Steps"] if s["Type"] == "Processing"]
    assert {s["Name"] for s in processing} >= {"TrainingPreProcessStep", "DataQualityBaselineStep", "TrainingEval"}
    uris = set()
    for step in processing:
        args = step["Arguments"]
        (lib,) = [i for i in args["ProcessingInputs"] if i["InputName"] == "steplib"]
        assert lib["S3Input"]["LocalPath"] == common.STEPLIB_MOUNT
        assert args["Environment"]["PYTHONPATH"] == common.STEPLIB_MOUNT
        uris.add(lib["S3Input"]["S3Uri"])
    (uri,) = uris  # one content-addressed upload per build
    bucket, prefix = uri[len("s3://"):].split("/", 1)
    assert prefix.startswith(f"{cfg.env.bucket_prefix}/code/steplib/")
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]
    shipped = {o["Key"][len(prefix) + 1:] for o in objects}
    expected = {f"steplib/{p.relative_to(common.STEPLIB_DIR).as_posix()}" for p in common.steplib_files()}
    assert shipped == expected and "steplib/schema.py" in shipped
    head = s3.head_object(Bucket=bucket, Key=f"{prefix}/steplib/schema.py")
    assert head["ServerSideEncryption"] in ("aws:kms", "AES256")
    # the same content builds the same definition (no timestamped code location)
    again = json.loads(training_pipeline.build(cfg, common.make_session(cfg)).definition())
    assert {i["S3Input"]["S3Uri"] for s in again["Steps"] if s["Type"] == "Processing"
            for i in s["Arguments"]["ProcessingInputs"] if i["InputName"] == "steplib"} == uris


def test_training_source_dir_carries_the_step_library():
    """ModelTrainer's SourceCode.source_dir is the scripts folder, steplib included."""
    assert (common.SCRIPTS_DIR / "train.py").is_file() and common.STEPLIB_DIR.parent == common.SCRIPTS_DIR


def test_offline_job_imports_only_what_its_inputs_bring(tmp_path):
    script = tmp_path / "code" / "job.py"
    script.parent.mkdir()
    script.write_text("import steplib, sys\nprint(steplib.WHERE)\n")
    lib = tmp_path / "input" / "steplib"
    (lib / "steplib").mkdir(parents=True)
    (lib / "steplib" / "__init__.py").write_text("WHERE = 'mounted'\n")
    log = tmp_path / "log.txt"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(lib)}
    assert container.run_script([str(script)], env, str(tmp_path), str(log), 60) == 0
    assert log.read_text().strip() == "mounted"
    # without the input, the repository's steplib (installed in the venv) is not visible to the job
    code = container.run_script([str(script)], {"PATH": "/usr/bin:/bin"}, str(tmp_path), str(log), 60)
    assert code == 1 and "No module named 'steplib'" in log.read_text()


def test_threshold_fail_message_names_the_test_mse(offline_runtime, tmp_path, make_dataset):
    """The MSE gate's FailStep message carries the test-split MSE (Std:JsonGet inside Std:Join), offline as on AWS."""

    make_dataset(n=300, inference_rows=20, seed=5, out=tmp_path / "data")
    with offline_runtime() as rt:
        v = rt.tf.vars
        assert training_pipeline.main(["--env-file", str(ROOT / "env_files/dev_env.tfvars"), "--no-upload"]) == 0
        key = f"{v['bucket_prefix']}/{v['bucket_train_prefix']}/training-data.csv"
        rt.upload(tmp_path / "data" / "training-data.csv", key)  # with the project key, as the bucket policy wants
        rec = rt.execute_pipeline(rt.tf.pipeline_names["training"], {"MseThreshold": 0.001}, {"source": "test"})
        assert rec["PipelineExecutionStatus"] == "Failed"
        evaluation = json.loads(rt.aws.s3.get_object(
            Bucket=v["bucket_name"],
            Key=next(o["Key"] for o in rt.aws.s3.list_objects_v2(Bucket=v["bucket_name"])["Contents"]
                     if o["Key"].endswith("evaluation.json")))["Body"].read())
        mse = evaluation["regression_metrics"]["mse"]["value"]
        reason = json.dumps(rec)
        assert f"Test-split MSE {mse} is above the threshold 0.001" in reason
