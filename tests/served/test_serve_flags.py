"""`sora-mock serve` as a real process: flags, access log, admin switch, clean shutdown on signals."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from mock_server.serving.cli import main

from ..helpers import VIDEO, MockProcess

PATH = "/sora/v1/characters"
VALID = {"url": VIDEO, "timestamps": "1,3"}
SECRET = "flag-test-secret-4242"

pytestmark = pytest.mark.slow


def test_help_explains_every_serve_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    flags = [
        "--host",
        "--port",
        "--seed",
        "--token",
        "--threads",
        "--workers",
        "--latency-ms",
        "--fault-rate",
        "--fault-status",
        "--journal-size",
        "--journal-bytes",
        "--state",
        "--state-prefix",
        "SORA_MOCK_STATE",
        "--no-admin",
        "--access-log",
        "--defect",
        "SORA_MOCK_TOKEN",
        "/__mock/",
    ]
    for flag in flags:
        assert flag in result.output, flag


@pytest.mark.parametrize(
    "args",
    [
        ["--fault-rate", "1.5"],
        ["--fault-status", "200"],
        ["--journal-size", "0"],
        ["--latency-ms", "-1"],
        ["--threads", "-1"],
        ["--read-timeout", "0"],
        ["--workers", "0"],
        ["--token", " "],
        ["--journal-bytes", "10"],
        ["--state", "postgres://db/x"],
        ["--state", "memory", "--workers", "2"],
        ["--state-prefix", ""],
        ["--state-prefix", "  "],
    ],
)
def test_bad_option_values_are_refused_before_serving(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2
    assert args[0] in result.output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_the_server_down_cleanly(sig: int) -> None:
    with MockProcess(["--workers", "2"]) as server:
        session = requests.Session()
        assert session.post(server.url(PATH), json=VALID, headers={"Authorization": "Bearer x"}, timeout=10).ok
        processes = server.await_processes(3)  # master, two workers
        state_folder = _state_folder(processes)
        assert state_folder.exists()
        assert server.stop(sig) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url("/__mock/health"), timeout=2)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in processes):  # no orphan left behind
            assert time.monotonic() < deadline, "a server process outlived the master"
            time.sleep(0.05)
    assert not state_folder.exists()  # the temporary SQLite state is removed on exit


def _state_folder(processes: list[int]) -> Path:
    """The folder of the temporary SQLite state file a worker of the server has open."""
    for pid in processes:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = Path(os.readlink(fd))
                if target.name == "state.sqlite3":
                    return target.parent
    raise AssertionError("no worker has the temporary SQLite state open")


def test_a_killed_server_leaves_no_worker_behind() -> None:
    with MockProcess(["--workers", "2"]) as server:
        processes = server.await_processes(3)
        state_folder = _state_folder(processes)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in processes):
            assert time.monotonic() < deadline, "workers outlived a killed master"
            time.sleep(0.05)
    shutil.rmtree(state_folder)  # nothing can clean up after a SIGKILL; the test does


def test_flags_reach_the_server_and_the_access_log_never_shows_the_token() -> None:
    args = ["--access-log", "--journal-size", "2", "--latency-ms", "150", "--seed", "3"]
    with MockProcess(args, env={"SORA_MOCK_TOKEN": SECRET}) as server:
        session = requests.Session()
        auth = {"Authorization": f"Bearer {SECRET}"}
        assert (
            session.post(server.url(PATH), json=VALID, headers={"Authorization": "Bearer no"}, timeout=10).status_code
            == 401
        )
        started = time.monotonic()
        answers = [
            session.post(server.url(PATH + "?key=" + SECRET), json=VALID, headers=auth, timeout=10) for _ in range(3)
        ]
        assert time.monotonic() - started >= 3 * 0.15  # --latency-ms delays every answer
        assert [a.status_code for a in answers] == [200, 200, 200]
        journal = session.get(server.url("/__mock/requests"), timeout=10).json()
        assert len(journal) == 2  # --journal-size 2 keeps the newest two
        assert [c["id"] for c in session.get(server.url("/__mock/characters"), timeout=10).json()] == [
            a.json()["id"] for a in answers[1:]
        ]
        deadline = time.monotonic() + 10
        logged: list[str] = []
        while sum(f"POST {PATH} 200 " in line for line in logged) < 3:
            logged.append(server.next_line(deadline - time.monotonic()))
        assert server.stop() == 0
    log = "".join(server.stderr)
    assert re.search(rf"^POST {re.escape(PATH)} 401 \d+\.\dms$", log, re.M)
    assert re.search(r"^GET /__mock/requests 200 \d+\.\dms$", log, re.M)
    assert SECRET not in log


def test_defaults_have_no_access_log_and_no_admin_turns_the_admin_api_off() -> None:
    with MockProcess(["--no-admin", "--fault-rate", "1", "--fault-status", "503"]) as server:
        session = requests.Session()
        answer = session.post(server.url(PATH), json=VALID, headers={"Authorization": "Bearer x"}, timeout=10)
        assert answer.status_code == 503
        for path in ("/__mock/health", "/__mock/requests", "/__mock/characters"):
            response = session.get(server.url(path), timeout=10)
            assert response.status_code == 404
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json()["error"]["code"] == "not_found"
        assert server.stop() == 0
    assert PATH not in "".join(line for line in server.stderr if "serving POST" not in line)


def test_a_stop_signal_during_the_master_s_own_wait_does_not_deadlock_it() -> None:
    """granian sets its stop event inside the signal handler; landing while the main thread holds the
    event's lock (leaving Event.wait as a worker exits on the same group SIGTERM) hung the master."""
    import threading

    from mock_server.serving.server import _master_server_class

    server_class = _master_server_class(object)
    server = server_class.__new__(server_class)
    server.main_loop_interrupt = threading.Event()
    with server.main_loop_interrupt._cond:  # what the main thread holds when the signal lands there
        server.signal_handler_interrupt(signal.SIGTERM, None)  # returns instead of waiting on itself
        assert not server.main_loop_interrupt.is_set()
    assert server.main_loop_interrupt.wait(5) and server.interrupt_signal
