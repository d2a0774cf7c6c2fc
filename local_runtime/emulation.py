"""What the embedded moto lacks and AWS does, added to moto's backends for the life of a Runtime.

- S3 bucket policies with conditions: moto stores a bucket policy but evaluates no Condition, so an upload AWS
  would deny succeeds there. Deny statements on s3:PutObject are evaluated here for PutObject, CopyObject and
  CreateMultipartUpload (every upload path: user uploads, job outputs, SDK uploads from pipeline scripts).
- StartPipelineExecution idempotency on ClientRequestToken (moto starts a new execution every time).
- UpdateModelPackage changes only what the request names (moto 5.2 sets CustomerMetadataProperties,
  ApprovalDescription and ModelApprovalStatus to the request's, None when absent: approving a version erased
  its metadata, such as the prediction baseline the inference pipeline reads). CustomerMetadataProperties
  given are added or replaced key by key; the API's CustomerMetadataPropertiesToRemove is how keys go.

Patches apply to the in-process moto only; with AWS_ENDPOINT_URL (a moto_server) they are not active.
"""
from __future__ import annotations

import fnmatch
import json
import threading
from contextlib import contextmanager

from botocore.exceptions import ClientError  # noqa: F401  (documented type callers catch)

_state = threading.local()


@contextmanager
def _flag(name: str):
    """Set a thread-local flag for the duration of a block (nested blocks restore the outer value)."""
    previous = getattr(_state, name, False)
    setattr(_state, name, True)
    try:
        yield
    finally:
        setattr(_state, name, previous)


def internal():
    """Calls the runtime makes on its own behalf (it starts the executions it runs): no start listener fires."""
    return _flag("internal")


def trusted():
    """Writes that replay saved state (the snapshot), not requests: no policy applies to them."""
    return _flag("trusted")


# ------------------------------------------------------------------ bucket policy evaluation
_SUPPORTED_OPERATORS = ("StringEquals", "StringNotEquals", "StringEqualsIfExists", "StringNotEqualsIfExists",
                        "StringLike", "StringNotLike", "Null", "Bool")


class PolicyError(ValueError):
    """A bucket policy uses something this evaluator cannot decide (named in the message)."""


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _condition_holds(operator: str, key: str, wanted, context: dict) -> bool:
    """One condition key under one operator (AWS: values of one key are ORed)."""
    if operator not in _SUPPORTED_OPERATORS:
        raise PolicyError(f"condition operator {operator!r}")
    present = key in context and context[key] is not None
    value = context.get(key)
    wanted = [str(w) for w in _as_list(wanted)]
    if operator == "Null":
        return (not present) == (wanted[0].lower() == "true")
    if operator == "Bool":
        return present and str(value).lower() in [w.lower() for w in wanted]
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if not present:
        # Absent key: a negated operator (StringNotEquals) matches, a positive one does not; ...IfExists matches.
        return if_exists or base.startswith("StringNot")
    if base == "StringEquals":
        return str(value) in wanted
    if base == "StringNotEquals":
        return str(value) not in wanted
    if base == "StringLike":
        return any(fnmatch.fnmatchcase(str(value), w) for w in wanted)
    if base == "StringNotLike":
        return not any(fnmatch.fnmatchcase(str(value), w) for w in wanted)
    raise PolicyError(f"condition operator {operator!r}")


def denied_by(policy: dict, action: str, resource: str, context: dict) -> dict | None:
    """The first Deny statement of a bucket policy that applies to the request, else None.

    Only Deny statements are evaluated: the runtime's identity is allowed everything, so a policy can only take
    away. An operator this evaluator does not know makes the statement apply (the stricter reading)."""
    for st in _as_list(policy.get("Statement", [])):
        if st.get("Effect") != "Deny":
            continue
        actions = _as_list(st.get("Action", []))
        if not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _as_list(st.get("Resource", []))):
            continue
        conditions = st.get("Condition") or {}
        try:
            holds = all(_condition_holds(op, key, wanted, context)
                        for op, keys in conditions.items() for key, wanted in keys.items())
        except PolicyError:
            holds = True  # stricter reading: a condition we cannot evaluate does not let the upload through
        if holds:
            return st
    return None


