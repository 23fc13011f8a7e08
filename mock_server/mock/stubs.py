"""Stubs: answers a test chooses, checked against the contract when they are created.

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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..contract.http import HOP_BY_HOP
from ..contract.rules import Contract, RuleError, check_character, check_error_body, decode_body
from ..errors import ConfigError
from . import journal
from .coverage import OUTCOMES

__all__ = [
    "FORBIDDEN_HEADERS",
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

MAX_STUBS = 1000
"""How many stubs one state holds at once (exhausted ones included, until deleted)."""
MAX_STUB_BYTES = 1024 * 1024
"""The largest stub description, in bytes of JSON."""
MAX_STUBS_BYTES = 16 * 1024 * 1024
"""How many bytes of JSON the stubs of one state hold together (exhausted ones included, until deleted)."""
MAX_DELAY_MS = 60_000
MAX_HEADERS = 32
"""How many headers a stub may match, and how many it may answer with."""
MAX_HEADER_BYTES = 8 * 1024
"""Bytes of names and values one stub's headers (matched, or answered) may hold together: every
HTTP client takes an answer head this size (h11 refuses past 16 KiB by default)."""
MAX_CODE_LENGTH = 100
"""The longest ``error.code`` a stub may answer with (it names a coverage outcome)."""
MAX_TIMES = 2**31 - 1
OFF_CONTRACT_OUTCOME = "off_contract"
"""The outcome of an off-contract error answer whose body has no string ``error.code``."""

FORBIDDEN_HEADERS = HOP_BY_HOP | {"content-encoding", "content-length"}
"""Response headers a stub may not set: hop-by-hop and framing headers belong to the server."""
_CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP field name (RFC 9110 token)
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e]")  # CR, LF, other controls, and non-ASCII (servers differ on it)
MAX_MATCH_DEPTH = 32
MAX_MATCH_NODES = 256
"""How many JSON values (objects, arrays, strings, numbers…) ``match.body`` may hold: it is kept
decoded for matching, where every value costs tens of bytes."""
_TOP = ("match", "response", "times", "off_contract")
_MATCH = ("body", "headers")
_RESPONSE = ("status", "json", "headers", "delay_ms")
_CATALOGUE_STATUS = {o.id: o.status for o in OUTCOMES}


class StubError(ConfigError, ValueError):
    """A stub that cannot be stored: ``status`` 400 (malformed) or 422 (off the contract), ``param``
    the field at fault (dotted), ``code`` ``invalid_stub`` or ``stub_off_contract``."""

    def __init__(self, message: str, param: str | None, *, status: int = 400, code: str = "invalid_stub") -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code


def _off(message: str, param: str | None) -> StubError:
    return StubError(message, param, status=422, code="stub_off_contract")


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


def _object(value: object, param: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StubError(f"{param} must be a JSON object", param)
    return value


def _depth(value: object, limit: int = MAX_MATCH_DEPTH + 1) -> int:
    """How deeply ``value`` nests (counting stops past ``limit``)."""
    if limit <= 0 or not isinstance(value, (Mapping, list)):
        return 0
    children = value.values() if isinstance(value, Mapping) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _nodes(value: object, limit: int = MAX_MATCH_NODES + 1) -> int:
    """How many JSON values ``value`` holds, itself included (counting stops past ``limit``)."""
    count = 0
    pending = [value]
    while pending and count < limit:
        item = pending.pop()
        count += 1
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _given(value: Mapping[str, Any], key: str) -> object:
    """``value[key]``, with a missing key or ``null`` read as an empty object."""
    found = value.get(key)
    return {} if found is None else found


def _known(value: Mapping[str, Any], allowed: tuple[str, ...], where: str | None) -> None:
    unknown = [key for key in value if key not in allowed]
    if unknown:
        param = f"{where}.{unknown[0]}" if where else str(unknown[0])
        raise StubError(
            f"unknown stub field {param!r}; allowed{' in ' + where if where else ''}: {', '.join(allowed)}", param
        )


def _integer(value: object, param: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise StubError(f"{param} must be a whole number between {low} and {high}", param)
    return value


def _headers(value: object, param: str, *, response: bool) -> tuple[tuple[str, str], ...]:
    given = _object(value, param)
    if len(given) > MAX_HEADERS:
        raise StubError(f"{param} holds {len(given)} headers; a stub may hold at most {MAX_HEADERS}", param)
    size = sum(len(str(name)) + len(text) for name, text in given.items() if isinstance(text, str))
    if size > MAX_HEADER_BYTES:
        biggest = max(given, key=lambda name: len(given[name]) if isinstance(given[name], str) else 0)
        where = f"{param}.{biggest}" if len(given[biggest]) > MAX_HEADER_BYTES // 2 else param
        raise StubError(
            f"{where}: a stub's headers may hold at most {MAX_HEADER_BYTES} bytes of names and values "
            f"together (these hold {size}), which every HTTP client accepts",
            where,
        )
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, text in given.items():
        where = f"{param}.{name}"
        if not _TOKEN.fullmatch(name):
            raise StubError(f"{where}: a header name is a token (letters, digits and !#$%&'*+-.^_`|~)", where)
        if not isinstance(text, str):
            raise StubError(f"{where} must be a string", where)
        if _BAD_VALUE.search(text):
            raise StubError(f"{where} must be printable ASCII: no CR, LF or other control characters", where)
        lower = name.lower()
        if lower in seen:
            raise StubError(f"{where}: the header is given twice (names are case-insensitive)", where)
        seen.add(lower)
        if response and lower in FORBIDDEN_HEADERS:
            raise StubError(f"{where}: hop-by-hop and framing headers are the server's, not a stub's", where)
        if not response and lower in _CREDENTIALS:
            raise StubError(
                f"{where}: credential headers cannot be matched (auth is decided before any stub, "
                "and a stub must not hold a token)",
                where,
            )
        pairs.append((name if response else lower, text))
    return tuple(pairs)


@lru_cache(maxsize=1)
def _documented_statuses() -> frozenset[int]:
    """The statuses the refined spec documents for ``POST`` on the endpoint."""
    from ..contract.spec import ENDPOINT_PATH, load_spec

    responses = load_spec()["paths"][ENDPOINT_PATH]["post"]["responses"]
    return frozenset(int(code) for code in responses if str(code).isdigit())


def _check_contract(status: int, body: object, headers: tuple[tuple[str, str], ...], contract: Contract) -> None:
    names = {name.lower(): text for name, text in headers}
    kind = names.get("content-type")
    if kind is not None and not kind.lower().startswith("application/json"):
        raise _off("the contract answers application/json; set off_contract to send another type", "response.headers")
    if status == 200:
        problems = check_character(body, contract)
        if problems:
            raise _off(
                f"a 200 stub must carry a character the contract accepts: {'; '.join(problems)}", "response.json"
            )
        return
    if status not in _documented_statuses():
        documented = ", ".join(str(s) for s in sorted(_documented_statuses()))
        raise _off(
            f"the contract documents no {status} answer for the endpoint (documented: {documented})", "response.status"
        )
    problems = check_error_body(body)
    if problems:
        raise _off(f"an error stub must carry the error envelope: {'; '.join(problems)}", "response.json")
    assert isinstance(body, Mapping)
    error = body["error"]
    for field in ("message", "type"):
        if not isinstance(error[field], str):
            raise _off(f"error.{field} must be a string", f"response.json.error.{field}")
    if error["param"] is not None and not isinstance(error["param"], str):
        raise _off("error.param must be a string or null", "response.json.error.param")
    code = error["code"]
    if not isinstance(code, str) or not code:
        raise _off(
            "error.code must be a non-empty string (the outcome the answer counts under)", "response.json.error.code"
        )
    if code in ("created", "dropped"):
        raise _off(f"{code!r} names an outcome that is not an error answer", "response.json.error.code")
    expected = _CATALOGUE_STATUS.get(code)
    if expected is not None and not (expected == status or (code == "server_error" and status >= 500)):
        raise _off(f"the contract answers {code!r} with {expected}, not {status}", "response.status")
    if status == 429:
        retry = names.get("retry-after")
        if retry is None or not retry.isascii() or not retry.isdigit():
            raise _off('a 429 carries Retry-After (whole seconds), e.g. {"Retry-After": "1"}', "response.headers")


class _Repeats(dict[str, Any]):
    """A decoded JSON object that repeated ``repeated`` (the first key given twice)."""

    repeated = ""


def _keep_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            found = _Repeats(pairs)
            found.repeated = key
            return found
        seen.add(key)
    return dict(pairs)


def _repeated_path(value: object, where: str | None) -> str | None:
    """The dotted path of the first key repeated in ``value`` (decoded with :func:`_keep_repeats`)."""
    if isinstance(value, _Repeats):
        return f"{where}.{value.repeated}" if where else value.repeated
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _repeated_path(child, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def decode_description(raw: bytes) -> object:
    """A stub description's JSON, decoded as strictly as the endpoint decodes a body (a key given twice
    is refused, not read as its last value); :class:`StubError` naming the field otherwise."""
    try:
        return decode_body(raw, reject_duplicates=True)
    except RuleError as exc:
        if exc.violation.code != "duplicate_key":
            raise StubError(f"the body is not a JSON stub description: {exc}", None) from None
        key = exc.violation.param
    try:
        path = _repeated_path(json.loads(raw, object_pairs_hook=_keep_repeats), None)
    except (ValueError, RecursionError):
        path = None
    where = path or key
    raise StubError(f"{where} is given twice; a stub, like a request to the endpoint, gives each key once", where)


def _check_code(body: object) -> None:
    """:class:`StubError` for an ``error.code`` that cannot name an outcome (too long, or control characters)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    if not isinstance(code, str):
        return
    if len(code) > MAX_CODE_LENGTH or not code.isprintable():
        raise StubError(
            f"response.json.error.code names the answer's outcome: at most {MAX_CODE_LENGTH} printable "
            f"characters (this one has {len(code)})",
            "response.json.error.code",
        )


