"""Deploy trigger Lambda: approved model package -> GitLab pipeline trigger API.

Input: the raw "SageMaker Model Package State Change" event, or the compact object built by
the EventBridge input_transformer in events.tf ({"event_id", "model_package_group_name",
"model_package_arn", "model_package_version", "model_approval_status"}).
Environment: GITLAB_API_URL, GITLAB_PROJECT_ID, GITLAB_TRIGGER_TOKEN_SECRET_ARN (Secrets
Manager secret or SSM SecureString ARN; the token never sits in code, env or state),
GITLAB_TRIGGER_REF, MODEL_PACKAGE_GROUP_NAME, DEPLOY_ENVIRONMENT, IDEMPOTENCY_TABLE.
Approved -> deploy; Rejected of the newest version (the one serving, if it was approved) -> redeploy, which
rebuilds the inference pipeline around the latest version still Approved (a rollback), or, with none left,
withdraws it (deploy_reason withdraw: it then refuses every batch with the reason). One GitLab call per
approval event, with Powertools idempotency (idempotency.py): a re-approval after a rejection deploys again.

The trigger passes pipeline inputs (.gitlab-ci.yml spec:inputs; trigger API `inputs`, GitLab 18.1+), not
pipeline variables: new GitLab.com projects refuse pipeline variables (pipeline_variables_minimum_override_role
= no_one_allowed). GitLab's refusal of a trigger for that setting is reported with the setting to change.
"""

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request

import boto3

from idempotency import once  # same package
from notification import InvalidEventError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

HTTP_TIMEOUT_SECONDS = 10
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class GitLabTriggerError(RuntimeError):
    """GitLab refused or failed the trigger call (the invocation fails, so it is retried)."""


class GitLabReadTimeout(RuntimeError):
    """The trigger request was sent but GitLab did not answer in time: the outcome is unknown."""


def _region():
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def read_trigger_token(secret_arn):
    """Fetch the trigger token from Secrets Manager (plain or {"token": ...}) or SSM SecureString."""
    if ":ssm:" in secret_arn:
        name = secret_arn.split(":parameter", 1)[1]
        value = boto3.client("ssm", region_name=_region()).get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    elif ":secretsmanager:" in secret_arn:
        value = boto3.client("secretsmanager", region_name=_region()).get_secret_value(SecretId=secret_arn)["SecretString"]
        if value.lstrip().startswith("{"):
            try:
                value = json.loads(value)["token"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"secret {secret_arn} is JSON but has no 'token' key") from exc
    else:
        raise ValueError(f"GITLAB_TRIGGER_TOKEN_SECRET_ARN is neither a Secrets Manager nor an SSM ARN: {secret_arn}")
    if not value or not value.strip():
        raise ValueError(f"trigger token in {secret_arn} is empty")
    return value.strip()


def parse_approval(event):
    """Return a dict with event_id, group, arn, version, status from either input shape."""
    if not isinstance(event, dict):
        raise InvalidEventError(f"event must be a JSON object, got {type(event).__name__}")
    if "detail" in event:
        if event.get("detail-type") != "SageMaker Model Package State Change":
            raise InvalidEventError(f"unsupported detail-type {event.get('detail-type')!r}")
        detail = event["detail"] or {}
        parsed = {
            "event_id": event.get("id"),
            "group": detail.get("ModelPackageGroupName"),
            "arn": detail.get("ModelPackageArn"),
            "version": detail.get("ModelPackageVersion"),
            "status": detail.get("ModelApprovalStatus"),
        }
    else:
        parsed = {
            "event_id": event.get("event_id"),
            "group": event.get("model_package_group_name"),
            "arn": event.get("model_package_arn"),
            "version": event.get("model_package_version"),
            "status": event.get("model_approval_status"),
        }
    missing = [k for k in ("group", "arn", "status") if not parsed.get(k)]
    if missing:
        raise InvalidEventError(f"model package event lacks {', '.join(missing)}")
    return parsed


# GitLab's answer when the project's "Minimum role to use pipeline variables" refuses the trigger
# (https://docs.gitlab.com/ci/variables/#restrict-pipeline-variables).
_VARIABLES_REFUSED = "Insufficient permissions to set pipeline variables"


