"""docs/ci.md: both CI jobs list the same shell steps, and those steps run green on 127.0.0.1.

The steps are read from the page's YAML (GitHub's ``run:`` steps, GitLab's ``script:``) and run in
one bash, in order, with the job's variables, on a free port and with few examples; ``make install``
is left out (the test runs inside the installed kit). Whatever the steps start is stopped after.
"""

from __future__ import annotations

import contextlib
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

from .helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "ci.md"
_YAML = re.compile(r"```yaml\n(.*?)```", re.S)


def jobs() -> tuple[dict[str, Any], dict[str, Any]]:
    """The GitHub Actions job and the GitLab CI job of the page."""
    github = gitlab = None
    for block in _YAML.findall(PAGE.read_text(encoding="utf-8")):
        document = yaml.safe_load(block)
        if "jobs" in document:
            github = document["jobs"]["contract"]
        elif "contract" in document:
            gitlab = document["contract"]
    assert github is not None and gitlab is not None, "docs/ci.md needs a GitHub Actions and a GitLab CI job"
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
    script = "set -euo pipefail\n" + "\n".join(steps) + "\n"
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the mock started in the background
        process.wait(timeout=30)
    assert process.returncode == 0, output[-3000:]
    assert f"contract: testing POST http://127.0.0.1:{port}/sora/v1/characters" in output
    assert "token: SORA_API_KEY" in output and '"status":"ok"' in output
    report = ET.parse(tmp_path / "reports" / "contract.xml").getroot()
    suite = report if report.tag == "testsuite" else report.find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "0")) > 30 and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert suite.get("skipped") == "0"  # the token is pinned, so the wrong-token checks ran too
    assert variables["SORA_API_KEY"] not in output
