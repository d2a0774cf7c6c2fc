"""Unit tests of the offline runtime's pure parts: expressions, conditions, input transformer, HCL, definitions."""
import json
import re
from pathlib import Path

import pytest

from local_runtime.errors import DefinitionError, StepFailure, TerraformError
from local_runtime.events import apply_input_transformer, json_path
from local_runtime.executor import dependencies, flatten, parse_parameters, topo_order
from local_runtime.expressions import Resolver, evaluate_conditions, parse_path, step_references
from local_runtime.terraform import Terraform

PROPS = {
    "Pre": {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
        {"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://b/eval"}}]}},
    "HPO": {"TrainingJobSummaries": [{"TrainingJobName": "best"}, {"TrainingJobName": "second"}],
            "BestTrainingJob": {"TrainingJobName": "best"}},
}


def make_resolver(files=None):
    def props(name):
        if name not in PROPS:
            raise StepFailure(f"no step {name}")
        return PROPS[name]

    return Resolver({"Thr": 5.5, "Name": "x"}, {"PipelineExecutionId": "abc123", "PipelineName": "p"}, props,
                    lambda step, name: (files or {})[(step, name)])


def test_parse_path_handles_keys_and_indexes():
    assert parse_path("Outputs['train'].S3Output.S3Uri") == ["Outputs", "train", "S3Output", "S3Uri"]
    assert parse_path("TrainingJobSummaries[0].TrainingJobName") == ["TrainingJobSummaries", 0, "TrainingJobName"]


