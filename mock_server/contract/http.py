"""The HTTP side of the contract, as pure functions: the error envelope and bearer auth.

Everything of the kit that answers HTTP (the mock's endpoint core, its admin API, the serving
layer's own refusals, the guard) builds its errors and reads bearer tokens here, so one
definition decides what an error looks like and which ``Authorization`` headers are usable.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import re
from collections.abc import Collection
from urllib.parse import quote, quote_plus, urlsplit

from .rules import Violation, error_body

__all__ = [
    "AUTH_CHALLENGE",
    "HOP_BY_HOP",
    "MAX_HEADER_BYTES",
    "MAX_TARGET_BYTES",
    "MIN_SECRET_LENGTH",
    "bearer_token",
    "body_size_verdict",
    "check_bearer",
    "cross_origin",
    "envelope",
    "error_type_for",
    "framing_verdict",
    "head_verdict",
    "host_name",
    "incomplete_body",
    "is_json_type",
    "malformed_body",
    "same_secret",
    "secret_forms",
    "time_verdict",
    "timed_out",
    "too_large",
    "trusted_host",
]

AUTH_CHALLENGE = ("WWW-Authenticate", 'Bearer realm="sora"')
"""The header every 401 carries (RFC 9110 section 11.6.1): the scheme the endpoint expects."""

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
"""Hop-by-hop headers (RFC 9110 section 7.6.1): they belong to one connection, never to a message."""

MIN_SECRET_LENGTH = 8
"""A token this long or longer is redacted wherever its text appears (journal bodies, recordings,
reports); a shorter one only in credential headers, so that ``mp4`` never blanks out a URL."""

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_type_for(status: int) -> str:
    """The envelope's ``type`` for an error status, as the OpenAI-style relays name them."""
    if status >= 500:
        return "server_error"
    return _TYPES.get(status, "invalid_request_error")


