"""`sm-local studio` in a real headless browser: Debian's chromium driven by Selenium through
/usr/bin/chromedriver. The page lists the version a real training run registered; clicking Approve
goes through UpdateModelPackage -> "SageMaker Model Package State Change" -> the model_approved rule ->
deploy trigger Lambda -> GitLab trigger (local stand-in) -> the inference pipeline is rebuilt.

Without the browser the test skips, unless REQUIRE_BROWSER=1 (`make test`, CI), where it fails.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline_scripts.config import load_env

ROOT = Path(__file__).resolve().parents[2]
ENV = load_env()  # the tfvars: pipeline and model package group names (derived from the schema's name by default)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        message = (f"{', '.join(missing)} missing (apt-get install -y chromium chromium-driver; "
                   "`make test` installs them as root)")
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace where real training registered version 1 (PendingManualApproval), via the CLI."""
    from local_runtime import cli
    from tools import make_data
    d = tmp_path_factory.mktemp("studio")
    make_data.synthesize(d / "data", make_data.load_schema(), 600, 50, make_data.DEFAULT_SEED, 0.0)  # current schema
    ws = ["--workspace", str(d / "ws")]
    assert cli.main([*ws, "upsert"]) == 0
    assert cli.main([*ws, "upload", str(d / "data" / "training-data.csv"),  # the key the data-arrival rule watches
                     f"{ENV.bucket_prefix}/{ENV.bucket_train_prefix}/training-data.csv"]) == 0
    return d / "ws"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def studio(workspace):
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "local_runtime", "--workspace", str(workspace), "studio",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "notifications", timeout=5).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"studio did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="studio-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(240)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_approve_in_the_browser_deploys_the_inference_pipeline(studio, browser, workspace):
    from selenium.webdriver.common.by import By
    browser.get(studio)
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-version="1"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-role="approval"]').text == "PendingManualApproval"
    assert "mse" in browser.find_element(By.ID, "versions").text  # the version's training metrics are shown
    executions = browser.find_element(By.ID, "executions").text
    assert ENV.pipeline_name("training") in executions and "Succeeded" in executions

    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    browser.find_element(By.ID, "approve-1").click()
    # the approval runs the whole chain (Lambdas, deploy) before the page answers: wait for it
    status = WebDriverWait(browser, 300).until(ec.presence_of_element_located((By.ID, "new-status")))
    assert status.text == "Approved"
    deploy = browser.find_element(By.ID, "deploy-1").text
    assert "inference pipeline rebuilt" in deploy and f"model-package/{ENV.model_package_group_name}/1" in deploy
    chain = browser.find_element(By.TAG_NAME, "pre").text
    assert "GitLab pipeline #1" in chain

    browser.get(studio)  # the registry now shows the version serving, the inference pipeline upserted
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-version="1"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-role="approval"]').text == "Approved" and "serving" in row.text
    assert "not upserted" not in browser.find_element(By.ID, "pipelines").text
    # rejecting the serving version asks first; dismissed, nothing is sent and nothing changes
    browser.find_element(By.ID, "reject-1").click()
    alert = WebDriverWait(browser, 10).until(ec.alert_is_present())
    assert f"Reject {ENV.model_package_group_name}/1, the version serving now?" in alert.text
    alert.dismiss()
    browser.get(studio)
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-version="1"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-role="approval"]').text == "Approved"
    # what the deploy Lambda did, as recorded by the runtime (CloudWatch Logs stand-in)
    calls = [json.loads(l) for l in (workspace / "lambda_invocations.jsonl").read_text().splitlines()]
    deploys = [c for c in calls if (c.get("result") or {}).get("status") == "triggered"]
    assert len(deploys) == 1 and deploys[0]["result"]["model_package_arn"].endswith(f"{ENV.model_package_group_name}/1")


def test_execution_page_links_steps_logs(studio, browser):
    from selenium.webdriver.common.by import By
    browser.get(studio)
    browser.find_element(By.CSS_SELECTOR, "#executions table a").click()
    assert "Steps" in browser.page_source
    links = browser.find_elements(By.LINK_TEXT, "logs")
    assert links, "no log links on the execution page"
    links[0].click()
    assert len(browser.find_element(By.TAG_NAME, "body").text) > 0
