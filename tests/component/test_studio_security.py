"""The local studio changes state (an approval triggers a deploy), so it answers only its own pages and never
a 500 on bad input: a foreign Host is refused (DNS rebinding), a state-changing request must come from its own
origin, SageMaker's limits apply to ARNs and comments, and the report's log links work where it is served.

Flask's test client drives the app in-process against the runtime's embedded moto; the browser test
(tests/e2e/test_studio.py) clicks through the same page in chromium."""
from __future__ import annotations

import re

import pytest

from local_runtime.runtime import Runtime
from local_runtime.studio.app import create_app, trusted_hosts
from pipeline_scripts.config import load_env

ENV = load_env()
OWN = "http://127.0.0.1:8642"


def _workspace_with_a_version(ws):
    """A workspace whose registry holds one version awaiting approval (as a training run leaves it)."""
    with Runtime(workspace=ws, quiet=True) as rt:
        sm = rt.aws.sm
        sm.create_model_package_group(ModelPackageGroupName=ENV.model_package_group_name)
        sm.create_model_package(
            ModelPackageGroupName=ENV.model_package_group_name, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/x:1",
                                                    "ModelDataUrl": f"s3://{ENV.bucket_name}/m/model.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})
        rt.checkpoint()
    return ws


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Shared by the tests that change nothing (each checks so)."""
    return _workspace_with_a_version(tmp_path_factory.mktemp("studio-security") / "ws")


@pytest.fixture(scope="module")
def client(workspace):
    return create_app(workspace=workspace).test_client()


@pytest.fixture(scope="module")
def page(client):
    home = client.get("/", base_url=OWN)
    assert home.status_code == 200
    token = re.search(rb'name="csrf_token" value="([^"]+)"', home.data).group(1).decode()
    arn = re.search(rb'name="package_arn" value="([^"]+)"', home.data).group(1).decode()
    return token, arn


def _message(response) -> str:
    found = re.search(rb'id="error-message">([^<]*)<', response.data)
    assert found, response.data[:500]
    return found.group(1).decode().replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")


def _decide(client, token, arn, action="reject", origin: str | None = OWN, **form):
    headers = {"Origin": origin} if origin else {}
    return client.post("/versions/decision", base_url=OWN, headers=headers,
                       data={"csrf_token": token, "package_arn": arn, "action": action, **form})


@pytest.mark.parametrize("host", ["evil.example:8642", "evil.example", "192.168.1.20:8642"])
def test_a_request_for_another_host_name_is_refused_before_any_page_runs(client, host):
    """DNS rebinding: a page of another site that resolves its own name to 127.0.0.1 still sends that name."""
    for path in ("/", "/notifications"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400 and f"Host '{host}' is not trusted" in _message(response)


@pytest.mark.parametrize("host", ["127.0.0.1:8642", "localhost:8642", "localhost"])
def test_the_loopback_names_are_served(client, host):
    assert client.get("/notifications", headers={"Host": host}).status_code == 200


def test_bound_to_all_interfaces_the_machines_own_names_are_trusted_too():
    import socket
    assert socket.gethostname() in trusted_hosts("0.0.0.0") and "localhost" in trusted_hosts("0.0.0.0")
    assert trusted_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "::1"]
    assert "10.0.0.5" in trusted_hosts("10.0.0.5")


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:9999", "null", None])
def test_a_decision_from_another_origin_or_from_none_is_refused(client, page, workspace, origin):
    token, arn = page
    response = _decide(client, token, arn, origin=origin)
    assert response.status_code == 403 and "refused: a state-changing request from" in _message(response)
    with Runtime(workspace=workspace, quiet=True) as rt:  # nothing changed
        assert rt.aws.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_same_origin_referer_stands_in_for_a_missing_origin(client, page):
    token, arn = page
    response = client.post("/versions/decision", base_url=OWN, headers={"Referer": f"{OWN}/#versions"},
                           data={"csrf_token": token, "package_arn": arn, "action": "approve",
                                 "comment": "x" * 1025})  # refused by SageMaker's limit, so nothing changes
    assert response.status_code == 400


@pytest.mark.parametrize("arn, status, expected", [
    ("arn:", 400, "DescribeModelPackage.ModelPackageName: 'arn:' does not match the pattern"),
    ("arn:aws:s3:::bucket/key", 400, "'arn:aws:s3:::bucket/key' does not match the pattern"),
    ("not-a-reference", 400, "model package 'not-a-reference': give an ARN or <group>/<version>"),
    (f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{ENV.model_package_group_name}/99", 404, "not found"),
    ("", 400, "expected package_arn and action approve|reject"),
])
def test_a_malformed_or_unknown_package_gets_a_4xx_that_says_why(client, page, arn, status, expected):
    token, _ = page
    response = _decide(client, token, arn)
    assert response.status_code == status and expected in _message(response)


def test_sagemakers_comment_limit_holds_and_the_form_says_so(client, page, workspace):
    token, arn = page
    response = _decide(client, token, arn, action="approve", comment="x" * 1025)
    assert response.status_code == 400
    assert _message(response) == ("1 validation error detected: UpdateModelPackage.ApprovalDescription: 1025 "
                                  "characters, at most 1024 allowed")
    assert _decide(client, token, arn, comment="x" * 200_000).status_code == 413  # refused before it is read
    assert b'name="comment" maxlength="1024"' in client.get("/", base_url=OWN).data
    with Runtime(workspace=workspace, quiet=True) as rt:
        assert rt.aws.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_stale_token_and_an_unknown_execution_are_4xx(client, page):
    _, arn = page
    assert _decide(client, "stale", arn).status_code == 400
    response = client.get("/executions/nosuch", base_url=OWN)
    assert response.status_code == 404 and "no execution 'nosuch'" in _message(response)


def test_a_rejection_asks_first_and_records_a_spelled_out_default_comment(tmp_path):
    workspace = _workspace_with_a_version(tmp_path / "ws")
    client = create_app(workspace=workspace).test_client()
    home = client.get("/", base_url=OWN)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', home.data).group(1).decode()
    arn = re.search(rb'name="package_arn" value="([^"]+)"', home.data).group(1).decode()
    assert b"return confirm(" in client.get("/", base_url=OWN).data  # the Reject button asks before it posts
    response = _decide(client, token, arn, action="reject")
    assert response.status_code == 200 and b'id="new-status">Rejected' in response.data
    with Runtime(workspace=workspace, quiet=True) as rt:
        desc = rt.aws.sm.describe_model_package(ModelPackageName=arn)
    assert (desc["ModelApprovalStatus"], desc["ApprovalDescription"]) == ("Rejected", "rejected in sm-local studio")
