"""The AWS account the offline CI jobs talk to: a moto server on loopback (AWS_ENDPOINT_URL), with two things
moto does not do and the jobs' correctness depends on:

- STS AssumeRoleWithWebIdentity checks the role's trust policy against the job's ID token, as STS does
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_oidc.html: the Principal is the OIDC
  provider of the token's issuer, and the conditions on `<issuer host>:aud` / `:sub` hold). moto issues
  credentials for any token; a merge-request job would then pass offline and fail in AWS.
- iam:SimulatePrincipalPolicy (the SageMaker SDK checks an execution role with it) is not in moto; AWS answers
  AccessDenied to a caller whose policy does not grant it, as the least-privilege CI role does not, and the SDK
  then skips its check with a warning. That answer is given here.
- Every API call is recorded with the role that made it (the credentials' access key, traced back to the
  AssumeRoleWithWebIdentity that issued them), as botocore service and operation names, so the CI role's
  policy can be checked against what the jobs really call (iam_policy_check.py).
"""
from __future__ import annotations

import base64
import fnmatch
import io
import json
import re
import threading
import urllib.parse
from functools import lru_cache
from xml.sax.saxutils import escape

import botocore.session
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from moto.server import DomainDispatcherApplication, create_backend_app

from local_runtime.loopback import HOST, LoopbackServer


@lru_cache(maxsize=None)
def _loader():
    return botocore.session.get_session()


@lru_cache(maxsize=None)
def _signing_names() -> dict[str, str]:
    """SigV4 signing name -> botocore service name (e.g. monitoring -> cloudwatch)."""
    session = _loader()
    out = {}
    for name in session.get_available_services():
        meta = session.get_service_model(name).metadata
        out.setdefault(meta.get("signingName") or meta.get("endpointPrefix") or name, name)
    for name in ("s3", "sts", "iam", "lambda", "sagemaker", "events", "logs", "sqs", "sns", "kms", "dynamodb"):
        out[name] = name  # the services' own names win over look-alikes (e.g. s3 vs s3control)
    out["monitoring"] = "cloudwatch"
    return out


@lru_cache(maxsize=None)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern, frozenset, frozenset, str]]:
    """(method, path pattern, required query keys, required headers, operation) of a REST service, most specific
    first: PUT /bucket/key is CopyObject only with an x-amz-copy-source header."""
    model = _loader().get_service_model(service)
    routes = []
    for op in model.operation_names:
        operation = model.operation_model(op)
        http = operation.http
        shape = operation.input_shape
        headers = frozenset(
            shape.members[m].serialization.get("name", m).lower() for m in (shape.required_members if shape else [])
            if shape.members[m].serialization.get("location") == "header")
        path, _, query = http["requestUri"].partition("?")
        # URI labels become named groups, named after the input member they carry (Bucket, Key, FunctionName)
        members = {s.serialization.get("name", n): n for n, s in (shape.members.items() if shape else [])
                   if s.serialization.get("location") == "uri"}
        pattern = re.escape(path)
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", lambda m: f"(?P<{members.get(m.group(1), m.group(1))}>.+)", pattern)
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", lambda m: f"(?P<{members.get(m.group(1), m.group(1))}>[^/]+)", pattern)
        keys = frozenset(q.split("=")[0] for q in query.split("&") if q)
        routes.append((http["method"], re.compile(f"^{pattern}/?$"), keys, headers, op))
    routes.sort(key=lambda r: (-len(r[2]), -len(r[3]), -len(r[1].pattern)))
    return routes


def operation_of(method: str, path: str, query: str, headers, body: bytes) -> tuple[str | None, str | None, dict]:
    """(botocore service, operation, params) of one AWS API request, from its signature and protocol."""
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", headers.get("Authorization") or "")
    service = _signing_names().get(m.group(1)) if m else None
    target = headers.get("X-Amz-Target")
    if target:
        try:
            params = json.loads(body or b"{}")
        except json.JSONDecodeError:
            params = {}
        return service, target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))) if body and b"Action=" in body[:200] else {}
    form = form or dict(urllib.parse.parse_qsl(query))
    if "Action" in form:
        return service, form.pop("Action"), _query_lists(form)
    if service is None:
        return None, None, {}
    keys = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
    present = {k.lower() for k in headers.keys()}
    for route_method, pattern, required, required_headers, op in _rest_routes(service):
        match = pattern.match(urllib.parse.unquote(path))
        if route_method == method and match and required <= keys and required_headers <= present:
            params = {"path": path}
            if body[:1] == b"{":  # REST-JSON bodies (Lambda) carry the rest of the input
                try:
                    params.update(json.loads(body))
                except json.JSONDecodeError:
                    pass
            params.update({k: v for k, v in match.groupdict().items() if v})
            return service, op, params
    return service, None, {"path": path}


def _query_lists(form: dict) -> dict:
    """Query-protocol lists (AlarmNames.member.1=a) as lists, as botocore's parameters have them."""
    out, lists = {}, {}
    for key, value in form.items():
        m = re.fullmatch(r"([A-Za-z0-9]+)\.member\.(\d+)", key)
        if m:
            lists.setdefault(m.group(1), []).append((int(m.group(2)), value))
        else:
            out[key] = value
    out.update({k: [v for _, v in sorted(items)] for k, items in lists.items()})
    return out


