"""Between the client's request and the upstream: what is sent, when the answer is awaited, what the client gets.

Served by the kit's glue, the exchange is handed to the glue's event loop (:data:`DEFERRED`): it holds
no app thread while the upstream takes its time, so the guard's local answers (the report, a reset,
a refused create) never wait behind forwarded ones; the answer is settled on a thread of its own,
in the request's context, once it is in (:data:`~mock_server.relay.config.SETTLING` set). Elsewhere
(a test client), the exchange runs on the request's thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..serving.glue import DEFERRABLE, DEFERRED
from ..web import error_response, read_capped
from .config import GUARD_HEADER, SETTLING
from .upstream import (
    HOP_BY_HOP_SENT,
    Outgoing,
    Upstream,
    _Answer,
    _NoAnswer,
    connection_options,
    interrupted,
    narrow_accept_encoding,
)

__all__ = ["Forwarder", "Outcome", "Settle", "read_body", "tag", "unexpected_failure"]

Outcome = _Answer | _NoAnswer
Settle = Callable[[Outcome], Response]
"""Turns the upstream's answer (or :class:`_NoAnswer`) into the client's; counts, judges and records it."""
_SERVER_WRITTEN = frozenset({"date", "server"})  # the guard's own server writes these on every answer
_LOCATION_HEADERS = ("Location", "Content-Location")


def tag(response: Response, verdict: str) -> Response:
    """``response`` with the guard's verdict in its ``X-Sora-Guard`` header."""
    response.headers[GUARD_HEADER] = verdict
    return response


def unexpected_failure() -> Response:
    """The guard's own 500 for a failure of its code, tagged ``error`` (the caller logs it)."""
    failure = error_response(500, "The guard failed unexpectedly.", code="server_error", error_type="server_error")
    return tag(failure, "error")


def read_body(limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes (:class:`RequestEntityTooLarge` beyond)."""
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        raw = read_capped(request.environ["wsgi.input"], limit)  # chunked upload
        if raw is None:
            raise RequestEntityTooLarge()
        return raw
    return request.get_data(cache=False)  # 413 from Content-Length, before reading anything


class Forwarder:
    """Sends the current request upstream and turns the upstream's answer into the client's."""

    def __init__(self, app: Flask, upstream: Upstream) -> None:
        self.app = app
        self.upstream = upstream

    def relay(self, raw: bytes, url: httpx.URL, *, endpoint: bool, settle: Settle) -> Response:
        """Send the request (body ``raw``) to ``url``; ``settle`` gives the client's answer.

        ``endpoint``: a create, whose answer the guard must be able to decode to judge it.
        """
        outgoing = self.outgoing(raw, url, endpoint)
        environ = request.environ
        if environ.get(DEFERRABLE):
            exchange = self.upstream.exchange(outgoing)
            environ[DEFERRED] = functools.partial(_exchange_later, self.app, environ, exchange, settle)
            return Response(status=202)  # replaced by the deferred answer
        try:
            outcome: Outcome = self.upstream.send(outgoing)
        except _NoAnswer as exc:
            outcome = exc
        except BaseException:  # an interrupt: the request may have left, so it is counted as maybe billed
            settle(interrupted(self.upstream.name))
            raise
        return settle(outcome)

    def outgoing(self, raw: bytes, url: httpx.URL, endpoint: bool) -> Outgoing:
        """The request as sent upstream: without hop-by-hop headers (those ``Connection`` names too)."""
        listed = connection_options(request.headers.getlist("Connection"))
        headers = []
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP_SENT or lower in listed:
                continue
            if endpoint and lower == "accept-encoding":  # the guard must decode what it judges
                value = narrow_accept_encoding(value)
            headers.append((name, value))
        has_body = bool(raw) or request.method in ("POST", "PUT", "PATCH")
        given = frozenset(name.lower() for name, _ in request.headers.items())
        return Outgoing(request.method, url, headers, raw if has_body else None, given)

    def to_flask(self, answer: _Answer) -> Response:
        """The upstream's answer for the client: hop-by-hop headers and a ``Location`` past the guard left out."""
        listed = connection_options(answer.headers.get_list("Connection"))
        headers = []
        for name, value in answer.headers.multi_items():
            lower = name.lower()
            if lower in HOP_BY_HOP_SENT or lower in _SERVER_WRITTEN or lower in listed:
                continue
            if name.title() in _LOCATION_HEADERS:
                local = self.upstream.local_location(value, answer.url)
                if local is None:  # never a URL that takes the client (and its token) past the guard
                    continue
                value = local
            headers.append((name, value))
        response = Response(answer.raw, status=answer.status, headers=headers)
        if "Content-Type" not in answer.headers:
            del response.headers["Content-Type"]  # transparent: no type the upstream did not send
        return response


async def _exchange_later(
    app: Flask, environ: dict[str, Any], exchange: Coroutine[Any, Any, _Answer], settle: Settle
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Await the upstream on the serving event loop, then settle in the request's context on a thread."""
    try:
        outcome: Outcome = await exchange
    except _NoAnswer as exc:
        outcome = exc
    except asyncio.CancelledError:  # the request may have left: counted as maybe billed, right now
        _settled(app, environ, settle, interrupted(""))
        raise
    return await asyncio.to_thread(_settled, app, environ, settle, outcome)


def _settled(
    app: Flask, environ: dict[str, Any], settle: Settle, outcome: Outcome
) -> tuple[int, list[tuple[str, str]], bytes]:
    environ[SETTLING] = True
    with app.request_context(environ):
        try:
            response = app.process_response(settle(outcome))  # the after-request hooks see the final answer
        except Exception as exc:  # never a 500 without the guard's mark for an answer that came back
            app.logger.error("unhandled %s settling %s %s", type(exc).__name__, request.method, request.path)
            response = unexpected_failure()
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
        started[:] = [status, headers]
        return lambda data: None

    body = b"".join(response(environ, start_response))
    return int(started[0].split(" ", 1)[0]), list(started[1]), body
