"""Executor tests on pipelines built WITH the SageMaker SDK v3 and upserted into moto, run by the runtime."""
import json
import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TRAIN = textwrap.dedent('''
    import argparse, os, pickle
    import numpy as np
    class Offset:
        def __init__(self, m): self.m = m
        def predict(self, X): return X[:, 0] + self.m
    def model_fn(model_dir):
        return pickle.load(open(os.path.join(model_dir, "m.pkl"), "rb"))
    if __name__ == "__main__":
        p = argparse.ArgumentParser(); p.add_argument("--offset", type=float, default=0); p.add_argument("--algorithm")
        a = p.parse_args()
        d = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",", ndmin=2)
        pickle.dump(Offset(a.offset), open(os.path.join(os.environ["SM_MODEL_DIR"], "m.pkl"), "wb"))
        print(f"validation:mse={abs(a.offset - 3.0) + d.shape[0] * 0}")
''')
PREP = textwrap.dedent('''
    import json, os, sys
    root = os.environ.get("SM_CONTAINER_ROOT", "/opt/ml")
    runs = sys.argv[sys.argv.index("--counter") + 1]
    open(runs, "a").write("x")
    open(root + "/processing/train/train.csv", "w").write("\\n".join(f"{i % 5},{i}" for i in range(50)) + "\\n")
    json.dump({"regression_metrics": {"mse": {"value": 2.5}}}, open(root + "/processing/evaluation/evaluation.json", "w"))
''')
EVAL = textwrap.dedent('''
    import os, sys
    flag = sys.argv[sys.argv.index("--flag") + 1]
    if os.path.exists(flag):
        root = os.environ.get("SM_CONTAINER_ROOT", "/opt/ml")
        open(root + "/output/message", "w").write("boom: evaluation crashed on purpose")
        sys.exit(3)
''')


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    from local_runtime.runtime import Runtime
    ws = tmp_path_factory.mktemp("ws")
    with Runtime(repo_root=ROOT, workspace=ws, quiet=True, persist=False) as runtime:
        yield runtime


def build(rt, tmp: Path, name: str):
    import boto3
    from sagemaker.core.parameter import ContinuousParameter
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow import ParameterFloat
    from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep, TrainingStep, TuningStep
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode
    from sagemaker.train.tuner import HyperparameterTuner

    (tmp / "src").mkdir()
    (tmp / "src" / "train.py").write_text(TRAIN)
    (tmp / "prep.py").write_text(PREP)
    (tmp / "evaluate.py").write_text(EVAL)
    boto3.client("s3").create_bucket(Bucket="bkt")
    sess = PipelineSession(boto_session=boto3.Session(), default_bucket="bkt")
    img = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    role = "arn:aws:iam::123456789012:role/x"
    thr = ParameterFloat(name="Thr", default_value=3.0)
    proc = ScriptProcessor(image_uri=img, command=["python3"], role=role, instance_type="ml.m5.xlarge",
                           instance_count=1, sagemaker_session=sess)
    ev = PropertyFile(name="EvalReport", output_name="evaluation", path="evaluation.json")
    pre = ProcessingStep(name="Pre", property_files=[ev], step_args=proc.run(
        code=str(tmp / "prep.py"), arguments=["--counter", str(tmp / "counter")], outputs=[
            ProcessingOutput(output_name="train", s3_output=ProcessingS3Output(
                s3_uri=Join(on="/", values=["s3://bkt/out", ExecutionVariables.PIPELINE_EXECUTION_ID, "train"]),
                local_path="/opt/ml/processing/train", s3_upload_mode="EndOfJob")),
            ProcessingOutput(output_name="evaluation", s3_output=ProcessingS3Output(
                s3_uri=Join(on="/", values=["s3://bkt/eval", ExecutionVariables.PIPELINE_EXECUTION_ID]),
                local_path="/opt/ml/processing/evaluation", s3_upload_mode="EndOfJob"))]))
    train_uri = pre.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri
    trainer = ModelTrainer(training_image=img, role=role, sagemaker_session=sess, base_job_name="tr",
                           source_code=SourceCode(source_dir=str(tmp / "src"), entry_script="train.py"),
                           compute=Compute(instance_type="ml.m5.xlarge", instance_count=1),
                           hyperparameters={"offset": 1.0, "algorithm": "rf"})
    train = TrainingStep(name="Train", step_args=trainer.train(
        input_data_config=[InputData(channel_name="train", data_source=train_uri)]))
    tuner = HyperparameterTuner(model_trainer=trainer, objective_metric_name="validation:mse", objective_type="Minimize",
                                hyperparameter_ranges={"offset": ContinuousParameter(0.0, 6.0)},
                                metric_definitions=[{"Name": "validation:mse", "Regex": "validation:mse=([0-9\\.eE+-]+)"}],
                                strategy="Bayesian", max_jobs=4, max_parallel_jobs=2)
    hpo = TuningStep(name="HPO", step_args=tuner.tune(inputs=[InputData(channel_name="train", data_source=train_uri)]))
    evaluate = ProcessingStep(name="Evaluate", depends_on=[train, hpo], step_args=proc.run(
        code=str(tmp / "evaluate.py"), arguments=["--flag", str(tmp / "flag"), "--model",
                                                  train.properties.ModelArtifacts.S3ModelArtifacts,
                                                  "--best", hpo.properties.BestTrainingJob.TrainingJobName]))
    fail = FailStep(name="TooBad", error_message=Join(on=" ", values=["mse above", thr]))
    cond = ConditionStep(name="Cond", depends_on=[evaluate], conditions=[ConditionLessThanOrEqualTo(
        left=JsonGet(step_name=pre.name, property_file=ev, json_path="regression_metrics.mse.value"), right=thr)],
        if_steps=[], else_steps=[fail])
    pipeline = Pipeline(name=name, steps=[pre, train, hpo, evaluate, cond], parameters=[thr], sagemaker_session=sess)
    pipeline.upsert(role_arn=role)


