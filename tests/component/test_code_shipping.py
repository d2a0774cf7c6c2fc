"""How the step library reaches the jobs: an S3 input on PYTHONPATH for processing jobs (content-addressed, KMS or
SSE), the source_dir for training, model.tar.gz for serving -- and the offline runtime resolves imports the same way
(a job sees only what its inputs bring, never the repository's copy)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3

from local_runtime import container
from pipeline_scripts import cli, shipping, training_pipeline
from pipeline_scripts.config import load_pipeline_config

ROOT = Path(__file__).resolve().parents[2]


def test_every_processing_step_mounts_the_uploaded_step_library(aws):
    """ProcessingInput S3Prefix semantics: keys below the prefix land below LocalPath
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html)."""
    cfg = load_pipeline_config("training")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=cfg.env.bucket_name)
    definition = json.loads(training_pipeline.build(cfg, cli.make_session(cfg)).definition())
    processing = [s for s in definition["Steps"] if s["Type"] == "Processing"]
    assert {s["Name"] for s in processing} >= {"TrainingPreProcessStep", "DataQualityBaselineStep", "TrainingEval"}
    uris = set()
    for step in processing:
        args = step["Arguments"]
        (lib,) = [i for i in args["ProcessingInputs"] if i["InputName"] == "steplib"]
        assert lib["S3Input"]["LocalPath"] == shipping.STEPLIB_MOUNT
        assert args["Environment"]["PYTHONPATH"] == f"{shipping.STEPLIB_MOUNT}/steplib.zip"
        uris.add(lib["S3Input"]["S3Uri"])
    (uri,) = uris  # one content-addressed upload per build
    bucket, prefix = uri[len("s3://"):].split("/", 1)
    assert prefix.startswith(f"{cfg.env.bucket_prefix}/code/steplib/")
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]
    assert [o["Key"] for o in objects] == [f"{prefix}/steplib.zip"]  # one object per job to fetch
    head = s3.head_object(Bucket=bucket, Key=f"{prefix}/steplib.zip")
    assert head["ServerSideEncryption"] in ("aws:kms", "AES256")
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/steplib.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist()}
    expected = {f"steplib/{p.relative_to(shipping.STEPLIB_DIR).as_posix()}": p.read_bytes()
                for p in shipping.steplib_files()}
    assert shipped == expected and "steplib/artifacts.json" in shipped  # the artifact contract travels with it
    assert shipped == expected and "steplib/schema.py" in shipped and "steplib/dataset_schema.schema.json" in shipped
    # the same content builds the same definition (no timestamped code location)
    again = json.loads(training_pipeline.build(cfg, cli.make_session(cfg)).definition())
    assert {i["S3Input"]["S3Uri"] for s in again["Steps"] if s["Type"] == "Processing"
            for i in s["Arguments"]["ProcessingInputs"] if i["InputName"] == "steplib"} == uris


def test_the_step_library_imports_from_its_zip_and_reads_its_package_data(tmp_path):
    """What a processing job does with PYTHONPATH=<mount>/steplib.zip: zipimport, the schema checked against the
    JSON Schema that travels inside the zip."""
    (tmp_path / "steplib.zip").write_bytes(shipping.steplib_zip(shipping.steplib_contents()))
    (tmp_path / "schema.json").write_text(json.dumps({"name": "t", "target": "y", "columns": [
        {"name": "y", "type": "float"}, {"name": "x", "type": "flot"}]}))
    script = (f"import sys; sys.path[:0] = [{str(tmp_path / 'steplib.zip')!r}]\n"  # as PYTHONPATH puts it
              "import steplib.schema as s\n"
              "assert s.__file__.endswith('steplib.zip/steplib/schema.py'), s.__file__\n"
              f"s.load_schema({str(tmp_path / 'schema.json')!r})\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and "invalid data set schema" in proc.stderr and "'columns/1/type'" in proc.stderr, \
        proc.stderr
    # the artifact contract travels inside the zip too, and a wrong shape is refused with the file named
    script = (f"import sys; sys.path[:0] = [{str(tmp_path / 'steplib.zip')!r}]\n"
              "from steplib import artifacts\n"
              "assert artifacts.file('model_quality') == 'model_quality.json'\n"
              f"artifacts.write('ground_truth', {str(tmp_path)!r}, {{'available': 'yes'}})\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and "ground_truth.json: not a ground_truth document" in proc.stderr, proc.stderr


def test_training_source_dir_carries_the_step_library():
    """ModelTrainer's SourceCode.source_dir is the scripts folder, steplib included."""
    assert (shipping.SCRIPTS_DIR / "train.py").is_file() and shipping.STEPLIB_DIR.parent == shipping.SCRIPTS_DIR


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
        rec = rt.execute_pipeline(rt.tf.pipeline_names["training"], {"MseThreshold": 0.1}, {"source": "test"})  # in range, below any MSE here
        assert rec["PipelineExecutionStatus"] == "Failed"
        evaluation = json.loads(rt.aws.s3.get_object(
            Bucket=v["bucket_name"],
            Key=next(o["Key"] for o in rt.aws.s3.list_objects_v2(Bucket=v["bucket_name"])["Contents"]
                     if o["Key"].endswith("evaluation.json")))["Body"].read())
        mse = evaluation["regression_metrics"]["mse"]["value"]
        reason = json.dumps(rec)
        assert f"Test-split MSE {mse} is above the threshold 0.1" in reason
