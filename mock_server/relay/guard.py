"""``sora-mock guard``: a checking, budgeted proxy in front of the paid relay.

A client points its base URL at the guard instead of the relay. Each request whose path the
upstream could read as ``/sora/v1/characters`` (see :mod:`mock_server.relay.paths`), judged on the
whole path it receives (the upstream URL's own path included), is the endpoint; a path a lenient
upstream could still route there (``/sora/v1/characters.json``) is refused locally. On the
endpoint, ``POST`` is judged with the same rules and auth check as the mock, so a request that
breaks a rule gets the mock's 400/401/413/422 locally and never reaches the relay; any other method
(or a method override header) gets a local 405. A conforming request reserves one create of the
budget, then goes upstream byte for byte with the client's ``Authorization``; once
``max_creates`` creates were reserved, further ones get a local 429 ``budget_exhausted``.

Only a clear non-billable answer gives a reservation back: one read and decoded in full whose
status is not 2xx. No answer within ``timeout`` (the whole exchange), a dropped connection, an
answer over ``max_answer_bytes`` or one the guard cannot decode keep it, become a finding and
reach the client as a 502/504 in the error envelope. Every other upstream answer is passed back
unchanged (apart from the ``X-Sora-Guard`` header, the hop-by-hop headers and a ``Location`` that
would lead the client past the guard) and judged against the contract: what breaks it becomes a
finding in ``GET /__guard/report``.

Counters and findings live in a :class:`mock_server.store.Store`, so every worker process that
opens the same state URL shares one budget. While the store is down, creates get a 503; when it
comes back without the budget's state (its identity marker gone), creates are refused until
``POST /__guard/reset``. The bearer token is never stored, logged or reported.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import ssl
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ..contract.http import HOP_BY_HOP, bearer_token, check_bearer, cross_origin, envelope, is_json_type
from ..contract.rules import (
    Contract,
    RuleError,
    Violation,
    check_character,
    check_error_body,
    check_request,
    decode_body,
)
from ..contract.spec import ENDPOINT_PATH, load_contract
from ..mock.config import MAX_BODY_BYTES
from ..mock.fixtures import TOKEN_PLACEHOLDER, kept_headers
from ..serving.flask_glue import error_response, http_error_response, read_capped, violation_response
from ..serving.glue import DEFERRABLE, DEFERRED
from ..store import StateLost, Store, StoreUnavailable, open_store
from .paths import forwarded_path, is_under, loose_path, names_path, resolve_path
from .recorder import is_secret, scrub, scrub_bytes

__all__ = [
    "CONFORMING_STATUSES",
    "DECLARED_STATUSES",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_UPSTREAM",
    "GUARD_HEADER",
    "GUARD_PREFIX",
    "METHOD_OVERRIDE_HEADERS",
    "GuardConfig",
    "GuardState",
    "create_guard_app",
    "guard_report",
    "judge_answer",
    "public_url",
    "summary_line",
    "upstream_problem",
    "write_report",
]

DEFAULT_UPSTREAM = "https://api.jxincm.cn"
"""The paid relay's base URL."""
DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024
"""Bytes of one upstream answer the guard reads, as received and once decoded (a character is under 1 KB)."""
GUARD_PREFIX = "/__guard"
GUARD_HEADER = "X-Sora-Guard"
SETTLING = "sora_guard.settling"
"""Environ key: true in the request context that settles a deferred exchange (its answer is the final one)."""
METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
"""Headers some servers read as the request's real method: on the endpoint, anything but POST is a 405."""
DECLARED_STATUSES = frozenset({200, 400, 401, 404, 405, 413, 422, 429, 500, 503})
"""Statuses the contract declares for the endpoint."""
CONFORMING_STATUSES = frozenset({200, 401, 429, 500, 503})
"""What a conforming relay may answer to a request that obeys every rule (401: the token is the relay's to judge)."""

