"""A stub the server could not send, or that would name an outcome nobody can read, is refused when created.

Header count and size are bounded (every HTTP client takes the largest stub allowed), ``error.code``
is bounded, and a stub description repeating a key is refused like a request body repeating one.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from mock_server.mock.stubs import MAX_CODE_LENGTH, MAX_HEADER_BYTES, MAX_HEADERS

from ..helpers import AUTH, MockProcess

CREATE = {"url": "https://example.com/v.mp4", "timestamps": "1,3"}


def _stub(headers: dict[str, str] | None = None, code: str = "task_not_found", **extra: Any) -> dict[str, Any]:
    error = {"message": "No.", "type": "invalid_request_error", "param": None, "code": code}
    return {"response": {"status": 404, "json": {"error": error}, "headers": headers or {}}, **extra}


def _refused(client: FlaskClient, data: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    answer = client.post("/__mock/stubs", data=raw, content_type="application/json")
    assert answer.status_code == 400, answer.get_data()[:300]
    error: dict[str, Any] = answer.get_json()["error"]
    assert error["code"] == "invalid_stub"
    assert client.get("/__mock/stubs").get_json() == []
    return error


@pytest.mark.parametrize("where", ["response", "match"])
def test_header_count_and_size_are_bounded(client: FlaskClient, where: str) -> None:
    def described(headers: dict[str, str]) -> dict[str, Any]:
        if where == "response":
            return _stub(headers)
        return {**_stub(), "match": {"headers": headers}}

    param = f"{where}.headers"
    assert _refused(client, described({"X-Big": "v" * 900_000}))["param"] == f"{param}.X-Big"
    assert _refused(client, described({f"X-H{n}": "v" for n in range(20_000)}))["param"] == param
    assert _refused(client, described({f"X-H{n}": "v" for n in range(MAX_HEADERS + 1)}))["param"] == param
    spread = {f"X-H{n}": "v" * (MAX_HEADER_BYTES // 8) for n in range(9)}
    assert _refused(client, described(spread))["param"] == param
    fits = {f"X-H{n}": "v" * (MAX_HEADER_BYTES // MAX_HEADERS - 8) for n in range(MAX_HEADERS)}
    assert client.post("/__mock/stubs", json=described(fits)).status_code == 201


@pytest.mark.parametrize("off_contract", [False, True])
def test_error_code_is_bounded(client: FlaskClient, off_contract: bool) -> None:
    for code in ("c" * 500_000, "c" * (MAX_CODE_LENGTH + 1), "line\nbreak", "tab\there"):
        error = _refused(client, _stub(code=code, off_contract=off_contract))
        assert error["param"] == "response.json.error.code"
    assert client.post("/__mock/stubs", json=_stub(code="c" * MAX_CODE_LENGTH, off_contract=True)).status_code == 201


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"response": {"status": 404, "status": 500, "json": {}}}', "response.status"),
        (b'{"times": 1, "times": 2, "response": {"status": 404, "json": {}}}', "times"),
        (
            b'{"match": {"body": {"url": "a", "url": "b"}}, "response": {"status": 404, "json": {}}}',
            "match.body.url",
        ),
        (
            b'{"response": {"status": 404, "json": {"error": {"message": "m", "type": "t", "param": null,'
            b' "code": "a", "code": "b"}}}}',
            "response.json.error.code",
        ),
        (b'{"response": {"status": 404, "json": [{"a": 1}, {"b": 1, "b": 2}]}}', "response.json.1.b"),
    ],
)
def test_a_repeated_key_is_refused_and_named(client: FlaskClient, raw: bytes, param: str) -> None:
    error = _refused(client, raw)
    assert error["param"] == param and "twice" in error["message"]


def test_a_fault_body_repeating_a_key_is_refused(client: FlaskClient) -> None:
    answer = client.post("/__mock/faults", data=b'{"status": 503, "status": 429}', content_type="application/json")
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["code"] == "invalid_fault" and error["param"] == "status"
    assert client.get("/__mock/faults").get_json() == []


@pytest.fixture(scope="module")
def served() -> Iterator[MockProcess]:
    with MockProcess([]) as server:
        yield server


@pytest.mark.slow
def test_the_largest_headers_allowed_reach_every_client(served: MockProcess) -> None:
    headers = {f"X-H{n}": "v" * (MAX_HEADER_BYTES // MAX_HEADERS - 8) for n in range(MAX_HEADERS)}
    with httpx.Client(timeout=10) as client:
        client.post(served.url("/__mock/reset"))
        assert client.post(served.url("/__mock/stubs"), json=_stub(headers)).status_code == 201
        answer = client.post(served.url("/sora/v1/characters"), json=CREATE, headers=AUTH)
        assert answer.status_code == 404 and answer.headers["x-h31"] == headers["X-H31"]
    conn = http.client.HTTPConnection(served.host, served.port, timeout=10)
    try:
        conn.request("POST", "/sora/v1/characters", json.dumps(CREATE), {**AUTH, "Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 404 and reply.getheader("X-H0") == headers["X-H0"]
        reply.read()
    finally:
        conn.close()