def envelope(violation: Violation, error_type: str | None = None) -> bytes:
    """The compact JSON of ``{"error": {message, type, param, code}}`` for ``violation``.

    ``error_type`` defaults to :func:`error_type_for` of its status.
    """
    body = error_body(violation, error_type or error_type_for(violation.status))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` for anything else."""
    scheme, _, given = (header or "").strip().partition(" ")
    token = given.strip()
    return token if scheme.lower() == "bearer" and token else None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def secret_forms(secret: str) -> tuple[bytes, ...]:
    """The byte sequences ``secret`` may take in a message, longest first: each must be scrubbed.

    Its UTF-8 text; JSON-escaped as an encoder writes it (with or without ``ensure_ascii``, ``/`` as
    ``\\/`` too) and with every character a ``\\uXXXX`` escape (either hex case); percent-encoded (``quote`` and
    ``quote_plus``, every byte escaped too, either hex case); and UTF-16 (either byte order).
    Those of tokens of usual length are computed once (a client may present a huge one each time).
    """
    return _known_forms(secret) if len(secret) <= _CACHED_SECRET else _forms_of(secret)


_CACHED_SECRET = 512


@functools.lru_cache(maxsize=256)
def _known_forms(secret: str) -> tuple[bytes, ...]:
    return _forms_of(secret)


def _forms_of(secret: str) -> tuple[bytes, ...]:
    forms = {
        secret.encode("utf-8", "surrogatepass"),
        json.dumps(secret, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass"),
        json.dumps(secret)[1:-1].encode("ascii"),
        json.dumps(secret, ensure_ascii=False)[1:-1].replace("/", "\\/").encode("utf-8", "surrogatepass"),
        secret.encode("utf-16-le", "surrogatepass"),
        secret.encode("utf-16-be", "surrogatepass"),
    }
    escaped = "".join(f"\\u{ord(char):04x}" for char in secret if ord(char) < 0x10000)
    if len(escaped) == 6 * len(secret):
        forms |= {escaped.encode("ascii"), escaped.upper().replace("\\U", "\\u").encode("ascii")}
    raw = secret.encode("utf-8", "surrogatepass")
    every = "".join(f"%{byte:02X}" for byte in raw)
    for percent in (quote(raw, safe=""), quote_plus(raw, safe=""), every):
        forms |= {percent.encode("ascii"), _HEX_ESCAPE.sub(lambda m: m.group().lower(), percent).encode("ascii")}
    return tuple(sorted(forms, key=len, reverse=True))


def check_bearer(header: str | None, token: str | None) -> Violation | None:
    """The 401 for an ``Authorization`` header that is not a usable bearer token, else ``None``.

    ``token`` is the one token to accept; ``None`` accepts any non-empty bearer token. Every 401
    answer carries :data:`AUTH_CHALLENGE`.
    """
    if not header:
        return Violation(401, None, "missing_api_key", 'Missing bearer token: send "Authorization: Bearer <token>".')
    given = bearer_token(header)
    if given is None:
        return Violation(
            401,
            None,
            "invalid_authorization_scheme",
            'Unsupported Authorization header: send "Authorization: Bearer <token>".',
        )
    if token is not None and not same_secret(given, token):
        return Violation(401, None, "invalid_api_key", "Incorrect API key provided.")
    return None


# The transport's verdicts, decided here once from the facts an adapter gathers (declared length,
# bytes read, elapsed time, target length, header bytes); each adapter only maps them to its answer.
MAX_TARGET_BYTES = 8 * 1024
"""The longest request target (path and query string) served; past it, 414 in the envelope."""
MAX_HEADER_BYTES = 64 * 1024
"""The largest header section served (names, values and separators); past it, 431 in the envelope."""


def head_verdict(target_bytes: int, header_bytes: int) -> Violation | None:
    """414 for a request target over :data:`MAX_TARGET_BYTES`, 431 for headers over :data:`MAX_HEADER_BYTES`.

    Both are below the HTTP server's own limits (which answer with an empty body), so a too-long
    request gets a JSON error naming the limit.
    """
    if target_bytes > MAX_TARGET_BYTES:
        message = f"The request target (path and query) is {target_bytes} bytes; the limit is {MAX_TARGET_BYTES}."
        return Violation(414, None, "uri_too_long", message)
    if header_bytes > MAX_HEADER_BYTES:
        message = f"The request headers are {header_bytes} bytes; the limit is {MAX_HEADER_BYTES}."
        return Violation(431, None, "headers_too_large", message)
    return None


def body_size_verdict(declared: int | None, read: int, limit: int) -> Violation | None:
    """413 when the declared ``Content-Length`` or the bytes read so far pass ``limit``, else ``None``.

    Asked before reading (``read`` 0) it refuses an announced body unread; asked while reading a
    body of unknown length, it stops the read as soon as the body passes the limit.
    """
    if (declared is not None and declared > limit) or read > limit:
        return too_large(limit)
    return None


def time_verdict(elapsed: float, limit: float) -> Violation | None:
    """408 when a body took ``elapsed`` seconds, past the read timeout ``limit``, else ``None``."""
    return timed_out(limit) if elapsed >= limit else None


def framing_verdict(declared: int | None, received: int | None) -> Violation | None:
    """400 for a body that ended before its ``Content-Length`` (``received`` ``None``: the read broke)."""
    if declared is not None and received != declared:
        return incomplete_body()
    return None


def too_large(limit: int) -> Violation:
    """The transport's verdict on a body over ``limit`` bytes (refused before or while reading it)."""
    return Violation(413, None, "request_too_large", f"The request body is larger than the limit of {limit} bytes.")


def timed_out(seconds: float) -> Violation:
    """The transport's verdict on a body that did not arrive in time."""
    return Violation(408, None, "request_timeout", f"The request body did not arrive within {seconds:g} seconds.")


def incomplete_body() -> Violation:
    """The transport's verdict on a body that ended before its ``Content-Length``."""
    return Violation(400, None, "incomplete_body", "The request body ended before its Content-Length.")


def malformed_body() -> Violation:
    """The transport's verdict on broken chunked framing."""
    return Violation(400, None, "malformed_body", "The chunked request body is malformed or incomplete.")


# what a browser says about the page behind a request (the admin API and the guard's reset obey no foreign page)
def host_name(host: str) -> str:
    """The name in a ``Host`` header, lower case, without its port or IPv6 brackets."""
    name = host.strip()
    if name.startswith("["):
        return name[1:].split("]", 1)[0].lower()
    if name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name.lower()


def trusted_host(host: str, allowed: Collection[str] = ()) -> bool:
    """Whether a ``Host`` header names a host no foreign page can point at this server.

    An IP address (a page can only reach it from its own origin), ``localhost``, or one of
    ``allowed`` (lower-case names; ``*`` trusts every name). Any other name is one whose DNS a page
    could rebind to this server's address (DNS rebinding).
    """
    name = host_name(host)
    if name == "localhost" or name in allowed or "*" in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def cross_origin(
    *, origin: str | None, fetch_site: str | None, host: str | None, scheme: str, allowed_hosts: Collection[str] = ()
) -> str | None:
    """Why a request comes from a web page the server must not obey, or ``None``.

    A browser names the page behind a request (``Origin``, and ``Sec-Fetch-Site``); a script or
    curl sends neither. A page is obeyed only from the server's own origin (``scheme://Host``),
    reached by a :func:`trusted_host`: a cross-site or same-site page, an ``Origin`` of ``null``
    (a sandboxed page, a file) and a page at a name another site could rebind are refused.
    """
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site.strip()[:40]!r}"
    if origin is None:
        return None
    try:
        parts = urlsplit(origin.strip())
    except ValueError:  # not a URL at all (an unclosed IPv6 bracket, characters NFKC changes)
        return f"Origin {origin.strip()[:80]!r} is not this server's own"
    own = (host or "").strip().lower()
    if not own or parts.netloc.lower() != own or parts.scheme != scheme:
        return f"Origin {origin.strip()[:80]!r} is not this server's own"
    if not trusted_host(own, allowed_hosts):
        return f"the page reached this server by the name {own[:80]!r}, not by its address"
    return None


def is_json_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json`` or ``application/*+json``, any parameters)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
