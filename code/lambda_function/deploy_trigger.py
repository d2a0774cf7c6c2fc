"""Deploy trigger Lambda: approved model package -> GitLab pipeline trigger API.

Input: the raw "SageMaker Model Package State Change" event, or the compact object built by
the EventBridge input_transformer in events.tf ({"event_id", "model_package_group_name",
"model_package_arn", "model_package_version", "model_approval_status"}).
Environment: GITLAB_API_URL, GITLAB_PROJECT_ID, GITLAB_TRIGGER_TOKEN_SECRET_ARN (Secrets
Manager secret or SSM SecureString ARN; the token never sits in code, env or state),
GITLAB_TRIGGER_REF, MODEL_PACKAGE_GROUP_NAME, DEPLOY_ENVIRONMENT, IDEMPOTENCY_TABLE.
Only the standard library and boto3 (in the Lambda runtime) are used.
"""

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request

import boto3

from notification import IdempotencyStore, InvalidEventError  # same package, shared store

logger = logging.getLogger()
logger.setLevel(logging.INFO)

HTTP_TIMEOUT_SECONDS = 10
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class GitLabTriggerError(RuntimeError):
    """GitLab refused or failed the trigger call (the invocation fails, so it is retried)."""


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


def trigger_pipeline(api_url, project_id, token, ref, variables):
    parsed_url = urllib.parse.urlparse(api_url)
    # The token must never travel in clear text; plain http is accepted for loopback tests only.
    if parsed_url.scheme != "https" and not (parsed_url.scheme == "http" and parsed_url.hostname in _LOOPBACK_HOSTS):
        raise ValueError(f"GITLAB_API_URL must use https: {api_url}")
    # variables.tf accepts a numeric id or an already URL-encoded path (group%2Fproject): encode exactly once
    project = urllib.parse.quote(urllib.parse.unquote(str(project_id)), safe="")
    url = f"{api_url.rstrip('/')}/projects/{project}/trigger/pipeline"
    form = [("token", token), ("ref", ref)] + [(f"variables[{k}]", str(v)) for k, v in sorted(variables.items())]
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked above)
            body = response.read().decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise GitLabTriggerError(f"GitLab trigger API answered HTTP {exc.code} for {url}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise GitLabTriggerError(f"GitLab trigger API unreachable at {url}: {exc.reason}") from exc
    if status not in (200, 201):
        raise GitLabTriggerError(f"GitLab trigger API answered HTTP {status} for {url}: {body[:500]}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise GitLabTriggerError(f"GitLab trigger API answered non-JSON: {body[:200]}") from exc


def lambda_handler(event, context):
    try:
        approval = parse_approval(event)
    except InvalidEventError as exc:
        logger.error("Rejected event: %s", exc)
        raise
    expected_group = os.environ.get("MODEL_PACKAGE_GROUP_NAME")
    if approval["status"] != "Approved" or (expected_group and approval["group"] != expected_group):
        logger.info("Ignoring %s (%s) of group %s", approval["arn"], approval["status"], approval["group"])
        return {"status": "ignored", "model_package_arn": approval["arn"]}

    api_url = os.environ["GITLAB_API_URL"]
    project_id = os.environ["GITLAB_PROJECT_ID"]
    secret_arn = os.environ["GITLAB_TRIGGER_TOKEN_SECRET_ARN"]
    ref = os.environ.get("GITLAB_TRIGGER_REF", "main")

    # One deploy per approved package version, whatever the number of duplicate events.
    store = IdempotencyStore()
    key = f"deploy#{approval['arn']}#Approved"
    if not store.claim(key):
        logger.info("Deploy of %s already triggered", approval["arn"])
        return {"status": "duplicate", "model_package_arn": approval["arn"]}
    try:
        token = read_trigger_token(secret_arn)
        result = trigger_pipeline(
            api_url,
            project_id,
            token,
            ref,
            {
                "MODEL_PACKAGE_ARN": approval["arn"],
                "MODEL_PACKAGE_GROUP_NAME": approval["group"],
                "MODEL_PACKAGE_VERSION": approval.get("version") or "",
                "DEPLOY_ENVIRONMENT": os.environ.get("DEPLOY_ENVIRONMENT", ""),
                "TRIGGERED_BY_EVENT_ID": approval.get("event_id") or "",
            },
        )
    except Exception:
        logger.exception("Deploy trigger failed for %s", approval["arn"])
        store.release(key)
        raise
    store.complete(key)
    logger.info("Triggered GitLab pipeline %s for %s", result.get("id"), approval["arn"])
    return {"status": "triggered", "model_package_arn": approval["arn"], "pipeline_id": result.get("id"), "web_url": result.get("web_url")}
