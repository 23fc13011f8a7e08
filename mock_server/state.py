"""What one mock server remembers: a bounded request journal, created characters, pending faults.

Thread-safe; one instance per app (no module-level state). A server that forks worker processes
calls :meth:`MockState.share_across_processes` before forking: from then on the journal and the
characters live in a small keeper process (:mod:`mock_server.keeper`), and pending faults and
serial numbers in shared memory under a process-shared lock, so every worker sees one state.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .faults import Fault, FaultError
from .keeper import HEADER

__all__ = ["MAX_PENDING_FAULTS", "MockState"]

MAX_PENDING_FAULTS = 1000
"""How many distinct fault entries may wait at once (each with its own ``times``)."""

_FAULT_BYTES = 128 * 1024


class _LocalBackend:
    """State of one process (threads only)."""

    def __init__(self, journal_size: int, worker: int) -> None:
        self._lock = threading.Lock()
        self._journal: deque[dict[str, Any]] = deque(maxlen=journal_size)
        self._characters: deque[dict[str, Any]] = deque(maxlen=journal_size)
        self._faults: deque[list[Any]] = deque()
        self._serials = itertools.count()
        self._worker = worker

    def next_serial(self) -> int:
        with self._lock:
            return (self._worker << 64) | next(self._serials)

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._journal.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._journal)

    def add_character(self, character: dict[str, Any]) -> None:
        with self._lock:
            self._characters.append(character)

    def characters(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._characters)

    def push_fault(self, fault: Fault, times: int) -> None:
        with self._lock:
            if len(self._faults) >= MAX_PENDING_FAULTS:
                raise FaultError(f"times: at most {MAX_PENDING_FAULTS} fault entries may be pending; reset first")
            self._faults.append([fault, times])

    def take_fault(self) -> Fault | None:
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
        with self._lock:
            self._journal.clear()
            self._characters.clear()
            self._faults.clear()

    def close(self) -> None:
        """Nothing to release."""


def _json_bytes(value: object) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    except (ValueError, RecursionError):  # a body nested too deeply to re-encode
        if isinstance(value, dict) and "body" in value:
            return _json_bytes({**value, "body": None})
        raise


class _SharedBackend:
    """State shared by processes forked after it was built: a keeper process plus shared memory."""

    def __init__(self, journal_size: int, ready_timeout: float = 20.0) -> None:
        self._owner = os.getpid()
        self._dir = tempfile.mkdtemp(prefix="sora-mock-")
        self._path = str(Path(self._dir) / "state.sock")
        keeper = Path(__file__).with_name("keeper.py")
        self._keeper = subprocess.Popen(
            [sys.executable, "-I", str(keeper), self._path, str(journal_size)],
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        ctx = multiprocessing.get_context("fork")
        self._lock = ctx.Lock()
        self._serial = ctx.RawValue("Q", 0)
        self._fault_count = ctx.RawValue("i", 0)  # pending entries; read unlocked as a cheap peek
        self._fault_len = ctx.RawValue("i", 0)
        self._fault_buf = ctx.RawArray("c", _FAULT_BYTES)
        self._conn: socket.socket | None = None
        self._conn_pid = 0
        self._conn_lock = threading.Lock()
        deadline = time.monotonic() + ready_timeout
        while not os.path.exists(self._path):
            if self._keeper.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the state keeper process did not start")
            time.sleep(0.002)

    # journal and characters: the keeper
    def _send(self, kind: bytes, payload: bytes) -> None:
        frame = HEADER.pack(kind, len(payload)) + payload
        with self._conn_lock:
            if self._conn is None or self._conn_pid != os.getpid():  # first use in this (forked) process
                self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._conn.connect(self._path)
                self._conn_pid = os.getpid()
            self._conn.sendall(frame)

    def _ask(self, kind: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self._path)
            conn.sendall(HEADER.pack(kind, 0))
            with conn.makefile("rb") as stream:
                head = stream.read(HEADER.size)
                if len(head) != HEADER.size:
                    raise RuntimeError("the state keeper process closed the connection")
                _, length = HEADER.unpack(head)
                return stream.read(length)

    def record(self, entry: dict[str, Any]) -> None:
        self._send(b"J", _json_bytes(entry))

    def requests(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self._ask(b"Q"))
        return entries

    def add_character(self, character: dict[str, Any]) -> None:
        self._send(b"C", _json_bytes(character))

    def characters(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self._ask(b"K"))
        return found

    # serials and faults: shared memory under one process-shared lock
    def next_serial(self) -> int:
        with self._lock:
            self._serial.value += 1
            return int(self._serial.value)

    def _load_faults(self) -> list[list[Any]]:
        if not self._fault_len.value:
            return []
        slots: list[list[Any]] = json.loads(self._fault_buf.raw[: self._fault_len.value])
        return slots

    def _store_faults(self, slots: list[list[Any]]) -> None:
        raw = json.dumps(slots, separators=(",", ":")).encode()
        if len(raw) > _FAULT_BYTES:
            raise FaultError("times: too many fault entries pending; reset first")
        self._fault_buf[: len(raw)] = raw
        self._fault_len.value = len(raw)
        self._fault_count.value = len(slots)

    def push_fault(self, fault: Fault, times: int) -> None:
        with self._lock:
            slots = self._load_faults()
            if len(slots) >= MAX_PENDING_FAULTS:
                raise FaultError(f"times: at most {MAX_PENDING_FAULTS} fault entries may be pending; reset first")
            self._store_faults([*slots, [asdict(fault), times]])

    def take_fault(self) -> Fault | None:
        if not self._fault_count.value:  # cheap unlocked peek on the hot path
            return None
        with self._lock:
            slots = self._load_faults()
            if not slots:
                return None
            head = slots[0]
            head[1] -= 1
            self._store_faults(slots[1:] if head[1] <= 0 else slots)
            return Fault(**head[0])

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"fault": f, "times": n} for f, n in self._load_faults()]

    def reset(self) -> None:
        with self._lock:
            self._store_faults([])
        self._ask(b"R")

    def close(self) -> None:
        """Close this process's connection; stop the keeper (only from the process that started it)."""
        with self._conn_lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None
        if os.getpid() != self._owner:
            return
        if self._keeper.poll() is None:
            self._keeper.terminate()
            try:
                self._keeper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._keeper.kill()
                self._keeper.wait(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


class MockState:
    """State of one server, bounded so a long run keeps a flat memory profile."""

    def __init__(self, journal_size: int = 1000, worker: int = 0) -> None:
        self.journal_size = journal_size
        self._backend: _LocalBackend | _SharedBackend = _LocalBackend(journal_size, worker)

    @property
    def shared(self) -> bool:
        """Whether the state is shared across processes."""
        return isinstance(self._backend, _SharedBackend)

    def share_across_processes(self) -> None:
        """Move to a state every process forked from now on shares (call before forking).

        What was recorded before is dropped; call it on a fresh state.
        """
        if not self.shared:
            self._backend = _SharedBackend(self.journal_size)

    def close(self) -> None:
        """Release a shared state's keeper process (a no-op for an in-process state)."""
        self._backend.close()

    def next_serial(self) -> int:
        """A number never handed out before by this state (nor by another worker's)."""
        return self._backend.next_serial()

    def record(self, entry: dict[str, Any]) -> None:
        """Journal one endpoint request (the oldest entry goes once the journal is full)."""
        self._backend.record(entry)

    def requests(self) -> list[dict[str, Any]]:
        """Journaled endpoint requests, oldest first."""
        return self._backend.requests()

    def add_character(self, character: dict[str, Any]) -> None:
        """Remember a created character (bounded like the journal)."""
        self._backend.add_character(character)

    def characters(self) -> list[dict[str, Any]]:
        """Characters created since the last reset, oldest first."""
        return self._backend.characters()

    def push_fault(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` endpoint requests (after those already queued)."""
        self._backend.push_fault(fault, times)

    def take_fault(self) -> Fault | None:
        """The fault for the request being answered now, if any is pending."""
        return self._backend.take_fault()

    def pending_faults(self) -> list[dict[str, Any]]:
        """Queued faults, next first: ``{"fault": {...}, "times": n}`` each."""
        return self._backend.pending_faults()

    def reset(self) -> None:
        """Forget the journal, the characters and pending faults (serials keep counting)."""
        self._backend.reset()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._backend.close()
