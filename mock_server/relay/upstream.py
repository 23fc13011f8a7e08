"""The guard's client for the upstream: one bounded exchange over httpx, and decoding what comes back.

An exchange ends in an :class:`_Answer` read in full, or a :class:`_NoAnswer` that says whether the
request may have reached the upstream (so may have been billed). :func:`decode_answer` undoes the
content codings of an answer with a bound on what it decodes.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from flask import Response

from ..contract.http import HOP_BY_HOP
from ..contract.spec import ENDPOINT_PATH
from ..web import error_response
from .config import GuardConfig, public_url
from .paths import forwarded_path, loose_path, names_path, resolve_path

__all__ = [
    "HOP_BY_HOP_SENT",
    "Outgoing",
    "Upstream",
    "connection_options",
    "decode_answer",
    "interrupted",
    "narrow_accept_encoding",
]

HOP_BY_HOP_SENT = HOP_BY_HOP | {"host", "content-length", "expect"}  # expect: the guard has read the whole body
"""Hop-by-hop headers plus what the HTTP client or the server writes itself."""
_CLIENT_DEFAULTS = ("Accept", "Accept-Encoding", "User-Agent")  # httpx adds these unless the client sent them
_DECODABLE = frozenset({"gzip", "x-gzip", "deflate", "identity"})
_MAX_CODINGS = 4
_SENDING = frozenset({"http11.send_request_headers.started", "http2.send_request_headers.started"})
"""httpcore trace events that mean the request started to leave (so it may have been billed)."""


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


def decode_answer(raw: bytes, headers: httpx.Headers, limit: int) -> bytes:
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


def narrow_accept_encoding(value: str) -> str:
    """The client's ``Accept-Encoding`` without the codings the guard cannot decode to judge the answer."""
    kept = [item.strip() for item in value.split(",") if item.split(";", 1)[0].strip().lower() in _DECODABLE]
    return ", ".join(kept) or "identity"


def connection_options(values: list[str]) -> set[str]:
    """The header names the ``Connection`` header(s) list: hop-by-hop for that one connection (RFC 9110 7.6.1)."""
    return {part.strip().lower() for value in values for part in value.split(",") if part.strip()}


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


def interrupted(name: str) -> _NoAnswer:
    """The outcome of an exchange cut short by the guard itself (an interrupt, a cancelled task)."""
    where = f" with the upstream {name}" if name else " with the upstream"
    return _NoAnswer(502, "upstream_error", f"The exchange{where} was interrupted.", sent=True)


@dataclass(frozen=True)
class Outgoing:
    """One request to send upstream: ``given`` holds the (lower-case) names of the headers the client sent,
    so the HTTP client adds none of its own defaults."""

    method: str
    url: httpx.URL
    headers: list[tuple[str, str]]
    content: bytes | None
    given: frozenset[str]


class _Sent:
    """Whether the request started to leave (an httpx trace callback) and the status line the upstream sent."""

    def __init__(self) -> None:
        self.sent = False
        self.status: int | None = None

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event in _SENDING:
            self.sent = True


class Upstream:
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

    def send(self, outgoing: Outgoing) -> _Answer:
        """Send and read the answer; :class:`_NoAnswer` when there is none within the limits."""
        exchange = self.exchange(outgoing)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a worker thread with no event loop of its own
            return asyncio.run(exchange)
        with ThreadPoolExecutor(1) as runner:  # called from a coroutine: run on a thread of its own
            return runner.submit(asyncio.run, exchange).result()

    async def exchange(self, outgoing: Outgoing) -> _Answer:
        """:meth:`send` as a coroutine, for an event loop."""
        timeout = self.config.timeout
        progress = _Sent()
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=self.verify) as client:
            request = client.build_request(
                outgoing.method,
                outgoing.url,
                headers=outgoing.headers,
                content=outgoing.content,
                extensions={"trace": progress.trace},
            )
            for name in _CLIENT_DEFAULTS:
                if name.lower() not in outgoing.given:
                    del request.headers[name]
            try:
                async with asyncio.timeout(timeout):
                    answer = await client.send(request, stream=True)
                    progress.status = answer.status_code
                    try:
                        body = await self._read(answer)
                    finally:
                        await answer.aclose()
            except Exception as exc:
                raise self._no_answer(exc, progress) from None
        return _Answer(answer.status_code, answer.headers, body, time.perf_counter() - started, outgoing.url)

    def _no_answer(self, exc: Exception, progress: _Sent) -> _NoAnswer:
        """What a failed exchange means for the client, and whether the request may have been billed."""
        sent, status = progress.sent, progress.status
        if isinstance(exc, (TimeoutError, httpx.ConnectTimeout)):
            message = f"The upstream {self.name} did not answer in full within {self.config.timeout:g} s."
            return _NoAnswer(504, "upstream_timeout", message, sent=sent, upstream_status=status)
        if isinstance(exc, _TooLarge):
            limit = self.config.max_answer_bytes
            message = f"The upstream {self.name} answered more than the guard's limit of {limit} bytes."
            return _NoAnswer(502, "upstream_answer_too_large", message, sent=True, upstream_status=status)
        if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol)):
            return _NoAnswer(502, "upstream_unreachable", f"The upstream {self.name} cannot be reached.", sent=False)
        if isinstance(exc, httpx.HTTPError):
            message = f"The upstream {self.name} closed the connection without a whole answer."
            return _NoAnswer(502, "upstream_disconnected", message, sent=True, upstream_status=status)
        # anything else: kept as sent once the request started to leave
        message = f"The exchange with the upstream {self.name} failed ({type(exc).__name__})."
        return _NoAnswer(502, "upstream_error", message, sent=sent, upstream_status=status)

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
