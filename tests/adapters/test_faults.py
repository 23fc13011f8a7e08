"""Fault injection through POST /__mock/faults: each kind, exact counts, order, validation, random faults."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from mock_server import Fault, FaultError, MockConfig, MockState, check_error_body
from mock_server.mock.compose import build
from mock_server.mock.core import Request
from mock_server.mock.faults import MAX_RETRY_AFTER
from mock_server.mock.state import MAX_PENDING_FAULTS

from ..helpers import AUTH, VIDEO, MockProcess, raw_exchange

PATH = "/sora/v1/characters"
VALID = {"url": VIDEO, "timestamps": "1,3"}


def create(client: FlaskClient) -> Any:
    return client.post(PATH, json=VALID, headers=AUTH)


def queue(client: FlaskClient, fault: dict[str, Any]) -> Any:
    response = client.post("/__mock/faults", json=fault)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_429_with_retry_after_then_normal(client: FlaskClient) -> None:
    queued = queue(client, {"status": 429, "retry_after": 2})
    assert queued["queued"] == {"fault": {"status": 429, "retry_after": 2, "delay_ms": 0, "drop": False}, "times": 1}
    response = create(client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.get_json()["error"]["type"] == "rate_limit_error"
    assert check_error_body(response.get_json()) == []
    assert create(client).status_code == 200  # times defaults to 1


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_use_the_envelope(client: FlaskClient, status: int) -> None:
    queue(client, {"status": status})
    response = create(client)
    assert response.status_code == status
    assert response.get_json()["error"]["type"] == "server_error"
    assert check_error_body(response.get_json()) == []
    assert "Retry-After" not in response.headers


def test_fault_applies_to_exactly_times_requests_in_queue_order(client: FlaskClient) -> None:
    queue(client, {"status": 503, "times": 3})
    queue(client, {"status": 429, "retry_after": 0})
    assert client.get("/__mock/faults").get_json() == [
        {"fault": {"status": 503, "retry_after": None, "delay_ms": 0, "drop": False}, "times": 3},
        {"fault": {"status": 429, "retry_after": 0, "delay_ms": 0, "drop": False}, "times": 1},
    ]
    statuses = [create(client).status_code for _ in range(6)]
    assert statuses == [503, 503, 503, 429, 200, 200]
    assert client.get("/__mock/faults").get_json() == []
    journal = client.get("/__mock/requests").get_json()
    assert [e["status"] for e in journal] == statuses


def test_delay_answers_normally_but_late(client: FlaskClient) -> None:
    queue(client, {"delay_ms": 300})
    started = time.monotonic()
    response = create(client)
    assert time.monotonic() - started >= 0.25
    assert response.status_code == 200
    assert response.get_json()["id"].startswith("ch_")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"status": 200}, "status"),
        ({"status": "500"}, "status"),
        ({"status": 503, "times": 0}, "times"),
        ({"status": 503, "times": True}, "times"),
        ({"delay_ms": -5}, "delay_ms"),
        ({"delay_ms": 600_000}, "delay_ms"),
        ({"drop": "yes"}, "drop"),
        ({"status": 500, "drop": True}, "drop"),
        ({"status": 429, "retry_after": -1}, "retry_after"),
        ({"status": 429, "retry_after": MAX_RETRY_AFTER + 1}, "retry_after"),
        ({"status": 429, "retry_after": 10**400}, "retry_after"),
        ({"status": 500, "colour": "red"}, "colour"),
        ({}, None),
        ([{"status": 500}], None),
    ],
)
def test_invalid_fault_bodies_get_a_clear_400(client: FlaskClient, body: Any, param: str | None) -> None:
    response = client.post("/__mock/faults", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert check_error_body(response.get_json()) == []
    assert error["param"] == param
    assert error["code"] == "invalid_fault"
    if param is not None:
        assert param in error["message"]
    assert client.get("/__mock/faults").get_json() == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"{status: 500}", b"\xff\xfe", b"null", b'{"status": NaN}', b"[" * 5000 + b"]" * 5000],
    ids=["empty", "not-json", "not-utf8", "null", "nan", "deep"],
)
def test_unreadable_fault_bodies_get_a_400(client: FlaskClient, raw: bytes) -> None:
    response = client.post("/__mock/faults", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert check_error_body(response.get_json()) == []
    assert create(client).status_code == 200


def test_random_faults_are_reproducible_with_a_seed(make_app: Callable[..., Flask]) -> None:
    def statuses(seed: int) -> list[int]:
        client = make_app(seed=seed, fault_rate=0.5, fault_status=503).test_client()
        return [create(client).status_code for _ in range(40)]

    first = statuses(11)
    assert set(first) == {200, 503}
    assert statuses(11) == first
    assert statuses(12) != first


def test_random_fault_status_429_carries_retry_after(make_app: Callable[..., Flask]) -> None:
    client = make_app(fault_rate=1.0, fault_status=429).test_client()
    response = create(client)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 0


@pytest.fixture(scope="module")
def served() -> Any:
    with MockProcess(["--seed", "5"]) as server:
        yield server


def test_drop_closes_the_connection_with_no_answer(served: MockProcess) -> None:
    session = requests.Session()
    session.post(served.url("/__mock/reset"), timeout=10)
    assert session.post(served.url("/__mock/faults"), json={"drop": True, "times": 2}, timeout=10).status_code == 201
    body = b'{"url": "%s", "timestamps": "1,3"}' % VIDEO.encode()
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for _ in range(2):
        received = raw_exchange((served.host, served.port), request)
        assert received == b""  # closed without a status line
    assert session.post(served.url(PATH), json=VALID, headers=AUTH, timeout=10).status_code == 200
    journal = session.get(served.url("/__mock/requests"), timeout=10).json()
    assert [e["status"] for e in journal] == [None, None, 200]
    assert "Traceback" not in "".join(served.stderr)  # a drop is on purpose, not a server error


def test_faults_over_http_hit_the_next_requests(served: MockProcess) -> None:
    session = requests.Session()
    session.post(served.url("/__mock/reset"), timeout=10)
    session.post(served.url("/__mock/faults"), json={"status": 429, "retry_after": 3, "times": 2}, timeout=10)
    answers = [session.post(served.url(PATH), json=VALID, headers=AUTH, timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"


def test_retry_after_is_bounded_by_a_documented_maximum_over_http(served: MockProcess) -> None:
    session = requests.Session()
    session.post(served.url("/__mock/reset"), timeout=10)
    huge = b'{"status": 429, "retry_after": 1' + b"0" * 400 + b"}"
    refused = session.post(served.url("/__mock/faults"), data=huge, timeout=10)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "retry_after" and str(MAX_RETRY_AFTER) in error["message"]
    assert session.get(served.url("/__mock/faults"), timeout=10).json() == []
    assert session.post(served.url(PATH), json=VALID, headers=AUTH, timeout=10).status_code == 200
    longest = {"status": 429, "retry_after": MAX_RETRY_AFTER}
    queued = session.post(served.url("/__mock/faults"), json=longest, timeout=10)
    assert queued.status_code == 201
    answer = session.post(served.url(PATH), json=VALID, headers=AUTH, timeout=10)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == str(MAX_RETRY_AFTER)


def test_a_fault_built_in_code_refuses_a_retry_after_over_the_maximum() -> None:
    with pytest.raises(FaultError, match=f"retry_after must be between 0 and {MAX_RETRY_AFTER}"):
        Fault(status=429, retry_after=MAX_RETRY_AFTER + 1)


def _drain_faults(url: str, results: Any) -> None:
    """In a forked process: take faults until none is left, journal each, report the statuses."""
    state = MockState.open(url, journal_size=500)
    taken = []
    while (fault := state.take_fault()) is not None:
        taken.append(fault.status)
        state.record({"status": fault.status, "pid": os.getpid()})
    state.add_character({"id": f"ch_{state.next_serial()}"})
    results.put(taken)


def test_a_shared_state_counts_faults_exactly_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    state = MockState.open(url, journal_size=500)
    try:
        state.push_fault(Fault(status=503), times=120)
        state.push_fault(Fault(status=429, retry_after=1), times=30)
        assert state.pending_faults() == [
            {"fault": {"status": 503, "retry_after": None, "delay_ms": 0, "drop": False}, "times": 120},
            {"fault": {"status": 429, "retry_after": 1, "delay_ms": 0, "drop": False}, "times": 30},
        ]
        ctx = multiprocessing.get_context("spawn")  # fresh processes: nothing shared but the URL
        results = ctx.SimpleQueue()
        workers = [ctx.Process(target=_drain_faults, args=(url, results)) for _ in range(3)]
        for worker in workers:
            worker.start()
        taken = [results.get() for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        assert Counter(status for batch in taken for status in batch) == {503: 120, 429: 30}
        assert state.pending_faults() == []
        journal = state.requests()
        assert Counter(e["status"] for e in journal) == {503: 120, 429: 30}
        assert [e["seq"] for e in journal] == list(range(1, 151))
        characters = state.characters()
        assert len({c["id"] for c in characters}) == 3  # serials never repeat across processes
        state.reset()
        assert state.requests() == [] and state.characters() == []
    finally:
        state.close()


def test_the_state_is_bounded_by_entries_and_refuses_too_many_pending_faults() -> None:
    state = MockState(journal_size=3)
    for i in range(7):
        state.record({"n": i})
        state.add_character({"id": str(i)})
    assert [e["n"] for e in state.requests()] == [4, 5, 6]
    assert [c["id"] for c in state.characters()] == ["4", "5", "6"]
    for _ in range(MAX_PENDING_FAULTS):
        state.push_fault(Fault(status=500))
    with pytest.raises(FaultError, match="times: at most 1000 fault entries"):
        state.push_fault(Fault(status=500))


_PRIMITIVES = ("append", "append_many", "read", "incr", "get", "reserve", "put", "entries", "take", "remove")


def _count_store_calls(state: MockState) -> list[str]:
    """Record the store calls ``state`` makes from outside the store (a backend's calls to itself are not counted)."""
    calls: list[str] = []
    depth = [0]
    store = state.store
    for name in (*_PRIMITIVES, "take_or_append_new", "reset"):
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Callable[..., Any] = method, **kwargs: Any) -> Any:
            if not depth[0]:
                calls.append(_name)
            depth[0] += 1
            try:
                return _method(*args, **kwargs)
            finally:
                depth[0] -= 1

        setattr(store, name, counted)
    return calls


@pytest.mark.parametrize("url", ["memory", "sqlite"])
def test_a_create_takes_a_pending_fault_or_the_character_in_one_store_call(url: str, tmp_path: Path) -> None:
    composition = build(MockConfig(state=url if url == "memory" else f"sqlite:///{tmp_path}/state.db", seed=1))
    endpoint, state = composition.endpoint, composition.state
    request = Request("POST", PATH, tuple(AUTH.items()), json.dumps(VALID).encode(), "127.0.0.1")
    try:
        calls = _count_store_calls(state)
        assert endpoint.handle(request).status == 200
        assert calls == ["entries", "take_or_append_new"]  # is a stub held?, then fault or character
        state.push_fault(Fault(status=503), times=1)
        calls.clear()
        assert endpoint.handle(request).status == 503
        assert calls == ["entries", "take_or_append_new", "append", "incr"]  # then journaled and counted
        assert state.next_draw() == 1 and state.next_draw() == 2  # random faults count through the state
    finally:
        state.close()
