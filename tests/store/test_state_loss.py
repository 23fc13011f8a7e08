"""A store that loses its state under a running guard or mock (Redis restarted empty, the SQLite
file deleted, replaced or corrupted) is noticed: the guard refuses creates until an explicit reset,
the mock's health says so, and the processes sharing one state never split."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from mock_server.relay.guard import GUARD_HEADER, GuardConfig, create_guard_app, guard_state_of
from mock_server.store import StateLost, open_store

from ..helpers import VIDEO, GuardProcess, MockProcess
from ..misbehaving_relay import MisbehavingRelay
from ..redis_server import RedisServer

PATH = "/sora/v1/characters"
TOKEN = "state-loss-secret-41c9"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID = {"url": VIDEO, "timestamps": "1,3"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def relay() -> Iterator[MisbehavingRelay]:
    with MisbehavingRelay("trickle-body", pause=0, steps=0) as server:  # a plain 200 character: billed
        yield server


# --- the store ------------------------------------------------------------------------------------


def test_a_store_object_notices_its_state_was_lost_and_a_reset_takes_it_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url, prefix="t:")
    identity = store.seal()
    assert store.reserve("budget", 2)
    other = open_store(url, prefix="t:")
    assert other.seal() == identity  # a second process finds the same identity
    (tmp_path / "state.db").unlink()
    with pytest.raises(StateLost):
        store.ping()
    with pytest.raises(StateLost):
        store.reserve("budget", 2)  # checked in the same transaction: nothing is counted
    assert store.get("budget") == 0
    store.reset()
    store.ping()
    other.ping()  # the identity written back is the one every process knows
    store.close()
    other.close()


def test_a_redis_restarted_empty_is_a_lost_state(redis_alone: RedisServer) -> None:
    store = open_store(redis_alone.url, prefix="t:")
    store.seal()
    assert store.reserve("budget", 1) and not store.reserve("budget", 1)
    redis_alone.stop()
    redis_alone.start()
    with pytest.raises(StateLost):
        store.reserve("budget", 1)
    store.reset()  # explicit: sealed again
    assert store.reserve("budget", 1)
    client = redis.Redis(unix_socket_path=str(redis_alone.socket))
    assert [key for key in client.scan_iter() if b"counter" in key] == [b"t:counters"]
    client.delete(b"t:counters")  # evicted (allkeys-lru) or deleted: the counters and the marker go together
    client.close()
    with pytest.raises(StateLost):
        store.reserve("budget", 1)
    store.close()


# --- the guard in-process ---------------------------------------------------------------------------


def _create(guard: object) -> tuple[int, str, str | None]:
    answer = guard.post(PATH, json=VALID, headers=AUTH)  # type: ignore[attr-defined]
    code = answer.get_json().get("error", {}).get("code") if answer.status_code != 200 else None
    return answer.status_code, answer.headers[GUARD_HEADER], code


def test_the_guard_refuses_creates_after_redis_lost_its_budget_until_a_reset(
    redis_alone: RedisServer, relay: MisbehavingRelay
) -> None:
    app = create_guard_app(GuardConfig(upstream=relay.url, max_creates=3, state_url=redis_alone.url))
    guard = app.test_client()
    try:
        assert [_create(guard)[0] for _ in range(4)] == [200, 200, 200, 429]
        redis_alone.stop()
        assert _create(guard) == (503, "error", "state_unavailable")  # down: a 503 envelope, not a 500
        assert guard.get("/__guard/report").status_code == 503
        redis_alone.start()  # back, empty
        for _ in range(3):
            assert _create(guard) == (503, "error", "state_lost")
        report = guard.get("/__guard/report").get_json()
        assert report["state"].startswith("lost:") and report["budget_left"] == 0
        assert len(relay.seen) == 3  # nothing more reached the upstream
        reset = guard.post("/__guard/reset", headers=JSON)
        assert reset.status_code == 200
        assert [_create(guard)[0] for _ in range(4)] == [200, 200, 200, 429]  # a new budget, started explicitly
        assert len(relay.seen) == 6
        assert guard.get("/__guard/report").get_json()["state"] == "ok"
    finally:
        guard_state_of(app).close()


def test_the_guard_refuses_creates_when_its_sqlite_file_is_deleted_or_replaced(
    tmp_path: Path, relay: MisbehavingRelay
) -> None:
    path = tmp_path / "guard.db"
    app = create_guard_app(GuardConfig(upstream=relay.url, max_creates=2, state_url=f"sqlite:///{path}"))
    guard = app.test_client()
    try:
        assert [_create(guard)[0] for _ in range(3)] == [200, 200, 429]
        path.unlink()
        assert _create(guard) == (503, "error", "state_lost")
        assert guard.post("/__guard/reset", headers=JSON).status_code == 200
        assert _create(guard)[0] == 200
        fresh = open_store(f"sqlite:///{tmp_path / 'other.db'}", prefix="sora-guard:")
        fresh.seal()  # another state, with an identity of its own
        fresh.close()
        os.replace(tmp_path / "other.db", path)
        assert _create(guard) == (503, "error", "state_lost")
        assert len(relay.seen) == 3
    finally:
        guard_state_of(app).close()


# --- real servers with two workers -------------------------------------------------------------------


def _worker_pids(server: MockProcess) -> list[int]:
    assert server.proc is not None
    return [pid for pid in server.pids() if pid != server.proc.pid]


def test_a_restarted_guard_worker_never_starts_a_fresh_budget(tmp_path: Path, relay: MisbehavingRelay) -> None:
    path = tmp_path / "guard.db"
    args = ["--upstream", relay.url, "--max-creates", "3", "--workers", "2", "--state", f"sqlite:///{path}"]
    with GuardProcess(args) as guard, httpx.Client(timeout=30) as client:
        url = guard.url(PATH)
        assert [client.post(url, json=VALID, headers=AUTH).status_code for _ in range(4)] == [200, 200, 200, 429]
        path.unlink()
        for pid in _worker_pids(guard):
            os.kill(pid, signal.SIGKILL)  # granian starts new workers, on a new file
        deadline = time.monotonic() + 20
        codes: list[int] = []
        while time.monotonic() < deadline:
            try:
                answer = httpx.post(url, json=VALID, headers=AUTH, timeout=10)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            codes.append(answer.status_code)
            assert answer.json()["error"]["code"] == "state_lost", answer.text
            if len(codes) == 6:
                break
        assert codes == [503] * 6
        assert len(relay.seen) == 3
        assert client.post(guard.url("/__guard/reset"), headers=JSON).status_code == 200
        assert client.post(url, json=VALID, headers=AUTH).status_code == 200
        assert guard.stop(signal.SIGTERM) == 0


def _states(server: MockProcess, path: str, rounds: int = 8) -> list[httpx.Response]:
    """``path`` asked over ``rounds`` fresh connections (so both workers answer some)."""
    return [httpx.get(server.url(path), timeout=10) for _ in range(rounds)]


def test_a_deleted_sqlite_file_shows_in_health_and_the_workers_never_split(tmp_path: Path) -> None:
    path = tmp_path / "mock.db"
    with MockProcess(["--workers", "2", "--state", f"sqlite:///{path}", "--token", TOKEN]) as server:
        for _ in range(4):
            assert httpx.post(server.url(PATH), json=VALID, headers=AUTH, timeout=10).status_code == 200
        assert {a.status_code for a in _states(server, "/__mock/health")} == {200}
        path.unlink()
        time.sleep(0.5)
        healths = _states(server, "/__mock/health")
        assert {(a.status_code, a.json()["status"]) for a in healths} == {(503, "lost")}, [a.text for a in healths]
        for _ in range(3):
            assert httpx.post(server.url(PATH), json=VALID, headers=AUTH, timeout=10).status_code == 200
        time.sleep(0.5)
        lengths = {len(a.json()) for a in _states(server, "/__mock/requests")}
        assert len(lengths) == 1  # one journal, whatever worker answers
        assert httpx.post(server.url("/__mock/reset"), timeout=10).status_code == 200
        assert {a.status_code for a in _states(server, "/__mock/health")} == {200}
        assert server.stop() == 0


def test_a_corrupted_sqlite_file_shows_in_health_on_every_worker(tmp_path: Path) -> None:
    path = tmp_path / "mock.db"
    with MockProcess(["--workers", "2", "--state", f"sqlite:///{path}", "--token", TOKEN]) as server:
        for _ in range(3):
            assert httpx.post(server.url(PATH), json=VALID, headers=AUTH, timeout=10).status_code == 200
        with path.open("r+b") as file:
            file.write(b"\x00garbage garbage garbage garbage\x00" * 4)
        healths = _states(server, "/__mock/health")
        assert {a.status_code for a in healths} == {503}
        assert server.stop() == 0