def _claims(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def _condition_holds(operator: str, actual: str | None, expected) -> bool:
    expected = expected if isinstance(expected, list) else [expected]
    if actual is None:
        return False
    if operator == "StringEquals":
        return actual in expected
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(actual, e) for e in expected)
    return False  # an operator this check does not know grants nothing (the stricter reading)


def trust_allows(trust_policy: dict, provider_arns: set[str], claims: dict) -> bool:
    """Whether a role's trust policy lets this web identity token assume it."""
    host = re.sub(r"^https://", "", claims.get("iss", "")).rstrip("/")
    values = {f"{host}:aud": claims.get("aud"), f"{host}:sub": claims.get("sub")}
    for st in trust_policy.get("Statement", []):
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        federated = (st.get("Principal") or {}).get("Federated", [])
        federated = [federated] if isinstance(federated, str) else federated
        if st.get("Effect") != "Allow" or "sts:AssumeRoleWithWebIdentity" not in actions:
            continue
        if not any(f in provider_arns and f.endswith(f":oidc-provider/{host}") for f in federated):
            continue
        conditions = st.get("Condition") or {}
        if all(_condition_holds(op, values.get(key), want) for op, kv in conditions.items() for key, want in kv.items()):
            return True
    return False


class LocalAWS(LoopbackServer):
    """moto on loopback (the AWS_ENDPOINT_URL of the jobs), wrapped by the trust check and the call recorder."""

    def __init__(self, account: str, region: str):
        self.account, self.region = account, region
        self.calls: list[dict] = []
        self.sessions: dict[str, dict] = {}  # access key id -> {"role", "job"}
        self.refused: list[dict] = []
        self._lock = threading.Lock()
        self._moto = DomainDispatcherApplication(create_backend_app)
        super().__init__(make_server(HOST, 0, self._app, threaded=True), "moto")

    @property
    def endpoint(self) -> str:
        return self.url

    def _iam(self):
        from moto.iam.models import iam_backends
        return iam_backends[self.account]["global"]

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data(cache=True)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))  # moto reads it again
        service, operation, params = operation_of(request.method, request.path, request.query_string.decode(),
                                                  request.headers, body)
        key = re.search(r"Credential=([^/]+)/", request.headers.get("Authorization") or "")
        key = key.group(1) if key else None
        if operation == "AssumeRoleWithWebIdentity":
            return self._assume(params, environ, start_response)
        if service == "iam" and operation == "SimulatePrincipalPolicy":
            who = self.sessions.get(key, {}).get("role", key)
            return self._error(start_response, "https://iam.amazonaws.com/doc/2010-05-08/", "AccessDenied",
                               f"User: {who} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: "
                               f"{params.get('PolicySourceArn')} because no identity-based policy allows the "
                               "iam:SimulatePrincipalPolicy action")
        if service and operation:
            with self._lock:
                who = self.sessions.get(key, {})
                self.calls.append({"job": who.get("job"), "role": who.get("role"), "access_key": key,
                                   "service": service, "operation": operation, "params": params})
        return self._moto(environ, start_response)

    @staticmethod
    def _error(start_response, namespace: str, code: str, message: str):
        """An error in the query protocol's XML shape (STS, IAM)."""
        xml = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
               f"<Message>{escape(message)}</Message></Error><RequestId>offline</RequestId></ErrorResponse>").encode()
        start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
        return [xml]

    def _assume(self, params, environ, start_response):
        role_arn, token = params.get("RoleArn", ""), params.get("WebIdentityToken", "")
        claims = _claims(token)
        iam = self._iam()
        providers = {getattr(p, "arn", p) for p in iam.list_open_id_connect_providers()}
        try:
            role = iam.get_role_by_arn(role_arn)
            trust = json.loads(urllib.parse.unquote(role.assume_role_policy_document)) \
                if isinstance(role.assume_role_policy_document, str) else role.assume_role_policy_document
        except Exception:  # noqa: BLE001 (moto raises its own not-found types)
            trust = None
        if trust is None or not trust_allows(trust, providers, claims):
            self.refused.append({"role": role_arn, "sub": claims.get("sub"), "aud": claims.get("aud")})
            return self._error(start_response, "https://sts.amazonaws.com/doc/2011-06-15/", "AccessDenied",
                               f"Not authorized to perform sts:AssumeRoleWithWebIdentity on {role_arn} "
                               f"for sub {claims.get('sub')!r}")
        chunks, status = [], {}

        def capture(code, headers, exc_info=None):
            status["code"], status["headers"] = code, headers
            return chunks.append

        body = b"".join(self._moto(environ, capture)) + b"".join(chunks)
        issued = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", body)
        if issued:
            session = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("RoleSessionName", [""])[0] or \
                params.get("RoleSessionName", "")
            self.sessions[issued.group(1).decode()] = {"role": role_arn, "job": claims.get("job_id"),
                                                       "session": session}
        start_response(status["code"], status["headers"])
        return [body]
