"""`sora-mock guard` as a real process in front of `sora-mock serve`, both on 127.0.0.1.

Runs the two-terminal example of docs/guard.md, stops the guard with SIGTERM (summary line and
report file), and shows the budget holding under concurrent clients.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from mock_server.serving.cli import main

from .conftest import VIDEO
from .helpers import MockProcess

PATH = "/sora/v1/characters"
TOKEN = "guard-cli-secret-93ab"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "guard.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)

pytestmark = pytest.mark.slow


class GuardProcess(MockProcess):
    """``sora-mock guard ARGS --port 0`` in a subprocess, ready once ``/__guard/report`` answers."""

    command = "guard"
    ready_path = "/__guard/report"


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockProcess]:
    with MockProcess(["--token", TOKEN, "--workers", "1"]) as server:
        yield server


@pytest.fixture
def fresh_upstream(upstream: MockProcess) -> MockProcess:
    httpx.post(upstream.url("/__mock/reset"), timeout=10)
    return upstream


def upstream_journal(server: MockProcess) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(server.url("/__mock/requests"), timeout=10).json()
    return entries


def test_help_explains_every_guard_option() -> None:
    result = CliRunner().invoke(main, ["guard", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--upstream",
        "--host",
        "--port",
        "--max-creates",
        "--timeout",
        "--pass-through",
        "--record",
        "--report",
        "--state",
        "--workers",
        "--threads",
        "https://api.jxincm.cn",
        "/__guard/reset",
        "budget_exhausted",
    ):
        assert flag in result.output, flag


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--upstream", "ftp://relay.example"], "--upstream"),
        (["--max-creates", "-1"], "--max-creates"),
        (["--timeout", "0"], "--timeout"),
        (["--state", "bogus://x"], "--state"),
    ],
)
def test_bad_option_values_are_refused_before_serving(args: list[str], named: str) -> None:
    result = CliRunner().invoke(main, ["guard", *args])
    assert result.exit_code == 2
    assert named in result.output


def test_an_in_process_state_is_refused() -> None:
    """Every worker, and the stopping server writing the report, must reach one budget."""
    result = CliRunner().invoke(main, ["guard", "--state", "memory"])
    assert result.exit_code == 2
    assert "--state" in result.output and "sqlite:///PATH" in result.output


def _docs_blocks() -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for language, text in _BLOCK.findall(DOCS.read_text(encoding="utf-8")):
        blocks.setdefault(language, []).append(text)
    return blocks


def test_the_docs_two_terminal_example_runs_against_a_local_upstream(
    fresh_upstream: MockProcess, tmp_path: Path
) -> None:
    blocks = _docs_blocks()
    command = shlex.split(blocks["bash"][0])
    assert command[:2] == ["sora-mock", "guard"]
    args = [arg.replace("https://api.jxincm.cn", fresh_upstream.url("")) for arg in command[2:]]
    assert fresh_upstream.url("") in args  # never the real relay
    script = tmp_path / "client_loop.py"
    script.write_text(blocks["python"][0], encoding="utf-8")
    expected_last_line = blocks["text"][0].strip()

    with GuardProcess(args, cwd=tmp_path) as guard:
        env = {**guard.env, "SORA_BASE_URL": guard.url(""), "SORA_API_KEY": TOKEN}
        client = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert client.returncode == 0, client.stderr
        lines = client.stdout.strip().splitlines()
        assert lines[-1] == expected_last_line
        assert lines[0] == "200 forwarded created"
        assert lines.count("429 budget budget_exhausted") == 5
        assert lines.count("422 blocked invalid_timestamps_span") == 4
        assert lines.count("422 blocked conflicting_sources") == 4
        assert lines.count("422 blocked invalid_task_id") == 4
        arrived = upstream_journal(fresh_upstream)
        assert [entry["status"] for entry in arrived] == [200, 200, 200]  # only conforming creates, three
        assert guard.stop(signal.SIGTERM) == 0
    stderr = "".join(guard.stderr)
    summary = "sora-mock guard: 3 forwarded, 12 blocked, 3 billed of 3 (budget left 0), 5 over budget, 0 finding(s)"
    assert summary in stderr
    assert TOKEN not in stderr
    report = json.loads((tmp_path / "guard-report.json").read_text(encoding="utf-8"))
    assert (report["forwarded"], report["blocked"], report["creates"], report["budget_left"]) == (3, 12, 3, 0)
    assert report["over_budget"] == 5
    assert TOKEN not in json.dumps(report)


def _hammer(base: str, clients: int, each: int) -> list[tuple[int, str]]:
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    body = {"url": VIDEO, "timestamps": "1,3"}

    def loop() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            for _ in range(each):
                answer = client.post(PATH, json=body)
                code = answer.json().get("error", {}).get("code", "created")
                with lock:
                    results.append((answer.status_code, code))

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_clients_cannot_overspend_the_budget(
    workers: int, fresh_upstream: MockProcess, tmp_path: Path
) -> None:
    args = ["--upstream", fresh_upstream.url(""), "--max-creates", "7", "--workers", str(workers)]
    if workers > 1:
        args += ["--state", f"sqlite:///{tmp_path / 'guard.db'}"]
    with GuardProcess(args) as guard:
        results = _hammer(guard.url(""), clients=16, each=5)
        report = httpx.get(guard.url("/__guard/report"), timeout=10).json()
        assert guard.stop(signal.SIGTERM) == 0
    assert len(results) == 80
    assert results.count((200, "created")) == 7
    assert results.count((429, "budget_exhausted")) == 73
    assert len(upstream_journal(fresh_upstream)) == 7
    assert (report["creates"], report["forwarded"], report["over_budget"], report["budget_left"]) == (7, 7, 73, 0)
