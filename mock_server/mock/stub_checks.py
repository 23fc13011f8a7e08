"""The bounds of a stub description and the checks that hold it to them and to the contract.

:mod:`mock_server.mock.stubs` builds a :class:`~mock_server.mock.stubs.Stub` from a description these
checks passed; :class:`StubError` names the field at fault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..contract.http import HOP_BY_HOP
from ..contract.rules import Contract, RuleError, check_character, check_error_body, decode_body
from ..errors import ConfigError
from .coverage import OUTCOMES
from .journal import CREDENTIAL_HEADERS

__all__ = [
    "FORBIDDEN_HEADERS",
    "MAX_CODE_LENGTH",
    "MAX_DELAY_MS",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_MATCH_DEPTH",
    "MAX_MATCH_NODES",
    "MAX_STUBS",
    "MAX_STUBS_BYTES",
    "MAX_STUB_BYTES",
    "MAX_TIMES",
    "OFF_CONTRACT_OUTCOME",
    "StubError",
    "check_answer",
    "check_top",
    "decode_description",
    "read_match",
    "read_options",
    "read_response",
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
        if not response and lower in CREDENTIAL_HEADERS:
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


def check_top(top: Mapping[str, Any]) -> None:
    """Only the known top-level keys: ``match``, ``response``, ``times``, ``off_contract``."""
    _known(top, _TOP, None)


def read_match(top: Mapping[str, Any]) -> tuple[dict[str, Any] | None, tuple[tuple[str, str], ...]]:
    """``match``: the body fields (``None``: any body) and the headers a request must carry."""
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
    return match_body, _headers(_given(match, "headers"), "match.headers", response=False)


def read_response(top: Mapping[str, Any]) -> tuple[int, object, tuple[tuple[str, str], ...], int]:
    """``response``: its status, body, headers and delay in milliseconds."""
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
    headers = _headers(_given(response, "headers"), "response.headers", response=True)
    delay_ms = _integer(response.get("delay_ms", 0), "response.delay_ms", 0, MAX_DELAY_MS)
    return status, response["json"], headers, delay_ms


def read_options(top: Mapping[str, Any]) -> tuple[int | None, bool]:
    """``times`` (``None``: unlimited) and ``off_contract``."""
    times = top.get("times")
    if times is not None:
        times = _integer(times, "times", 1, MAX_TIMES)
    off_contract = top.get("off_contract", False)
    if not isinstance(off_contract, bool):
        raise StubError("off_contract must be true or false", "off_contract")
    return times, off_contract


def check_answer(
    status: int, body: object, headers: tuple[tuple[str, str], ...], contract: Contract, *, off_contract: bool
) -> None:
    """An error's code names an outcome; unless ``off_contract``, the answer is one the contract allows."""
    if status != 200:
        _check_code(body)
    if not off_contract:
        _check_contract(status, body, headers, contract)
