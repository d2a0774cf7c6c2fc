"""End-to-end: the demo story on small data, and the fault path (crashing step script, retry) on the real
training pipeline. Both use the repo's pipeline_scripts, scripts, events.tf/lambda.tf and notification Lambda."""
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from shared_setups import small_hpo_config  # noqa: E402


def test_demo_story_on_small_data(tmp_path):
    from local_runtime.demo import run_demo
    out = tmp_path / "demo"
    # 1,500 rows: small enough to be quick, large enough that retraining on 300 labelled drifted
    # rows brings a later drifted batch back under the threshold (seeded: the same figures every run)
    rc = run_demo(output=str(out), rows=1500, inference_rows=200, drift_rows=300, repo_root=ROOT,
                  configs={"training_hpo_pipeline": small_hpo_config(tmp_path)})
    summary = json.loads((out / "summary.json").read_text())
    failed = [c for c in summary["expectations"] if not c["ok"]]
    assert rc == 0 and not failed, failed
    from pipeline_scripts.config import load_env
    names = [e["PipelineName"] for e in summary["executions"]]
    assert names.count(load_env(ROOT / "env_files" / "dev_env.tfvars").pipeline_name("training_hpo")) == 1
    assert [v["approval"] for v in summary["model_versions"]] == ["Approved", "Approved"]
    assert summary["reports"] and all(Path(r).read_text().startswith("<!") for r in summary["reports"])
    # every report's log links (the demo's copies and the workspace's own) lead to the job logs from where the
    # file lies: relative links, which the studio serves at the same relative places
    import re
    from urllib.parse import unquote
    for report in [*map(Path, summary["reports"]), *(out / "workspace" / "reports").glob("*.html")]:
        links = re.findall(r'href="([^"]*logs\.txt)"', report.read_text())
        assert links and all(not link.startswith(("file:", "/")) for link in links), (report, links)
        assert all((report.parent / unquote(link)).resolve().is_file() for link in links), (report, links)
    outbox = (out / "workspace" / "outbox" / "notifications.jsonl").read_text().splitlines()
    assert any("ModelQualityBreach" in json.loads(l)["message"] for l in outbox)