_RESERVED = "creates_reserved"  # one counter per budget: f"{_RESERVED}:{epoch}"
_CREATES = "creates"
_FORWARDED = "forwarded"
_BLOCKED = "blocked"
_OVER_BUDGET = "over_budget"
_PASSED = "passed"
_UNCERTAIN = "uncertain"
_EPOCH = "budget_epoch"  # the number of resets: a reset starts the counter of a new budget
_FINDINGS = "findings"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_REPORT_PATH = f"{GUARD_PREFIX}/report"
_RESET_PATH = f"{GUARD_PREFIX}/reset"
# Hop-by-hop headers plus what the HTTP client or the server writes itself.
_HOP_BY_HOP = HOP_BY_HOP | {"host", "content-length", "expect"}  # expect: the guard has read the whole body
_SERVER_WRITTEN = frozenset({"date", "server"})  # the guard's own server writes these on every answer
_CLIENT_DEFAULTS = ("Accept", "Accept-Encoding", "User-Agent")  # httpx adds these unless the client sent them
_LOCATION_HEADERS = ("Location", "Content-Location")
_DECODABLE = frozenset({"gzip", "x-gzip", "deflate", "identity"})
_MAX_CODINGS = 4
_SUMMARY_FIELDS = ("url", "from_task", "timestamps", "model")
_SENDING = frozenset({"http11.send_request_headers.started", "http2.send_request_headers.started"})
"""httpcore trace events that mean the request started to leave (so it may have been billed)."""


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment (safe to show in logs and reports)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def upstream_problem(url: str) -> str | None:
    """Why ``url`` cannot be the upstream (naming what it probably meant), or ``None`` when it can."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"must be an absolute http(s) URL with a numeric port, such as {parts.scheme or 'http'}://HOST:8000"
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    if "://" not in url:
        shown = url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1].lstrip("/")
        if shown and urlsplit(f"http://{shown}").hostname:
            return f"must be an absolute http(s) URL, got {shown!r} with no scheme: did you mean http://{shown}?"
        return "must be an absolute http(s) URL such as http://127.0.0.1:8000"
    return f"must be an absolute http(s) URL, got {parts.scheme or 'no scheme'}://…"


@dataclass(frozen=True)
class GuardConfig:
    """Settings of one guard. ``repr`` never shows credentials of the upstream or state URLs."""

    upstream: str = DEFAULT_UPSTREAM
    """Base URL requests are forwarded to (a path prefix is kept)."""
    max_creates: int = 10
    """Creates reserved (billable or maybe billed) allowed until ``POST /__guard/reset``."""
    timeout: float = 60.0
    """Seconds the whole exchange with the upstream may take: connect, send, the answer's last byte."""
    pass_through: bool = False
    """Forward paths other than the endpoint unchecked; otherwise they get a local 404."""
    record_dir: str | None = None
    """Save each forwarded answer here as a corpus-format fixture (token and ``sig=`` scrubbed)."""
    report_path: str | None = None
    """Where the stopping server writes the report as JSON."""
    state_url: str = "memory"
    """Store holding the budget and findings; every worker opening the same URL shares them."""
    state_prefix: str = "sora-guard:"
    max_body_bytes: int = MAX_BODY_BYTES
    max_findings: int = 1000
    """Findings kept (the oldest are dropped)."""
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    """Bytes of an upstream answer read, as received and decoded; a longer one is a 502."""

    def __post_init__(self) -> None:
        problem = upstream_problem(self.upstream)
        if problem is not None:
            raise ValueError(f"upstream {problem}")
        if self.max_creates < 0:
            raise ValueError("max_creates must be zero or more")
        if not self.timeout > 0:
            raise ValueError("timeout must be more than zero seconds")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if self.max_findings < 1:
            raise ValueError("max_findings must be at least 1")
        if self.max_answer_bytes < 1:
            raise ValueError("max_answer_bytes must be at least 1")

    def __repr__(self) -> str:
        shown: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["upstream"] = public_url(self.upstream)
        if "@" in self.state_url:  # redis://user:password@host
            scheme, _, rest = self.state_url.partition("://")
            shown["state_url"] = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return "GuardConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


@dataclass
class GuardState:
    """What one guard app holds: its settings, the shared store, the contract and the upstream's TLS settings."""

    config: GuardConfig
    store: Store
    contract: Contract
    verify: ssl.SSLContext = field(repr=False)
    """Shared by the HTTP client of every exchange (each exchange opens its own connection)."""

    def report(self) -> dict[str, Any]:
        return guard_report(self.store, self.config)

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def _reserved(epoch: int) -> str:
    return f"{_RESERVED}:{epoch}"


def guard_report(store: Store, config: GuardConfig) -> dict[str, Any]:
    """The report ``GET /__guard/report`` answers, read from ``store``."""
    findings = [json.loads(item) for _, item in store.read(_FINDINGS)]
    epoch = store.get(_EPOCH)
    problem = _state_problem(store)
    return {
        "upstream": public_url(config.upstream),
        "max_creates": config.max_creates,
        "forwarded": store.get(_FORWARDED),
        "blocked": store.get(_BLOCKED),
        "creates": store.get(_CREATES),
        "uncertain": store.get(_UNCERTAIN),
        "budget_left": 0 if problem else max(0, config.max_creates - store.get(_reserved(epoch))),
        "over_budget": store.get(_OVER_BUDGET),
        "passed": store.get(_PASSED),
        "resets": epoch,
        "findings": findings,
        "state": problem or "ok",
    }


def _state_problem(store: Store) -> str | None:
    """Why the store no longer holds the state the guard budgets on (creates are refused), or ``None``."""
    try:
        store.verify()
    except StateLost as exc:
        return f"lost: {exc}; creates are refused until POST {_RESET_PATH}"
    return None


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for the terminal when the guard stops."""
    resets = report.get("resets", 0)
    budget = f"budget {report['max_creates']}" + (f" (reset {resets} time(s))" if resets else "")
    return (
        f"sora-mock guard: {report['forwarded']} forwarded, {report['blocked']} blocked, {report['passed']} passed; "
        f"{report['creates']} billed, {report['uncertain']} uncertain "
        "(timeouts, drops and unreadable answers kept their reservation); "
        f"{budget}, {report['budget_left']} left, {report['over_budget']} over budget; "
        f"{len(report['findings'])} finding(s)"
    )


def _json_bytes(value: object, **options: Any) -> bytes:
    """``value`` as UTF-8 JSON; a string no UTF-8 can hold (a lone surrogate) is written as a ``\\u`` escape."""
    try:
        return json.dumps(value, ensure_ascii=False, **options).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **options).encode("ascii")


def write_report(report: Mapping[str, Any], path: str | Path) -> None:
    """Write ``report`` as JSON to ``path`` (atomically: a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, _json_bytes(report, indent=2) + b"\n")


