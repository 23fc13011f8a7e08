"""`sora-mock serve` on a real socket: answers, auth, help, clean shutdown, no secrets printed."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_server import Contract, check_character

from ..helpers import VIDEO, free_port

SORA_MOCK = str(Path(sys.executable).with_name("sora-mock"))
SECRET = "cli-secret-token-5f1e9a"


def call(port: int, payload: object, token: str | None = SECRET) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/sora/v1/characters",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_serving(proc: subprocess.Popen[str], port: int, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, "sora-mock exited before serving"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("sora-mock did not start listening")


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    env = {**os.environ, "SORA_MOCK_TOKEN": SECRET}
    proc = subprocess.Popen(
        [SORA_MOCK, "serve", "--port", str(port), "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_until_serving(proc, port)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    return proc.returncode, out + err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_cleanly(
    served: tuple[subprocess.Popen[str], int], contract: Contract, sig: signal.Signals
) -> None:
    proc, port = served
    status, body = call(port, {"url": VIDEO, "timestamps": "1,3"})
    assert status == 200 and check_character(body, contract) == []
    assert call(port, {"url": VIDEO, "timestamps": "1,3"}, token="other")[0] == 401
    status, body = call(port, {"url": VIDEO, "timestamps": "0,5"})
    assert status == 422 and body["error"]["param"] == "timestamps"  # type: ignore[index]
    code, output = stop(proc, sig)
    assert code == 0
    assert SECRET not in output


def test_chunked_uploads_are_read_and_capped(served: tuple[subprocess.Popen[str], int], contract: Contract) -> None:
    _, port = served

    def upload(parts: list[bytes]) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
            conn.request("POST", "/sora/v1/characters", body=iter(parts), headers=headers, encode_chunked=True)
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    status, body = upload([b'{"url": "' + VIDEO.encode() + b'", ', b'"timestamps": "1,3"}'])
    assert status == 200 and check_character(body, contract) == []
    status, body = upload([b" " * 65536] * 40)  # 2.5 MiB, never announced in a Content-Length
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert call(port, {"url": VIDEO, "timestamps": "1,3"})[0] == 200  # and the server keeps serving


def test_serve_binds_loopback_by_default(served: tuple[subprocess.Popen[str], int]) -> None:
    _, port = served
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # LISTEN
    assert f"0100007F:{port:04X}" in local


def test_help_explains_every_option() -> None:
    out = subprocess.run([SORA_MOCK, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--host", "--port", "--seed", "--token", "SORA_MOCK_TOKEN", "--defect"):
        assert option in out
    top = subprocess.run([SORA_MOCK, "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in top


def test_bad_option_values_fail_with_a_clear_message() -> None:
    result = subprocess.run([SORA_MOCK, "serve", "--port", "70000"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--port" in result.stderr
    result = subprocess.run([SORA_MOCK, "serve", "--token", " "], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--token" in result.stderr
