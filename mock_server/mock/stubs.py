"""Stubs: answers a test chooses, checked against the contract when they are created.

The bounds and the field checks live in :mod:`mock_server.mock.stub_checks` (names re-exported here).

A stub description (what ``POST /__mock/stubs`` takes, and ``.stub()`` of the fixtures)::

    {"match": {"body": {"from_task": "video_…"}, "headers": {"X-Request-Id": "42"}},
     "response": {"status": 404, "json": {"error": {...}}, "headers": {"X-Trace": "t"}, "delay_ms": 0},
     "times": 1, "off_contract": false}

- ``match`` (optional; default: every request): ``body`` holds top-level fields that must equal the
  request body's (JSON equality: ``1`` is not ``true``), ``headers`` exact values, names
  case-insensitive. Credential headers (``Authorization``, ``Cookie``…) cannot be matched: auth is
  decided before any stub, and a stub list must not hold a token.
- ``response``: ``status`` 200 or 400–599, ``json`` the body, optional ``headers`` (no CR/LF, no
  hop-by-hop or framing header such as ``Content-Length``) and ``delay_ms`` (0–60000).
- ``times`` (optional; default unlimited): how many requests it answers.
- ``off_contract`` (optional; default false): accept a stub the contract refuses.

On the contract (unless ``off_contract``): a 200 carries a character that passes
:func:`~mock_server.contract.rules.check_character`; an error carries the envelope
(:func:`~mock_server.contract.rules.check_error_body`) with a non-empty string ``error.code``, at
a status the contract documents for the endpoint; a catalogue code keeps its own status
(``rate_limit_exceeded`` is a 429, ``server_error`` a 5xx…), and a 429 carries ``Retry-After``.

Bounds: at most :data:`MAX_HEADERS` headers and :data:`MAX_HEADER_BYTES` bytes of them in
``match.headers`` and in ``response.headers`` (an answer every HTTP client takes), an
``error.code`` of at most :data:`MAX_CODE_LENGTH` printable characters (it names an outcome),
:data:`MAX_STUB_BYTES` per stub and :data:`MAX_STUBS_BYTES` for all stubs held; a description
that repeats a key is refused (:func:`decode_description`), as the endpoint refuses such a body.

Malformed descriptions are :class:`StubError` 400 ``invalid_stub``; contract breaks 422
``stub_off_contract``; ``param`` names the field (dotted, e.g. ``response.headers.Content-Length``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.rules import Contract
from . import journal
from .stub_checks import (
    FORBIDDEN_HEADERS,
    MAX_CODE_LENGTH,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_MATCH_NODES,
    MAX_STUB_BYTES,
    MAX_STUBS,
    MAX_STUBS_BYTES,
    OFF_CONTRACT_OUTCOME,
    StubError,
    check_answer,
    check_top,
    decode_description,
    read_match,
    read_options,
    read_response,
)

__all__ = [
    "FORBIDDEN_HEADERS",
    "MAX_CODE_LENGTH",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_MATCH_NODES",
    "MAX_STUBS",
    "MAX_STUBS_BYTES",
    "MAX_STUB_BYTES",
    "OFF_CONTRACT_OUTCOME",
    "Stub",
    "StubCache",
    "StubError",
    "decode_description",
    "decode_stub",
    "parse_stub",
    "stub_from_case",
    "stub_from_recording",
]

_SCALARS = (str, int, float)
_MISSING = object()


def _json_equal(a: object, b: object) -> bool:
    """Equality of two decoded JSON values (``true`` is not ``1``, ``1`` is ``1.0``)."""
    kind_a, kind_b = type(a), type(b)
    if kind_a is kind_b and kind_a in _SCALARS:  # the common case first: two strings, two numbers
        return a == b
    if kind_a is bool or kind_b is bool or a is None or b is None:
        return kind_a is kind_b and a == b
    if kind_a in _SCALARS and kind_b in _SCALARS:
        return kind_a is not str and kind_b is not str and a == b  # 1 == 1.0
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


@dataclass(frozen=True)
class Stub:
    """One stored stub, ready to answer (see the module docstring for the description it comes from)."""

    id: str
    match_body: dict[str, Any] | None
    match_headers: tuple[tuple[str, str], ...]
    """Header names lower-cased."""
    status: int
    headers: tuple[tuple[str, str], ...]
    delay_ms: int
    times: int | None
    off_contract: bool
    outcome: str
    """The coverage outcome its answers count under: ``created`` for a 200, else the envelope's
    ``error.code``, else (off the contract only) :data:`OFF_CONTRACT_OUTCOME`."""
    body: bytes
    """The JSON answer, encoded once (and only so: decoded, a dense answer takes many times its size)."""

    @property
    def json(self) -> Any:
        """The answer's body, decoded."""
        return json.loads(self.body)

    def matches(self, body: object, headers: Mapping[str, str]) -> bool:
        """Whether a request with the decoded ``body`` and ``headers`` (names lower-cased) is answered."""
        for name, value in self.match_headers:
            if headers.get(name) != value:
                return False
        if self.match_body is None:
            return True
        if type(body) is not dict and not isinstance(body, Mapping):
            return False
        for key, want in self.match_body.items():  # a loop, not all(): this runs for every stub on every create
            got = body.get(key, _MISSING)
            if got is _MISSING or not _json_equal(got, want):
                return False
        return True

    def response_headers(self) -> list[tuple[str, str]]:
        """The headers of its answer: ``Content-Type: application/json`` (unless the stub sets one) and its own."""
        if any(name.lower() == "content-type" for name, _ in self.headers):
            return list(self.headers)
        return [("Content-Type", "application/json"), *self.headers]

    def to_json(self) -> dict[str, Any]:
        """The stored description: ``id``, ``match``, ``response``, ``times``, ``off_contract``."""
        match: dict[str, Any] = {}
        if self.match_body is not None:
            match["body"] = self.match_body
        if self.match_headers:
            match["headers"] = dict(self.match_headers)
        return {
            "id": self.id,
            "match": match,
            "response": {
                "status": self.status,
                "json": self.json,
                "headers": dict(self.headers),
                "delay_ms": self.delay_ms,
            },
            "times": self.times,
            "off_contract": self.off_contract,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Stub:
        """The stub :meth:`to_json` described (trusted: it was checked when it was created)."""
        match = data.get("match") or {}
        response = data["response"]
        return _build(
            str(data["id"]),
            match.get("body"),
            tuple((name.lower(), value) for name, value in (match.get("headers") or {}).items()),
            int(response["status"]),
            response.get("json"),
            tuple((response.get("headers") or {}).items()),
            int(response.get("delay_ms", 0)),
            data.get("times"),
            bool(data.get("off_contract", False)),
        )


def decode_stub(item: bytes) -> Stub:
    """The :class:`Stub` a store item (the JSON of :meth:`Stub.to_json`) holds."""
    return Stub.from_json(json.loads(item))


class StubCache:
    """The decoded stubs of one state, by id: each store item is decoded once per process, and only
    stubs the store still holds are kept, so a reset or a delete frees them (see :meth:`keep_only`).
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[bytes, Stub]] = {}

    def put(self, item: bytes, stub: Stub) -> None:
        """Remember ``stub``, stored as ``item``."""
        self._held[stub.id] = (item, stub)

    def decode(self, stub_id: str, item: bytes) -> Stub:
        """The stub the store holds as ``item`` under ``stub_id``, decoded unless already known."""
        held = self._held.get(stub_id)
        if held is not None and (held[0] is item or held[0] == item):
            return held[1]
        stub = decode_stub(item)
        self._held[stub_id] = (item, stub)
        return stub

    def keep_only(self, stub_ids: Iterable[str]) -> None:
        """Forget every stub but those of ``stub_ids`` (the ones the store holds now)."""
        for stale in set(self._held) - set(stub_ids):
            self._held.pop(stale, None)

    def forget(self, stub_id: str) -> None:
        self._held.pop(stub_id, None)

    def clear(self) -> None:
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)

    @property
    def item_bytes(self) -> int:
        """Bytes of the store items behind the stubs held (their JSON)."""
        return sum(len(item) for item, _ in list(self._held.values()))


def _outcome(status: int, body: object) -> str:
    if status == 200:
        return "created"
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
        if isinstance(code, str) and code:
            return code
    return OFF_CONTRACT_OUTCOME


def _build(
    stub_id: str,
    match_body: dict[str, Any] | None,
    match_headers: tuple[tuple[str, str], ...],
    status: int,
    body: Any,
    headers: tuple[tuple[str, str], ...],
    delay_ms: int,
    times: int | None,
    off_contract: bool,
) -> Stub:
    return Stub(
        id=stub_id,
        match_body=match_body,
        match_headers=match_headers,
        status=status,
        headers=headers,
        delay_ms=delay_ms,
        times=times,
        off_contract=off_contract,
        outcome=_outcome(status, body),
        body=journal.dumps(body),
    )


def parse_stub(data: object, contract: Contract, *, stub_id: str) -> Stub:
    """The :class:`Stub` a description asks for; :class:`StubError` naming the field otherwise."""
    if not isinstance(data, Mapping):
        raise StubError('a stub must be a JSON object: {"match": ..., "response": {"status": ..., "json": ...}}', None)
    check_top(data)
    match_body, match_headers = read_match(data)
    status, body, headers, delay_ms = read_response(data)
    times, off_contract = read_options(data)
    check_answer(status, body, headers, contract, off_contract=off_contract)
    try:
        stub = _build(stub_id, match_body, match_headers, status, body, headers, delay_ms, times, off_contract)
        size = len(journal.dumps(stub.to_json()))
    except (ValueError, RecursionError):  # NaN / lone surrogate / too deep: not storable as JSON
        raise StubError(
            "the stub cannot be stored as JSON (a non-finite number, a lone surrogate, or too deep)", "response.json"
        ) from None
    if size > MAX_STUB_BYTES:
        raise StubError(f"a stub may hold at most {MAX_STUB_BYTES} bytes of JSON; this one has {size}", "body")
    return stub


# --- from the corpus and from recordings -----------------------------------------------------


def stub_from_case(item: Any, *, match_body: bool = True, times: int | None = None) -> dict[str, Any]:
    """The stub description that answers like a corpus case (:class:`mock_server.mock.fixtures.Case`).

    ``match_body``: answer only requests whose body has the case's top-level fields (when it sends a
    JSON object); ``times``: how many requests. A case whose answer was a transport error (a dropped
    connection in a recording) cannot be a stub: ``ValueError`` (use a ``drop`` fault).
    """
    response: Mapping[str, Any] = item.response
    if response.get("status") is None:
        raise ValueError(
            f"case {item.name!r} has no answer ({response.get('transport_error', 'no status')}); "
            "a dropped connection is a fault (drop_next), not a stub"
        )
    headers = {name: value for name, value in (response.get("headers") or {}).items() if name.lower() != "content-type"}
    description: dict[str, Any] = {
        "response": {"status": int(response["status"]), "json": response.get("body"), "headers": headers}
    }
    request_json = item.request.get("json")
    if match_body and isinstance(request_json, Mapping):
        description["match"] = {"body": dict(request_json)}
    if times is not None:
        description["times"] = times
    return description


def stub_from_recording(
    source: Any, *, case: str | None = None, match_body: bool = True, times: int | None = None
) -> dict[str, Any]:
    """A stub description from a corpus case, a corpus case's name, or a file ``sora-mock record`` wrote.

    ``source`` is a :class:`~mock_server.mock.fixtures.Case`, a path (``str`` or :class:`~pathlib.Path`)
    to a recording (or any corpus-format file), or a loaded document; ``case`` picks one of the
    file's cases by name (needed when it holds several). A ``str`` that is not a file names a corpus
    case (``"span-too-wide"``). See :func:`stub_from_case` for ``match_body`` and ``times``.
    """
    from .corpus import Case, cases_from
    from .corpus import case as corpus_case

    if isinstance(source, Case):
        return stub_from_case(source, match_body=match_body, times=times)
    document: Any
    if isinstance(source, Mapping):
        document = source
    elif isinstance(source, (str, Path)) and Path(source).is_file():
        with open(source, encoding="utf-8") as fh:
            document = json.load(fh)
    elif isinstance(source, str):
        return stub_from_case(corpus_case(source), match_body=match_body, times=times)
    else:
        raise ValueError(f"no recording or corpus case {source!r}")
    if not isinstance(document, Mapping) or not isinstance(document.get("cases"), list):
        raise ValueError("not a recording: a JSON object with a 'cases' list, as sora-mock record writes")
    cases = cases_from(document)
    if case is not None:
        chosen = [item for item in cases if item.name == case]
        if not chosen:
            raise ValueError(f"no case {case!r} in the recording; it holds {', '.join(c.name for c in cases)}")
    elif len(cases) == 1:
        chosen = cases
    else:
        names = ", ".join(c.name for c in cases) or "none"
        raise ValueError(f"the recording holds several cases ({names}); pick one with case=NAME")
    return stub_from_case(chosen[0], match_body=match_body, times=times)