def _write_atomically(target: Path, data: bytes) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def judge_answer(
    status: int, headers: Mapping[str, str], body: bytes, contract: Contract, *, conforming: bool = True
) -> list[str]:
    """What is wrong with an upstream answer to ``POST /sora/v1/characters`` (empty when it conforms).

    ``headers`` is case-insensitive (an ``httpx.Headers``); ``body`` is decoded (no content
    coding). ``conforming`` says the request obeyed every rule, so only :data:`CONFORMING_STATUSES`
    fit.
    """
    problems: list[str] = []
    if status not in DECLARED_STATUSES:
        problems.append(
            f"status {status} is not one the contract declares ({', '.join(map(str, sorted(DECLARED_STATUSES)))})"
        )
    elif conforming and status not in CONFORMING_STATUSES:
        problems.append(
            f"status {status} to a request that obeys every rule "
            f"(expected {', '.join(map(str, sorted(CONFORMING_STATUSES)))})"
        )
    content_type = headers.get("Content-Type")
    if not is_json_type(content_type):
        problems.append(f"Content-Type is {content_type or 'missing'}, not application/json")
    try:
        data: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        problems.append("the body is not JSON")
        return problems
    if status == 200:
        problems.extend(check_character(data, contract))
    elif status >= 400:
        problems.extend(check_error_body(data))
    if status == 429:
        retry_after = headers.get("Retry-After")
        if retry_after is None:
            problems.append("a 429 without Retry-After")
        elif not retry_after.strip().isdigit():
            problems.append(f"Retry-After {retry_after!r} is not a whole number of seconds")
    return problems


def _printable(value: Any) -> Any:
    """``value`` with every string UTF-8 can hold: a lone surrogate becomes the text ``\\ud800``."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def _request_summary(body: object, token: str) -> dict[str, Any]:
    """Method, path and the contract's fields of the body: what a finding shows of a request, never the token."""
    summary: dict[str, Any] = {"method": request.method, "path": request.path}
    if isinstance(body, Mapping):
        summary["body"] = {  # scrubbed before the cut: a cut never keeps the first characters of a token
            name: (scrub(_printable(value), token)[:200] if isinstance(value, str) else value)
            for name, value in body.items()
            if name in _SUMMARY_FIELDS
        }
    return dict(scrub(_printable(summary), token))


def _bearer(header: str | None) -> str:
    return bearer_token(header) or ""


class _Unreadable(Exception):
    """An answer the guard cannot decode; the message says why (a finding's problem)."""


class _TooLarge(Exception):
    """An answer (as received or decoded) over ``max_answer_bytes``."""


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)  # never more than limit + 1 bytes in memory
    except zlib.error:
        raise _Unreadable(f"the body is not valid {coding} data (Content-Encoding: {coding})") from None
    if len(out) > limit:
        raise _TooLarge()
    if not inflater.eof:
        raise _Unreadable(f"the {coding} data of the body is cut short")
    return out


def _decode_answer(raw: bytes, headers: httpx.Headers, limit: int) -> bytes:
    """Undo the content codings of ``raw`` with at most ``limit`` bytes decoded (a gzip bomb is :class:`_TooLarge`)."""
    codings = [c.strip().lower() for value in headers.get_list("Content-Encoding") for c in value.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not raw or not codings:
        return raw
    if len(codings) > _MAX_CODINGS:
        raise _Unreadable(f"Content-Encoding stacks {len(codings)} codings")
    data = raw
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, 16 + zlib.MAX_WBITS, limit, coding)
        elif coding == "deflate":  # zlib-wrapped as RFC 9110 says, or raw deflate as some servers send
            try:
                data = _inflate(data, zlib.MAX_WBITS, limit, coding)
            except _Unreadable:
                data = _inflate(data, -zlib.MAX_WBITS, limit, coding)
        else:
            raise _Unreadable(f"Content-Encoding {coding} is not one the guard decodes (gzip, deflate)")
    return data


def _narrow_accept_encoding(value: str) -> str:
    """The client's ``Accept-Encoding`` without the codings the guard cannot decode to judge the answer."""
    kept = [item.strip() for item in value.split(",") if item.split(";", 1)[0].strip().lower() in _DECODABLE]
    return ", ".join(kept) or "identity"


@dataclass
class _Answer:
    """An upstream answer read in full: status, headers, the body as sent (``raw``), where it came from."""

    status: int
    headers: httpx.Headers
    raw: bytes
    elapsed: float
    url: httpx.URL


