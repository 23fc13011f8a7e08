"""Load safety of a served mock (127.0.0.1, bounded): parallel creates, huge bodies, flat memory."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ..helpers import VIDEO, MockProcess

PATH = "/sora/v1/characters"
BODY = json.dumps({"url": VIDEO, "timestamps": "1,3"}).encode()
HEADERS = {"Authorization": "Bearer load-test", "Content-Type": "application/json"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess(["--journal-size", "5000", "--seed", "1", "--workers", "2", "--threads", "4"]) as running:
        running.await_processes(3)  # master, two workers
        yield running


def _worker_cpu_ticks(server: MockProcess) -> dict[int, int]:
    """CPU ticks used so far by each worker process."""
    ticks = {}
    for pid in server.pids()[1:]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def _creates(server: MockProcess, count: int) -> list[tuple[int, str]]:
    """``count`` creates over one keep-alive connection; (status, id or error code) each."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    answers = []
    try:
        for _ in range(count):
            conn.request("POST", PATH, body=BODY, headers=HEADERS)
            response = conn.getresponse()
            payload = json.loads(response.read())
            answers.append((response.status, payload.get("id") or payload["error"]["code"]))
    finally:
        conn.close()
    return answers


def test_parallel_creates_all_succeed_with_distinct_ids_and_are_all_listed(server: MockProcess) -> None:
    requests.post(server.url("/__mock/reset"), timeout=10).raise_for_status()
    before = _worker_cpu_ticks(server)
    with ThreadPoolExecutor(16) as pool:
        batches = list(pool.map(lambda _: _creates(server, 150), range(16)))
    after = _worker_cpu_ticks(server)
    assert len(before) == 2
    assert all(after[pid] > before[pid] for pid in before)  # both worker processes answered
    answers = [answer for batch in batches for answer in batch]
    assert len(answers) == 2400
    assert {status for status, _ in answers} == {200}
    ids = [ident for _, ident in answers]
    assert len(set(ids)) == 2400

    listed = requests.get(server.url("/__mock/characters"), timeout=30).json()
    assert len(listed) == 2400
    assert {c["id"] for c in listed} == set(ids)
    journal = requests.get(server.url("/__mock/requests"), timeout=30).json()
    assert len(journal) == 2400
    assert {e["status"] for e in journal} == {200}


def test_faults_and_reset_hold_exactly_across_workers_under_load(server: MockProcess) -> None:
    requests.post(server.url("/__mock/reset"), timeout=10).raise_for_status()
    queued = requests.post(server.url("/__mock/faults"), json={"status": 503, "times": 100}, timeout=10)
    assert queued.status_code == 201
    requests.post(server.url("/__mock/faults"), json={"status": 429, "times": 50}, timeout=10).raise_for_status()
    with ThreadPoolExecutor(16) as pool:
        batches = list(pool.map(lambda _: _creates(server, 25), range(16)))
    statuses = Counter(status for batch in batches for status, _ in batch)
    assert statuses == {503: 100, 429: 50, 200: 250}
    assert requests.get(server.url("/__mock/faults"), timeout=10).json() == []
    journal = requests.get(server.url("/__mock/requests"), timeout=30).json()
    assert Counter(e["status"] for e in journal) == statuses
    assert len(requests.get(server.url("/__mock/characters"), timeout=30).json()) == 250

    requests.post(server.url("/__mock/faults"), json={"status": 500, "times": 7}, timeout=10).raise_for_status()
    requests.post(server.url("/__mock/reset"), timeout=10).raise_for_status()
    for _ in range(6):  # fresh connections, so both workers are asked
        with requests.Session() as session:
            assert session.get(server.url("/__mock/requests"), timeout=10).json() == []
            assert session.get(server.url("/__mock/characters"), timeout=10).json() == []
            assert session.get(server.url("/__mock/faults"), timeout=10).json() == []
    assert {status for status, _ in _creates(server, 4)} == {200}


def test_a_10_mb_body_is_refused_unread_and_the_server_keeps_serving(server: MockProcess) -> None:
    size = 10 * 1024 * 1024
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer load-test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head + b"[" + b" " * 65_535)  # 64 KiB of the 10 MiB; the rest is never sent
        answer = sock.makefile("rb").readline()
    assert answer.split()[1] == b"413"

    # A client that pushes the whole body at once still gets the 413 (or a reset while sending).
    with socket.create_connection((server.host, server.port), timeout=10) as sock:

        def push() -> None:
            with contextlib.suppress(OSError):
                sock.sendall(head + b" " * size)

        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
        status_line = sock.makefile("rb").readline()
        pusher.join(timeout=10)
    assert status_line.split()[1] == b"413"

    assert _creates(server, 3)[0][0] == 200
    # Refused before a byte of their bodies was read: journaled as 413 with no body, then the creates.
    journal = requests.get(server.url("/__mock/requests"), timeout=30).json()
    assert [e["status"] for e in journal[-3:]] == [200, 200, 200]
    refused = [e for e in journal if e["status"] == 413]
    assert len(refused) == 2 and all(e["body"] is None and e["outcome"] == "request_too_large" for e in refused)


def test_memory_stays_flat_beyond_the_bounded_journal() -> None:
    with MockProcess(["--journal-size", "500", "--workers", "2"]) as server:
        server.await_processes(3)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: _creates(server, 750), range(4)))  # fills journal and caches
        warm = server.rss_kib()
        with ThreadPoolExecutor(4) as pool:
            batches = list(pool.map(lambda _: _creates(server, 4250), range(4)))
        after = server.rss_kib()
        assert {status for batch in batches for status, _ in batch} == {200}
        assert len(requests.get(server.url("/__mock/requests"), timeout=30).json()) == 500
        assert len(requests.get(server.url("/__mock/characters"), timeout=30).json()) == 500
    # 17,000 more requests (each journal entry is ~1 KiB): unbounded storage would add > 16 MiB.
    assert after - warm < 8 * 1024, (warm, after)