def trigger_pipeline(api_url, project_id, token, ref, inputs):
    parsed_url = urllib.parse.urlparse(api_url)
    # The token must never travel in clear text; plain http is accepted for loopback tests only.
    if parsed_url.scheme != "https" and not (parsed_url.scheme == "http" and parsed_url.hostname in _LOOPBACK_HOSTS):
        raise ValueError(f"GITLAB_API_URL must use https: {api_url}")
    # variables.tf accepts a numeric id or an already URL-encoded path (group%2Fproject): encode exactly once
    project = urllib.parse.quote(urllib.parse.unquote(str(project_id)), safe="")
    url = f"{api_url.rstrip('/')}/projects/{project}/trigger/pipeline"
    form = [("token", token), ("ref", ref)] + [(f"inputs[{k}]", str(v)) for k, v in sorted(inputs.items())]
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked above)
            body = response.read().decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        if _VARIABLES_REFUSED in detail:
            raise GitLabTriggerError(
                f"GitLab refused the trigger for {url}: {detail}. The project restricts pipeline variables; in "
                "Settings > CI/CD > Variables set 'Minimum role to use pipeline variables' to Maintainer (the "
                "trigger token's owner), or the API's ci_pipeline_variables_minimum_override_role=maintainer") from exc
        raise GitLabTriggerError(f"GitLab trigger API answered HTTP {exc.code} for {url}: {detail}") from exc
    except urllib.error.URLError as exc:  # no connection: GitLab never saw the request, a retry is safe
        raise GitLabTriggerError(f"GitLab trigger API unreachable at {url}: {exc.reason}") from exc
    except TimeoutError as exc:  # sent, but no answer in time: GitLab may have created the pipeline
        raise GitLabReadTimeout(f"no answer from {url} within {HTTP_TIMEOUT_SECONDS} s") from exc
    if status not in (200, 201):
        raise GitLabTriggerError(f"GitLab trigger API answered HTTP {status} for {url}: {body[:500]}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise GitLabTriggerError(f"GitLab trigger API answered non-JSON: {body[:200]}") from exc


def rollback_target(group, arn, version):
    """For a rejected version: (served, latest version still Approved or None). It served when it is newer
    than every version still Approved (the deploy serves the latest Approved one). The event carries no
    previous status, so rejecting a pending version newer than the serving one also counts as served: the
    redeploy then rebuilds around the unchanged serving version (harmless, idempotent)."""
    sm = boto3.client("sagemaker", region_name=_region())
    listed = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                    SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    newest = listed.get("ModelPackageSummaryList", [])
    if not newest:
        return True, None
    newest_version = newest[0].get("ModelPackageVersion") or int(newest[0]["ModelPackageArn"].rsplit("/", 1)[-1])
    return int(version or arn.rsplit("/", 1)[-1]) > int(newest_version), newest[0]["ModelPackageArn"]


def _deploy(data):
    """One GitLab trigger call per approval event (see idempotency.py for the duplicate semantics)."""
    token = read_trigger_token(os.environ["GITLAB_TRIGGER_TOKEN_SECRET_ARN"])
    # a rollback deploys the previous Approved version; a withdrawal none ("": the build serves nothing)
    deploy_arn = data["deploy_arn"] if "deploy_arn" in data else data["arn"]
    # the names and options of .gitlab-ci.yml's spec:inputs (GitLab refuses an input it does not declare)
    inputs = {
        "deploy_environment": os.environ.get("DEPLOY_ENVIRONMENT", ""),
        "model_package_arn": deploy_arn,
        "deploy_reason": "withdraw" if data.get("withdraw") else "rollback" if data["status"] == "Rejected" else "approval",
        "triggered_by_event_id": data["event_id"],
    }
    try:
        result = trigger_pipeline(os.environ["GITLAB_API_URL"], os.environ["GITLAB_PROJECT_ID"], token,
                                  os.environ.get("GITLAB_TRIGGER_REF", "main"), inputs)
    except GitLabReadTimeout as exc:
        # The request reached GitLab but no answer came: the pipeline may exist. A retry could deploy
        # twice, so the outcome is recorded (no retry) and logged as an error to check by event id.
        logger.error("Deploy of %s: outcome unknown (%s); not retried to avoid a second deploy. Check the GitLab "
                     "pipelines for TRIGGERED_BY_EVENT_ID=%s", data["arn"], exc, data["event_id"])
        return {"status": "uncertain", "model_package_arn": data["arn"], "event_id": data["event_id"]}
    logger.info("Triggered GitLab pipeline %s for %s (%s)", result.get("id"), data["arn"], inputs["deploy_reason"])
    return {"status": "triggered", "reason": inputs["deploy_reason"], "model_package_arn": deploy_arn,
            "pipeline_id": result.get("id"), "web_url": result.get("web_url"), "event_id": data["event_id"]}


def lambda_handler(event, context):
    try:
        approval = parse_approval(event)
    except InvalidEventError as exc:
        logger.error("Rejected event: %s", exc)
        raise
    expected_group = os.environ.get("MODEL_PACKAGE_GROUP_NAME")
    if expected_group and approval["group"] != expected_group:
        logger.info("Ignoring %s of group %s", approval["arn"], approval["group"])
        return {"status": "ignored", "model_package_arn": approval["arn"]}
    if approval["status"] == "Rejected":
        served, previous = rollback_target(approval["group"], approval["arn"], approval.get("version"))
        if not served:
            logger.info("Rejected %s is older than the serving version: nothing to redeploy", approval["arn"])
            return {"status": "ignored", "model_package_arn": approval["arn"]}
        if previous is None:
            # Nothing to roll back to: the deploy withdraws the inference pipeline (it then refuses every batch
            # with the reason) rather than let the rejected model go on scoring.
            logger.error("Rejected %s served and no version of %s is Approved any more: withdrawing the inference "
                         "pipeline until a version is approved", approval["arn"], approval["group"])
            approval = dict(approval, deploy_arn="", withdraw=True)
        else:
            approval = dict(approval, deploy_arn=previous)
    if approval["status"] not in ("Approved", "Rejected"):
        logger.info("Ignoring %s (%s)", approval["arn"], approval["status"])
        return {"status": "ignored", "model_package_arn": approval["arn"]}
    if not approval.get("event_id"):
        raise InvalidEventError("model package event lacks its id (needed to deploy once per approval)")
    # Keyed by the event id: EventBridge's duplicates share it, a later re-approval is a new event.
    return once(_deploy, approval, context, "event_id")