def _code_object(rt, pipeline: str, step: str):
    d = json.loads(rt.aws.sm.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"])
    s = next(x for x in d["Steps"] if x["Name"] == step)
    uri = next(i["S3Input"]["S3Uri"] for i in s["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    return uri[5:].split("/", 1)


def test_crashing_script_fails_training_nothing_registered_and_retry_recovers(offline_runtime, tmp_path, make_dataset):
    make_dataset(n=400, inference_rows=50, seed=7, out=tmp_path / "data")
    with offline_runtime() as rt:
        v = rt.tf.vars
        from pipeline_scripts import training_pipeline
        assert training_pipeline.main(["--env-file", str(ROOT / "env_files/dev_env.tfvars"), "--no-upload"]) == 0
        bucket, key = _code_object(rt, rt.tf.pipeline_names["training"], "TrainingEval")
        good = rt.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        # a bad code deploy: the evaluation script crashes
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": v["kms_key"]}  # the bucket policy requires it
        rt.aws.s3.put_object(Bucket=bucket, Key=key, Body=b"raise RuntimeError('evaluation exploded')\n", **sse)
        rt.upload(tmp_path / "data" / "training-data.csv", f"{v['bucket_prefix']}/{v['bucket_train_prefix']}/training-data.csv")
        rt.pump()
        rec = rt.workspace.load_execution(rt.executions_run[-1])
        assert rec["PipelineExecutionStatus"] == "Failed"
        assert rec["Steps"]["TrainingEval"]["StepStatus"] == "Failed"
        # As on AWS: a processing container that dies without /opt/ml/output/message gets the generic reason;
        # the traceback is in the job's log (CloudWatch there), not in the API.
        assert rec["Steps"]["TrainingEval"]["FailureReason"] == "AlgorithmError: See job logs for more information"
        assert "evaluation exploded" in Path(rec["Steps"]["TrainingEval"]["Properties"]["LogFile"]).read_text()
        assert "ModelRegisterStep" not in rec["Steps"]
        groups = rt.aws.sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert not groups or not rt.aws.sm.list_model_packages(ModelPackageGroupName=rt.tf.model_package_group_name)["ModelPackageSummaryList"]
        notes = [n["message"] for n in rt.notifications.received]
        assert any("TrainingEval" in m and "See job logs" in m for m in notes), notes
        done = {n: rec["Steps"][n]["Properties"].get("ProcessingJobName") or rec["Steps"][n]["Properties"].get("TrainingJobName")
                for n in ("TrainingPreProcessStep", "TrainingStep")}

        rt.aws.s3.put_object(Bucket=bucket, Key=key, Body=good, **sse)  # hotfix, then RetryPipelineExecution
        rt.bus.enqueue(("retry", rec["PipelineExecutionId"]))
        rt.pump()
        again = rt.workspace.load_execution(rec["PipelineExecutionId"])
        assert again["PipelineExecutionStatus"] == "Succeeded", again.get("FailureReason")
        for n, job in done.items():  # succeeded steps kept their jobs and outputs
            props = again["Steps"][n]["Properties"]
            assert (props.get("ProcessingJobName") or props.get("TrainingJobName")) == job
        pk = rt.aws.sm.list_model_packages(ModelPackageGroupName=rt.tf.model_package_group_name)["ModelPackageSummaryList"]
        assert [p["ModelApprovalStatus"] for p in pk] == ["PendingManualApproval"]


def test_data_arrival_for_a_missing_pipeline_goes_to_the_dead_letter_queue(offline_runtime, tmp_path, make_dataset):
    """A pipeline that was never upserted cannot start: StartPipelineExecution fails, the starter Lambda
    fails, and its asynchronous invocation ends in the function's dead-letter queue; the runtime goes on."""
    with offline_runtime() as runtime:
        v = runtime.tf.vars
        data = make_dataset(n=10, inference_rows=1) / "inference-data.csv"
        runtime.upload(data, f"{v['bucket_prefix']}/{v['bucket_inf_prefix']}/input/inference-data.csv")
        runtime.pump()
        (letter,) = runtime.bus.dead_letters
        assert runtime.tf.pipeline_names["inference"] in letter["error"] and "ClientError" in letter["error"]
        assert letter["rule"].endswith("inference-data-arrival") and letter["function"].endswith("start-pipeline")
        assert letter["dlq"].endswith(":mlops-dev-mlops-events-dlq")
        assert runtime.workspace.list_executions() == []


def test_schedule_rules_and_their_targets_do_not_fire_locally(tmp_path):
    from local_runtime.runtime import Runtime
    # prod turns on a schedule: its target must not be mistaken for a pattern rule's target
    with Runtime(repo_root=ROOT, workspace=tmp_path / "ws", env_file="env_files/prod_env.tfvars", quiet=True,
                 persist=False) as runtime:
        names = {r.name for r in runtime.bus.rules}
        assert "mlops-prod-inference-data-arrival" in names
        assert not any("schedule" in n for n in names)


def test_model_monitor_option_runs_quality_check_steps(offline_runtime, tmp_path, make_dataset, schema):
    """data_quality.engine: model_monitor builds QualityCheck steps; locally they run our engine and the
    registered version carries the calculated baseline as its drift-check baseline."""
    make_dataset(n=400, inference_rows=50, seed=7, out=tmp_path / "data")
    settings = yaml.safe_load((ROOT / "pipeline_scripts" / "training_pipeline.yaml").read_text())
    settings["data_quality"]["engine"] = "model_monitor"
    config = tmp_path / "training.yaml"
    config.write_text(yaml.safe_dump(settings))
    with offline_runtime() as rt:
        v = rt.tf.vars
        from pipeline_scripts import training_pipeline
        assert training_pipeline.main(["--no-upload", "--config", str(config)]) == 0
        rt.upload(tmp_path / "data" / "training-data.csv", f"{v['bucket_prefix']}/{v['bucket_train_prefix']}/training-data.csv")
        rt.pump()
        rec = rt.workspace.load_execution(rt.executions_run[-1])
        assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
        baseline = rec["Steps"]["DataQualityBaselineStep"]
        assert baseline["StepType"] == "QualityCheck"
        statistics = baseline["Properties"]["CalculatedBaselineStatistics"]
        (package,) = rt.aws.sm.list_model_packages(ModelPackageGroupName=rt.tf.model_package_group_name)["ModelPackageSummaryList"]
        described = rt.aws.sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])
        assert described["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"] == statistics
        bucket, key = statistics[len("s3://"):].split("/", 1)
        stats = json.loads(rt.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        # the features' baseline: the target is not among them (predictions get their own baseline)
        assert stats["dataset"]["item_count"] > 0 and {f["name"] for f in stats["features"]} == set(schema.feature_names)


def test_cli_session_state_outlives_each_command(tmp_path, capsys):
    """Separate sm-local commands share the emulated account through the workspace snapshot."""
    from local_runtime import cli
    ws = ["--workspace", str(tmp_path / "ws")]
    assert cli.main([*ws, "upsert"]) == 0
    assert "inference pipeline skipped until a model version is approved" in capsys.readouterr().out
    assert cli.main([*ws, "upsert", "training"]) == 0  # a later command finds the bucket and pipelines
    with pytest.raises(SystemExit) as err:
        cli.main([*ws, "upsert", "trainng"])
    assert err.value.code == 2 and "unknown pipeline(s) trainng" in capsys.readouterr().err
    # wrong names end in one line naming the problem, exit code 2, no traceback
    for argv, expected in ((["upload", str(tmp_path / "nope.csv"), "abalone/training/x.csv"], "nope.csv is not a file"),
                           (["run", "abalone-nosuch"], "pipeline 'abalone-nosuch' does not exist"),
                           (["steps", "nosuchid"], "no execution 'nosuchid'"),
                           (["approve", "abalone-models/9"], "abalone-models/9 not found")):
        assert cli.main([*ws, *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sm-local: error: ") and expected in err and "Traceback" not in err


def test_runtime_against_a_moto_server_endpoint(tmp_path, monkeypatch, make_dataset):
    """AWS_ENDPOINT_URL points every command at one long-lived emulator (moto_server) on loopback."""
    import socket
    from moto.server import ThreadedMotoServer
    from local_runtime import cli
    from pipeline_scripts.config import load_env
    group = load_env().model_package_group_name  # derived from the schema's name unless the tfvars set it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        ws = ["--workspace", str(tmp_path / "ws")]
        assert cli.main([*ws, "upsert", "training"]) == 0
        env = load_env()  # the key the data-arrival rule watches, from the tfvars
        assert cli.main([*ws, "upload", str(make_dataset(n=400, inference_rows=10) / "training-data.csv"),
                         f"{env.bucket_prefix}/{env.bucket_train_prefix}/training-data.csv"]) == 0
        import boto3
        sm = boto3.client("sagemaker", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        (package,) = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        assert package["ModelApprovalStatus"] == "PendingManualApproval"
        assert cli.main([*ws, "approve", f"{group}/1"]) == 0  # a third command, same server state
        assert sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])["ModelApprovalStatus"] == "Approved"
    finally:
        server.stop()