def require_sse_kms_policy(bucket: str, kms_key_arn: str) -> dict:
    """The bucket policy AWS documents for "deny uploads that are not encrypted with this KMS key"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms)."""
    objects = f"arn:aws:s3:::{bucket}/*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyUploadsWithoutSseKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": objects, "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
        {"Sid": "DenyUploadsWithAnotherKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": objects,
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn}}},
    ]}


def _access_denied(bucket: str, key: str, statement: dict):
    from moto.s3.exceptions import S3AccessDeniedError

    # S3 answers an explicit deny with 403 AccessDenied; the statement is named so the cause is findable.
    error = S3AccessDeniedError()
    error.message = (f"User is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::{bucket}/{key}\" "
                     f"with an explicit deny in a resource-based policy (statement {statement.get('Sid') or '<no Sid>'})")
    return error


def _check_upload(backend, bucket_name: str, key_name: str, encryption, kms_key_id) -> None:
    if getattr(_state, "trusted", False):
        return
    bucket = backend.get_bucket(bucket_name)
    raw = getattr(bucket, "policy", None)
    if not raw:
        return
    policy = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    context = {"s3:x-amz-server-side-encryption": encryption,
               "s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_id if encryption == "aws:kms" else None}
    statement = denied_by(policy, "s3:PutObject", f"arn:aws:s3:::{bucket_name}/{key_name}", context)
    if statement is not None:
        raise _access_denied(bucket_name, key_name, statement)


# ------------------------------------------------------------------ install / uninstall
class Patches:
    """Installs the additions on moto's backend classes; ``close`` restores the originals.

    bucket_policies: {bucket: policy document} the account attaches to those buckets (prerequisites created
    outside the stack): set when the bucket is created in moto, or at once when it already exists."""

    def __init__(self, bucket_policies: dict | None = None, on_pipeline_start=None):
        self._saved: list[tuple[type, str, object]] = []
        self.on_pipeline_start = on_pipeline_start  # (pipeline name, execution ARN, parameters) of API starts
        # bumped by every write, so a checkpoint can skip the parts nothing changed (see aws.Snapshot)
        self.generation = {"s3": 0, "sagemaker": 0}
        self.bucket_policies = {b: json.dumps(p).encode() for b, p in (bucket_policies or {}).items()}

    def _wrap(self, cls: type, name: str, make):
        original = getattr(cls, name)
        self._saved.append((cls, name, original))
        setattr(cls, name, make(original))

    def install(self) -> "Patches":
        from moto.s3.models import FakeBucket, S3Backend
        from moto.sagemaker.models import SageMakerModelBackend

        patches = self

        def put_object(original):
            def wrapper(self, bucket_name, key_name, value, *args, **kwargs):
                if kwargs.get("multipart") is None:  # a multipart completion was checked at its creation
                    _check_upload(self, bucket_name, key_name, kwargs.get("encryption"), kwargs.get("kms_key_id"))
                return original(self, bucket_name, key_name, value, *args, **kwargs)
            return wrapper

        def create_multipart_upload(original):
            def wrapper(self, bucket_name, key_name, metadata, storage_type, tags, acl, sse_encryption, kms_key_id):
                _check_upload(self, bucket_name, key_name, sse_encryption, kms_key_id)
                return original(self, bucket_name, key_name, metadata, storage_type, tags, acl, sse_encryption, kms_key_id)
            return wrapper

        def copy_object(original):
            def wrapper(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs):
                _check_upload(self, dest_bucket_name, dest_key_name, kwargs.get("encryption"), kwargs.get("kms_key_id"))
                return original(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
            return wrapper

        def start_pipeline_execution(original):
            def wrapper(self, pipeline_name, pipeline_execution_display_name, pipeline_parameters,
                        pipeline_execution_description, parallelism_configuration, client_request_token):
                # SageMaker: "An idempotent operation completes no more than once" for one ClientRequestToken.
                if client_request_token:
                    for pipe in self.pipelines.values():
                        for arn, ex in pipe.pipeline_executions.items():
                            if ex.client_request_token == client_request_token:
                                return {"PipelineExecutionArn": arn}
                out = original(self, pipeline_name, pipeline_execution_display_name, pipeline_parameters,
                               pipeline_execution_description, parallelism_configuration, client_request_token)
                arn = out["PipelineExecutionArn"]
                for pipe in self.pipelines.values():  # moto marks a new execution Succeeded; SageMaker starts it
                    if arn in pipe.pipeline_executions:
                        pipe.pipeline_executions[arn].pipeline_execution_status = "Executing"
                if patches.on_pipeline_start is not None and not getattr(_state, "internal", False):
                    params = {p["Name"]: p["Value"] for p in (pipeline_parameters or [])}
                    patches.on_pipeline_start(pipeline_name, arn, params)
                return out
            return wrapper

        def update_model_package(original):
            def wrapper(self, model_package_arn, model_approval_status, approval_description,
                        customer_metadata_properties, customer_metadata_properties_to_remove, *args, **kwargs):
                package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn,
                                                                                      model_package_arn))
                kept = dict(package.customer_metadata_properties or {}) if package is not None else {}
                kept.update(customer_metadata_properties or {})
                description = approval_description if approval_description is not None else (
                    package.approval_description if package is not None else None)
                status = model_approval_status or (package.model_approval_status if package is not None else None)
                return original(self, model_package_arn, status, description, kept or None,
                                customer_metadata_properties_to_remove, *args, **kwargs)
            return wrapper

        policies = self.bucket_policies

        def create_bucket(original):
            def wrapper(self, bucket_name, *args, **kwargs):
                bucket = original(self, bucket_name, *args, **kwargs)
                if bucket_name in policies:
                    bucket.policy = policies[bucket_name]
                return bucket
            return wrapper

        def get_permission(original):
            # moto's own check ignores Condition (a conditional Deny would deny every request); conditional
            # statements are decided by _check_upload, which sees the request's encryption headers.
            def wrapper(self, action, resource):
                if self.policy is None:
                    return original(self, action, resource)
                doc = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
                plain = [st for st in _as_list(doc.get("Statement", [])) if not st.get("Condition")]
                if len(plain) == len(_as_list(doc.get("Statement", []))):
                    return original(self, action, resource)
                from moto.iam.access_control import IAMPolicy, PermissionResult

                if not plain:
                    return PermissionResult.NEUTRAL
                return IAMPolicy(json.dumps(dict(doc, Statement=plain))).is_action_permitted(action, resource)
            return wrapper

        def bump(part):
            def make(original):
                def wrapper(*args, **kwargs):
                    result = original(*args, **kwargs)
                    patches.generation[part] += 1
                    return result
                return wrapper
            return make

        for name in ("put_object", "delete_object", "delete_objects", "create_bucket", "delete_bucket",
                     "put_bucket_policy", "delete_bucket_policy"):
            self._wrap(S3Backend, name, bump("s3"))
        for name in ("create_pipeline", "update_pipeline", "delete_pipeline", "create_model_package",
                     "update_model_package", "delete_model_package", "create_model_package_group",
                     "delete_model_package_group", "create_model", "delete_model"):
            if hasattr(SageMakerModelBackend, name):
                self._wrap(SageMakerModelBackend, name, bump("sagemaker"))

        self._wrap(FakeBucket, "get_permission", get_permission)
        self._wrap(S3Backend, "create_bucket", create_bucket)
        self._wrap(S3Backend, "put_object", put_object)
        self._wrap(S3Backend, "create_multipart_upload", create_multipart_upload)
        self._wrap(S3Backend, "copy_object", copy_object)
        self._wrap(SageMakerModelBackend, "start_pipeline_execution", start_pipeline_execution)
        self._wrap(SageMakerModelBackend, "update_model_package", update_model_package)
        self._attach_existing()
        return self

    def _attach_existing(self) -> None:
        from moto.s3.models import s3_backends

        for account in list(s3_backends):
            backend = s3_backends[account]["global"]
            for name, policy in self.bucket_policies.items():
                if name in backend.buckets:
                    backend.buckets[name].policy = policy

    def close(self) -> None:
        while self._saved:
            cls, name, original = self._saved.pop()
            setattr(cls, name, original)
