"""What one mock server remembers, kept in a :class:`~mock_server.store.Store`.

:class:`MockState` is the mock-specific layer over a store: the ``requests`` journal and the
``characters`` log (JSON objects, each read back with its ``seq``), pending faults as
:class:`~mock_server.mock.faults.Fault` objects with an exact ``times``, the stubs, the coverage
counts, and the serial numbers behind ids and seeded characters. Every process (or server) that
opens the same store shares one state.

This is where faults and stubs get their meaning; the store only holds counted tables (keyed
items with the takes they have left, see :mod:`mock_server.store.base`):

- **the fault queue** is the table :data:`FAULTS`: one row per queued fault (a fresh key each),
  oldest first, with ``times`` takes; a request takes the oldest row with takes left, and a row
  whose last take that was is dropped. At most :data:`MAX_PENDING_FAULTS` rows wait at once.
- **the stubs** are the table :data:`STUBS`: one row per stub id (adding an id held replaces it),
  ``times`` takes (``None``: unlimited), its takes counted as ``hits``. They answer newest first;
  a used-up stub stays listed (``remaining`` 0) until deleted or reset. At most :data:`MAX_STUBS`
  of them, and :data:`MAX_STUBS_BYTES` bytes of their JSON, are held.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

from ..store import Store, open_store
from ..store.base import SERIAL, Entry
from . import journal
from .config import DEFAULT_JOURNAL_BYTES
from .coverage import OUTCOMES, counter_name, coverage_report, is_outcome
from .faults import Fault, FaultError
from .stubs import MAX_STUBS, MAX_STUBS_BYTES, Stub, StubCache, StubError

__all__ = [
    "CHARACTERS",
    "DEFAULT_JOURNAL_BYTES",
    "FAULTS",
    "MAX_PENDING_FAULTS",
    "REQUESTS",
    "STUBS",
    "STUB_OUTCOMES",
    "MockState",
]

MAX_PENDING_FAULTS = 1000
"""How many distinct fault entries may wait at once (each with its own ``times``)."""
REQUESTS = "requests"
_SERIAL_AT_RESET = "coverage-serial-base"
"""The serial counter's value at the last reset: creates since then are ``created`` answers."""
CHARACTERS = "characters"
_MAKE_ROOM = "DELETE /__mock/stubs/ID, or DELETE /__mock/stubs"
FAULTS = "faults"
"""The counted table of pending faults."""
STUBS = "stubs"
"""The counted table of stubs."""
_DRAWS = "fault-draws"
"""The counter behind random faults (``--fault-rate``): draw N is the same on every worker."""
STUB_OUTCOMES = "stub-outcomes"
"""The log naming the outcomes of stubs that the catalogue does not hold (so coverage and reset find them)."""