def test_get_parameters_execution_and_step_properties():
    r = make_resolver()
    assert r.resolve({"Get": "Parameters.Thr"}) == 5.5
    assert r.resolve({"Get": "Execution.PipelineExecutionId"}) == "abc123"
    assert r.resolve({"Get": "Steps.Pre.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}) == "s3://b/eval"
    assert r.resolve({"Get": "Steps.HPO.TrainingJobSummaries[1].TrainingJobName"}) == "second"


def test_join_nested_and_jsonget_with_property_file():
    r = make_resolver({("Pre", "Eval"): {"regression_metrics": {"mse": {"value": 4.2}}, "a": [{"b": 7}]}})
    joined = r.resolve({"Std:Join": {"On": "/", "Values": ["s3:/", {"Get": "Parameters.Name"},
                                                             {"Get": "Execution.PipelineExecutionId"}, 3]}})
    assert joined == "s3://x/abc123/3"
    jg = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Pre.PropertyFiles.Eval"}, "Path": "regression_metrics.mse.value"}}
    assert r.resolve(jg) == 4.2
    assert r.resolve({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Pre.PropertyFiles.Eval"}, "Path": "a[0].b"}}) == 7


def test_unsupported_function_and_reference_are_named():
    r = make_resolver()
    with pytest.raises(DefinitionError, match="Std:Concat"):
        r.resolve({"Std:Concat": {"Values": []}})
    with pytest.raises(DefinitionError, match="Nope"):
        r.resolve({"Get": "Parameters.Nope"})
    with pytest.raises(DefinitionError, match="Execution.Foo|Foo"):
        r.resolve({"Get": "Execution.Foo"})
    with pytest.raises(StepFailure, match="missing"):
        r.resolve({"Get": "Steps.Pre.ProcessingOutputConfig.Outputs['missing'].S3Output.S3Uri"})


def test_conditions_compare_numbers_strings_and_combinators():
    r = make_resolver()
    le = {"Type": "LessThanOrEqualTo", "LeftValue": 5.0, "RightValue": {"Get": "Parameters.Thr"}}
    gt = {"Type": "GreaterThan", "LeftValue": "6", "RightValue": {"Get": "Parameters.Thr"}}
    assert evaluate_conditions([le], r) is True
    assert evaluate_conditions([gt], r) is True  # "6" from a JSON file compares as a number
    assert evaluate_conditions([le, {"Type": "Not", "Condition": gt}], r) is False  # implicit AND
    assert evaluate_conditions([{"Type": "Or", "Conditions": [{"Type": "Not", "Condition": le}, gt]}], r) is True
    assert evaluate_conditions([{"Type": "Equals", "LeftValue": True, "RightValue": "true"}], r) is True
    assert evaluate_conditions([{"Type": "In", "QueryValue": "b", "Values": ["a", "b"]}], r) is True
    with pytest.raises(DefinitionError, match="Xor"):
        evaluate_conditions([{"Type": "Xor"}], r)


def test_input_transformer_quotes_strings_and_inserts_json():
    event = {"detail": {"stepName": "S", "n": 3, "meta": {"a": 1}}, "resources": ["arn:1"]}
    out = apply_input_transformer(event, {"s": "$.detail.stepName", "n": "$.detail.n", "m": "$.detail.meta",
                                          "r": "$.resources[0]", "x": "$.detail.missing"},
                                  '{"step": "<s>", "n": <n>, "meta": <m>, "r": "<r>", "x": <x>, "text": "step <s> done"}')
    assert out == {"step": "S", "n": 3, "meta": {"a": 1}, "r": "arn:1", "x": None, "text": "step S done"}
    assert apply_input_transformer(event, {"s": "$.detail.stepName"}, '"plain <s>"') == "plain S"
    with pytest.raises(TerraformError, match="JSONPath"):
        json_path(event, "$..detail")


def test_input_transformer_predefined_variables():
    """EventBridge predefined variables (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
    aws.events.event.json is the whole event and may only be a JSON field value; the names are reserved."""
    from local_runtime.events import Rule
    event = {"id": "1", "time": "2021-11-12T00:00:00Z", "detail-type": "Object Created", "detail": {"k": "v"}}
    rule = Rule("r", "my-rule", {}, "default", True)
    out = apply_input_transformer(event, {}, '{"p": "x", "event": <aws.events.event.json>, "head": <aws.events.event>, '
                                              '"rule": "<aws.events.rule-name>", "at": "<aws.events.event.ingestion-time>"}', rule)
    assert out == {"p": "x", "event": event, "head": {k: v for k, v in event.items() if k != "detail"},
                   "rule": "my-rule", "at": "2021-11-12T00:00:00Z"}
    with pytest.raises(TerraformError, match="only be used as the value of a JSON field"):
        apply_input_transformer(event, {}, '{"e": "<aws.events.event.json>"}', rule)
    with pytest.raises(TerraformError, match="reserved"):
        apply_input_transformer(event, {"aws.events.rule-name": "$.id"}, '{"e": <aws.events.rule-name>}', rule)


def test_terraform_expressions(tmp_path):
    (tmp_path / "variables.tf").write_text('variable "env" {\n  default = "dev"\n}\nvariable "on" {\n  default = ""\n}\n'
                                           'variable "bucket" {}\nvariable "name" {}\n')
    (tmp_path / "main.tf").write_text('''
locals {
  arns = { train = "arn:aws:sagemaker:us-east-1:1:pipeline/${lower(var.name)}" }
}
resource "aws_sns_topic" "t" { name = "topic-${var.env}" }
resource "aws_cloudwatch_event_rule" "r" {
  count = var.on == "" ? 0 : 1
  name  = "r"
  event_pattern = <<-JSON
    {"source": ["aws.s3"], "detail": {"bucket": {"name": ["${var.bucket}"]}}}
  JSON
}
resource "aws_lambda_function" "f" {
  function_name = "fn-${var.env}"
  handler = "mod.handler"
  environment {
    variables = {
      TOPIC = aws_sns_topic.t.arn
      CFG   = jsonencode({ a = [1, 2], "b-c" = var.env })
      ARN   = local.arns.train
    }
  }
}
''')
    (tmp_path / "x.tfvars").write_text('bucket = "bkt"\nname = "My-Pipe"\n')
    tf = Terraform(tmp_path, tmp_path / "x.tfvars")
    assert not tf.enabled("aws_cloudwatch_event_rule", "r")  # count = 0: no instance, as in Terraform
    assert "r" not in tf.resources.get("aws_cloudwatch_event_rule", {})
    env = tf.eval(tf.resource_body("aws_lambda_function", "f")["environment"], "t")["variables"]
    assert env["TOPIC"] == "arn:aws:sns:us-east-1:123456789012:topic-dev"
    assert json.loads(env["CFG"]) == {"a": [1, 2], "b-c": "dev"}
    assert env["ARN"].endswith("pipeline/my-pipe")


def test_terraform_for_each_and_try(tmp_path):
    """tfparse evaluates what the hand-written evaluator got wrong: try() falls back on an error,
    for_each expands into one instance per key, count = 0 leaves none."""
    (tmp_path / "main.tf").write_text('''
locals {
  c = jsondecode(file("${path.module}/c.json"))
}
resource "aws_sns_topic" "t" {
  for_each = { for k, p in local.c : k => p if try(p.on, false) }
  name     = "t-${each.key}-${try(each.value.missing, "fallback")}"
}
''')
    (tmp_path / "c.json").write_text(json.dumps({"a": {"on": True}, "b": {}}))
    tf = Terraform(tmp_path, None)
    assert set(tf.resources["aws_sns_topic"]) == {'t["a"]'}
    assert tf.attr("aws_sns_topic", 't["a"]', "name") == "t-a-fallback"


def test_terraform_rejects_what_variables_tf_rejects(tmp_path):
    (tmp_path / "variables.tf").write_text('variable "env" {\n  type = string\n  validation {\n'
                                           '    condition     = contains(["dev"], var.env)\n'
                                           '    error_message = "env must be dev."\n  }\n}\n')
    (tmp_path / "x.tfvars").write_text('env = "qa"\n')
    with pytest.raises(TerraformError, match="env must be dev"):
        Terraform(tmp_path, tmp_path / "x.tfvars")
    (tmp_path / "x.tfvars").write_text('env = "dev"\nenv = "dev"\n')
    with pytest.raises(TerraformError, match="x.tfvars:2.*Attribute redefined"):
        Terraform(tmp_path, tmp_path / "x.tfvars")


def _step(name, stype="Processing", args=None, **kw):
    return dict({"Name": name, "Type": stype, "Arguments": args or {}}, **kw)


def test_definition_errors_name_the_problem():
    with pytest.raises(DefinitionError, match="EMR"):
        flatten({"Steps": [_step("A", "EMR")]})
    with pytest.raises(DefinitionError, match="duplicate step name 'A'"):
        flatten({"Steps": [_step("A"), _step("A")]})
    steps, parent = flatten({"Steps": [_step("A", args={"X": {"Get": "Steps.B.ProcessingJobName"}}),
                                       _step("B", DependsOn=["A"])]})
    with pytest.raises(DefinitionError, match="cycle"):
        topo_order(steps, dependencies(steps, parent))
    with pytest.raises(DefinitionError, match="unknown step 'Z'"):
        s, p = flatten({"Steps": [_step("A", DependsOn=["Z"])]})
        dependencies(s, p)
    with pytest.raises(DefinitionError, match="Bogus"):
        parse_parameters({"Parameters": [{"Name": "T", "Type": "Float", "DefaultValue": 1.0}]}, {"Bogus": "1"})
    assert parse_parameters({"Parameters": [{"Name": "T", "Type": "Float", "DefaultValue": 1.0},
                                            {"Name": "I", "Type": "Integer", "DefaultValue": 2}]}, {"T": "2.5"}) == {"T": 2.5, "I": 2}


def test_order_follows_data_dependencies_and_condition_branches():
    d = {"Steps": [
        _step("Cond", "Condition", {"Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Steps.Eval.X"}, "RightValue": 1}],
                                    "IfSteps": [_step("Reg", "RegisterModel")], "ElseSteps": [_step("Stop", "Fail")]}),
        _step("Eval", args={"In": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}),
        _step("Train", "Training")]}
    steps, parent = flatten(d)
    order = topo_order(steps, dependencies(steps, parent))
    assert order.index("Train") < order.index("Eval") < order.index("Cond") < order.index("Reg")
    assert parent["Stop"] == ("Cond", "Else")
    assert step_references(d["Steps"][1]["Arguments"]) == {"Train"}


@pytest.mark.parametrize("step, message", [
    (_step("C", "Condition", {"Conditions": []}) | {"RetryPolicies": [
        {"ExceptionType": ["Step.THROTTLING"], "MaxAttempts": 3}]}, "not supported on Condition steps"),
    (_step("P") | {"RetryPolicies": [{"ExceptionType": ["Step.TIMEOUT"], "MaxAttempts": 3}]},
     "unknown ExceptionType 'Step.TIMEOUT'"),
    (_step("P") | {"RetryPolicies": [{"ExceptionType": ["Step.THROTTLING"]}]},
     "exactly one of MaxAttempts and ExpireAfterMin"),
    (_step("P") | {"RetryPolicies": [{"ExceptionType": ["Step.THROTTLING"], "MaxAttempts": 21}]},
     "MaxAttempts must be a number in [1, 20], got 21"),
    (_step("P") | {"RetryPolicies": [{"ExceptionType": ["SageMaker.CAPACITY_ERROR"], "ExpireAfterMin": 5,
                                      "IntervalSeconds": 50000}]}, "IntervalSeconds must be a number in [0, 43200]"),
])
def test_retry_policies_are_checked_as_sagemaker_checks_them(step, message):
    with pytest.raises(DefinitionError, match=re.escape(message)):
        flatten({"Steps": [step]})


def test_the_sdk_retry_policies_of_every_template_step_pass_the_check():
    from local_runtime.executor import check_retry_policies
    from pipeline_scripts import step_blocks

    policies = [p.to_request() for p in step_blocks.retry_policies()]
    for stype in ("Processing", "Training", "Tuning", "Transform"):
        check_retry_policies({"Name": "S", "Type": stype, "RetryPolicies": policies})
    check_retry_policies({"Name": "M", "Type": "Model",
                          "RetryPolicies": [p.to_request() for p in step_blocks.retry_policies(job=False)]})
