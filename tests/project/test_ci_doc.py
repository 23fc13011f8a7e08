"""docs/ci.md: each CI recipe's two jobs list the same shell steps, and those steps run green on 127.0.0.1.

The steps are read from the page's YAML (GitHub's ``run:`` steps, GitLab's ``script:``) and run in
one bash, in order, with the job's variables, on a free port and with few examples. For the kit's
own job ``make install`` is left out (the test runs inside the installed kit); the client project's
job runs whole, installing the freshly built wheel into its own venv. Whatever the steps start is
stopped after.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..helpers import ROOT, free_port

PAGE = ROOT / "docs" / "ci.md"
_YAML = re.compile(r"```yaml\n(.*?)```", re.S)


def jobs(name: str = "contract") -> tuple[dict[str, Any], dict[str, Any]]:
    """The GitHub Actions job and the GitLab CI job called ``name`` on the page."""
    github = gitlab = None
    for block in _YAML.findall(PAGE.read_text(encoding="utf-8")):
        document = yaml.safe_load(block)
        if "jobs" in document:
            github = document["jobs"].get(name, github)
        else:
            gitlab = document.get(name, gitlab)
    assert github is not None and gitlab is not None, f"docs/ci.md needs a GitHub Actions and a GitLab CI {name} job"
    return github, gitlab


def github_steps(job: dict[str, Any]) -> list[str]:
    return [line for step in job["steps"] if "run" in step for line in step["run"].strip().splitlines()]


def test_both_jobs_run_the_same_steps_with_the_same_variables() -> None:
    github, gitlab = jobs()
    assert github_steps(github) == gitlab["script"]
    assert github["env"] == gitlab["variables"]
    steps = gitlab["script"]
    assert steps[0] == "make install"
    assert any("make mock" in step and step.endswith("&") for step in steps)
    assert any("/__mock/health" in step and "--retry" in step for step in steps)
    assert any(step.startswith("make contract") and "--junitxml=" in step for step in steps)
    assert gitlab["artifacts"]["reports"]["junit"] == "reports/contract.xml"


def test_the_client_jobs_run_the_same_steps_with_the_same_variables() -> None:
    github, gitlab = jobs("client")
    assert github_steps(github) == gitlab["script"]
    assert github["env"] == gitlab["variables"]
    steps = gitlab["script"]
    assert not any("make " in step for step in steps)  # a client project has no checkout of the kit
    assert any(
        step.startswith(".venv/bin/pip install") and "sora-characters-kit[contract,serve]" in step for step in steps
    )
    assert any(step.startswith(".venv/bin/sora-mock serve") and "--access-log" in step for step in steps)
    assert any("--sora-require=" in step for step in steps)
    assert any("/__mock/requests" in step and "journal.json" in step for step in steps)
    assert gitlab["artifacts"]["when"] == "always" and gitlab["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert any(
        step.get("if") == "always()" and step.get("with", {}).get("path") == "reports/" for step in github["steps"]
    )


def test_the_readme_links_the_page() -> None:
    assert "[docs/ci.md](docs/ci.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_job_steps_run_green_against_the_mock_on_127_0_0_1(tmp_path: Path) -> None:
    _, gitlab = jobs()  # the same steps as GitHub's (test above)
    steps = [step for step in gitlab["script"] if step != "make install"]
    variables = {name: str(value) for name, value in gitlab["variables"].items()}
    port = free_port()
    variables |= {"PORT": str(port), "REPORTS": str(tmp_path / "reports")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_") and k not in ("TOKEN", "TARGET", "ARGS")}
    env = clean | variables | {"VENV": sys.prefix, "MAX_EXAMPLES": "10"}
    status, output, group = _run_steps(steps, ROOT, env)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)  # the mock started in the background
    assert status == 0, output[-3000:]
    assert f"contract: testing POST http://127.0.0.1:{port}/sora/v1/characters" in output
    assert "token: SORA_API_KEY" in output and '"status":"ok"' in output
    report = ET.parse(tmp_path / "reports" / "contract.xml").getroot()
    suite = report if report.tag == "testsuite" else report.find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "0")) > 30 and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert suite.get("skipped") == "0"  # the token is pinned, so the wrong-token checks ran too
    assert variables["SORA_API_KEY"] not in output


CLIENT_TESTS = """
import os

import requests


def test_the_app_calls_the_served_mock():
    body = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}
    headers = {"Authorization": "Bearer sk-client-ci", "X-Request-Id": "ci-1"}
    url = os.environ["SORA_MOCK_URL"] + "/sora/v1/characters"
    assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 200


def test_backs_off_a_429(sora_server):
    sora_server.fail_next(429, retry_after=1)
    body = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}
    url, auth = sora_server.url + "/sora/v1/characters", {"Authorization": "Bearer k"}
    answer = requests.post(url, json=body, headers=auth, timeout=10)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"


def test_survives_a_drop(sora_server):
    sora_server.drop_next()
    body = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}
    try:
        url, auth = sora_server.url + "/sora/v1/characters", {"Authorization": "Bearer k"}
        requests.post(url, json=body, headers=auth, timeout=10)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the connection was not dropped")
"""


def _run_steps(steps: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, int]:
    """Run ``steps`` in one bash, in a process group of its own (what they start in the background stays in
    it); the status, the output and the group's id."""
    process = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(steps) + "\n"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        raise
    return process.returncode, output, process.pid


@pytest.mark.slow
def test_the_client_job_steps_run_green_from_the_wheel(tmp_path: Path) -> None:
    _, gitlab = jobs("client")
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    project = tmp_path / "client-project"
    project.mkdir()
    (project / "test_client.py").write_text(CLIENT_TESTS, encoding="utf-8")
    port = free_port()
    variables = {name: str(value) for name, value in gitlab["variables"].items()}
    variables |= {"KIT_WHEELS": str(wheels), "PORT": str(port), "SORA_MOCK_URL": f"http://127.0.0.1:{port}"}
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SORA_", "PYTEST", "PYTHON", "VIRTUAL_ENV")) and k not in ("TOKEN", "TARGET", "ARGS")
    }
    env = clean | variables
    steps = list(gitlab["script"])
    test_step = steps[steps.index("status=0") :]  # pytest, the journal, pytest's status
    groups: list[int] = []
    try:
        status, output, group = _run_steps(steps, project, env)
        groups.append(group)  # the mock keeps running in it, as in a CI job until the job ends
        assert status == 0, output[-3000:]
        reports = project / "reports"
        coverage = json.loads((reports / "sora-coverage.json").read_text(encoding="utf-8"))
        assert {"rate_limit_exceeded", "dropped"} <= {row["outcome"] for row in coverage["outcomes"] if row["seen"]}
        journal = json.loads((reports / "journal.json").read_text(encoding="utf-8"))
        assert [entry["headers"].get("X-Request-Id") for entry in journal] == ["ci-1"]
        assert "sk-client-ci" not in json.dumps(journal)
        log = (reports / "mock.log").read_text(encoding="utf-8")
        assert "POST /sora/v1/characters 200" in log and "sk-client-ci" not in log
        report = ET.parse(reports / "junit.xml").getroot()
        suite = report if report.tag == "testsuite" else report.find("testsuite")
        assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("3", "0")

        (reports / "journal.json").unlink()
        status, output, group = _run_steps(test_step, project, env | {"SORA_REQUIRE": "server_error"})
        groups.append(group)
        assert status == 1, output[-3000:]
        assert "FAIL required sora outcomes never met: server_error" in output
        assert json.loads((reports / "journal.json").read_text(encoding="utf-8"))  # kept although the step failed
    finally:
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
