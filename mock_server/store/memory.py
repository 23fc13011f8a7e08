"""The in-process store: one process, any number of threads."""

from __future__ import annotations

import itertools
import threading

from .base import Entry, Store

__all__ = ["MemoryStore"]


class _Log:
    """Items ``items[head:]`` are kept (a list, so any position is reached in O(1))."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self.head = 0
        self.bytes = 0
        self.seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self.items) - self.head

    def drop_oldest(self) -> None:
        self.bytes -= len(self.items[self.head][1])
        self.items[self.head] = (0, b"")
        self.head += 1
        if self.head >= 1024 and self.head * 2 >= len(self.items):
            del self.items[: self.head]
            self.head = 0

    def clear(self) -> None:
        self.items.clear()
        self.head = 0
        self.bytes = 0


class _Row:
    __slots__ = ("item", "left", "taken")

    def __init__(self, item: bytes, left: int | None) -> None:
        self.item = item
        self.taken = 0
        self.left = left


class MemoryStore(Store):
    """State of one process, bounded like every store."""

    def __init__(self, *, prefix: str = "sora-mock:", max_items: int = 1000, max_bytes: int = 0) -> None:
        self.backend = "memory"
        self.url = "memory"
        self.prefix = prefix
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}
        self._counters: dict[str, int] = {}
        self._tables: dict[str, dict[str, _Row]] = {}  # each oldest first

    def append_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        with self._lock:  # one lock for a create's character and journal entry
            return [self._append(log, item) for log, item in items]

    def _append(self, log: str, item: bytes) -> int:
        entries = self._logs.get(log)
        if entries is None:
            entries = self._logs[log] = _Log()
        seq = next(entries.seq)
        items = entries.items
        items.append((seq, item))
        entries.bytes += len(item)
        max_bytes = self.max_bytes
        while len(items) - entries.head > self.max_items or (
            max_bytes and entries.bytes > max_bytes and len(items) - entries.head > 1
        ):
            entries.drop_oldest()
        return seq

    def read_batch(self, log: str, after: int, count: int) -> list[tuple[int, bytes]]:
        with self._lock:
            entries = self._logs.get(log)
            if not entries or not len(entries):
                return []
            first = entries.items[entries.head][0]  # sequence numbers in one log are consecutive
            start = entries.head + max(after - first + 1, 0)
            return entries.items[start : start + count]

    def incr(self, name: str, delta: int = 1) -> int:
        with self._lock:
            value = self._counters.get(name, 0) + delta
            self._counters[name] = value
            return value

    def get(self, name: str) -> int:
        with self._lock:
            return self._counters.get(name, 0)

    def reserve(self, name: str, limit: int) -> bool:
        with self._lock:
            value = self._counters.get(name, 0)
            if value >= limit:
                return False
            self._counters[name] = value + 1
            return True

    # counted tables
    def _table(self, table: str) -> dict[str, _Row]:
        rows = self._tables.get(table)
        if rows is None:
            rows = self._tables.setdefault(table, {})  # never replaced: a reset empties it in place
        return rows

    def put(self, table: str, key: str, item: bytes, takes: int | None, limit: int) -> bool:
        with self._lock:
            rows = self._table(table)
            if key not in rows and len(rows) >= limit:
                return False
            rows.pop(key, None)
            rows[key] = _Row(item, takes)
            return True

    def entries(self, table: str) -> list[Entry]:
        rows = self._tables.get(table)
        if not rows:  # cheap unlocked peek on the hot path
            return []
        with self._lock:
            return [(key, row.item, row.taken, row.left) for key, row in rows.items()]

    def take(self, table: str, key: str | None = None, *, drop_spent: bool = False) -> bytes | None:
        rows = self._tables.get(table)
        if not rows:  # cheap unlocked peek on the hot path
            return None
        with self._lock:
            return _take(rows, key, drop_spent)

    def remove(self, table: str, key: str | None = None) -> bool:
        with self._lock:
            rows = self._table(table)
            if key is None:
                held = bool(rows)
                rows.clear()
                return held
            return rows.pop(key, None) is not None

    def _reset(self, counters: tuple[str, ...]) -> None:
        with self._lock:
            for entries in self._logs.values():  # sequence numbers keep growing across resets
                entries.clear()
            for rows in self._tables.values():
                rows.clear()
            for name in counters:
                self._counters.pop(name, None)

    def _ping(self) -> None:
        return None

    def _marker(self) -> str | None:
        return self.identity  # the state lives and dies with this object

    def _put_marker(self, identity: str, *, replace: bool) -> str:
        if self.identity is None or replace:
            self.identity = identity
        return self.identity


def _take(rows: dict[str, _Row], key: str | None, drop_spent: bool) -> bytes | None:
    """:meth:`MemoryStore.take`, the lock held."""
    if key is None:
        key = next((k for k, row in rows.items() if row.left is None or row.left > 0), None)
        if key is None:
            return None
    row = rows.get(key)
    if row is None:
        return None
    if row.left is not None:
        if row.left <= 0:
            return None
        row.left -= 1
        if drop_spent and row.left == 0:
            del rows[key]
    row.taken += 1
    return row.item
