"""State URLs: unusable stores refused at start, passwords masked everywhere, prefixes never empty.

Real ``sora-mock serve`` / ``guard`` processes on 127.0.0.1 and a real ``redis-server`` on a Unix
socket; every process is bounded by a timeout and stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server import MockConfig
from mock_server.store import StoreUnavailable, check_prefix, open_store, safe_url

from ..helpers import VIDEO, MockProcess, free_port
from ..redis_server import RedisServer

SECRET = "state-pw-7f3a9c21"
CREATE = {"url": VIDEO, "timestamps": "1,3"}
AUTH = {"Authorization": "Bearer state-urls-test"}


def _run(command: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``sora-mock COMMAND ARGS`` to its end (bounded), with its output."""
    return subprocess.run(
        [sys.executable, "-c", "from mock_server.serving.cli import main; main()", command, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://127.0.0.1:6379/0?password={SECRET}", "redis://127.0.0.1:6379/0?password=***"),
        (f"redis://cache/0?db=1&Password={SECRET}&x=1", "redis://cache/0?db=1&Password=***&x=1"),
        (f"unix:///run/redis.sock?db=2;password={SECRET}", "unix:///run/redis.sock?db=2;password=***"),
        (f"rediss://user:{SECRET}@cache:6380/0?password={SECRET}", "rediss://user:***@cache:6380/0?password=***"),
        (f"redis://:{SECRET}@cache?db=3", "redis://:***@cache?db=3"),
        (f"redis://{SECRET}@cache/0", "redis://***@cache/0"),
        ("redis://cache:6379/0?db=1", "redis://cache:6379/0?db=1"),
    ],
)
def test_safe_url_masks_passwords_in_the_user_part_and_the_query(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:PORT/0",
        f"redis://127.0.0.1:PORT/0?password={SECRET}",
        f"unix:///nonexistent/redis.sock?password={SECRET}",
    ],
)
def test_store_errors_carry_no_password_and_no_final_period(url: str) -> None:
    url = url.replace("PORT", str(free_port()))  # chosen when run: each xdist worker collects the same ids
    store = open_store(url)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.ping()
    finally:
        store.close()
    message = str(caught.value)
    assert SECRET not in message and "***" in message
    assert not message.endswith(".")  # answers append their own ". Retry shortly."


def test_an_exception_message_with_a_url_password_is_masked() -> None:
    message = str(StoreUnavailable(f"cannot reach redis://u:{SECRET}@h:1/0?db=0&password={SECRET}."))
    assert message == "cannot reach redis://u:***@h:1/0?db=0&password=***"


@pytest.mark.parametrize("prefix", ["", "   "])
def test_an_empty_prefix_is_refused_by_the_store_and_the_config(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix must not be empty"):
        check_prefix(prefix)
    for url in ("memory", "sqlite:////tmp/never-created.db", "redis://127.0.0.1:1/0"):
        with pytest.raises(ValueError, match="prefix must not be empty"):
            open_store(url, prefix=prefix)
    with pytest.raises(ValueError, match="state_prefix must not be empty"):
        MockConfig(state_prefix=prefix)


@pytest.mark.slow
def test_state_prefix_empty_is_refused_before_serving() -> None:
    result = _run("serve", "--port", "0", "--state-prefix", "")
    assert result.returncode == 2
    assert "--state-prefix" in result.stderr and "must not be empty" in result.stderr
    assert "listening on" not in result.stderr


def _unusable_sqlite_paths(tmp_path: Path) -> list[tuple[str, str]]:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    paths = [(str(folder), "directory"), ("/dev/null", "not a regular file"), (str(tmp_path / "no" / "x.db"), "folder")]
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        paths.append((str(locked / "state.db"), "state file"))
    return paths


@pytest.mark.slow
def test_an_unusable_sqlite_state_is_refused_at_start_with_one_line(tmp_path: Path) -> None:
    for path, reason in _unusable_sqlite_paths(tmp_path):
        result = _run("serve", "--port", "0", "--state", f"sqlite:///{path}")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, (path, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("sora-mock: error: --state:"), (path, lines)
        assert path in lines[0] and reason in lines[0]
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_redis_state_that_does_not_answer_warns_once_starts_masks_and_recovers(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/redis.sock"
    with MockProcess(["--state", f"{url}?password={SECRET}"]) as masked:
        warnings = [line for line in masked.stderr if "warning" in line]
        assert len(warnings) == 1 and "--state" in warnings[0] and "password=***" in warnings[0]
        health = requests.get(masked.url("/__mock/health"), timeout=10)
        assert health.status_code == 503 and "password=***" in health.json()["reason"]
        answer = requests.post(masked.url("/sora/v1/characters"), json=CREATE, headers=AUTH, timeout=10)
        assert answer.status_code == 503
        message = answer.json()["error"]["message"]
        assert ".." not in message and message.endswith(". Retry shortly.")
        assert SECRET not in health.text + answer.text
        assert masked.stop() == 0
    assert SECRET not in "".join(masked.stderr)
    with MockProcess(["--state", url]) as waiting:  # the store comes up after the mock: it is used at once
        assert requests.get(waiting.url("/__mock/health"), timeout=10).status_code == 503
        redis = RedisServer(tmp_path).start()
        try:
            assert requests.get(waiting.url("/__mock/health"), timeout=10).json() == {"status": "ok", "state": "redis"}
            assert requests.post(waiting.url("/sora/v1/characters"), json=CREATE, headers=AUTH, timeout=10).ok
        finally:
            redis.stop()
        assert waiting.stop() == 0


@pytest.mark.slow
def test_the_guard_start_up_error_masks_a_query_password() -> None:
    state = f"redis://127.0.0.1:{free_port()}/0?password={SECRET}"
    result = _run("guard", "--port", "0", "--upstream", f"http://127.0.0.1:{free_port()}", "--state", state)
    assert result.returncode != 0
    assert "password=***" in result.stderr and SECRET not in result.stdout + result.stderr