class MockState:
    """State of one server, bounded so a long run keeps a flat memory profile.

    ``store`` is where it lives; without one, an in-process store bounded by ``journal_size``
    entries and ``journal_bytes`` bytes.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        journal_size: int = 1000,
        journal_bytes: int = DEFAULT_JOURNAL_BYTES,
    ) -> None:
        self.store = (
            store if store is not None else open_store("memory", max_items=journal_size, max_bytes=journal_bytes)
        )
        self.journal_size = self.store.max_items
        self._faults: dict[bytes, Fault] = {}  # decoded fault descriptions, by their JSON
        self.stub_cache = StubCache()
        self._adding = threading.Lock()  # the byte bound's check and the add, as one step in this process
        """The stubs this process decoded, only those the store still holds."""

    @classmethod
    def open(
        cls, url: str, *, prefix: str = "sora-mock:", journal_size: int = 1000, journal_bytes: int = 0
    ) -> MockState:
        """The state kept at ``url`` (see :func:`mock_server.store.open_store`)."""
        return cls(open_store(url, prefix=prefix, max_items=journal_size, max_bytes=journal_bytes))

    @property
    def shared(self) -> bool:
        """Whether other processes can share this state."""
        return self.store.backend != "memory"

    def close(self) -> None:
        """Release this process's connections to the store."""
        self.store.close()

    def ping(self) -> None:
        """Return if the store answers; :class:`~mock_server.store.StoreUnavailable` otherwise."""
        self.store.ping()

    def next_serial(self) -> int:
        """A number never handed out before on this state (1, 2, 3, … across every process)."""
        return self.store.incr(SERIAL)

    def next_draw(self) -> int:
        """The number of the next random-fault draw (1, 2, 3, … across every process)."""
        return self.store.incr(_DRAWS)

    # the journal
    def record(self, entry: dict[str, Any] | bytes) -> int:
        """Journal one endpoint request (a dict, or the bytes of :func:`mock_server.mock.journal.encode_entry`)."""
        item = entry if isinstance(entry, bytes) else journal.dumps(entry)
        return self.store.append(REQUESTS, item)

    def iter_requests(self, after: int = 0, limit: int | None = None) -> Iterator[bytes]:
        """Journal entries as JSON bytes (with ``seq``), oldest first, streamed from the store."""
        return (journal.with_seq(seq, item) for seq, item in self.store.read(REQUESTS, after, limit))

    def requests(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Journaled endpoint requests, oldest first, each with its ``seq``."""
        return [json.loads(item) for item in self.iter_requests(after, limit)]

    # characters
    def add_character(self, character: dict[str, Any] | bytes) -> int:
        """Remember a created character (bounded like the journal)."""
        item = character if isinstance(character, bytes) else journal.dumps(character)
        return self.store.append(CHARACTERS, item)

    def iter_characters(self, after: int = 0, limit: int | None = None, *, seq: bool = False) -> Iterator[bytes]:
        """Created characters as JSON bytes, oldest first, streamed; with ``seq`` each carries its ``seq``."""
        pairs = self.store.read(CHARACTERS, after, limit)
        return (journal.with_seq(n, item) for n, item in pairs) if seq else (item for _, item in pairs)

    def characters(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Characters created since the last reset, oldest first."""
        return [json.loads(item) for item in self.iter_characters(after, limit)]

    def new_character(self, build: Callable[[int], bytes], entry: bytes | None = None) -> bytes:
        """Take the next serial, remember ``build(serial)`` (a character's JSON) and return it.

        ``entry``, when given, is journaled in the same store call (the request that created it).
        """
        also = ((REQUESTS, entry),) if entry is not None else ()
        _, character = self.store.take_or_append_new(None, CHARACTERS, build, also)
        assert character is not None  # nothing to take: always built
        return character

    def fault_or_new_character(
        self, build: Callable[[int], bytes], entry: bytes | None = None
    ) -> tuple[Fault | None, bytes | None]:
        """:meth:`take_fault`, and only when no fault is pending, :meth:`new_character` (one store call).

        Returns ``(fault, None)`` or ``(None, the character's JSON)``.
        """
        also = ((REQUESTS, entry),) if entry is not None else ()
        raw, character = self.store.take_or_append_new(FAULTS, CHARACTERS, build, also)
        return (self._fault(raw) if raw is not None else None), character

    # faults
    def push_fault(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` endpoint requests (after those already queued)."""
        if not self.store.put(FAULTS, uuid.uuid4().hex, journal.dumps(asdict(fault)), times, MAX_PENDING_FAULTS):
            raise FaultError(f"times: at most {MAX_PENDING_FAULTS} fault entries may be pending; reset first")

    def take_fault(self) -> Fault | None:
        """The fault for the request being answered now, if any is pending."""
        raw = self.store.take(FAULTS, drop_spent=True)
        return None if raw is None else self._fault(raw)

    def _fault(self, raw: bytes) -> Fault:
        fault = self._faults.get(raw)
        if fault is None:
            fault = Fault(**json.loads(raw))
            if len(self._faults) < 256:
                self._faults[raw] = fault
        return fault

    def pending_faults(self) -> list[dict[str, Any]]:
        """Queued faults, next first: ``{"fault": {...}, "times": n}`` each."""
        return [{"fault": json.loads(raw), "times": left} for _, raw, _, left in self.store.entries(FAULTS)]

    # stubs
    def add_stub(self, stub: Stub) -> None:
        """Store ``stub`` (the newest answers first); :class:`~mock_server.mock.stubs.StubError` past the limit."""
        item = journal.dumps(stub.to_json())
        with self._adding:
            self._check_room(stub.id, len(item))
            if not is_outcome(stub.outcome) and stub.outcome not in self._stubbed_outcomes():
                self.store.append(STUB_OUTCOMES, journal.dumps({"outcome": stub.outcome, "status": stub.status}))
            if not self.store.put(STUBS, stub.id, item, stub.times, MAX_STUBS):
                message = f"at most {MAX_STUBS} stubs may be held; delete some first ({_MAKE_ROOM})"
                raise StubError(message, None, code="stub_limit")
            self.stub_cache.put(item, stub)

    def _check_room(self, stub_id: str, size: int) -> None:
        """:class:`StubError` when a stub of ``size`` bytes would take the stubs past :data:`MAX_STUBS_BYTES`."""
        held = sum(len(item) for other, item, _, _ in self._stubs() if other != stub_id)
        if held + size > MAX_STUBS_BYTES:
            raise StubError(
                f"the stubs held take {held} bytes of JSON and this one {size}: together they may take at most "
                f"{MAX_STUBS_BYTES} ({_MAKE_ROOM})",
                None,
                code="stub_limit",
            )

    def _stubs(self) -> list[Entry]:
        """``(id, item, hits, remaining)`` of every stub, newest first."""
        return self.store.entries(STUBS)[::-1]

    def list_stubs(self) -> list[dict[str, Any]]:
        """Every stub, newest first: its description with ``hits`` and ``remaining`` (``None``: unlimited)."""
        listing = self._stubs()
        self.stub_cache.keep_only(stub_id for stub_id, _, _, _ in listing)
        return [
            {**self.stub_cache.decode(stub_id, item).to_json(), "hits": hits, "remaining": remaining}
            for stub_id, item, hits, remaining in listing
        ]

    def iter_stubs(self) -> Iterator[bytes]:
        """:meth:`list_stubs` as JSON objects, straight from the store's items (none decoded)."""
        for _, item, hits, remaining in self._stubs():
            left = b"null" if remaining is None else b"%d" % remaining
            yield item[:-1] + b',"hits":%d,"remaining":%s}' % (hits, left)

    def take_stub(self, body: object, headers: Mapping[str, str], listing: list[Entry] | None = None) -> Stub | None:
        """The stub answering this request (newest first), its hit counted; ``None`` when none matches.

        ``body`` is the decoded request body, ``headers`` its headers with lower-cased names; ``listing``
        the :meth:`stub_entries` just read, if any (else they are read here). A stub whose ``times``
        another process used up (or that was deleted) meanwhile is passed over for the next match.
        """
        if listing is None:
            listing = self._stubs()
        self.stub_cache.keep_only(stub_id for stub_id, _, _, _ in listing)
        for stub_id, item, _, remaining in listing:
            if remaining == 0:
                continue
            stub = self.stub_cache.decode(stub_id, item)
            if stub.matches(body, headers) and self.store.take(STUBS, stub_id) is not None:
                return stub
        return None

    def delete_stub(self, stub_id: str) -> bool:
        """Remove one stub; whether it was there."""
        self.stub_cache.forget(stub_id)
        return self.store.remove(STUBS, stub_id)

    def clear_stubs(self) -> None:
        """Remove every stub."""
        self.stub_cache.clear()
        self.store.remove(STUBS)

    # contract coverage
    def count_outcome(self, outcome: str) -> None:
        """Count one answer under ``outcome`` (see :mod:`mock_server.mock.coverage`)."""
        self.store.incr(counter_name(outcome))

    def _stubbed_outcomes(self) -> dict[str, int | None]:
        found: dict[str, int | None] = {}
        for _, item in self.store.read(STUB_OUTCOMES):
            data = json.loads(item)
            found.setdefault(data["outcome"], data.get("status"))
        return found

    def coverage(self) -> dict[str, Any]:
        """The coverage report of this state (see :func:`mock_server.mock.coverage.coverage_report`).

        ``created`` is not counted on the create path (that would cost every create a second store
        write): it is the serials taken since the last reset, plus the stubbed 200 answers.
        """
        stubbed = self._stubbed_outcomes()
        names = [o.id for o in OUTCOMES] + [name for name in stubbed if not is_outcome(name)]
        counts = {name: self.store.get(counter_name(name)) for name in names}
        counts["created"] = counts.get("created", 0) + self.store.get(SERIAL) - self.store.get(_SERIAL_AT_RESET)
        return coverage_report(counts, stubbed)

    def reset(self) -> None:
        """Forget the journal, the characters, pending faults, stubs and coverage (serials keep counting)."""
        names = [o.id for o in OUTCOMES] + [name for name in self._stubbed_outcomes() if not is_outcome(name)]
        self.stub_cache.clear()
        self.store.reset(counters=tuple(counter_name(name) for name in names))
        self.store.incr(_SERIAL_AT_RESET, self.store.get(SERIAL) - self.store.get(_SERIAL_AT_RESET))

    def stub_entries(self) -> list[Entry]:
        """``(id, item, hits, remaining)`` of every stored stub (used up or not), newest first; none:
        the decoded ones are freed (another process may have reset the store)."""
        listing = self._stubs()
        if not listing and len(self.stub_cache):
            self.stub_cache.clear()
        return listing

    def has_stubs(self) -> bool:
        """Whether any stub is stored (used up or not); see :meth:`stub_entries`."""
        return bool(self.stub_entries())

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.store.close()
