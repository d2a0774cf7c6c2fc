"""RegisterModel (CreateModelPackage) and Model (CreateModel) steps, through boto3 against moto."""
from __future__ import annotations

from ..constants import sagemaker_arn
from ..errors import StepFailure
from ..sagemaker_events import model_package_state_change
from .base import StepContext, StepResult


class RegisterModelHandler:
    step_types = ("RegisterModel",)

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(*register(ctx))


class CreateModelHandler:
    step_types = ("Model", "CreateModel")

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(*create_model(ctx))


def register(ctx: StepContext):
    args = dict(ctx.args)
    group = args.get("ModelPackageGroupName")
    if not group:
        raise StepFailure("RegisterModel needs ModelPackageGroupName (unversioned packages are not supported locally)")
    sm = ctx.aws.sm
    # SageMaker Pipelines creates the group on first registration.
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":  # only "does not exist" means create it
            raise StepFailure(f"DescribeModelPackageGroup {group} failed: {exc}") from exc
        sm.create_model_package_group(ModelPackageGroupName=group,
                                      ModelPackageGroupDescription=f"created by pipeline {ctx.execution['PipelineName']}")
    args.setdefault("ModelApprovalStatus", "PendingManualApproval")
    args.setdefault("MetadataProperties", {})
    args["MetadataProperties"].setdefault("GeneratedBy", ctx.execution["PipelineExecutionArn"])
    args.pop("ModelPackageName", None)
    try:
        package_arn = sm.create_model_package(**args)["ModelPackageArn"]
    except Exception as exc:  # botocore validation/client errors carry the field name
        raise StepFailure(f"CreateModelPackage failed: {exc}") from exc
    desc = sm.describe_model_package(ModelPackageName=package_arn)
    ctx.events.publish(model_package_state_change(desc))
    props = {k: v for k, v in desc.items() if k != "ResponseMetadata"}
    props["ModelPackageArn"] = package_arn
    return props, {"RegisterModel": {"Arn": package_arn}}


def resolve_container(sm, container: dict) -> dict:
    """A container given by ModelPackageName takes image, data and environment from the package."""
    if container.get("ModelPackageName"):
        pkg = sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
        spec = (pkg.get("InferenceSpecification") or {}).get("Containers") or []
        if not spec:
            raise StepFailure(f"model package {container['ModelPackageName']} has no InferenceSpecification.Containers")
        merged = dict(spec[0])
        merged["Environment"] = dict(spec[0].get("Environment") or {}, **(container.get("Environment") or {}))
        return merged
    return container


def create_model(ctx: StepContext):
    args = dict(ctx.args)
    name = ctx.job_name()
    args["ModelName"] = name
    if "RoleArn" in args:
        args.setdefault("ExecutionRoleArn", args.pop("RoleArn"))
    if not args.get("ExecutionRoleArn"):  # CreateModel requires it; no role is invented here
        raise StepFailure("CreateModel needs ExecutionRoleArn")
    containers = args.get("Containers") or ([args["PrimaryContainer"]] if args.get("PrimaryContainer") else [])
    if not containers:
        raise StepFailure("CreateModel needs PrimaryContainer or Containers")
    if len(containers) > 1:
        raise StepFailure("multi-container (inference pipeline) models are not supported locally")
    for c in containers:
        resolved = resolve_container(ctx.aws.sm, c)
        if not resolved.get("ModelDataUrl"):
            raise StepFailure(f"model container has no ModelDataUrl: {c}")
    try:
        ctx.aws.sm.create_model(**args)
    except Exception as exc:
        raise StepFailure(f"CreateModel failed: {exc}") from exc
    ctx.services.models[name] = args
    props = {"ModelName": name, "ModelArn": sagemaker_arn("model", name), "ExecutionRoleArn": args["ExecutionRoleArn"]}
    for k in ("PrimaryContainer", "Containers"):
        if k in args:
            props[k] = args[k]
    return props, {"Model": {"Arn": props["ModelArn"]}}