class _NoAnswer(Exception):
    """The upstream gave no usable answer; ``sent`` tells whether the request may have reached it."""

    def __init__(self, status: int, code: str, message: str, *, sent: bool, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.sent = sent
        self.upstream_status = upstream_status
        """The status line the upstream sent, when it sent one."""

    def response(self) -> Response:
        return error_response(self.status, self.message, code=self.code, error_type="server_error")


class _Upstream:
    """Sends one request upstream and reads its answer, the whole exchange bounded by ``timeout``."""

    def __init__(self, config: GuardConfig, verify: ssl.SSLContext) -> None:
        self.config = config
        self.verify = verify
        self.base = httpx.URL(config.upstream)
        self.prefix = self.base.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self.name = public_url(config.upstream)

    def endpoint_path(self, path: str) -> str | None:
        """The path to forward when the upstream could read ``path`` (decoded, as the client sent it)
        as the endpoint, else ``None``.

        Judged on the client's path and on the whole path the upstream gets, its prefix included:
        with ``--upstream http://host/sora``, ``/v1/characters`` reaches ``/sora/v1/characters``,
        the endpoint of a relay at the host's root (see :func:`names_path`). A client path that is
        the endpoint is forwarded as the endpoint below the prefix; any other is forwarded as it
        came (normalized), so the guard budgets exactly the path it sends.
        """
        if resolve_path(path) == ENDPOINT_PATH:
            return ENDPOINT_PATH
        forwarded = forwarded_path(path)
        if names_path(resolve_path(self.sent_path(forwarded)), ENDPOINT_PATH):
            return forwarded
        return None

    def is_endpoint(self, path: str) -> bool:
        """Whether the upstream could read ``path`` as the endpoint (:meth:`endpoint_path`)."""
        return self.endpoint_path(path) is not None

    def near_endpoint(self, path: str) -> bool:
        """Whether a lenient upstream could still route ``path`` to the endpoint (:func:`loose_path`):
        ``/sora/v1/characters.json``, ``/sora/v1/characters%20``, ``/sora/v1/ｃharacters``."""
        return any(
            names_path(loose_path(resolve_path(text)), ENDPOINT_PATH)
            for text in (path, self.sent_path(forwarded_path(path)))
        )

    def sent_path(self, forwarded: str) -> str:
        """The whole path (prefix included) the upstream receives for the forwarded path ``forwarded``."""
        return self.url(forwarded, b"").raw_path.decode("ascii")

    def url(self, path: str, query: bytes) -> httpx.URL:
        """The upstream URL for ``path`` (normalized and percent-encoded, see :func:`forwarded_path`)."""
        query = quote(query, safe="/?:@!$&'()*+,;=%~").encode("ascii")  # as sent, where it is valid ASCII
        raw_path = self.prefix + path.encode("ascii") + (b"?" + query if query else b"")
        return self.base.copy_with(raw_path=raw_path, fragment=None)

    def local_location(self, value: str, sent_to: httpx.URL) -> str | None:
        """A ``Location`` of the upstream's as a path on the guard, or ``None`` when it leads elsewhere."""
        try:
            target = sent_to.join(value)
        except (httpx.InvalidURL, ValueError):
            return None
        same = (target.scheme, target.host, target.port) == (self.base.scheme, self.base.host, self.base.port)
        path = target.raw_path
        if not same or not (path == self.prefix or path.startswith(self.prefix + b"/")):
            return None
        return (path[len(self.prefix) :] or b"/").decode("ascii")

    def send(
        self, method: str, url: httpx.URL, headers: list[tuple[str, str]], content: bytes | None, given: set[str]
    ) -> _Answer:
        """Send and read the answer; :class:`_NoAnswer` when there is none within the limits.

        ``given`` holds the (lower-case) names of the headers the client sent, so the HTTP client
        adds none of its own defaults.
        """
        exchange = self.exchange(method, url, headers, content, given)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a worker thread with no event loop of its own
            return asyncio.run(exchange)
        with ThreadPoolExecutor(1) as runner:  # called from a coroutine: run on a thread of its own
            return runner.submit(asyncio.run, exchange).result()

    async def exchange(
        self, method: str, url: httpx.URL, headers: list[tuple[str, str]], content: bytes | None, given: set[str]
    ) -> _Answer:
        """:meth:`send` as a coroutine, for an event loop."""
        cfg = self.config
        sent = False
        status: int | None = None

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            nonlocal sent
            if event in _SENDING:
                sent = True

        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=cfg.timeout, follow_redirects=False, verify=self.verify) as client:
            outgoing = client.build_request(method, url, headers=headers, content=content, extensions={"trace": trace})
            for name in _CLIENT_DEFAULTS:
                if name.lower() not in given:
                    del outgoing.headers[name]
            try:
                async with asyncio.timeout(cfg.timeout):
                    answer = await client.send(outgoing, stream=True)
                    status = answer.status_code
                    try:
                        body = await self._read(answer)
                    finally:
                        await answer.aclose()
            except (TimeoutError, httpx.ConnectTimeout):
                raise _NoAnswer(
                    504,
                    "upstream_timeout",
                    f"The upstream {self.name} did not answer in full within {cfg.timeout:g} s.",
                    sent=sent,
                    upstream_status=status,
                ) from None
            except _TooLarge:
                raise _NoAnswer(
                    502,
                    "upstream_answer_too_large",
                    f"The upstream {self.name} answered more than the guard's limit of {cfg.max_answer_bytes} bytes.",
                    sent=True,
                    upstream_status=status,
                ) from None
            except (httpx.ConnectError, httpx.UnsupportedProtocol):
                raise _NoAnswer(
                    502, "upstream_unreachable", f"The upstream {self.name} cannot be reached.", sent=False
                ) from None
            except httpx.HTTPError:
                raise _NoAnswer(
                    502,
                    "upstream_disconnected",
                    f"The upstream {self.name} closed the connection without a whole answer.",
                    sent=True,
                    upstream_status=status,
                ) from None
            except Exception as exc:  # anything else: kept as sent once the request started to leave
                raise _NoAnswer(
                    502,
                    "upstream_error",
                    f"The exchange with the upstream {self.name} failed ({type(exc).__name__}).",
                    sent=sent,
                    upstream_status=status,
                ) from None
        return _Answer(answer.status_code, answer.headers, body, time.perf_counter() - started, url)

    async def _read(self, answer: httpx.Response) -> bytes:
        limit = self.config.max_answer_bytes
        declared = answer.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge()
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _TooLarge()
            chunks.append(chunk)
        return b"".join(chunks)


