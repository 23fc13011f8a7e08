"""Connection limits of a served mock (127.0.0.1, bounded): idle and slow clients never starve a create.

granian holds one permit per open connection and accepts nothing once they are taken, so the
server sizes its permits from its limit of open descriptors, which it raises to the hard limit at
start (docs/serving.md, "Connection limits").
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mock_server.serving.server import FD_RESERVE, connection_limit

from ..helpers import VIDEO, MockProcess

PATH = "/sora/v1/characters"
BODY = json.dumps({"url": VIDEO, "timestamps": "1,3"})
HEADERS = {"Authorization": "Bearer limits-test", "Content-Type": "application/json"}
IDLE = 2000
LAPTOP_SOFT_LIMIT = 1024  # the usual default soft limit of open files on Linux desktops
READ_TIMEOUT = 30.0
PARTIAL = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _soft_open_files(limit: int) -> Iterator[None]:
    """This process's soft limit of open descriptors set to ``limit`` for the ``with``, then put back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else hard


def _soft_limit_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open-files limit for process {pid}")


@contextlib.contextmanager
def _idle_clients(server: MockProcess, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections: half send nothing, half send part of a request line and headers."""
    socks: list[socket.socket] = []
    try:
        for index in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=5)
            socks.append(sock)
            if index % 2:
                sock.sendall(PARTIAL)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has neither closed nor answered (nothing to read yet)."""
    count = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            sock.recv(1)  # b"" if closed, data if answered: either way not idle
        except BlockingIOError:
            count += 1
        except OSError:  # reset by the server
            pass
    return count


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    """A mock started under a laptop's default soft limit of open files (1024), with a long read timeout."""
    if not Path("/proc/self/limits").exists():
        pytest.skip("needs Linux /proc to read the server's limits")
    if _hard_limit() < IDLE + FD_RESERVE + 512:
        pytest.skip(f"the hard limit of open files ({_hard_limit()}) is too low for {IDLE} idle clients")
    with contextlib.ExitStack() as stack:
        with _soft_open_files(LAPTOP_SOFT_LIMIT):
            running = stack.enter_context(MockProcess(["--read-timeout", str(READ_TIMEOUT)]))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        stack.enter_context(_soft_open_files(max(soft, min(hard, IDLE + 1024))))
        yield running


def test_the_server_raises_its_open_files_limit_so_connections_are_bounded_by_the_machine(server: MockProcess) -> None:
    workers = server.await_processes(2)
    expected = min(_hard_limit(), 1 << 20)
    assert {_soft_limit_of(pid) for pid in workers} == {expected}
    assert IDLE < connection_limit(expected) < expected


def test_a_create_answers_while_2000_idle_and_slow_header_clients_are_connected(server: MockProcess) -> None:
    with _idle_clients(server, IDLE) as socks:
        # Before the limits were sized, the 1,025th connection waited in the kernel's queue until
        # the first 1,024 clients were cut off by the read timeout: far longer than this bound.
        create = requests.post(server.url(PATH), data=BODY, headers=HEADERS, timeout=READ_TIMEOUT / 3)
        assert create.status_code == 200, create.text
        assert create.json()["id"].startswith("ch_")
        health = requests.get(server.url("/__mock/health"), timeout=READ_TIMEOUT / 3)
        assert health.status_code == 200
        assert _still_open(socks) == IDLE  # none of them was refused or dropped to make room


def test_idle_and_kept_alive_connections_are_closed_after_the_read_timeout() -> None:
    with MockProcess(["--read-timeout", "1"]) as short:
        silent = socket.create_connection((short.host, short.port), timeout=10)
        kept = socket.create_connection((short.host, short.port), timeout=10)
        with silent, kept:
            kept.sendall(b"GET /__mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = kept.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            # recv returns b"" once the server closes; the 10 s socket timeout bounds the wait.
            assert silent.recv(1) == b""
            assert kept.recv(1) == b""


@pytest.mark.parametrize("open_files", [256, 1024, 65536, 1 << 20])
def test_the_connection_limit_leaves_descriptors_for_the_worker_itself(open_files: int) -> None:
    limit = connection_limit(open_files)
    assert open_files // 2 <= limit < open_files
    assert open_files - limit <= FD_RESERVE