def run(rt, name, params=None):
    rt.start_execution(name, params or {})
    rt.pump()
    return rt.workspace.load_execution(rt.executions_run[-1])


def test_sdk_pipeline_runs_with_properties_tuning_and_conditions(rt, tmp_path):
    build(rt, tmp_path, "unit-a")
    rec = run(rt, "unit-a")
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
    steps = rec["Steps"]
    assert rec["StepOrder"][:1] == ["Pre"] and rec["StepOrder"][-1] == "Cond"
    model_uri = steps["Train"]["Properties"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri.endswith(f"{steps['Train']['Properties']['TrainingJobName']}/output/model.tar.gz")
    b, k = model_uri[5:].split("/", 1)
    assert rt.aws.s3.head_object(Bucket=b, Key=k)["ContentLength"] > 0
    hpo = steps["HPO"]["Properties"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in hpo["TrainingJobSummaries"]]
    assert len(values) == 4 and values == sorted(values)  # best first (Minimize)
    assert hpo["BestTrainingJob"]["TrainingJobName"] == hpo["TrainingJobSummaries"][0]["TrainingJobName"]
    # the job records exist in moto for the Lambda's describe_* calls
    job = steps["Pre"]["Properties"]["ProcessingJobName"]
    assert rt.aws.sm.describe_processing_job(ProcessingJobName=job)["ProcessingJobName"] == job
    args = json.loads((Path(steps["Evaluate"]["Properties"]["LocalJobDir"]) / "job.json").read_text())["AppSpecification"]
    assert model_uri in args["ContainerArguments"] and hpo["BestTrainingJob"]["TrainingJobName"] in args["ContainerArguments"]
    assert steps["Cond"]["Properties"]["Outcome"] == "True" and "TooBad" not in steps
    assert rt.aws.sm.describe_pipeline_execution(PipelineExecutionArn=rec["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Succeeded"

    low = run(rt, "unit-a", {"Thr": "1.0"})  # parameter override -> else branch -> FailStep
    assert low["PipelineExecutionStatus"] == "Failed"
    assert low["FailureReason"] == "mse above 1.0"
    assert low["Steps"]["Cond"]["Properties"]["Outcome"] == "False"


def test_crashing_step_fails_execution_and_retry_resumes_from_it(rt, tmp_path):
    build(rt, tmp_path, "unit-b")
    (tmp_path / "flag").write_text("crash")
    rec = run(rt, "unit-b")
    assert rec["PipelineExecutionStatus"] == "Failed"
    assert rec["Steps"]["Evaluate"]["StepStatus"] == "Failed"
    job = rt.aws.sm.describe_processing_job(
        ProcessingJobName=rec["Steps"]["Evaluate"]["Properties"]["ProcessingJobName"])
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["ExitMessage"] == "boom: evaluation crashed on purpose"  # the container's message, as on AWS
    assert rec["Steps"]["Evaluate"]["FailureReason"] == job["FailureReason"]  # the step carries the job's reason
    # what sm-local steps/executions and the studio show: the job's ExitMessage beside its FailureReason
    from local_runtime import views
    row = {r["name"]: r for r in views.step_rows(rt.workspace, rec)}["Evaluate"]
    assert (row["failure_reason"], row["exit_message"]) == (job["FailureReason"], job["ExitMessage"])
    assert views.execution_row(rt.workspace, rec)["failed_step_exit_message"] == job["ExitMessage"]
    assert "Cond" not in rec["Steps"]
    events = rt.workspace.read_jsonl("events.jsonl")
    failed = [e["event"] for e in events if e["event"]["detail"].get("currentStepStatus") == "Failed"
              and e["event"]["detail"]["pipelineExecutionArn"] == rec["PipelineExecutionArn"]]
    assert failed and failed[0]["detail"]["failureReason"] == job["FailureReason"]
    assert failed[0]["detail"]["metadata"]["processingJob"]["arn"].startswith("arn:aws:sagemaker:")
    assert (tmp_path / "counter").read_text() == "x"
    train_job = rec["Steps"]["Train"]["Properties"]["TrainingJobName"]

    (tmp_path / "flag").unlink()
    rt.bus.enqueue(("retry", rec["PipelineExecutionId"]))
    rt.pump()
    again = rt.workspace.load_execution(rec["PipelineExecutionId"])
    assert again["PipelineExecutionStatus"] == "Succeeded"
    assert (tmp_path / "counter").read_text() == "x"  # Pre was not re-run
    assert again["Steps"]["Train"]["Properties"]["TrainingJobName"] == train_job
    assert again["Steps"]["Evaluate"]["AttemptCount"] == 2


def test_unknown_parameter_fails_execution_with_named_error(rt, tmp_path):
    build(rt, tmp_path, "unit-c")
    rec = run(rt, "unit-c", {"Nope": "1"})
    assert rec["PipelineExecutionStatus"] == "Failed" and "Nope" in rec["FailureReason"]



# Each job writes its own marker and waits (up to --wait seconds) for its partner's: "met" when both ran at once.
BARRIER = textwrap.dedent('''
    import os, sys, time
    arg = lambda k: sys.argv[sys.argv.index(k) + 1]
    me, partner, wait, out = arg("--me"), arg("--partner"), float(arg("--wait")), arg("--out")
    open(me, "w").write("here")
    deadline = time.time() + wait
    while not os.path.exists(partner) and time.time() < deadline:
        time.sleep(0.05)
    met = os.path.exists(partner)
    if met:
        time.sleep(float(arg("--linger")))  # the partner sees this marker too before it is gone
    open(out, "w").write("met" if met else "alone")
    os.remove(me)  # gone when the job is: a later step does not meet it
    if arg("--fail") == "yes":
        sys.exit(4)
''')


def build_pair(tmp: Path, name: str, wait: float, fail_first: bool = False, max_parallel: int | None = None):
    """Pre -> (A, B) independent -> After (depends on B): the shape of training (baseline next to training)."""
    import boto3
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep
    from sagemaker.mlops.workflow.parallelism_config import ParallelismConfiguration

    (tmp / "barrier.py").write_text(BARRIER)
    boto3.client("s3").create_bucket(Bucket="bkt")
    sess = PipelineSession(boto_session=boto3.Session(), default_bucket="bkt")
    img = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    role = "arn:aws:iam::123456789012:role/x"
    proc = ScriptProcessor(image_uri=img, command=["python3"], role=role, instance_type="ml.m5.xlarge",
                           instance_count=1, sagemaker_session=sess)

    def barrier(step, me, partner, fail=False, depends_on=None, seconds=wait, linger=0.3):
        return ProcessingStep(name=step, depends_on=depends_on, step_args=proc.run(
            code=str(tmp / "barrier.py"), arguments=[
                "--me", str(tmp / me), "--partner", str(tmp / partner), "--wait", str(seconds),
                "--linger", str(linger),
                "--out", str(tmp / f"{step}.out"), "--fail", "yes" if fail else "no"]))

    pre = barrier("Pre", "pre.here", "nobody", seconds=0)
    a = barrier("A", "a.here", "b.here", fail_first, [pre])
    b = barrier("B", "b.here", "a.here", False, [pre], linger=3 if fail_first else 0.3)  # A fails first
    after = barrier("After", "after.here", "nobody", False, [b], seconds=0)
    pipeline = Pipeline(name=name, steps=[pre, a, b, after], sagemaker_session=sess)
    pipeline.upsert(role_arn=role, parallelism_config=ParallelismConfiguration(max_parallel) if max_parallel else None)


def test_independent_steps_run_at_the_same_time_as_in_sagemaker(rt, tmp_path):
    build_pair(tmp_path, "unit-par", wait=60)
    rec = run(rt, "unit-par")
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
    assert (tmp_path / "A.out").read_text() == "met" and (tmp_path / "B.out").read_text() == "met"
    assert rec["StepOrder"][0] == "Pre" and rec["StepOrder"][-1] == "After"


def test_parallelism_configuration_limits_concurrent_steps(rt, tmp_path):
    build_pair(tmp_path, "unit-serial", wait=1.5, max_parallel=1)
    rec = run(rt, "unit-serial")
    assert rec["PipelineExecutionStatus"] == "Succeeded", rec.get("FailureReason")
    assert rec["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 1}
    assert (tmp_path / "A.out").read_text() == "alone" and (tmp_path / "B.out").read_text() == "alone"


def test_after_a_failure_running_steps_finish_and_nothing_new_starts(rt, tmp_path):
    build_pair(tmp_path, "unit-failpar", wait=60, fail_first=True)
    rec = run(rt, "unit-failpar")
    assert rec["PipelineExecutionStatus"] == "Failed" and rec["FailedStep"] == "A"
    assert rec["FailureReason"] == "Step failure: One or multiple steps failed."
    assert rec["Steps"]["A"]["StepStatus"] == "Failed"
    assert rec["Steps"]["B"]["StepStatus"] == "Succeeded"  # already running when A failed: it ran to the end
    assert (tmp_path / "B.out").read_text() == "met"
    assert "After" not in rec["Steps"] and not (tmp_path / "After.out").exists()  # B succeeded, but A had failed
