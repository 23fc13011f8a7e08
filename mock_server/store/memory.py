"""The in-process store: one process, any number of threads."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator

from .base import FaultQueueFull, Store, StubLimit

__all__ = ["MemoryStore"]

_BATCH = 256


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


class _StubSlot:
    __slots__ = ("hits", "item", "remaining")

    def __init__(self, item: bytes, remaining: int | None) -> None:
        self.item = item
        self.hits = 0
        self.remaining = remaining


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
        self._faults: deque[list[object]] = deque()
        self._stubs: dict[str, _StubSlot] = {}  # oldest first

    def append(self, log: str, item: bytes) -> int:
        with self._lock:
            return self._append(log, item)

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

    def read(self, log: str, after: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        left = limit
        while left is None or left > 0:
            with self._lock:  # a short batch at a time: appends go on while the caller consumes
                entries = self._logs.get(log)
                if not entries or not len(entries):
                    return
                first = entries.items[entries.head][0]  # sequence numbers in one log are consecutive
                start = entries.head + max(after - first + 1, 0)
                count = _BATCH if left is None else min(_BATCH, left)
                batch = entries.items[start : start + count]
            if not batch:
                return
            yield from batch
            after = batch[-1][0]
            if left is not None:
                left -= len(batch)

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

    def push_fault(self, fault: bytes, times: int, max_pending: int) -> None:
        with self._lock:
            if len(self._faults) >= max_pending:
                raise FaultQueueFull(f"times: at most {max_pending} fault entries may be pending; reset first")
            self._faults.append([fault, times])

    def take_fault(self) -> bytes | None:
        if not self._faults:  # cheap unlocked peek on the hot path
            return None
        with self._lock:
            if not self._faults:
                return None
            slot = self._faults[0]
            left = int(slot[1]) - 1  # type: ignore[call-overload]
            slot[1] = left
            if left <= 0:
                self._faults.popleft()
            fault = slot[0]
            assert isinstance(fault, bytes)
            return fault

    def pending_faults(self) -> list[tuple[bytes, int]]:
        with self._lock:
            return [(bytes(f), int(n)) for f, n in self._faults]  # type: ignore[call-overload]

    # stubs
    def add_stub(self, stub_id: str, item: bytes, times: int | None, max_stubs: int) -> None:
        with self._lock:
            if stub_id not in self._stubs and len(self._stubs) >= max_stubs:
                raise StubLimit(f"at most {max_stubs} stubs may be held; delete some first")
            self._stubs.pop(stub_id, None)
            self._stubs[stub_id] = _StubSlot(item, times)

    def stubs(self) -> list[tuple[str, bytes, int, int | None]]:
        if not self._stubs:  # cheap unlocked peek on the hot path
            return []
        with self._lock:
            return [(k, v.item, v.hits, v.remaining) for k, v in reversed(self._stubs.items())]

    def hit_stub(self, stub_id: str) -> bool:
        with self._lock:
            slot = self._stubs.get(stub_id)
            if slot is None:
                return False
            if slot.remaining is not None:
                if slot.remaining <= 0:
                    return False
                slot.remaining -= 1
            slot.hits += 1
            return True

    def delete_stub(self, stub_id: str) -> bool:
        with self._lock:
            return self._stubs.pop(stub_id, None) is not None

    def clear_stubs(self) -> None:
        with self._lock:
            self._stubs.clear()

    def reset(self, counters: tuple[str, ...] = ()) -> None:
        with self._lock:
            for entries in self._logs.values():  # sequence numbers keep growing across resets
                entries.clear()
            self._faults.clear()
            self._stubs.clear()
            for name in counters:
                self._counters.pop(name, None)
        self.reseal()

    def _ping(self) -> None:
        return None

    def _marker(self) -> str | None:
        return self.identity  # the state lives and dies with this object

    def _put_marker(self, identity: str, *, replace: bool) -> str:
        if self.identity is None or replace:
            self.identity = identity
        return self.identity
