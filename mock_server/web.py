"""Flask glue shared by the kit's two Flask apps (the mock and the guard), below both of them.

Both answer errors in the one envelope of :mod:`mock_server.contract.http` and read chunked
uploads with the same cap; this module only turns those into Flask responses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import IO
from urllib.parse import parse_qsl

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .contract.http import (
    AUTH_CHALLENGE,
    body_size_verdict,
    cross_origin,
    envelope,
    is_json_type,
    too_large,
    trusted_host,
)
from .contract.rules import Violation
from .contract.spec import ENDPOINT_PATH
from .errors import ContractError

__all__ = [
    "QueryError",
    "add_serving_headers",
    "error_response",
    "http_error_response",
    "query_arg",
    "read_capped",
    "read_upto",
    "refuse_web_pages",
    "serving_headers",
    "violation_response",
]

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class QueryError(ContractError, ValueError):
    """A query parameter that cannot be used: ``param`` names it (answered 400 ``invalid_parameter``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param

    def response(self) -> Response:
        """The 400 envelope naming :attr:`param`."""
        return error_response(400, str(self), code="invalid_parameter", param=self.param)


def query_arg(name: str) -> str | None:
    """The first value of the query parameter ``name`` of the current request (``None`` when absent).

    A query string holding bytes that are not UTF-8 (raw, as some clients send them) still serves
    every parameter that decodes; :class:`QueryError` naming ``name`` when its own value does not.
    """
    try:
        return request.args.get(name)
    except UnicodeDecodeError:  # werkzeug decodes the whole query string strictly
        pass
    text = request.query_string.decode("utf-8", "surrogateescape")
    for key, value in parse_qsl(text, keep_blank_values=True, errors="surrogateescape"):
        if key != name:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            message = f"The query parameter {name} is not valid UTF-8; send it as percent-encoded UTF-8."
            raise QueryError(name, message) from None
        return value
    return None


def error_response(
    status: int,
    message: str,
    *,
    code: str,
    param: str | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A Flask answer carrying the error envelope (:func:`mock_server.contract.http.envelope`)."""
    body = envelope(Violation(status, param, code, message), error_type)
    response = Response(body, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers.setdefault(*AUTH_CHALLENGE)
    return response


def violation_response(violation: Violation, headers: Mapping[str, str] | None = None) -> Response:
    """The Flask answer for a broken rule, in the envelope."""
    status, message, code, param = violation.status, violation.message, violation.code, violation.param
    return error_response(status, message, code=code, param=param, headers=headers)


def http_error_response(exc: HTTPException, max_body_bytes: int = 0) -> Response:
    """The enveloped answer for a routing or size error raised by Flask or werkzeug (404, 405, 413, ...)."""
    status = exc.code or 500
    if status == 413:
        headers = {"Connection": "close"}  # the body was left unread
        violation = too_large(max_body_bytes)
        return error_response(413, violation.message, code=violation.code, headers=headers)
    if status == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or ["GET"]))
        message = f"Method {request.method} is not allowed on {request.path}; allowed: {allowed}."
        return error_response(405, message, code="method_not_allowed", headers={"Allow": allowed})
    if status == 404:
        message = f"No route for {request.method} {request.path}; the endpoint is POST {ENDPOINT_PATH}."
        return error_response(404, message, code="not_found")
    return error_response(status, exc.description or exc.name, code=exc.name.lower().replace(" ", "_"))


def read_capped(stream: IO[bytes], limit: int) -> bytes | None:
    """Read a body of unknown length (a chunked upload); ``None`` as soon as it passes ``limit`` bytes."""
    data = read_upto(stream, limit)
    return None if body_size_verdict(None, len(data), limit) else data


def read_upto(stream: IO[bytes], limit: int) -> bytes:
    """Read a body of unknown length until it ends or passes ``limit`` (at most ``limit + 1`` bytes)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := stream.read(min(65536, limit + 1 - size))):
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


def refuse_web_pages(what: str, allowed_hosts: Collection[str] = ()) -> Response | None:
    """The refusal of the current request when a web page may have sent it, else ``None``.

    ``what`` names the API in the messages (``"The admin API"``). Refused, in this order: a
    ``Host`` that is not a :func:`~mock_server.contract.http.trusted_host` (403 ``untrusted_host``:
    DNS rebinding), a page of another origin (403 ``cross_origin``, see
    :func:`~mock_server.contract.http.cross_origin`), and a write (not GET, HEAD or OPTIONS) that
    declares a type other than JSON (415 ``unsupported_media_type``: a page sends ``text/plain``,
    a form or multipart without asking; curl's ``-d`` sends a form type too). A write without
    ``Content-Type`` (a script's) is taken. A request with no ``Host`` header comes from no browser.
    """
    host = request.headers.get("Host")
    if host is not None and not trusted_host(host, allowed_hosts):
        message = (
            f"{what} answers requests addressed to an IP address, localhost or a name given with --allowed-host; "
            f"this one is addressed to {host.strip()[:80]!r}, a name a web page could point at this server."
        )
        return error_response(403, message, code="untrusted_host", param="Host")
    headers = request.headers
    why = cross_origin(
        origin=headers.get("Origin"),
        fetch_site=headers.get("Sec-Fetch-Site"),
        host=host,
        scheme=request.scheme,
        allowed_hosts=allowed_hosts,
    )
    if why is not None:
        message = f"{what} is refused to web pages of other origins ({why}); call it from a script or curl."
        param = "Sec-Fetch-Site" if why.startswith("Sec-Fetch-Site") else "Origin"
        return error_response(403, message, code="cross_origin", param=param)
    if request.method in _SAFE_METHODS:
        return None
    kind = headers.get("Content-Type")
    if kind is None or is_json_type(kind):
        return None
    message = (
        f"{what} takes writes as Content-Type: application/json (got {kind.strip()[:60]!r}, "
        "a type any web page may send): add -H 'Content-Type: application/json' to curl."
    )
    return error_response(415, message, code="unsupported_media_type", param="Content-Type")


_SERVING_HEADERS = "sora_serving_headers"


def add_serving_headers(app: Flask, headers: list[tuple[str, str]]) -> None:
    """Headers the serving glue adds to the answers it writes itself for ``app`` (413, 408, 414, 431, 500)."""
    app.extensions[_SERVING_HEADERS] = list(headers)


def serving_headers(app: object) -> list[tuple[str, str]] | None:
    """The headers :func:`add_serving_headers` set on ``app``; ``None`` for any other app."""
    extensions = getattr(app, "extensions", None)
    found = extensions.get(_SERVING_HEADERS) if isinstance(extensions, dict) else None
    return found if isinstance(found, list) else None