def parse_stub(data: object, contract: Contract, *, stub_id: str) -> Stub:
    """The :class:`Stub` a description asks for; :class:`StubError` naming the field otherwise."""
    if not isinstance(data, Mapping):
        raise StubError('a stub must be a JSON object: {"match": ..., "response": {"status": ..., "json": ...}}', None)
    top = data
    _known(top, _TOP, None)
    match = _object(top["match"], "match") if top.get("match") is not None else {}
    _known(match, _MATCH, "match")
    match_body: dict[str, Any] | None = None
    if match.get("body") is not None:
        match_body = dict(_object(match["body"], "match.body"))
        for key, value in match_body.items():
            if _depth(value) > MAX_MATCH_DEPTH:
                raise StubError(f"match.body.{key} is nested deeper than {MAX_MATCH_DEPTH} levels", f"match.body.{key}")
        if _nodes(match_body) > MAX_MATCH_NODES:
            raise StubError(
                f"match.body may hold at most {MAX_MATCH_NODES} JSON values (match a few fields of the request)",
                "match.body",
            )
    match_headers = _headers(_given(match, "headers"), "match.headers", response=False)
    if "response" not in top:
        raise StubError('response is required: {"status": ..., "json": ...}', "response")
    response = _object(top["response"], "response")
    _known(response, _RESPONSE, "response")
    if "status" not in response:
        raise StubError("response.status is required (200, or 400-599)", "response.status")
    status = response["status"]
    if isinstance(status, bool) or not isinstance(status, int) or not (status == 200 or 400 <= status <= 599):
        raise StubError("response.status must be 200, or an error status between 400 and 599", "response.status")
    if "json" not in response:
        raise StubError("response.json is required (the body to answer)", "response.json")
    body = response["json"]
    headers = _headers(_given(response, "headers"), "response.headers", response=True)
    delay_ms = _integer(response.get("delay_ms", 0), "response.delay_ms", 0, MAX_DELAY_MS)
    times = top.get("times")
    if times is not None:
        times = _integer(times, "times", 1, MAX_TIMES)
    off_contract = top.get("off_contract", False)
    if not isinstance(off_contract, bool):
        raise StubError("off_contract must be true or false", "off_contract")
    if status != 200:
        _check_code(body)
    if not off_contract:
        _check_contract(status, body, headers, contract)
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
