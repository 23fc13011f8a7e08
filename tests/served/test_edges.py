"""Malformed HTTP at the edges of a served mock (127.0.0.1): clear 4xx answers, never a 500 or a hang."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from ..helpers import MockProcess, parse_answer, raw_exchange

PATH = "/sora/v1/characters"
AUTH = "Authorization: Bearer edge-test\r\n"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess(["--read-timeout", "3"]) as running:
        yield running


def exchange(server: MockProcess, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes (bounded): status, headers, body."""
    return parse_answer(raw_exchange((server.host, server.port), data))


def chunked(payload: bytes) -> bytes:
    return f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n".encode() + payload


@pytest.mark.parametrize(
    "payload",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXX0\r\n\r\n", b"-1\r\nabc\r\n0\r\n\r\n"],
    ids=["size-not-hex", "missing-crlf", "negative-size"],
)
def test_malformed_chunked_framing_gets_400_in_the_envelope(server: MockProcess, payload: bytes) -> None:
    status, headers, body = exchange(server, chunked(payload))
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "malformed_body"


def test_a_body_shorter_than_its_content_length_then_eof_is_a_clean_4xx(server: MockProcess) -> None:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 50\r\n\r\n".encode()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head + b'{"url"')
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(65536)
    assert answer == b"" or answer.split()[1] in (b"400", b"408")


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nHo st: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 600_000 + b"\r\n\r\n", 431),
    ],
    ids=["bad-request-line", "bad-header", "url-too-long", "headers-too-large"],
)
def test_the_http_layer_rejects_unparseable_requests_with_the_right_status(
    server: MockProcess, request_bytes: bytes, expected: int
) -> None:
    # granian answers these itself, before any app code runs: right status, empty body, connection closed.
    status, headers, body = exchange(server, request_bytes)
    assert status == expected
    assert body == b"" and headers.get("connection") == "close"


def test_oversized_bodies_get_413_in_the_envelope_before_being_read(server: MockProcess) -> None:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 99999999\r\n\r\n".encode()
    status, _headers, body = exchange(server, head)
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    status, _, body = exchange(server, chunked(b"10000\r\n" + b" " * 0x10000 + b"\r\n"))
    # 64 KiB announced chunk, then the client stops: under the cap, so it waits for more and times out.
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"


def test_the_app_answers_everything_else_in_the_envelope(server: MockProcess) -> None:
    answer = requests.get(server.url("/nowhere"), timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    answer = requests.put(server.url(PATH), timeout=10)
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
    log = "".join(server.stderr)
    assert "ERROR" not in log and "Traceback" not in log, log


def test_a_drop_fault_closes_the_connection_unanswered(server: MockProcess) -> None:
    assert requests.post(server.url("/__mock/faults"), json={"drop": True}, timeout=10).status_code == 201
    body = b'{"url": "https://example.com/v.mp4", "timestamps": "1,3"}'
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head + body)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert answer == b""
    assert requests.get(server.url("/__mock/faults"), timeout=10).json() == []
