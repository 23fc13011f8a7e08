"""Flask glue shared by the kit's two Flask apps (the mock and the guard), below both of them.

Both answer errors in the one envelope of :mod:`mock_server.contract.http` and read chunked
uploads with the same cap; this module only turns those into Flask responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO

from flask import Response, request
from werkzeug.exceptions import HTTPException

from .contract.http import AUTH_CHALLENGE, envelope, too_large
from .contract.rules import Violation
from .contract.spec import ENDPOINT_PATH

__all__ = ["error_response", "http_error_response", "read_capped", "violation_response"]


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
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(65536, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
