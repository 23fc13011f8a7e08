"""``sora-mock coverage URL`` against a running mock (127.0.0.1): the table, JSON, requirements, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mock_server.mock.coverage import OUTCOMES

from ..helpers import MockProcess, free_port

# --- sora-mock coverage URL ------------------------------------------------------------------------


def _coverage_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from mock_server.serving.cli import main; main()", "coverage", *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_sora_mock_coverage_prints_the_table_of_a_running_mock(workers: list[str]) -> None:
    with MockProcess(workers) as mock:
        done = _coverage_cli(mock.url(""))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["outcome", "status", "seen"]
        assert any(line.split() == ["dropped", "-", "0"] for line in lines)
        assert any(line.split() == ["rate_limit_exceeded", "429", "0"] for line in lines)
        assert lines[-1] == f"0 of {len(OUTCOMES)} outcomes met"
        as_json = _coverage_cli(mock.url("/"), "--json")
        report = json.loads(as_json.stdout)
        assert report["total"] == len(OUTCOMES) and len(report["outcomes"]) == len(OUTCOMES)
        required = _coverage_cli(mock.url(""), "--require", "created,dropped")
        assert required.returncode == 1 and "never met: created, dropped" in required.stderr
        unknown = _coverage_cli(mock.url(""), "--require", "nope")
        assert unknown.returncode == 2 and "unknown outcome 'nope'" in unknown.stderr
        assert mock.stop() == 0


def test_sora_mock_coverage_takes_the_admin_token_from_the_environment() -> None:
    secret = "admin-" + os.urandom(6).hex()
    with MockProcess([], env={"SORA_MOCK_ADMIN_TOKEN": secret}) as mock:
        refused = _coverage_cli(mock.url(""))
        assert refused.returncode == 1 and "401" in refused.stderr and "--admin-token" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
        assert _coverage_cli(mock.url(""), env={"SORA_MOCK_ADMIN_TOKEN": secret}).returncode == 0
        assert _coverage_cli(mock.url(""), "--admin-token", secret).returncode == 0
        wrong = _coverage_cli(mock.url(""), "--admin-token", "wrong")
        assert wrong.returncode == 1 and "wrong --admin-token" in wrong.stderr and secret not in wrong.stderr


def test_sora_mock_coverage_says_when_nothing_answers_or_it_is_not_a_mock(tmp_path: Path) -> None:
    unreachable = _coverage_cli(f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1 and "Traceback" not in unreachable.stderr
    (tmp_path / "__mock").mkdir()
    (tmp_path / "__mock" / "coverage").write_text("<html>hello</html>", encoding="utf-8")
    other = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path),
            str(port := free_port()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.05)
        not_a_mock = _coverage_cli(f"http://127.0.0.1:{port}")
        assert not_a_mock.returncode == 1 and "is it a sora-mock?" in not_a_mock.stderr
        missing_route = _coverage_cli(f"http://127.0.0.1:{port}/elsewhere")
        assert missing_route.returncode == 1 and "404" in missing_route.stderr
    finally:
        other.terminate()
        other.wait(timeout=10)
    bad_url = _coverage_cli("127.0.0.1:8000")
    assert bad_url.returncode == 2 and "http(s) URL" in bad_url.stderr
