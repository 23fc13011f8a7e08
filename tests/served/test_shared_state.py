"""Real servers sharing one state (127.0.0.1, bounded): a killed worker, replicas on Redis, Redis down and up.

Each test starts its own ``sora-mock serve`` processes (and, where needed, its own
``redis-server`` on a Unix socket in a temporary folder) and stops them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from ..helpers import ROOT, VIDEO, MockProcess
from ..redis_server import RedisServer

PATH = "/sora/v1/characters"
VALID = {"url": VIDEO, "timestamps": "1,3"}
AUTH = {"Authorization": "Bearer shared-state-test"}
DOCS = ROOT / "docs" / "state.md"

pytestmark = pytest.mark.slow


def create(url: str, session: requests.Session | None = None) -> requests.Response:
    if session is None:
        with requests.Session() as fresh:  # a fresh connection: any worker may answer
            return fresh.post(url + PATH, json=VALID, headers=AUTH, timeout=10)
    return session.post(url + PATH, json=VALID, headers=AUTH, timeout=10)


def base(server: MockProcess) -> str:
    return server.url("")


def seeded_reference(seed: int, count: int) -> list[tuple[str, str]]:
    """(username, id tail) of the first ``count`` characters of one single-worker server."""
    with MockProcess(["--workers", "1", "--seed", str(seed)]) as single:
        answers = [create(base(single)).json() for _ in range(count)]
        assert single.stop() == 0
    return [(a["username"], a["id"][11:]) for a in answers]


def _started(pid: int) -> int:
    """Start time of a process, in clock ticks since boot (what orders a respawned worker last)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_a_worker_killed_under_load_with_faults_queued_never_hangs_the_server() -> None:
    # granian replaces a dead worker, but stops the server when one worker slot dies twice within
    # 5.5 s (a crash loop): each trial kills the oldest worker, at least 6 s after it was started.
    killed_at: list[float] = []
    with MockProcess(["--workers", "2", "--threads", "4"]) as server:
        url = base(server)
        for trial in range(3):
            with requests.Session() as admin:
                assert admin.post(url + "/__mock/reset", timeout=10).status_code == 200
                for _ in range(1000 if trial == 0 else 200):
                    admin.post(url + "/__mock/faults", json={"status": 503, "times": 2}, timeout=10)
            workers = server.await_processes(3)[1:]
            stop = threading.Event()
            answered: list[int] = []

            def load(stop: threading.Event = stop, answered: list[int] = answered) -> None:
                with requests.Session() as session:
                    while not stop.is_set():
                        with contextlib.suppress(requests.RequestException):
                            answered.append(create(url, session).status_code)

            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            try:
                deadline = time.monotonic() + 10
                while len(answered) < 50 and time.monotonic() < deadline:
                    time.sleep(0.01)
                if len(killed_at) >= 2:  # the oldest worker now is the one respawned two trials ago
                    time.sleep(max(0.0, killed_at[-2] + 6 - time.monotonic()))
                os.kill(min(workers, key=_started), signal.SIGKILL)
                killed_at.append(time.monotonic())
                time.sleep(0.2)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=20)
            assert 503 in answered
            # Within seconds the server answers again: admin calls, the queue, creates.
            deadline = time.monotonic() + 15
            while True:
                try:
                    with requests.Session() as check:
                        assert check.get(url + "/__mock/health", timeout=2).status_code == 200
                        assert check.post(url + "/__mock/reset", timeout=2).status_code == 200
                        assert check.get(url + "/__mock/faults", timeout=2).json() == []
                        assert create(url, check).status_code == 200
                    break
                except (requests.RequestException, AssertionError):
                    assert time.monotonic() < deadline, f"trial {trial}: the server did not answer again"
                    time.sleep(0.1)
        assert server.stop() == 0


def test_two_workers_on_sqlite_give_one_state_and_the_single_server_sequence() -> None:
    reference = seeded_reference(5, 12)
    with MockProcess(["--workers", "2", "--seed", "5"]) as server:
        url = base(server)
        pids = server.await_processes(3)
        requests.post(url + "/__mock/faults", json={"status": 429, "times": 4}, timeout=10).raise_for_status()
        statuses = [create(url).status_code for _ in range(16)]  # fresh connections: both workers answer
        assert statuses == [429] * 4 + [200] * 12
        characters = requests.get(url + "/__mock/characters", timeout=10).json()
        assert [(c["username"], c["id"][11:]) for c in characters] == reference
        journal = requests.get(url + "/__mock/requests", timeout=10).json()
        assert [e["status"] for e in journal] == statuses
        assert [e["seq"] for e in journal] == list(range(1, 17))
        assert len(pids) == 3
        assert server.stop() == 0


