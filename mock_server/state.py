"""What one mock server remembers: a bounded request journal, created characters, pending faults.

Thread-safe; one instance per app (no module-level state).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import asdict
from typing import Any

from .faults import Fault

__all__ = ["MockState"]


class MockState:
    """In-memory state of one server, bounded so a long run keeps a flat memory profile."""

    def __init__(self, journal_size: int = 1000, worker: int = 0) -> None:
        self._lock = threading.Lock()
        self._journal: deque[dict[str, Any]] = deque(maxlen=journal_size)
        self._characters: deque[dict[str, Any]] = deque(maxlen=journal_size)
        self._faults: deque[list[Any]] = deque()
        self._serials = itertools.count()
        self._worker = worker

    def next_serial(self) -> int:
        """A number never handed out before by this state (nor by another worker's)."""
        with self._lock:
            return (self._worker << 64) | next(self._serials)

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._journal.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        """Journaled endpoint requests, oldest first."""
        with self._lock:
            return list(self._journal)

    def add_character(self, character: dict[str, Any]) -> None:
        with self._lock:
            self._characters.append(character)

    def characters(self) -> list[dict[str, Any]]:
        """Characters created since the last reset, oldest first."""
        with self._lock:
            return list(self._characters)

    def push_fault(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` endpoint requests (after those already queued)."""
        with self._lock:
            self._faults.append([fault, times])

    def take_fault(self) -> Fault | None:
        """The fault for the request being answered now, if any is pending."""
        if not self._faults:  # cheap unlocked peek on the hot path
            return None
        with self._lock:
            if not self._faults:
                return None
            slot = self._faults[0]
            slot[1] -= 1
            if slot[1] <= 0:
                self._faults.popleft()
            fault: Fault = slot[0]
            return fault

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"fault": asdict(f), "times": n} for f, n in self._faults]

    def reset(self) -> None:
        """Forget the journal, the characters and pending faults (serials keep counting)."""
        with self._lock:
            self._journal.clear()
            self._characters.clear()
            self._faults.clear()
