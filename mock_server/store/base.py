"""The state interface every backend implements, and the URL that picks a backend.

A store is a few primitives, the same in every backend, under one key prefix:

- **logs**: named, bounded, append-only lists of opaque byte items (the mock's ``requests`` and
  ``characters``, the guard's ``findings``), each item numbered by a sequence number that only
  grows, readable in order from any point (``after``) in pages (``limit``): a backend reads one
  batch (:meth:`Store.read_batch`), :meth:`Store.read` streams them;
- **counters**: named integers changed atomically, and a reservation (add one if below a limit);
- **counted tables**: named tables of keyed byte items, oldest first, each with the number of
  times it was taken and how many takes it has left (or no bound); :meth:`Store.take` is the one
  compare-and-take: it decrements and hands out an item only while it has takes left, atomically
  whatever process asks;
- **the create in one call**: take from a table, or when nothing is there take the next serial
  and append what it builds (:meth:`Store.take_or_append_new`: written once here from the
  primitives; SQLite does it in one transaction).

What the tables hold (the mock's fault queue and stubs), and what their limits and orders mean,
is the caller's (:class:`mock_server.mock.state.MockState`); a store knows no faults and no stubs.
Items are bytes the caller encoded; a store never parses them.

**Identity.** A store that lives outside the process can lose its state under a running server
(Redis restarted empty, the SQLite file deleted or replaced). So each one carries an identity
marker, written once when the state is first used (:meth:`Store.seal`). A store object remembers
the identity it first saw, or the one the server's master expects (:func:`expect_identity`: every
worker of one server then expects the master's), and :meth:`Store.verify` (run by :meth:`ping`, so
by every health check) raises :class:`StateLost` when the marker is gone or another one: the state
it knew is not there any more. Only an explicit :meth:`Store.reset` (or :meth:`Store.reseal`)
writes the identity back.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

from ..errors import StoreError

__all__ = [
    "IDENTITY",
    "SERIAL",
    "Entry",
    "StateLost",
    "Store",
    "StoreUnavailable",
    "check_prefix",
    "check_shareable",
    "expect_identity",
    "expected_identity",
    "is_memory_url",
    "prepare_state_url",
    "safe_url",
]

SERIAL = "serial"
"""The counter behind ids and seeded characters (never cleared by :meth:`Store.reset`)."""
IDENTITY = "identity"
"""The key (under the prefix) of the identity marker."""
READ_BATCH = 256
"""How many items :meth:`Store.read` fetches at a time."""

_expected: dict[tuple[str, str], str] = {}
"""``(url, prefix)`` -> the identity a store opened in this process must find (see :func:`expect_identity`)."""


def expect_identity(url: str, prefix: str, identity: str) -> None:
    """Make every store this process opens at ``url`` with ``prefix`` expect ``identity``.

    A server's master seals the state before starting its workers and passes the identity down;
    a worker (a restarted one too) then never takes a state that lost it for a fresh one.
    """
    _expected[(url.strip(), prefix)] = identity


def expected_identity(url: str, prefix: str) -> str | None:
    """The identity :func:`expect_identity` set for stores at ``url`` with ``prefix`` in this process."""
    return _expected.get((url.strip(), prefix))


_SECRET_NAME = re.compile(r"pass|pwd|secret|token|auth", re.I)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^\s/]*)@", re.I)
_SECRET_PARAM = re.compile(r"([?&;][^\s=&;#?]*(?:pass|pwd|secret|token|auth)[^\s=&;#?]*=)[^\s&;#'\"]*", re.I)


def _masked_credentials(credentials: str) -> str:
    """``user:PASSWORD`` as ``user:***``; a lone ``SECRET`` as ``***``."""
    return credentials.split(":", 1)[0] + ":***" if ":" in credentials else "***"


def _scrub(text: str) -> str:
    """``text`` with the password of every URL in it (``scheme://user:PW@``, ``?password=PW``) shown as ``***``."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{_masked_credentials(m.group(2))}@", text)
    return _SECRET_PARAM.sub(r"\1***", text)


class StoreUnavailable(StoreError, RuntimeError):
    """The store cannot be reached or used right now; the message says why (never a secret).

    The message is one clause without a final period (answers append their own sentence to it),
    and any password of a URL inside it is masked.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_scrub(message).strip().rstrip(".").rstrip())


class StateLost(StoreUnavailable):
    """The store answers, but the state this server knew is gone (its identity marker is missing or
    another one): restarted empty, deleted or replaced. Nothing is trusted until an explicit reset."""


Entry = tuple[str, bytes, int, int | None]
"""One row of a counted table: ``(key, item, taken, left)`` (``left`` ``None``: no bound)."""


class Store(ABC):
    """One server's state. Thread-safe, and shared by every process that opens the same URL.

    ``max_items`` and ``max_bytes`` bound each log: appending drops the oldest items until both
    hold (an item larger than ``max_bytes`` on its own is the caller's to truncate first).
    """

    backend: str
    """``memory``, ``sqlite`` or ``redis``."""
    url: str
    prefix: str
    max_items: int
    max_bytes: int
    identity: str | None = None
    """The identity this store object knows (expected by the master, or the first one it saw)."""

    # identity
    @abstractmethod
    def _marker(self) -> str | None:
        """The identity marker the state holds now (``None``: none)."""

    @abstractmethod
    def _put_marker(self, identity: str, *, replace: bool) -> str:
        """Write ``identity`` as the marker (when there is none, or always with ``replace``); the marker held after."""

    def seal(self) -> str:
        """The state's identity: the marker it holds, or a new one written now. A server's master calls
        this before its workers start; a store object with no expectation does it on first :meth:`verify`."""
        if self.identity is not None:
            self.verify()
            return self.identity
        self.identity = self._put_marker(uuid.uuid4().hex, replace=False)
        return self.identity

    def verify(self) -> None:
        """:class:`StateLost` when the state no longer holds the identity this object knows;
        :class:`StoreUnavailable` when the store cannot be asked."""
        if self.identity is None:
            self.seal()
            return
        found = self._marker()
        if found != self.identity:
            raise self._lost(found)

    def _lost(self, found: str | None) -> StateLost:
        why = "its identity marker is gone" if found is None else "it holds another identity"
        return StateLost(
            f"the {self.backend} state store {safe_url(self.url)} lost the state this server kept there "
            f"({why}: it was restarted empty, deleted or replaced); nothing is trusted until a reset"
        )

    def reseal(self) -> None:
        """Write this object's identity back (after an explicit reset): the state is this server's again."""
        self.identity = self._put_marker(self.identity or uuid.uuid4().hex, replace=True)

    # logs
    def append(self, log: str, item: bytes) -> int:
        """Add ``item`` to the end of ``log``; returns its sequence number (>= 1, increasing)."""
        return self.append_many([(log, item)])[0]

    @abstractmethod
    def append_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        """Append several ``(log, item)`` pairs at once (one transaction or round trip where the backend can)."""

    def read(self, log: str, after: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        """``(seq, item)`` pairs of ``log`` with ``seq > after``, oldest first, at most ``limit``.

        Streams: :meth:`read_batch` at a time, never the whole log at once, and never holding a
        lock that stops appends while the caller consumes the iterator.
        """
        left = limit
        while left is None or left > 0:
            batch = self.read_batch(log, after, READ_BATCH if left is None else min(READ_BATCH, left))
            if not batch:
                return
            yield from batch
            after = batch[-1][0]
            if left is not None:
                left -= len(batch)

    @abstractmethod
    def read_batch(self, log: str, after: int, count: int) -> list[tuple[int, bytes]]:
        """At most ``count`` ``(seq, item)`` pairs of ``log`` with ``seq > after``, oldest first (what the
        log's bounds still keep)."""

    # counters
    @abstractmethod
    def incr(self, name: str, delta: int = 1) -> int:
        """Add ``delta`` to counter ``name`` (0 when new) and return the new value."""

    @abstractmethod
    def get(self, name: str) -> int:
        """The value of counter ``name`` (0 when new)."""

    @abstractmethod
    def reserve(self, name: str, limit: int) -> bool:
        """Atomically add 1 to counter ``name`` if it is below ``limit``; whether it did.

        In the same atomic step, a store that knows its identity checks the marker: a state that lost
        it raises :class:`StateLost` and counts nothing (a budget never restarts from zero unseen)."""

    # counted tables
    @abstractmethod
    def put(self, table: str, key: str, item: bytes, takes: int | None, limit: int) -> bool:
        """Hold ``item`` under ``key`` as the newest row of ``table``, with ``takes`` takes left
        (``None``: no bound) and none taken; whether it did: ``False`` when ``table`` already holds
        ``limit`` rows. A row with that ``key`` is replaced (so it is not one more)."""

    @abstractmethod
    def entries(self, table: str) -> list[Entry]:
        """Every row of ``table``, oldest first: ``(key, item, taken, left)``."""

    @abstractmethod
    def take(self, table: str, key: str | None = None, *, drop_spent: bool = False) -> bytes | None:
        """Atomically count one take of row ``key`` (``None``: the oldest row with takes left) and use
        up one of its takes; its item, or ``None`` when it has none left or is not there.

        ``drop_spent`` removes a row whose last take this was (otherwise it stays, with 0 left)."""

    @abstractmethod
    def remove(self, table: str, key: str | None = None) -> bool:
        """Remove row ``key`` of ``table`` (``None``: every row); whether there was any."""

    # the create in one call
    def take_or_append_new(
        self, table: str | None, log: str, build: Callable[[int], bytes], also: tuple[tuple[str, bytes], ...] = ()
    ) -> tuple[bytes | None, bytes | None]:
        """``take(table, drop_spent=True)``; only when it takes nothing (or ``table`` is ``None``), take
        the next :data:`SERIAL`, append ``build(serial)`` to ``log`` and the ``(log, item)`` pairs of
        ``also``. Returns ``(taken, None)`` or ``(None, built item)``.

        Here, from the primitives; a backend with transactions does it in one (SQLite), so a create
        costs one store call (``build`` must be quick and must not use the store)."""
        if table is not None:
            taken = self.take(table, drop_spent=True)
            if taken is not None:
                return taken, None
        item = build(self.incr(SERIAL))
        self.append_many([(log, item), *also])
        return None, item

    # whole store
    def reset(self, counters: tuple[str, ...] = ()) -> None:
        """Empty every log and every table, and zero ``counters`` (the serial keeps counting).

        A reset is explicit: it also writes the identity back (:meth:`reseal`), so a lost state is this
        server's again."""
        self._reset(counters)
        self.reseal()

    @abstractmethod
    def _reset(self, counters: tuple[str, ...]) -> None:
        """Empty every log and every table, and zero ``counters`` (what :meth:`reset` does before resealing)."""

    def ping(self) -> None:
        """Return if the store answers and holds the state this server knew; :class:`StoreUnavailable`
        (:class:`StateLost` for a lost state) with a reason otherwise."""
        self._ping()
        self.verify()

    @abstractmethod
    def _ping(self) -> None:
        """Return if the store answers; :class:`StoreUnavailable` with a reason otherwise."""

    def check(self) -> None:
        """Prove the store usable now, as a server does at start: :meth:`ping` for a store server;
        a file store also proves it can write (rolled back). :class:`StoreUnavailable` otherwise."""
        self._ping()

    def close(self) -> None:  # noqa: B027 - optional for backends holding nothing
        """Release connections (a store that outlives the process is left as it is)."""


def check_prefix(prefix: str) -> None:
    """A ``ValueError`` when ``prefix`` cannot keep this server's keys apart from others' (empty or blank)."""
    if not isinstance(prefix, str) or not prefix.strip():
        raise ValueError(
            "the state prefix must not be empty: it keeps this server's keys apart from everything else "
            "in the store (the default is sora-mock:)"
        )


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (what logs and health answers may show).

    Masks the password of ``scheme://user:PASSWORD@host`` (or ``scheme://SECRET@host``) and the
    value of every query parameter whose name speaks of a secret (``?password=``, ``?token=``, …).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        credentials, _, host = authority.rpartition("@")
        authority = f"{_masked_credentials(credentials)}@{host}"
    rest = authority + slash + path
    head, question, query = rest.partition("?")
    if question:
        pairs = []
        for pair in re.split("([&;])", query):
            name, equals, _ = pair.partition("=")
            pairs.append(f"{name}=***" if equals and _SECRET_NAME.search(name) else pair)
        rest = head + question + "".join(pairs)
    return f"{scheme}://{rest}"


def is_memory_url(url: str) -> bool:
    """Whether ``url`` names the in-process store."""
    return url.strip() in ("memory", "memory://")


def check_shareable(url: str | None, workers: int) -> None:
    """A ``ValueError`` when ``url`` is the in-process store but ``workers`` processes must share it."""
    if url is not None and is_memory_url(url) and workers > 1:
        raise ValueError(
            f"--state memory keeps the state inside one process; with {workers} workers use sqlite:///PATH, "
            "redis://HOST:PORT/DB, or leave --state out (a temporary SQLite file)"
        )


@contextlib.contextmanager
def prepare_state_url(url: str | None, workers: int) -> Iterator[str]:
    """The state URL every worker of one server must open, for the duration of the ``with``.

    ``url`` is what the user gave (``None``: the default). With ``workers`` > 1 and no URL, a
    temporary SQLite file is created and removed on exit; otherwise ``url`` (or ``memory``).
    ``memory`` cannot be shared by several processes: asking for it with ``workers`` > 1 is a
    ``ValueError``.
    """
    check_shareable(url, workers)
    if url is not None:
        yield url.strip()
        return
    if workers <= 1:
        yield "memory"
        return
    folder = tempfile.mkdtemp(prefix="sora-mock-state-")
    owner = os.getpid()
    try:
        yield "sqlite:///" + os.path.join(folder, "state.sqlite3")
    finally:
        if os.getpid() == owner:  # a child forked inside the ``with`` unwinds through here too
            shutil.rmtree(folder, ignore_errors=True)
