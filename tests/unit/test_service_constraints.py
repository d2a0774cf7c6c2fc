"""The offline runtime refuses what the service would (local_runtime/service_constraints.py): the pattern, enum and
max constraints of botocore's service model, which botocore's own validation leaves to AWS and moto ignores.

Requests that pass are answered by botocore's Stubber, so nothing leaves the process."""
from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from local_runtime import service_constraints

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone-models/2"


@pytest.fixture
def sagemaker():
    client = service_constraints.install(boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"))
    with Stubber(client) as stubber:
        yield client, stubber


def _refusal(call) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException" and refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Message"]


def test_an_approval_comment_over_sagemakers_1024_characters_is_refused_and_1024_pass(sagemaker):
    client, stubber = sagemaker
    message = _refusal(lambda: client.update_model_package(
        ModelPackageArn=PACKAGE, ModelApprovalStatus="Rejected", ApprovalDescription="x" * 1025))
    assert message == ("1 validation error detected: UpdateModelPackage.ApprovalDescription: 1025 characters, "
                       "at most 1024 allowed")
    stubber.add_response("update_model_package", {"ModelPackageArn": PACKAGE})
    client.update_model_package(ModelPackageArn=PACKAGE, ModelApprovalStatus="Rejected", ApprovalDescription="x" * 1024)
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("arn", ["arn:aws:s3:::bucket/key", "arn:", "model-package/abalone-models/2"])
def test_a_value_that_is_not_the_members_form_is_refused_naming_member_value_and_pattern(sagemaker, arn):
    client, _ = sagemaker
    message = _refusal(lambda: client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved"))
    assert message.startswith(f"1 validation error detected: UpdateModelPackage.ModelPackageArn: {arn!r} "
                              "does not match the pattern arn:aws")


def test_every_violation_is_counted_and_named(sagemaker):
    client, _ = sagemaker
    message = _refusal(lambda: client.update_model_package(
        ModelPackageArn="arn:aws:s3:::b/k", ModelApprovalStatus="Approvedd", ApprovalDescription="x" * 2000))
    assert message.startswith("3 validation errors detected: ")
    for member in ("ModelPackageArn", "ModelApprovalStatus: 'Approvedd' is not one of Approved, Rejected, "
                   "PendingManualApproval", "ApprovalDescription: 2000 characters"):
        assert f"UpdateModelPackage.{member}" in message


def test_a_pattern_must_match_the_whole_value_as_sagemaker_matches_it(sagemaker):
    """TrainingJobName's pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} matches the prefix "my" of "my_job"; SageMaker
    still refuses the name, so the whole value must match."""
    client, stubber = sagemaker
    assert "DescribeTrainingJob.TrainingJobName: 'my_job' does not match" in _refusal(
        lambda: client.describe_training_job(TrainingJobName="my_job"))
    stubber.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.")
    with pytest.raises(ClientError, match="Requested resource not found"):  # a valid name reaches the service
        client.describe_training_job(TrainingJobName="my-job")


def test_list_and_number_maxima_are_checked(sagemaker):
    client, _ = sagemaker
    message = _refusal(lambda: client.list_model_packages(MaxResults=101))
    assert message == "1 validation error detected: ListModelPackages.MaxResults: 101 is above the maximum 100"
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert "AddTags.Tags: 51 items, at most 50 allowed" in _refusal(
        lambda: client.add_tags(ResourceArn=PACKAGE, Tags=tags))


def test_every_pattern_of_the_services_the_runtime_calls_compiles():
    """The models' patterns are Java regular expressions (Unicode classes, UTF-16 surrogate ranges): each one must
    compile, or a check would be skipped or crash."""
    session = botocore.session.get_session()
    for service in ("sagemaker", "s3", "events", "lambda", "sns", "sqs", "kms", "dynamodb"):
        model = session.get_service_model(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern:
                service_constraints._pattern(pattern)  # raises regex.error on a pattern it cannot read
    catalog = session.get_service_model("sagemaker").shape_for("AthenaCatalog").metadata["pattern"]
    assert service_constraints._pattern(catalog).fullmatch("catalog-\U0001F600")  # a supplementary code point


def test_values_resolved_later_are_skipped():
    """A pipeline definition's run-time expressions (tools/sagemaker_api_check.py) are not checked by content."""
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("UpdateModelPackage").input_shape
    request = {"ModelPackageArn": "not an arn", "ApprovalDescription": "x" * 2000}
    assert len(service_constraints.violations(request, shape, "UpdateModelPackage")) == 2
    assert service_constraints.violations(request, shape, "UpdateModelPackage",
                                          frozenset({"UpdateModelPackage.ModelPackageArn"})) == [
        "UpdateModelPackage.ApprovalDescription: 2000 characters, at most 1024 allowed"]