def _connection_options(values: list[str]) -> set[str]:
    """The header names the ``Connection`` header(s) list: hop-by-hop for that one connection (RFC 9110 7.6.1)."""
    return {part.strip().lower() for value in values for part in value.split(",") if part.strip()}


def create_guard_app(config: GuardConfig | None = None, *, store: Store | None = None) -> Flask:
    """Build the guard as a Flask app (one store; each forwarded request opens its own upstream connection).

    ``store`` defaults to ``open_store(config.state_url, prefix=config.state_prefix)``. Close
    ``app.extensions["sora_guard"]`` (a :class:`GuardState`) when done with the app.
    """
    cfg = config or GuardConfig()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.url_map.merge_slashes = False  # the guard decides what a path means; werkzeug never redirects
    contract = load_contract()
    if store is None:
        store = open_store(cfg.state_url, prefix=cfg.state_prefix, max_items=cfg.max_findings)
    with contextlib.suppress(StoreUnavailable):  # down now (or lost): each create asks again, refused meanwhile
        store.seal()  # the identity of the state this guard budgets on: a loss of it is noticed, never taken as new
    state = GuardState(cfg, store, contract, httpx.create_ssl_context())
    app.extensions["sora_guard"] = state
    app.extensions["sora_serving_headers"] = [(GUARD_HEADER, "blocked")]  # the serving glue's own 413, 408, 414, 431
    upstream = _Upstream(cfg, state.verify)
    recorder = _Recorder(Path(cfg.record_dir), upstream.name) if cfg.record_dir else None
    from .guard_ui import register_guard_ui  # the page imports this module's names

    register_guard_ui(app, store, upstream.is_endpoint)  # GET /__guard/ui, GET /__guard/requests, each verdict logged

    def tag(response: Response, verdict: str) -> Response:
        response.headers[GUARD_HEADER] = verdict
        return response

    def tally(name: str, delta: int = 1) -> None:
        """Count in the store; an answer already decided (or billed) is still given when the store fails."""
        try:
            store.incr(name, delta)
        except StoreUnavailable as exc:
            app.logger.warning("the guard could not count %s: %s", name, exc)

    def blocked(response: Response) -> Response:
        tally(_BLOCKED)
        return tag(response, "blocked")

    def options(methods: tuple[str, ...]) -> Response:
        """204 naming the methods (the mock's answer to OPTIONS), instead of Flask's empty text/html 200."""
        response = Response(status=204, headers={"Allow": ", ".join(sorted({"OPTIONS", *methods}))})
        del response.headers["Content-Type"]  # no body, so no type either
        return tag(response, "local")

    def read_raw() -> bytes:
        if request.content_length is None and request.environ.get("wsgi.input_terminated"):
            raw = read_capped(request.environ["wsgi.input"], cfg.max_body_bytes)  # chunked upload
            if raw is None:
                raise RequestEntityTooLarge()
            return raw
        return request.get_data(cache=False)  # 413 from Content-Length, before reading anything

    def outgoing_headers(endpoint: bool) -> list[tuple[str, str]]:
        listed = _connection_options(request.headers.getlist("Connection"))
        headers = []
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower in listed:
                continue
            if endpoint and lower == "accept-encoding":  # the guard must decode what it judges
                value = _narrow_accept_encoding(value)
            headers.append((name, value))
        return headers

    def relay(
        raw: bytes, url: httpx.URL, *, endpoint: bool, settle: Callable[[_Answer | _NoAnswer], Response]
    ) -> Response:
        """Send the request upstream; ``settle`` turns the answer (or :class:`_NoAnswer`) into the client's.

        Served by the kit's glue, the exchange is handed to the glue's event loop (:data:`DEFERRED`):
        it holds no app thread while the upstream takes its time, so the guard's local answers (the
        report, a reset, a refused create) never wait behind forwarded ones; ``settle`` runs on a
        thread of its own once the answer is in. Elsewhere (a test client), it runs here.
        """
        has_body = bool(raw) or request.method in ("POST", "PUT", "PATCH")
        given = {name.lower() for name, _ in request.headers.items()}
        args = (request.method, url, outgoing_headers(endpoint), raw if has_body else None, given)
        environ = request.environ
        if environ.get(DEFERRABLE):
            environ[DEFERRED] = functools.partial(_exchange_later, app, environ, upstream.exchange(*args), settle)
            return Response(status=202)  # replaced by the deferred answer
        try:
            outcome: _Answer | _NoAnswer = upstream.send(*args)
        except _NoAnswer as exc:
            outcome = exc
        except BaseException:  # an interrupt: the request may have left, so it is counted as maybe billed
            settle(_interrupted(upstream.name))
            raise
        return settle(outcome)

    def to_flask(answer: _Answer) -> Response:
        listed = _connection_options(answer.headers.get_list("Connection"))
        headers = []
        for name, value in answer.headers.multi_items():
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower in _SERVER_WRITTEN or lower in listed:
                continue
            if name.title() in _LOCATION_HEADERS:
                local = upstream.local_location(value, answer.url)
                if local is None:  # never a URL that takes the client (and its token) past the guard
                    continue
                value = local
            headers.append((name, value))
        response = Response(answer.raw, status=answer.status, headers=headers)
        if "Content-Type" not in answer.headers:
            del response.headers["Content-Type"]  # transparent: no type the upstream did not send
        return response

    def add_finding(summary: Mapping[str, Any], status: int | None, problems: list[str]) -> None:
        finding = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request": summary,
            "status": status,
            "problems": problems,
        }
        try:
            store.append(_FINDINGS, _json_bytes(finding))
        except StoreUnavailable as exc:
            app.logger.warning("the guard could not keep a finding: %s", exc)

    def record(answer: _Answer, raw: bytes, token: str, content: bytes | None) -> None:
        if recorder is None:
            return
        try:
            recorder.save(answer, raw, token, content)
        except Exception as exc:  # the answer may have been billed: the client still gets it
            app.logger.warning("could not record an answer: %s", type(exc).__name__)

    def reserve() -> str | None:
        """The budget counter holding this create's reservation, or ``None`` when the budget is spent."""
        key = _reserved(store.get(_EPOCH))
        if not store.reserve(key, cfg.max_creates):
            return None
        current = _reserved(store.get(_EPOCH))
        if current != key:  # a reset came in between: this create counts against the new budget
            store.incr(key, -1)
            if not store.reserve(current, cfg.max_creates):
                return None
            key = current
        return key

    def create_character(target: str) -> Response:
        denied = check_bearer(request.headers.get("Authorization"), None)
        if denied is not None:
            return blocked(violation_response(denied))
        raw = read_raw()
        try:
            body = decode_body(raw, reject_duplicates=True)  # the mock's rules: a repeated key is a 400
        except RuleError as exc:
            return blocked(violation_response(exc.violation))
        violation = check_request(body, contract)
        if violation is not None:
            return blocked(violation_response(violation))
        query = request.query_string
        url = upstream.url(target, query)
        store.verify()  # a store that lost the budget's state refuses (StateLost), never starts a new budget
        reserved = reserve()
        if reserved is None:
            tally(_OVER_BUDGET)
            refusal = error_response(
                429,
                f"The guard's budget of {cfg.max_creates} billable create(s) is spent; nothing was sent upstream. "
                f"POST {_RESET_PATH} starts a new budget.",
                code="budget_exhausted",
                error_type="insufficient_quota",
            )
            return tag(refusal, "budget")
        token = _bearer(request.headers.get("Authorization"))
        summary = _request_summary(body, token)
        # Until settled, the reservation stands: an interrupt or a lost answer never gives it back.
        return relay(
            raw, url, endpoint=True, settle=lambda outcome: settle_create(outcome, raw, token, summary, reserved)
        )

    def settle_create(
        outcome: _Answer | _NoAnswer, raw: bytes, token: str, summary: dict[str, Any], reserved: str
    ) -> Response:
        """Count, judge and record a forwarded create's answer; the client's answer."""

        def kept(status: int | None) -> None:
            """The create stays reserved: billed (a 200) or maybe billed (anything unclear)."""
            tally(_CREATES if status == 200 else _UNCERTAIN)

        if isinstance(outcome, _NoAnswer):
            exc = outcome
            if not exc.sent:
                tally(reserved, -1)  # nothing left the guard: nothing was billed
                return tag(exc.response(), "upstream-error")
            tally(_FORWARDED)
            kept(exc.upstream_status)
            problem = f"no whole answer from the upstream ({exc.code}); kept as a possible create"
            add_finding(summary, exc.upstream_status, [problem])
            return tag(exc.response(), "upstream-error")
        answer = outcome
        tally(_FORWARDED)
        try:
            content = _decode_answer(answer.raw, answer.headers, cfg.max_answer_bytes)
        except (_Unreadable, _TooLarge) as exc:
            kept(answer.status)
            if isinstance(exc, _TooLarge):
                problem = f"the decoded body is over the guard's limit of {cfg.max_answer_bytes} bytes"
                code, why = "upstream_answer_too_large", f"decodes to more than {cfg.max_answer_bytes} bytes"
            else:
                problem, code, why = str(exc), "upstream_answer_unreadable", f"cannot be read: {exc}"
            add_finding(summary, answer.status, [f"{problem}; kept as a possible create"])
            failure = error_response(
                502,
                f"The answer of the upstream {upstream.name} (HTTP {answer.status}) {why}. "
                "The create stays counted: it may have been billed.",
                code=code,
                error_type="server_error",
            )
            return tag(failure, "upstream-error")
        if 200 <= answer.status < 300:
            kept(answer.status)
        else:
            tally(reserved, -1)  # a clear answer that bills nothing
        try:
            problems = judge_answer(answer.status, answer.headers, content, contract)
        except Exception as exc:  # never a 500 for an answer that came back
            problems = [f"the guard could not judge the answer ({type(exc).__name__})"]
        if problems:
            add_finding(summary, answer.status, problems)
        record(answer, raw, token, content)
        return tag(to_flask(answer), "forwarded")

    def endpoint(target: str) -> Response:
        if request.method == "OPTIONS":
            return options(("POST",))
        if request.method != "POST":
            raise MethodNotAllowed(valid_methods=["OPTIONS", "POST"])
        for name in METHOD_OVERRIDE_HEADERS:
            value = request.headers.get(name)
            if value is not None and value.strip().upper() != "POST":
                refusal = error_response(
                    405,
                    f"{name}: {value.strip()[:20]} asks for another method than POST on {request.path}; "
                    f"the endpoint takes POST only.",
                    code="method_not_allowed",
                    param=name,
                    headers={"Allow": "OPTIONS, POST"},
                )
                return blocked(refusal)
        return create_character(target)

    def report() -> Response:
        return tag(Response(_json_bytes(state.report()), mimetype="application/json"), "local")

    def reset() -> Response:
        headers = request.headers
        why = cross_origin(
            origin=headers.get("Origin"),
            fetch_site=headers.get("Sec-Fetch-Site"),
            host=headers.get("Host"),
            scheme=request.scheme,
        )
        if why is not None:
            refusal = error_response(
                403,
                f"POST {_RESET_PATH} is refused from a web page ({why}); call it from a script or curl.",
                code="cross_origin",
                param="Origin",
            )
            return blocked(refusal)
        if not is_json_type(request.headers.get("Content-Type")):
            refusal = error_response(
                415,
                f"POST {_RESET_PATH} needs Content-Type: application/json "
                f"(got {(request.headers.get('Content-Type') or 'none')[:60]}).",
                code="unsupported_media_type",
                param="Content-Type",
            )
            return blocked(refusal)
        store.reseal()  # an explicit reset: a state that was lost is the guard's again (a new budget below)
        store.incr(_EPOCH)  # a new budget counter; forwarded, blocked, creates and findings stay
        answer = Response(json.dumps({"status": "reset", "budget_left": cfg.max_creates}), mimetype="application/json")
        return tag(answer, "local")

    own: dict[str, tuple[tuple[str, ...], Any]] = {
        _REPORT_PATH: (("GET", "HEAD"), report),
        _RESET_PATH: (("POST",), reset),
    }

    def pass_through() -> Response:
        url = upstream.url(forwarded_path(request.path), request.query_string)
        raw = read_raw()
        return relay(raw, url, endpoint=False, settle=lambda outcome: settle_passed(outcome, raw))

    def settle_passed(outcome: _Answer | _NoAnswer, raw: bytes) -> Response:
        if isinstance(outcome, _NoAnswer):
            return tag(outcome.response(), "upstream-error")
        answer = outcome
        tally(_PASSED)
        if recorder is not None:
            try:
                content: bytes | None = _decode_answer(answer.raw, answer.headers, cfg.max_answer_bytes)
            except (_Unreadable, _TooLarge):
                content = None
            record(answer, raw, _bearer(request.headers.get("Authorization")), content)
        return tag(to_flask(answer), "passed")

    @app.route("/", defaults={"path": ""}, methods=_METHODS, provide_automatic_options=False)
    @app.route("/<path:path>", methods=_METHODS, provide_automatic_options=False)
    def dispatch(path: str) -> Response:
        """Route on what the path means to the upstream (:func:`resolve_path`), not on its text."""
        target = upstream.endpoint_path(request.path)
        if target is not None:
            return endpoint(target)
        if request.path in own:
            methods, view = own[request.path]
            if request.method == "OPTIONS":
                return options(methods)
            if request.method not in methods:
                raise MethodNotAllowed(valid_methods=sorted({"OPTIONS", *methods}))
            response: Response = view()
            return response
        if is_under(resolve_path(request.path), GUARD_PREFIX) or not cfg.pass_through:
            raise NotFound()  # the guard's own prefix is never forwarded
        if upstream.near_endpoint(request.path):  # a lenient relay could serve it as the endpoint, unchecked
            refusal = error_response(
                404,
                f"{request.path[:200]} is not the endpoint, but a lenient upstream could read it as "
                f"{ENDPOINT_PATH}; the guard does not forward it. Send POST {ENDPOINT_PATH}.",
                code="near_endpoint",
            )
            return blocked(refusal)
        return pass_through()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if isinstance(exc, MethodNotAllowed) and upstream.is_endpoint(request.path):
            exc = MethodNotAllowed(valid_methods=["OPTIONS", "POST"])  # a method no route lists (PROPFIND)
        return blocked(http_error_response(exc, cfg.max_body_bytes))

    @app.errorhandler(StoreUnavailable)
    def store_failed(exc: StoreUnavailable) -> Response:
        if isinstance(exc, StateLost):
            message = (
                f"The guard refuses creates: {exc}. The budget it kept there is gone, and a fresh one is never "
                f"started unseen; POST {_RESET_PATH} starts a new budget."
            )
            failure = error_response(503, message, code="state_lost", error_type="server_error")
        else:
            message = f"The guard's state store cannot be used ({exc}); nothing was sent upstream."
            failure = error_response(503, message, code="state_unavailable", error_type="server_error")
        return tag(failure, "error")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        failure = error_response(500, "The guard failed unexpectedly.", code="server_error", error_type="server_error")
        return tag(failure, "error")

    app.wsgi_app = _always_tagged(app.wsgi_app)  # type: ignore[method-assign]
    return app


