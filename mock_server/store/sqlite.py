"""The embedded store: one SQLite file shared by every process of one machine.

WAL mode, so readers never stop writers and one read never blocks a create; ``synchronous=OFF``,
because the file holds a test server's state, not data to survive a power cut. Every change is one
short transaction; SQLite's locks are the operating system's file locks, so a process killed in
the middle of one leaves no lock held (the next writer rolls its work back).

Writers queue before SQLite sees them: a thread lock inside the process, then ``flock`` on a
``PATH.lock`` file across processes. A waiting writer is woken the moment the lock is free (SQLite's
own busy handler would sleep a millisecond or more), and the kernel drops the ``flock`` of a process
that dies, so no lock outlives its holder either.

Connections are opened on first use, one per thread and process (a store built before ``fork()``
works in every child). Each connection knows the file it opened (device and inode): when the path
names another file (deleted and created again, or replaced), the connection is opened again on
the file the path names now, so the processes sharing one path never go on with different files;
the identity marker (see :mod:`mock_server.store.base`) then tells that the state was lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .base import SERIAL, Entry, Store, StoreUnavailable

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")
_BUSY_MS = 5000
_MMAP_BYTES = 64 * 1024 * 1024
_pid = [os.getpid()]  # this process's id, kept without a system call per use
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
_SLACK = 32  # appends between two trims of a log (reads apply the bounds exactly meanwhile)
_RECHECK = 0.05  # seconds between two checks that the path still names the file a connection opened
_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    prefix TEXT NOT NULL, name TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, low INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (prefix, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    prefix TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
    start INTEGER NOT NULL, item BLOB NOT NULL,
    PRIMARY KEY (prefix, name, seq)
);
CREATE TABLE IF NOT EXISTS counters (
    prefix TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (prefix, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS table_rows (
    n INTEGER PRIMARY KEY AUTOINCREMENT, prefix TEXT NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL,
    item BLOB NOT NULL, taken INTEGER NOT NULL DEFAULT 0, remaining INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS table_rows_by_key ON table_rows (prefix, name, key);
CREATE INDEX IF NOT EXISTS table_rows_by_age ON table_rows (prefix, name, n);
CREATE TABLE IF NOT EXISTS markers (
    prefix TEXT NOT NULL PRIMARY KEY, identity TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


class _Pending:
    """One write waiting for a group commit."""

    __slots__ = ("done", "error", "value", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        self.work = work
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


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
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._lock_fd = -1
        self._lock_pid = 0
        self._generation = 0  # the marker's generation last seen intact (each explicit reseal adds one)
        self._replaced_at: int | None = None  # the generation known when the path turned out to name another file

    # connections
    def _connect(self, *, schema: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")  # pages read straight from the mapping: fewer system calls
        if schema or self._schema_ready != _pid[0]:
            conn.executescript(_SCHEMA)
            self._schema_ready = _pid[0]
        return conn

    def _file_id(self) -> tuple[int, int] | None:
        """The device and inode the path names now (``None``: no file there)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _conn(self, *, recheck: bool = False) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", 0) != _pid[0]:  # first use in this thread, or a forked child
            local.conn = self._connect()
            local.pid = _pid[0]
            local.file = self._file_id()
            local.checked = time.monotonic()
        elif recheck or time.monotonic() - local.checked > _RECHECK:
            local.checked = time.monotonic()
            if self._file_id() != local.file:  # deleted or replaced: follow the path, never a ghost file
                if self._replaced_at is None:  # lost until a reseal (a -wal file left behind may replay old rows)
                    self._replaced_at = self._generation
                local.conn.close()
                local.conn, local.file = self._reopen()
        conn: sqlite3.Connection = local.conn
        return conn

    def _reopen(self) -> tuple[sqlite3.Connection, tuple[int, int] | None]:
        """A connection on the file the path names now. When there is none (deleted), the ``-wal`` and
        ``-shm`` files the deleted one left are removed first, holding the writer lock: SQLite would
        otherwise read them as the new file's (a disk I/O error, or old rows replayed)."""
        holding = getattr(self._local, "holding", False)
        fd = self._process_lock()
        if not holding:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if self._file_id() is None:
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.unlink(self.path + suffix)
            conn = self._connect(schema=True)
            return conn, self._file_id()
        finally:
            if not holding:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _run(self, work: Callable[[sqlite3.Connection], _T], *, recheck: bool = False) -> _T:
        try:
            return work(self._conn(recheck=recheck))
        except sqlite3.Error as exc:
            self._local.pid = 0  # reconnect next time
            raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: {exc}") from None

    def _process_lock(self) -> int:
        if self._lock_pid != _pid[0]:  # first write in this (possibly forked) process
            try:
                self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: {exc}") from None
            self._lock_pid = _pid[0]
        return self._lock_fd

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in a write transaction, shared with the writes other threads queued meanwhile.

        Group commit: the thread holding the write lock commits every queued write at once, so
        concurrent creates in one process pay for one commit. ``work`` raising an ordinary
        exception (before it writes anything) fails that write alone.
        """
        mine = _Pending(work)
        with self._queue_lock:
            self._queue.append(mine)
        with self._write_lock:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        return mine.result()  # type: ignore[no-any-return]

    def _commit(self, batch: list[_Pending]) -> None:
        def transaction(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for pending in batch:
                    try:
                        pending.value = pending.work(conn)
                    except sqlite3.Error:
                        raise
                    except Exception as exc:  # this write's own failure; the others go on
                        pending.error = exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        try:
            self._exclusively(transaction)
        except StoreUnavailable as exc:
            for pending in batch:
                pending.error = exc
        finally:
            for pending in batch:
                pending.done = True

    # logs
    def _append(self, conn: sqlite3.Connection, log: str, item: bytes) -> int:
        p = self.prefix
        seq, total, low = conn.execute(
            "INSERT INTO logs (prefix, name, seq, total) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (prefix, name) DO UPDATE SET seq = seq + 1, total = total + excluded.total "
            "RETURNING seq, total, low",
            (p, log, len(item)),
        ).fetchone()
        conn.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?)", (p, log, seq, total - len(item), item))
        if seq - low >= self.max_items + _SLACK or (self.max_bytes and seq % _SLACK == 0):
            self._trim(conn, log, seq, total, low)
        return int(seq)

    def _append_distinct(self, conn: sqlite3.Connection, items: list[tuple[str, bytes]]) -> list[int]:
        """Append one item to each of several distinct logs with two statements in all (each statement
        is a round trip into SQLite, and the Python lock is released and taken again around it)."""
        p = self.prefix
        sizes = {log: len(item) for log, item in items}
        rows = conn.execute(
            "INSERT INTO logs (prefix, name, seq, total) VALUES "
            + ", ".join(["(?, ?, 1, ?)"] * len(items))
            + " ON CONFLICT (prefix, name) DO UPDATE SET seq = seq + 1, total = total + excluded.total "
            "RETURNING name, seq, total, low",
            [value for log, item in items for value in (p, log, len(item))],
        ).fetchall()
        after = {name: (seq, total, low) for name, seq, total, low in rows}
        conn.execute(
            "INSERT INTO items VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * len(items)),
            [value for log, item in items for value in (p, log, after[log][0], after[log][1] - sizes[log], item)],
        )
        for log, (seq, total, low) in after.items():
            if seq - low >= self.max_items + _SLACK or (self.max_bytes and seq % _SLACK == 0):
                self._trim(conn, log, seq, total, low)
        return [int(after[log][0]) for log, _ in items]

    def _append_all(self, conn: sqlite3.Connection, items: list[tuple[str, bytes]]) -> list[int]:
        if 1 < len(items) == len({log for log, _ in items}):
            return self._append_distinct(conn, items)
        return [self._append(conn, log, item) for log, item in items]

    def _trim(self, conn: sqlite3.Connection, log: str, seq: int, total: int, low: int) -> None:
        """Delete what the bounds drop (reads already skip it: trimming runs every few appends)."""
        p = self.prefix
        keep_from = max(low, seq - self.max_items + 1)
        if self.max_bytes:
            row = conn.execute(
                "SELECT min(seq) FROM items WHERE prefix = ? AND name = ? AND seq >= ? AND start >= ?",
                (p, log, keep_from, total - self.max_bytes),
            ).fetchone()
            keep_from = min(seq, row[0] if row[0] is not None else seq)
        if keep_from > low:
            conn.execute("DELETE FROM items WHERE prefix = ? AND name = ? AND seq < ?", (p, log, keep_from))
            conn.execute("UPDATE logs SET low = ? WHERE prefix = ? AND name = ?", (keep_from, p, log))

    def _append_new(
        self, conn: sqlite3.Connection, log: str, build: Callable[[int], bytes], also: tuple[tuple[str, bytes], ...]
    ) -> bytes:
        (serial,) = conn.execute(
            "INSERT INTO counters VALUES (?, ?, 1) "
            "ON CONFLICT (prefix, name) DO UPDATE SET value = value + 1 RETURNING value",
            (self.prefix, SERIAL),
        ).fetchone()
        item = build(int(serial))
        self._append_all(conn, [(log, item), *also])
        return item

    def take_or_append_new(
        self, table: str | None, log: str, build: Callable[[int], bytes], also: tuple[tuple[str, bytes], ...] = ()
    ) -> tuple[bytes | None, bytes | None]:
        def work(conn: sqlite3.Connection) -> tuple[bytes | None, bytes | None]:
            if table is not None:
                taken = self._take(conn, table, None, drop_spent=True)
                if taken is not None:
                    return taken, None
            return None, self._append_new(conn, log, build, also)

        return self._write(work)

    def append_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        return self._write(lambda conn: self._append_all(conn, items))

    def read_batch(self, log: str, after: int, count: int) -> list[tuple[int, bytes]]:
        query = (self.prefix, log, self.max_items, after, self.max_bytes, self.max_bytes, count)

        def fetch(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
            # Only what the bounds keep: the newest max_items, and the newest max_bytes (at least one).
            return conn.execute(
                "SELECT i.seq, i.item FROM items i JOIN logs l ON l.prefix = i.prefix AND l.name = i.name "
                "WHERE i.prefix = ? AND i.name = ? AND i.seq > l.seq - ? AND i.seq > ? "
                "AND (? = 0 OR i.start >= l.total - ? OR i.seq = l.seq) ORDER BY i.seq LIMIT ?",
                query,
            ).fetchall()

        return self._run(fetch)

    # counters
    def incr(self, name: str, delta: int = 1) -> int:
        row = self._write(
            lambda conn: conn.execute(
                "INSERT INTO counters VALUES (?, ?, ?) "
                "ON CONFLICT (prefix, name) DO UPDATE SET value = value + excluded.value RETURNING value",
                (self.prefix, name, delta),
            ).fetchone(),
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
        def work(conn: sqlite3.Connection) -> bool | None:
            if self.identity is not None and self._held_marker(conn) != self.identity:
                return None  # the state was lost: count nothing
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

        done = self._write(work)
        if done is None:
            raise self._lost(self._marker())
        return done

    # counted tables
    def put(self, table: str, key: str, item: bytes, takes: int | None, limit: int) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            p = self.prefix
            (held,) = conn.execute(
                "SELECT count(*) FROM table_rows WHERE prefix = ? AND name = ? AND key != ?", (p, table, key)
            ).fetchone()
            if held >= limit:
                return False
            conn.execute("DELETE FROM table_rows WHERE prefix = ? AND name = ? AND key = ?", (p, table, key))
            conn.execute(
                "INSERT INTO table_rows (prefix, name, key, item, remaining) VALUES (?, ?, ?, ?, ?)",
                (p, table, key, item, takes),
            )
            return True

        return self._write(work)

    def entries(self, table: str) -> list[Entry]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT key, item, taken, remaining FROM table_rows WHERE prefix = ? AND name = ? ORDER BY n",
                (self.prefix, table),
            ).fetchall()
        )
        return [(str(k), bytes(item), int(taken), None if left is None else int(left)) for k, item, taken, left in rows]

    def take(self, table: str, key: str | None = None, *, drop_spent: bool = False) -> bytes | None:
        if key is None:

            def peek(conn: sqlite3.Connection) -> bool:
                query = "SELECT 1 FROM table_rows WHERE prefix = ? AND name = ? LIMIT 1"
                return conn.execute(query, (self.prefix, table)).fetchone() is not None

            if not self._run(peek):  # the common case: a read, no write lock
                return None
        return self._write(lambda conn: self._take(conn, table, key, drop_spent=drop_spent))

    def _take(self, conn: sqlite3.Connection, table: str, key: str | None, *, drop_spent: bool) -> bytes | None:
        p = self.prefix
        if key is None:  # a plain read finds the row (on the create path: finds none, writes nothing)
            live = "AND (remaining IS NULL OR remaining > 0)"
            found = conn.execute(
                f"SELECT n FROM table_rows WHERE prefix = ? AND name = ? {live} ORDER BY n LIMIT 1", (p, table)
            ).fetchone()
            if found is None:
                return None
            which, args = "n = ?", [found[0]]
        else:
            which, args = "prefix = ? AND name = ? AND key = ?", [p, table, key]
        row = conn.execute(
            "UPDATE table_rows SET taken = taken + 1, remaining = remaining - 1 "
            f"WHERE {which} AND (remaining IS NULL OR remaining > 0) RETURNING n, item, remaining",
            args,
        ).fetchone()
        if row is None:
            return None
        if drop_spent and row[2] == 0:
            conn.execute("DELETE FROM table_rows WHERE n = ?", (row[0],))
        return bytes(row[1])

    def remove(self, table: str, key: str | None = None) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            query = "DELETE FROM table_rows WHERE prefix = ? AND name = ?"
            if key is None:
                return conn.execute(query, (self.prefix, table)).rowcount > 0
            return conn.execute(query + " AND key = ?", (self.prefix, table, key)).rowcount > 0

        return self._write(work)

    # whole store
    def _reset(self, counters: tuple[str, ...]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            p = self.prefix
            conn.execute("DELETE FROM items WHERE prefix = ?", (p,))
            conn.execute("UPDATE logs SET low = seq + 1 WHERE prefix = ?", (p,))
            conn.execute("DELETE FROM table_rows WHERE prefix = ?", (p,))
            for name in counters:
                conn.execute("DELETE FROM counters WHERE prefix = ? AND name = ?", (p, name))

        self._write(work)

    def _ping(self) -> None:
        """The file must still start as a SQLite database (a connection that cached its pages would not notice)."""
        self._run(lambda conn: conn.execute("SELECT 1 FROM logs LIMIT 1").fetchall(), recheck=True)
        try:
            with open(self.path, "rb") as file:
                head = file.read(len(_MAGIC))
        except OSError as exc:
            raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: {exc}") from None
        if head and head != _MAGIC:  # empty: a new file whose pages are all in its -wal file still
            raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: it is not a SQLite database")

    def _held_marker(self, conn: sqlite3.Connection) -> str | None:
        """The marker's identity; ``None`` when there is none, or when the file was replaced under this
        process and no reseal came since (its generation is not past the one known then)."""
        row = conn.execute("SELECT identity, generation FROM markers WHERE prefix = ?", (self.prefix,)).fetchone()
        if row is None:
            return None
        identity, generation = str(row[0]), int(row[1])
        if self._replaced_at is not None:
            if generation <= self._replaced_at:
                return None
            self._replaced_at = None  # an explicit reset sealed the new file
        self._generation = generation
        return identity

    def _marker(self) -> str | None:
        return self._run(self._held_marker, recheck=True)

    def _put_marker(self, identity: str, *, replace: bool) -> str:
        def work(conn: sqlite3.Connection) -> str:
            if replace:  # a new generation: every process sees that the state was sealed again after a loss
                generation = max(self._generation, self._replaced_at or 0) + 1
                conn.execute(
                    "INSERT INTO markers VALUES (?, ?, ?) ON CONFLICT (prefix) DO UPDATE SET "
                    "identity = excluded.identity, generation = max(generation + 1, excluded.generation)",
                    (self.prefix, identity, generation),
                )
            else:
                conn.execute(
                    "INSERT INTO markers VALUES (?, ?, 0) ON CONFLICT (prefix) DO NOTHING", (self.prefix, identity)
                )
            return self._held_marker(conn) or identity

        return self._write(work)

    def check(self) -> None:
        """The path must be a regular file (or a new one), and a write must succeed (it is rolled back)."""
        if os.path.isdir(self.path):
            raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: it is a directory")
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise StoreUnavailable(f"the SQLite state file {self.path} cannot be used: it is not a regular file")
        folder = os.path.dirname(self.path) or "."
        if not os.path.isdir(folder):
            raise StoreUnavailable(
                f"the SQLite state file {self.path} cannot be used: its folder {folder} does not exist"
            )

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO counters VALUES (?, ?, 0) ON CONFLICT DO NOTHING", (self.prefix, "check"))
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

        with self._write_lock:
            self._exclusively(write)

    def _exclusively(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``work`` holding the file's writer lock, which keeps other processes' writes out."""
        fd = self._process_lock()
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._local.holding = True
        try:
            self._run(work)
        finally:
            self._local.holding = False
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        local = self._local
        if getattr(local, "pid", 0) == _pid[0]:
            local.conn.close()
        local.pid = 0
        with self._write_lock:
            if self._lock_pid == _pid[0]:
                os.close(self._lock_fd)
            self._lock_pid = 0
