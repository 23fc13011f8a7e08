"""Every state backend against one contract: logs, counters, counted tables, reset, health."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_server.store import Store, StoreUnavailable, open_store, prepare_state_url, safe_url
from mock_server.store.base import SERIAL

from ..redis_server import RedisServer

Opener = Callable[..., Store]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of one backend; every store opened with the same prefix shares one state."""
    if request.param == "memory":
        shared: dict[tuple[str, int, int], Store] = {}

        def memory(prefix: str = "t:", max_items: int = 1000, max_bytes: int = 0) -> Store:
            key = (prefix, max_items, max_bytes)
            if key not in shared:
                shared[key] = open_store("memory", prefix=prefix, max_items=max_items, max_bytes=max_bytes)
            return shared[key]

        yield memory
        return
    url = f"sqlite:///{tmp_path}/state.db" if request.param == "sqlite" else request.getfixturevalue("redis_url")
    opened: list[Store] = []

    def real(prefix: str = "t:", max_items: int = 1000, max_bytes: int = 0) -> Store:
        store = open_store(url, prefix=prefix, max_items=max_items, max_bytes=max_bytes)
        opened.append(store)
        return store

    yield real
    for store in opened:
        store.close()


def _items(store: Store, log: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
    return list(store.read(log, after=after, limit=limit))


def test_logs_number_items_and_read_in_order_from_any_point(opener: Opener) -> None:
    store = opener()
    seqs = [store.append("requests", f"item {i}".encode()) for i in range(600)]
    assert seqs == list(range(1, 601))
    assert store.append("characters", b"other log") == 1
    items = _items(store, "requests")
    assert [seq for seq, _ in items] == seqs  # more than one batch
    assert items[599] == (600, b"item 599")
    assert _items(store, "requests", after=597) == [(598, b"item 597"), (599, b"item 598"), (600, b"item 599")]
    assert [seq for seq, _ in _items(store, "requests", after=100, limit=300)] == list(range(101, 401))
    assert _items(store, "requests", limit=0) == []
    assert _items(store, "missing") == []
    assert store.append_many([("requests", b"a"), ("characters", b"b")]) == [601, 2]


def test_logs_are_bounded_by_items_and_by_bytes(opener: Opener) -> None:
    by_items = opener(prefix="items:", max_items=5)
    for i in range(12):
        by_items.append("log", str(i).encode())
    assert [item for _, item in _items(by_items, "log")] == [b"7", b"8", b"9", b"10", b"11"]
    by_bytes = opener(prefix="bytes:", max_bytes=1000)
    for i in range(30):
        by_bytes.append("log", bytes([65 + i % 26]) * 300)
    kept = _items(by_bytes, "log")
    assert [seq for seq, _ in kept] == [28, 29, 30]
    assert sum(len(item) for _, item in kept) <= 1000
    by_bytes.append("log", b"x" * 5000)  # an item over the bound alone is still kept, alone
    assert [seq for seq, _ in _items(by_bytes, "log")] == [31]


def test_reads_stream_while_appends_go_on(opener: Opener) -> None:
    store = opener()
    for i in range(300):
        store.append("log", b"%d" % i)
    reader = store.read("log")
    first = next(reader)
    assert store.append("log", b"late") == 301  # a half-consumed read never blocks an append
    rest = list(reader)
    assert first[0] == 1 and rest[-1][0] in (300, 301)


def test_counters_and_reservations(opener: Opener) -> None:
    store = opener()
    assert store.get("spent") == 0
    assert store.incr("spent", 5) == 5 and store.incr("spent") == 6 and store.get("spent") == 6
    assert [store.reserve("calls", 3) for _ in range(5)] == [True, True, True, False, False]
    assert store.get("calls") == 3
    assert [store.incr(SERIAL) for _ in range(3)] == [1, 2, 3]


def test_a_counted_table_hands_out_the_oldest_row_exactly_its_takes(opener: Opener) -> None:
    store = opener()
    assert store.take("q") is None and store.entries("q") == []
    assert store.put("q", "a", b'{"status":503}', 2, 3) and store.put("q", "b", b'{"status":429}', 1, 3)
    assert store.entries("q") == [("a", b'{"status":503}', 0, 2), ("b", b'{"status":429}', 0, 1)]
    assert store.put("q", "c", b'{"drop":true}', 1, 3)
    assert not store.put("q", "d", b'{"status":500}', 1, 3)  # full: the limit is the caller's to name
    taken = [store.take("q", drop_spent=True) for _ in range(5)]
    assert taken == [b'{"status":503}', b'{"status":503}', b'{"status":429}', b'{"drop":true}', None]
    assert store.entries("q") == []
    assert store.put("q", "d", b'{"status":500}', 1, 3)  # spent rows were dropped: room again


def test_spent_rows_stay_unless_dropped_and_keys_replace_and_remove(opener: Opener) -> None:
    store = opener()
    assert store.put("t", "a", b"1", 1, 2) and store.put("t", "b", b"2", None, 2)
    assert store.take("t") == b"1"  # the oldest with takes left
    assert store.take("t") == b"2" and store.take("t", "b") == b"2"  # then the next; no bound on b
    assert store.take("t", "a") is None and store.take("t", "gone") is None
    assert store.entries("t") == [("a", b"1", 1, 0), ("b", b"2", 2, None)]  # a is spent, still listed
    assert not store.put("t", "c", b"3", 1, 2)
    assert store.put("t", "a", b"new", 5, 2)  # replacing a key is not one more: newest, nothing taken
    assert store.entries("t") == [("b", b"2", 2, None), ("a", b"new", 0, 5)]
    assert store.entries("other") == [] and store.take("other", "a") is None
    assert store.remove("t", "a") and not store.remove("t", "a")
    assert store.remove("t") and not store.remove("t") and store.entries("t") == []


def test_take_or_append_new_builds_only_when_nothing_is_taken(opener: Opener) -> None:
    store = opener()
    built: list[int] = []

    def build(serial: int) -> bytes:
        built.append(serial)
        return b"c%d" % serial

    store.put("q", "f", b"fault", 1, 10)
    assert store.take_or_append_new("q", "chars", build, (("log", b"e1"),)) == (b"fault", None)
    assert built == [] and _items(store, "chars") == [] and _items(store, "log") == []
    assert store.take_or_append_new("q", "chars", build, (("log", b"e2"),)) == (None, b"c1")
    assert store.take_or_append_new(None, "chars", build) == (None, b"c2")
    assert _items(store, "chars") == [(1, b"c1"), (2, b"c2")] and _items(store, "log") == [(1, b"e2")]
    assert built == [1, 2] and store.get(SERIAL) == 2


def test_reset_empties_logs_and_faults_but_serials_and_sequences_go_on(opener: Opener) -> None:
    store = opener()
    store.append("log", b"a")
    store.incr(SERIAL)
    store.incr("budget", 7)
    store.incr("kept", 2)
    store.put("q", "f", b"{}", 5, 10)
    store.put("t", "s", b"{}", None, 10)
    store.reset(counters=("budget",))
    assert _items(store, "log") == [] and store.entries("q") == [] and store.take("q") is None
    assert store.entries("t") == []
    assert store.get("budget") == 0 and store.get("kept") == 2
    assert store.incr(SERIAL) == 2
    assert store.append("log", b"b") == 2


def test_prefixes_keep_two_states_apart_and_one_prefix_is_one_state(opener: Opener) -> None:
    one, other, again = opener(prefix="one:"), opener(prefix="other:"), opener(prefix="one:")
    one.append("log", b"1")
    one.put("q", "f", b"{}", 1, 5)
    one.incr("n")
    assert _items(other, "log") == [] and other.entries("q") == [] and other.get("n") == 0
    assert _items(again, "log") == [(1, b"1")] and again.get("n") == 1
    other.reset()
    assert again.take("q") == b"{}"


def test_concurrent_threads_take_each_row_once_and_never_share_a_serial(opener: Opener) -> None:
    store = opener()
    store.put("q", "x", b"x", 200, 5)
    taken: list[bytes | None] = []
    serials: list[int] = []

    def work() -> None:
        for _ in range(60):
            taken.append(store.take("q", drop_spent=True))
            serials.append(store.incr(SERIAL))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(taken) == {b"x": 200, None: 40}
    assert sorted(serials) == list(range(1, 241))
    store.ping()


def _drain(store: Store, results: Any) -> None:
    """In a forked child: take rows until none is left, journal each, report what was taken."""
    taken = []
    while (fault := store.take("faults", drop_spent=True)) is not None:
        taken.append(fault)
        store.append("requests", b"%d:" % os.getpid() + fault)
    results.put((taken, store.incr(SERIAL)))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_forked_processes_share_one_state(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path}/state.db" if backend == "sqlite" else request.getfixturevalue("redis_url")
    store = open_store(url, max_items=500)
    store.put("faults", "a", b"503", 120, 10)
    store.put("faults", "b", b"429", 30, 10)
    ctx = multiprocessing.get_context("fork")
    results = ctx.SimpleQueue()
    children = [ctx.Process(target=_drain, args=(store, results)) for _ in range(3)]
    for child in children:
        child.start()
    outcomes = [results.get() for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert Counter(f for taken, _ in outcomes for f in taken) == {b"503": 120, b"429": 30}
    assert len({serial for _, serial in outcomes}) == 3
    assert len(list(store.read("requests"))) == 150
    store.close()


def test_an_unreachable_store_says_so_and_comes_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        store = open_store(server.url)
        store.append("log", b"a")
        server.stop()
        for call in (
            store.ping,
            lambda: store.append("log", b"b"),
            lambda: store.take("q"),
            lambda: list(store.read("log")),
        ):
            with pytest.raises(StoreUnavailable, match="Redis state store"):
                call()
        server.start()
        store.ping()
        assert store.append("log", b"c") == 1  # a fresh server: nothing persisted
    finally:
        server.stop()
    missing = open_store(f"sqlite:///{tmp_path}/no/such/folder/state.db")
    with pytest.raises(StoreUnavailable, match="SQLite state file"):
        missing.ping()


def test_open_store_refuses_unknown_urls_and_hides_passwords() -> None:
    with pytest.raises(ValueError, match=r"use memory, sqlite:///PATH, redis://HOST:PORT/DB or unix://PATH"):
        open_store("postgres://u:secret@db/x")
    with pytest.raises(ValueError, match="needs a file path"):
        open_store("sqlite:///")
    assert safe_url("redis://:hunter2@cache:6379/0") == "redis://:***@cache:6379/0"
    assert safe_url("redis://user:hunter2@cache:6379/0") == "redis://user:***@cache:6379/0"
    assert safe_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
    with pytest.raises(ValueError) as caught:
        open_store("bogus://:hunter2@x")
    assert "hunter2" not in str(caught.value)


def test_prepare_state_url_picks_a_temporary_sqlite_file_for_several_workers() -> None:
    with prepare_state_url(None, 1) as url:
        assert url == "memory"
    with prepare_state_url("redis://127.0.0.1:1/0", 4) as url:
        assert url == "redis://127.0.0.1:1/0"
    with prepare_state_url(None, 2) as url:
        assert url.startswith("sqlite:///")
        store = open_store(url)
        store.append("log", b"x")
        path = Path(url[len("sqlite:///") :])
        assert path.exists()
        store.close()
    assert not path.exists() and not path.parent.exists()
    with pytest.raises(ValueError, match="memory keeps the state inside one process"), prepare_state_url("memory", 2):
        pass
