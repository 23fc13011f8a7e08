"""Slow and stalling clients against a served mock (127.0.0.1, bounded): cut off, never blocking others."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ..helpers import VIDEO, MockProcess

PATH = "/sora/v1/characters"
BODY = json.dumps({"url": VIDEO, "timestamps": "1,3"}).encode()
HEADERS = {"Authorization": "Bearer slow-test", "Content-Type": "application/json"}
READ_TIMEOUT = 2.0
STALLED_BODY = (
    f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer slow-test\r\n"
    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n0123456789"
).encode()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess(["--read-timeout", str(READ_TIMEOUT), "--workers", "2"]) as running:
        yield running


def _timed_creates(server: MockProcess, count: int) -> list[tuple[int, float]]:
    """``count`` creates, each on a fresh connection: (status, seconds) each."""
    answers = []
    for _ in range(count):
        started = time.perf_counter()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request("POST", PATH, body=BODY, headers=HEADERS)
            response = conn.getresponse()
            response.read()
            answers.append((response.status, time.perf_counter() - started))
        finally:
            conn.close()
    return answers


def _assert_fast(answers: list[tuple[int, float]]) -> None:
    """Every create succeeds; at least 4 of 5 within the 100 ms the issue asks for, all within 1 s."""
    assert {status for status, _ in answers} == {200}
    times = sorted(seconds for _, seconds in answers)
    assert times[-2] < 0.1 and times[-1] < 1.0, times


def _read_all(sock: socket.socket, limit: float) -> bytes:
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_creates_answer_quickly_while_50_clients_send_headers_at_one_byte_a_second(server: MockProcess) -> None:
    header = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()
    socks = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(50)]
    stop = threading.Event()

    def trickle() -> None:
        position = 0
        while not stop.wait(1.0) and position < len(header):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(header[position : position + 1])
            position += 1

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(1.2)
        _assert_fast(_timed_creates(server, 5))
        # The stalled header senders are cut off once the read timeout has passed.
        started = time.monotonic()
        answer = _read_all(socks[0], READ_TIMEOUT + 5)
        assert time.monotonic() - started < READ_TIMEOUT + 5, "a stalled header sender was never cut off"
        assert answer == b"" or answer.split()[1] == b"408"  # closed (granian) or told why
    finally:
        stop.set()
        sender.join(timeout=5)
        for sock in socks:
            sock.close()


def test_creates_answer_quickly_while_16_clients_stall_mid_body_and_those_get_408(server: MockProcess) -> None:
    socks = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(16)]
    try:
        for sock in socks:
            sock.sendall(STALLED_BODY)
        time.sleep(0.2)
        _assert_fast(_timed_creates(server, 5))
        started = time.monotonic()
        answer = _read_all(socks[0], READ_TIMEOUT + 5)
        assert time.monotonic() - started < READ_TIMEOUT + 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split()[1] == b"408"
        error = json.loads(body)["error"]
        assert error["code"] == "request_timeout" and str(int(READ_TIMEOUT)) in error["message"]
    finally:
        for sock in socks:
            sock.close()


def test_admin_routes_answer_while_every_endpoint_request_sleeps_in_a_delay_fault(server: MockProcess) -> None:
    fault = {"delay_ms": 3000, "times": 8}
    assert requests.post(server.url("/__mock/faults"), json=fault, timeout=10).status_code == 201
    with ThreadPoolExecutor(8) as pool:
        creates = [pool.submit(_timed_creates, server, 1) for _ in range(8)]
        time.sleep(0.3)  # every create is now asleep in its delay
        health = []
        for _ in range(5):
            started = time.perf_counter()
            status = requests.get(server.url("/__mock/health"), timeout=10).status_code
            health.append((status, time.perf_counter() - started))
        delayed = [future.result(timeout=30)[0] for future in creates]
    _assert_fast(health)
    assert {status for status, _ in delayed} == {200}
    assert min(seconds for _, seconds in delayed) >= 2.9  # the delay itself was served in full


def test_a_client_hanging_up_mid_body_is_no_error_in_the_log(server: MockProcess) -> None:
    for _ in range(3):
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(STALLED_BODY)
        chunked = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer slow-test\r\n"
            'Transfer-Encoding: chunked\r\n\r\n5\r\n{"url'
        ).encode()
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(chunked)
    _assert_fast(_timed_creates(server, 5))
    time.sleep(0.5)
    log = "".join(server.stderr)
    assert "ERROR" not in log and "Traceback" not in log, log