async def _exchange_later(
    app: Flask,
    environ: dict[str, Any],
    exchange: Coroutine[Any, Any, _Answer],
    settle: Callable[[_Answer | _NoAnswer], Response],
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Await the upstream on the serving event loop, then settle in the request's context on a thread."""
    try:
        outcome: _Answer | _NoAnswer = await exchange
    except _NoAnswer as exc:
        outcome = exc
    except asyncio.CancelledError:  # the request may have left: counted as maybe billed, right now
        _settled(app, environ, settle, _interrupted(""))
        raise
    return await asyncio.to_thread(_settled, app, environ, settle, outcome)


def _interrupted(name: str) -> _NoAnswer:
    """The outcome of an exchange cut short by the guard itself (an interrupt, a cancelled task)."""
    where = f" with the upstream {name}" if name else " with the upstream"
    return _NoAnswer(502, "upstream_error", f"The exchange{where} was interrupted.", sent=True)


def _settled(
    app: Flask, environ: dict[str, Any], settle: Callable[[_Answer | _NoAnswer], Response], outcome: _Answer | _NoAnswer
) -> tuple[int, list[tuple[str, str]], bytes]:
    environ[SETTLING] = True
    with app.request_context(environ):
        try:
            response = app.process_response(settle(outcome))  # the after-request hooks see the final answer
        except Exception as exc:  # never a 500 without the guard's mark for an answer that came back
            app.logger.error("unhandled %s settling %s %s", type(exc).__name__, request.method, request.path)
            failure = error_response(
                500, "The guard failed unexpectedly.", code="server_error", error_type="server_error"
            )
            failure.headers[GUARD_HEADER] = "error"
            response = failure
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
        started[:] = [status, headers]
        return lambda data: None

    body = b"".join(response(environ, start_response))
    return int(started[0].split(" ", 1)[0]), list(started[1]), body


def _always_tagged(wsgi: Any) -> Any:
    """``wsgi`` that answers a failure before Flask's own handlers run (building the request) in the
    envelope with ``X-Sora-Guard: error`` instead of raising it to the server."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return wsgi(environ, start_response)
        except Exception as exc:
            logging.getLogger(__name__).error("unhandled %s before routing", type(exc).__name__)
            body = envelope(Violation(500, None, "server_error", "The guard failed unexpectedly."), "server_error")
            headers = [("Content-Type", "application/json"), (GUARD_HEADER, "error")]
            start_response("500 INTERNAL SERVER ERROR", headers, sys.exc_info())
            return [body]

    return app


class _Recorder:
    """Writes each forwarded answer as a one-case corpus document (see :mod:`mock_server.mock.fixtures`)."""

    def __init__(self, directory: Path, upstream: str) -> None:
        self.directory = directory
        self.upstream = upstream

    def save(self, answer: _Answer, raw: bytes, token: str, content: bytes | None) -> None:
        """Write one document; ``content`` is the decoded answer body (``None``: it could not be decoded)."""
        req_headers = {}
        if "Authorization" in request.headers:
            req_headers["Authorization"] = f"Bearer {TOKEN_PLACEHOLDER}" if token else "[redacted]"
        if "Content-Type" in request.headers:
            req_headers["Content-Type"] = request.headers["Content-Type"]
        sent: dict[str, Any] = {"method": request.method, "path": request.path, "headers": req_headers}
        description = f"{request.method} {request.path} forwarded by sora-mock guard"
        if raw:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # scrubbed as bytes: base64 would hide the token from any later check
                scrubbed = scrub_bytes(raw, token)
                if is_secret(token) and token.encode("utf-8") in scrubbed:
                    description += " (its binary body was not kept: the token could not be scrubbed from it)"
                else:
                    sent["base64"] = base64.b64encode(scrubbed).decode("ascii")
            else:
                sent.update(_as_json_or_text(text))
        body: Any
        if content is None:
            body = {"text": "[not kept: the answer could not be decoded]"}
        elif not content:
            body = None
        else:
            try:
                decoded = _as_json_or_text(content.decode("utf-8"))
            except UnicodeDecodeError:
                decoded = {"text": content.decode("utf-8", "replace")}
            # scrubbed before the cut, so a cut never keeps the first characters of a token
            body = decoded["json"] if "json" in decoded else {"text": scrub(decoded["text"], token)[:2000]}
        response = {"status": answer.status, "headers": kept_headers(answer.headers), "body": body}
        stamp = datetime.now(UTC)
        item = {
            "name": f"guard-{stamp.strftime('%H%M%S')}-{uuid.uuid4().hex[:8]}",
            "description": description,
            "fault": None,
            "request": scrub(sent, token),
            "response": {**scrub(response, token), "elapsed_ms": round(answer.elapsed * 1000)},
        }
        document = {
            "description": f"an answer forwarded by sora-mock guard from {self.upstream}; token, sig= scrubbed",
            "recorded_from": self.upstream,
            "recorded_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cases": [item],
        }
        data = _json_bytes(document, indent=2) + b"\n"
        if is_secret(token) and token.encode("utf-8") in data:  # belt and braces: never write the token
            raise ValueError("the token survived scrubbing")
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.directory / f"{item['name']}.json", data)


def _as_json_or_text(text: str) -> dict[str, Any]:
    """``{"json": data}`` when ``text`` is JSON every UTF-8 writer can keep, else ``{"text": text}``."""
    try:
        data = json.loads(text)
        json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError):  # not JSON, 1e400, too deep, a lone surrogate
        return {"text": text}
    return {"json": data}
