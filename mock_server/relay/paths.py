"""What a request path means to the upstream: the guard routes on this, never on the text as sent.

A server and the HTTP client in front of it read a path more loosely than a string compare does:
httpx removes dot segments (``/sora/v1/./characters``), a server merges or redirects doubled
slashes, decodes ``%2e`` and ``%2F``, ignores a trailing slash or ``;params`` (Java servers), reads
``\\`` as ``/`` (IIS) or matches without regard to case. :func:`normalize_path` is the path the
guard sends; :func:`resolve_path` is every way a lenient upstream could read it, so anything it
maps to the endpoint is treated as the endpoint.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

__all__ = ["forwarded_path", "is_under", "normalize_path", "resolve_path"]

_PCHAR_SAFE = "/:@!$&'()*+,;=~"
"""Characters a path may carry as they are (RFC 3986 ``pchar`` minus unreserved); the rest is percent-encoded."""
_DECODE_ROUNDS = 8
"""Percent-decoding passes :func:`resolve_path` makes (each one only shortens the text)."""


def normalize_path(path: str) -> str:
    """``path`` (already percent-decoded) with empty and dot segments resolved (RFC 3986 5.2.4).

    The result starts with exactly one ``/``, has no ``//``, ``.`` or ``..`` segment, and keeps a
    trailing slash: ``/sora//v1/./x/../characters`` is ``/sora/v1/characters``.
    """
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    trailing = bool(kept) and segments[-1] in ("", ".", "..")
    return "/" + "/".join(kept) + ("/" if trailing else "")


def forwarded_path(path: str) -> str:
    """The path the guard sends upstream for ``path`` (decoded): normalized, then percent-encoded."""
    return quote(normalize_path(path), safe=_PCHAR_SAFE)


def resolve_path(path: str) -> str:
    """The path a lenient server could take ``path`` for, in lower case and without a trailing slash.

    Percent-escapes are decoded until none is left (a proxy may decode twice), ``\\`` reads as
    ``/``, anything from ``?``, ``#`` or NUL on and ``;params`` in a segment are dropped, then dot
    and empty segments are resolved.
    """
    text = path
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = text.replace("\\", "/")
    for stop in ("?", "#", "\x00"):
        text = text.split(stop, 1)[0]
    text = "/".join(segment.split(";", 1)[0] for segment in text.split("/"))
    return normalize_path(text).lower().rstrip("/") or "/"


def is_under(resolved: str, prefix: str) -> bool:
    """Whether the resolved path ``resolved`` is ``prefix`` or below it (``prefix`` in lower case)."""
    return resolved == prefix or resolved.startswith(prefix + "/")
