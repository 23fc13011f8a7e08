"""The embedded store: one SQLite file shared by every process of one machine.

WAL mode, so readers never stop writers and one read never blocks a create; ``synchronous=OFF``,
because the file holds a test server's state, not data to survive a power cut. Every change is one
short transaction; SQLite's locks are the operating system's file locks, so a process killed in
the middle of one leaves no lock held (the next writer rolls its work back).

Connections are opened on first use, one per thread and process (a store built before ``fork()``
works in every child).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from .base import FaultQueueFull, Store, StoreUnavailable

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")
_BATCH = 256
_BUSY_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    prefix TEXT NOT NULL, name TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (prefix, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    prefix TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
    start INTEGER NOT NULL, item BLOB NOT NULL,
    PRIMARY KEY (prefix, name, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_offset ON items (prefix, name, start);
CREATE TABLE IF NOT EXISTS counters (
    prefix TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (prefix, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, prefix TEXT NOT NULL, fault BLOB NOT NULL, times INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_by_prefix ON faults (prefix, id);
"""


def _path_of(url: str) -> str:
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError("sqlite:///PATH needs a file path (sqlite:////tmp/state.db for an absolute one)")
    return path


class SQLiteStore(Store):
    """State in one SQLite file (``sqlite:///relative/path`` or ``sqlite:////absolute/path``)."""

    def __init__(self, url: str, *, prefix: str = "sora-mock:", max_items: int = 1000, max_bytes: int = 0) -> None:
        self.backend = "sqlite"
        self.url = url
        self.path = _path_of(url)
        self.prefix = prefix
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._schema_ready = 0  # pid that created the schema

    # connections
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        if self._schema_ready != os.getpid():
            conn.executescript(_SCHEMA)
            self._schema_ready = os.getpid()
        return conn

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", 0) != os.getpid():  # first use in this thread, or a forked child
            local.conn = self._connect()
            local.pid = os.getpid()
        conn: sqlite3.Connection = local.conn
        return conn

    def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return work(self._conn())
        except sqlite3.Error as exc:
            self._local.pid = 0  # reconnect next time
            raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: {exc}") from None

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def transaction(conn: sqlite3.Connection) -> _T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return self._run(transaction)

    # logs
    def _append(self, conn: sqlite3.Connection, log: str, item: bytes) -> int:
        p = self.prefix
        row = conn.execute(
            "INSERT INTO logs (prefix, name, seq, total) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (prefix, name) DO UPDATE SET seq = seq + 1, total = total + excluded.total "
            "RETURNING seq, total",
            (p, log, len(item)),
        ).fetchone()
        seq, total = int(row[0]), int(row[1])
        conn.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?)", (p, log, seq, total - len(item), item))
        if seq > self.max_items:
            conn.execute("DELETE FROM items WHERE prefix = ? AND name = ? AND seq <= ?", (p, log, seq - self.max_items))
        if self.max_bytes and total > self.max_bytes:
            conn.execute(
                "DELETE FROM items WHERE prefix = ? AND name = ? AND start < ? AND seq < ?",
                (p, log, total - self.max_bytes, seq),
            )
        return seq

    def append(self, log: str, item: bytes) -> int:
        return self._write(lambda conn: self._append(conn, log, item))

    def append_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        return self._write(lambda conn: [self._append(conn, log, item) for log, item in items])

    def read(self, log: str, after: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        left = limit
        while left is None or left > 0:
            count = _BATCH if left is None else min(_BATCH, left)
            query = (self.prefix, log, after, count)

            def fetch(conn: sqlite3.Connection, query: tuple[str, str, int, int] = query) -> list[tuple[int, bytes]]:
                return conn.execute(
                    "SELECT seq, item FROM items WHERE prefix = ? AND name = ? AND seq > ? ORDER BY seq LIMIT ?", query
                ).fetchall()

            batch = self._run(fetch)
            if not batch:
                return
            yield from batch
            after = batch[-1][0]
            if left is not None:
                left -= len(batch)

    # counters
    def incr(self, name: str, delta: int = 1) -> int:
        row = self._run(
            lambda conn: conn.execute(
                "INSERT INTO counters VALUES (?, ?, ?) "
                "ON CONFLICT (prefix, name) DO UPDATE SET value = value + excluded.value RETURNING value",
                (self.prefix, name, delta),
            ).fetchone()
        )
        return int(row[0])

    def get(self, name: str) -> int:
        row = self._run(
            lambda conn: conn.execute(
                "SELECT value FROM counters WHERE prefix = ? AND name = ?", (self.prefix, name)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    def reserve(self, name: str, limit: int) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT value FROM counters WHERE prefix = ? AND name = ?", (self.prefix, name)
            ).fetchone()
            value = 0 if row is None else int(row[0])
            if value >= limit:
                return False
            conn.execute(
                "INSERT INTO counters VALUES (?, ?, 1) ON CONFLICT (prefix, name) DO UPDATE SET value = value + 1",
                (self.prefix, name),
            )
            return True

        return self._write(work)

    # faults
    def push_fault(self, fault: bytes, times: int, max_pending: int) -> None:
        def work(conn: sqlite3.Connection) -> None:
            (pending,) = conn.execute("SELECT count(*) FROM faults WHERE prefix = ?", (self.prefix,)).fetchone()
            if pending >= max_pending:
                raise FaultQueueFull(f"times: at most {max_pending} fault entries may be pending; reset first")
            conn.execute("INSERT INTO faults (prefix, fault, times) VALUES (?, ?, ?)", (self.prefix, fault, times))

        self._write(work)

    def take_fault(self) -> bytes | None:
        def peek(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM faults WHERE prefix = ? LIMIT 1", (self.prefix,)).fetchone() is not None

        if not self._run(peek):  # the common case: a read, no write lock
            return None

        def take(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT id, fault, times FROM faults WHERE prefix = ? ORDER BY id LIMIT 1", (self.prefix,)
            ).fetchone()
            if row is None:
                return None
            if row[2] <= 1:
                conn.execute("DELETE FROM faults WHERE id = ?", (row[0],))
            else:
                conn.execute("UPDATE faults SET times = times - 1 WHERE id = ?", (row[0],))
            return bytes(row[1])

        return self._write(take)

    def pending_faults(self) -> list[tuple[bytes, int]]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT fault, times FROM faults WHERE prefix = ? ORDER BY id", (self.prefix,)
            ).fetchall()
        )
        return [(bytes(fault), int(times)) for fault, times in rows]

    # whole store
    def reset(self, counters: tuple[str, ...] = ()) -> None:
        def work(conn: sqlite3.Connection) -> None:
            p = self.prefix
            conn.execute("DELETE FROM items WHERE prefix = ?", (p,))
            conn.execute("DELETE FROM faults WHERE prefix = ?", (p,))
            for name in counters:
                conn.execute("DELETE FROM counters WHERE prefix = ? AND name = ?", (p, name))

        self._write(work)

    def ping(self) -> None:
        self._run(lambda conn: conn.execute("SELECT 1 FROM logs LIMIT 1").fetchall())

    def close(self) -> None:
        local = self._local
        if getattr(local, "pid", 0) == os.getpid():
            local.conn.close()
        local.pid = 0
