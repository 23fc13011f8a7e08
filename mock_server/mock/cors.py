"""CORS for a browser front-end calling the mock: which headers an answer carries, as pure functions.

With no allowed origins (the default) nothing here adds anything. With some (``--cors``,
``SORA_MOCK_CORS``, :attr:`mock_server.mock.config.MockConfig.cors`):

- every answer to a request whose ``Origin`` is allowed, errors included, carries
  ``Access-Control-Allow-Origin`` (the origin itself and ``Vary: Origin``; ``*`` when any origin
  is allowed) and ``Access-Control-Expose-Headers`` naming every header of that answer a page
  could not read otherwise (``Retry-After`` of a 429, ``WWW-Authenticate`` of a 401, ``Allow``, a
  stub's own headers) — :func:`answer_headers`;
- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method: POST``) from an
  allowed origin is answered 204 with the allowed origin, method (``POST``), request headers
  (``authorization``, ``content-type`` and every header the preflight's
  ``Access-Control-Request-Headers`` asks for, when each is a valid header name) and how long a
  browser may keep the answer — :func:`preflight_headers`;
- another origin gets no CORS header at all, so the browser refuses the answer.

The live relay's CORS behaviour is not known: a front-end that works against the mock with
``--cors`` may still be refused by the relay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ALLOW_HEADERS",
    "ALLOW_METHODS",
    "MAX_AGE",
    "MAX_REQUEST_HEADERS",
    "allowed_request_headers",
    "answer_headers",
    "check_origin",
    "exposed_headers",
    "parse_origins",
    "preflight_headers",
]

ALLOW_METHODS = "POST"
ALLOW_HEADERS = "authorization, content-type"
"""The request headers every preflight allows; the ones a preflight asks for are added to them."""
_ALLOW_HEADER_NAMES = tuple(name.strip() for name in ALLOW_HEADERS.split(","))
MAX_AGE = 600
"""Seconds a browser may reuse a preflight answer."""
MAX_REQUEST_HEADERS = 64
"""At most this many names of ``Access-Control-Request-Headers`` are allowed; more allow the base list only."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]{1,128}")
"""A header name (RFC 9110 ``token``), lower case, of sane length."""
_READABLE = frozenset(
    {"cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"}
)
"""Answer headers a page reads without being told (the CORS-safelisted ones)."""
_NEVER_EXPOSED = frozenset({"connection", "keep-alive", "transfer-encoding", "set-cookie", "vary"})

_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:(?P<port>\d{1,5}))?"
)


def check_origin(origin: str) -> str:
    """``origin`` as browsers send it (lower case); ``ValueError`` unless it is ``*`` or ``scheme://host[:port]``."""
    text = origin.strip()
    if text == "*":
        return text
    lowered = text.lower()
    match = _ORIGIN.fullmatch(lowered)
    if match is None or (match["port"] is not None and not 1 <= int(match["port"]) <= 65535):
        raise ValueError(
            f"CORS origin {text[:80]!r} is not * or scheme://host[:port] (no path, no trailing slash), "
            "e.g. http://localhost:5173"
        )
    return lowered


def parse_origins(text: str) -> tuple[str, ...]:
    """The origins of a comma-separated list (``--cors``); ``ValueError`` naming a malformed one."""
    origins = tuple(check_origin(part) for part in text.split(",") if part.strip())
    if not origins:
        raise ValueError("give at least one origin (scheme://host[:port]) or *")
    return origins


def _allowed(origin: str | None, allowed: tuple[str, ...]) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for ``origin``, or ``None`` when it is not allowed."""
    if not origin or not allowed:
        return None
    if origin.lower() in allowed:
        return origin
    if "*" in allowed:
        return "*"
    return None


def exposed_headers(names: Iterable[str]) -> str | None:
    """The ``Access-Control-Expose-Headers`` value for an answer carrying headers ``names``: each one a page
    could not read otherwise, once, as sent; ``None`` when there is none."""
    exposed: dict[str, str] = {}
    for name in names:
        key = name.lower()
        if key in _READABLE or key in _NEVER_EXPOSED or key.startswith("access-control-"):
            continue
        exposed.setdefault(key, name)
    return ", ".join(exposed.values()) or None


def answer_headers(origin: str | None, allowed: tuple[str, ...], carried: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The CORS headers of an answer to a request with this ``Origin`` (empty when it is not allowed);
    ``carried`` names the answer's own headers, exposed to the page (:func:`exposed_headers`)."""
    value = _allowed(origin, allowed)
    if value is None:
        return []
    head = [("Access-Control-Allow-Origin", value)]
    if value != "*":
        head.append(("Vary", "Origin"))
    exposed = exposed_headers(carried)
    if exposed:
        head.append(("Access-Control-Expose-Headers", exposed))
    return head


def allowed_request_headers(requested: str | None) -> str:
    """The ``Access-Control-Allow-Headers`` value for a preflight's ``Access-Control-Request-Headers``:
    :data:`ALLOW_HEADERS` and every name it asks for, lower case. A name that is not a header token, or
    more than :data:`MAX_REQUEST_HEADERS` names, allow :data:`ALLOW_HEADERS` only (the browser then
    refuses the request, as it should)."""
    names = [part.strip().lower() for part in (requested or "").split(",") if part.strip()]
    if len(names) > MAX_REQUEST_HEADERS or not all(_TOKEN.fullmatch(name) for name in names):
        return ALLOW_HEADERS
    return ", ".join(dict.fromkeys([*_ALLOW_HEADER_NAMES, *names]))


def preflight_headers(
    origin: str | None, request_method: str | None, allowed: tuple[str, ...], request_headers: str | None = None
) -> list[tuple[str, str]] | None:
    """The headers of a 204 preflight answer, or ``None`` when this is not a preflight for ``POST`` from an
    allowed origin (then the ``OPTIONS`` request is answered as without CORS). ``request_headers`` is the
    preflight's ``Access-Control-Request-Headers`` (:func:`allowed_request_headers`)."""
    if request_method is None or request_method.strip() != ALLOW_METHODS:
        return None
    head = answer_headers(origin, allowed)
    if not head:
        return None
    # the allowed headers echo the preflight's: a cache must key the answer on them too
    varies = ", ".join([*(value for name, value in head if name == "Vary"), "Access-Control-Request-Headers"])
    return [
        *(header for header in head if header[0] != "Vary"),
        ("Vary", varies),
        ("Access-Control-Allow-Methods", ALLOW_METHODS),
        ("Access-Control-Allow-Headers", allowed_request_headers(request_headers)),
        ("Access-Control-Max-Age", str(MAX_AGE)),
    ]