def test_two_servers_sharing_one_redis_are_one_mock(redis_alone: RedisServer) -> None:
    reference = seeded_reference(9, 14)
    shared = ["--workers", "2", "--seed", "9", "--state", redis_alone.url]
    with MockProcess(shared) as one, MockProcess(shared) as two:
        urls = [base(one), base(two)]
        requests.post(urls[0] + "/__mock/reset", timeout=10).raise_for_status()
        requests.post(urls[0] + "/__mock/faults", json={"status": 503, "times": 6}, timeout=10).raise_for_status()
        assert len(requests.get(urls[1] + "/__mock/faults", timeout=10).json()) == 1  # one queue
        answers = [create(urls[n % 2]) for n in range(20)]
        assert Counter(a.status_code for a in answers) == {503: 6, 200: 14}
        assert [a.status_code for a in answers[:6]] == [503] * 6
        ids = [a.json()["id"] for a in answers[6:]]
        assert len(set(ids)) == 14
        assert [(a.json()["username"], a.json()["id"][11:]) for a in answers[6:]] == reference
        for url in urls:
            journal = requests.get(url + "/__mock/requests", timeout=10).json()
            assert [e["status"] for e in journal] == [a.status_code for a in answers]
            assert len({e["seq"] for e in journal}) == 20
        assert one.stop() == 0 and two.stop() == 0


def test_redis_stopped_then_started_gives_503_then_recovers(redis_alone: RedisServer) -> None:
    with MockProcess(["--workers", "1", "--state", redis_alone.url]) as server:
        url = base(server)
        with httpx.Client(timeout=10) as client:
            assert client.get(url + "/__mock/health").json() == {"status": "ok", "state": "redis"}
            assert client.post(url + PATH, json=VALID, headers=AUTH).status_code == 200
            redis_alone.stop()
            started = time.monotonic()
            health = client.get(url + "/__mock/health")
            assert health.status_code == 503
            assert health.json()["status"] == "unavailable" and "Redis" in health.json()["reason"]
            answer = client.post(url + PATH, json=VALID, headers=AUTH)
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
            assert answer.json()["error"]["code"] == "state_unavailable"
            assert client.get(url + "/__mock/requests").status_code == 503
            assert time.monotonic() - started < 10  # fails fast, never hangs
            redis_alone.start()  # empty: the state the mock kept there is gone, and health says so
            health = client.get(url + "/__mock/health")
            assert (health.status_code, health.json()["status"]) == (503, "lost")
            assert "lost the state" in health.json()["reason"]
            assert client.post(url + PATH, json=VALID, headers=AUTH).status_code == 200
            assert [e["status"] for e in client.get(url + "/__mock/requests").json()] == [200]
            assert client.post(url + "/__mock/reset").status_code == 200  # explicit: the state is its own again
            assert client.get(url + "/__mock/health").json() == {"status": "ok", "state": "redis"}
        assert server.stop() == 0
    assert "Traceback" not in "".join(server.stderr)


def _block(language: str) -> str:
    match = re.search(rf"## Scaling out.*?```{language}\n(.*?)```", DOCS.read_text(), re.S)
    assert match, f"docs/state.md has no {language} block under Scaling out"
    return match.group(1)


def test_the_scaling_out_example_of_the_docs_runs(redis_alone: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    shell, program = _block("sh"), _block("python")
    serve_lines = [line.split("&")[0].split() for line in shell.splitlines() if line.startswith("sora-mock serve")]
    assert len(serve_lines) == 2
    replicas: list[MockProcess] = []
    with contextlib.ExitStack() as stack:
        for words in serve_lines:
            args = words[2:]
            args[args.index("--port") : args.index("--port") + 2] = []  # MockProcess picks a free port
            args[args.index("--state") + 1] = redis_alone.url
            replicas.append(stack.enter_context(MockProcess(args)))
        for documented, replica in zip(("8001", "8002"), replicas, strict=True):
            program = program.replace(f"http://127.0.0.1:{documented}", base(replica))
        namespace: dict[str, Any] = {}
        exec(compile(program, str(DOCS), "exec"), namespace)
        printed = capsys.readouterr().out.splitlines()
        assert printed == ["[503, 503, 503, 200, 200, 200, 200, 200, 200, 200]", "10 7"]
        for replica in replicas:
            assert replica.stop() == 0


def test_a_sqlite_state_with_a_path_outlives_the_server_and_reads_with_sqlite3(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with MockProcess(["--workers", "2", "--state", f"sqlite:///{path}", "--state-prefix", "run1:"]) as server:
        statuses = [create(base(server)).status_code for _ in range(3)]
        assert server.stop() == 0
    assert statuses == [200, 200, 200] and path.exists()
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("select item from items where prefix = 'run1:' and name = 'requests' order by seq").fetchall()
    assert [json.loads(item)["status"] for (item,) in rows] == statuses
