"""`sora-mock guard` as a real process in front of `sora-mock serve`, both on 127.0.0.1.

Runs the two-terminal example of docs/guard.md, stops the guard with SIGTERM (summary line and
report file), and shows the budget holding under concurrent clients.
"""

from __future__ import annotations

import http.client
import json
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mock_server.serving.cli import main

from ..helpers import ROOT, VIDEO, GuardProcess, MockProcess, mock_journal
from ..misbehaving_relay import MisbehavingRelay

PATH = "/sora/v1/characters"
TOKEN = "guard-cli-secret-93ab"
DOCS = ROOT / "docs" / "guard.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockProcess]:
    with MockProcess(["--token", TOKEN, "--workers", "1"]) as server:
        yield server


@pytest.fixture
def fresh_upstream(upstream: MockProcess) -> MockProcess:
    httpx.post(upstream.url("/__mock/reset"), timeout=10)
    return upstream


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
        "--max-answer-bytes",
        "https://api.jxincm.cn",
        "/__guard/reset",
        "budget_exhausted",
        "passed",
        "uncertain",
        "application/json",
    ):
        assert flag in result.output, flag


def test_an_upstream_without_a_scheme_gets_a_suggestion() -> None:
    result = CliRunner().invoke(main, ["guard", "--upstream", "127.0.0.1:8002"])
    assert result.exit_code == 2
    assert "did you mean http://127.0.0.1:8002?" in result.output
    hidden = CliRunner().invoke(main, ["guard", "--upstream", "user:hunter2@relay.example:8002"])
    assert "did you mean http://relay.example:8002?" in hidden.output
    assert "hunter2" not in hidden.output


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
        arrived = mock_journal(fresh_upstream)
        assert [entry["status"] for entry in arrived] == [200, 200, 200]  # only conforming creates, three
        assert guard.stop(signal.SIGTERM) == 0
    stderr = "".join(guard.stderr)
    summary = blocks["text"][1].strip()  # the page shows the very line the guard prints on stop
    assert summary.startswith("sora-mock guard: 3 forwarded, 12 blocked, 0 passed; 3 billed, 0 uncertain")
    assert "timeouts, drops and unreadable answers kept their reservation" in summary
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
    assert len(mock_journal(fresh_upstream)) == 7
    assert (report["creates"], report["forwarded"], report["over_budget"], report["budget_left"]) == (7, 7, 73, 0)


def _raw_post(guard: GuardProcess, target: str, method: str = "POST") -> tuple[int, str]:
    """Send ``target`` exactly as written (http.client does not normalize it) through the real server."""
    conn = http.client.HTTPConnection(guard.host, guard.port, timeout=30)
    try:
        body = json.dumps({"url": VIDEO, "timestamps": "1,3"})
        conn.request(
            method, target, body=body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        )
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.getheader("X-Sora-Guard", "")
    finally:
        conn.close()


def test_path_tricks_through_the_real_server_are_the_endpoint(fresh_upstream: MockProcess) -> None:
    args = ["--upstream", fresh_upstream.url(""), "--max-creates", "2", "--pass-through"]
    with GuardProcess(args) as guard:
        got = [
            _raw_post(guard, target)
            for target in ("/sora/v1/%2e/characters", "/x/../sora/v1/characters", "/sora//v1/characters")
        ]
        assert got == [(200, "forwarded"), (200, "forwarded"), (429, "budget")]
        assert _raw_post(guard, "/sora/v1/characters%2F", "PUT") == (405, "blocked")
        assert guard.stop(signal.SIGTERM) == 0
    assert [(e["path"], e["status"]) for e in mock_journal(fresh_upstream)] == [(PATH, 200), (PATH, 200)]


def _peak_rss_kib(guard: GuardProcess) -> dict[int, int]:
    """Each guard process's peak resident memory (VmHWM) in KiB."""
    peaks = {}
    for pid in guard.pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if match := re.search(r"VmHWM:\s+(\d+) kB", status):
            peaks[pid] = int(match.group(1))
    return peaks


def test_huge_answers_and_gzip_bombs_cost_the_guard_no_more_than_its_limit(fresh_upstream: MockProcess) -> None:
    size = 128 * 1024 * 1024  # relayed whole, or inflated in memory, this would show in the peak
    with MisbehavingRelay("huge", size=size) as huge, MisbehavingRelay("bomb", size=size) as bomb:
        for relay in (huge, bomb):
            with GuardProcess(["--upstream", relay.url, "--max-creates", "3"]) as guard:
                guard.await_processes(2)
                before = _peak_rss_kib(guard)
                answer = httpx.post(
                    guard.url(PATH),
                    json={"url": VIDEO, "timestamps": "1,3"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=60,
                )
                assert (answer.status_code, answer.json()["error"]["code"]) == (502, "upstream_answer_too_large")
                after = _peak_rss_kib(guard)
                grown = max(after[pid] - before.get(pid, after[pid]) for pid in after)
                assert grown < 48 * 1024, f"a guard process grew by {grown} KiB"  # default limit: 1 MiB
                report = httpx.get(guard.url("/__guard/report"), timeout=10).json()
                assert (report["creates"], report["budget_left"]) == (1, 2)
                assert guard.stop(signal.SIGTERM) == 0
        assert huge.sent_bytes < size


def test_a_reset_over_http_keeps_the_runs_counts_in_the_report_written_on_stop(
    fresh_upstream: MockProcess, tmp_path: Path
) -> None:
    reset_command = _docs_blocks()["bash"][1]
    assert "Content-Type: application/json" in reset_command
    report_file = tmp_path / "report.json"
    args = ["--upstream", fresh_upstream.url(""), "--max-creates", "2", "--report", str(report_file)]
    with GuardProcess(args) as guard:
        results = _hammer(guard.url(""), clients=1, each=3)
        assert [status for status, _ in results] == [200, 200, 429]
        done = subprocess.run(
            ["bash", "-c", reset_command.replace("http://127.0.0.1:8001", guard.url(""))],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json.loads(done.stdout) == {"status": "reset", "budget_left": 2}
        assert [status for status, _ in _hammer(guard.url(""), clients=1, each=1)] == [200]
        assert guard.stop(signal.SIGTERM) == 0
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert (report["forwarded"], report["creates"], report["over_budget"], report["budget_left"]) == (3, 3, 1, 1)
    assert report["resets"] == 1
    assert "3 billed" in "".join(guard.stderr) and "budget 2 (reset 1 time(s)), 1 left" in "".join(guard.stderr)
