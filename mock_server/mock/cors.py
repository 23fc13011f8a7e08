"""CORS for a browser front-end calling the mock: which headers an answer carries, as pure functions.

With no allowed origins (the default) nothing here adds anything. With some (``--cors``,
``SORA_MOCK_CORS``, :attr:`mock_server.mock.config.MockConfig.cors`):

- every answer to a request whose ``Origin`` is allowed, errors included, carries
  ``Access-Control-Allow-Origin`` (the origin itself and ``Vary: Origin``; ``*`` when any origin
  is allowed) — :func:`answer_headers`;
- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method: POST``) from an
  allowed origin is answered 204 with the allowed origin, method (``POST``), request headers
  (``authorization``, ``content-type``) and how long a browser may keep the answer —
  :func:`preflight_headers`;
- another origin gets no CORS header at all, so the browser refuses the answer.

The live relay's CORS behaviour is not known: a front-end that works against the mock with
``--cors`` may still be refused by the relay.
"""

from __future__ import annotations

import re

__all__ = [
    "ALLOW_HEADERS",
    "ALLOW_METHODS",
    "MAX_AGE",
    "answer_headers",
    "check_origin",
    "parse_origins",
    "preflight_headers",
]

ALLOW_METHODS = "POST"
ALLOW_HEADERS = "authorization, content-type"
MAX_AGE = 600
"""Seconds a browser may reuse a preflight answer."""

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


def answer_headers(origin: str | None, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    """The CORS headers of an answer to a request with this ``Origin`` (empty when it is not allowed)."""
    value = _allowed(origin, allowed)
    if value is None:
        return []
    if value == "*":
        return [("Access-Control-Allow-Origin", "*")]
    return [("Access-Control-Allow-Origin", value), ("Vary", "Origin")]


def preflight_headers(
    origin: str | None, request_method: str | None, allowed: tuple[str, ...]
) -> list[tuple[str, str]] | None:
    """The headers of a 204 preflight answer, or ``None`` when this is not a preflight for ``POST`` from an
    allowed origin (then the ``OPTIONS`` request is answered as without CORS)."""
    if request_method is None or request_method.strip() != ALLOW_METHODS:
        return None
    head = answer_headers(origin, allowed)
    if not head:
        return None
    return [
        *head,
        ("Access-Control-Allow-Methods", ALLOW_METHODS),
        ("Access-Control-Allow-Headers", ALLOW_HEADERS),
        ("Access-Control-Max-Age", str(MAX_AGE)),
    ]
