"""What a request path means to the upstream: the guard routes on this, never on the text as sent.

A server and the HTTP client in front of it read a path more loosely than a string compare does:
httpx removes dot segments (``/sora/v1/./characters``), a server merges or redirects doubled
slashes, decodes ``%2e`` and ``%2F``, ignores a trailing slash or ``;params`` (Java servers), reads
``\\`` as ``/`` (IIS) or matches without regard to case. :func:`normalize_path` is the path the
guard sends; :func:`resolve_path` is every way a lenient upstream could read it, so anything it
maps to the endpoint is treated as the endpoint.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

__all__ = ["forwarded_path", "is_under", "loose_path", "names_path", "normalize_path", "resolve_path"]

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


def names_path(resolved: str, target: str) -> bool:
    """Whether the resolved path ``resolved`` is ``target`` under any mount point (``/x/y`` names ``/y``).

    An upstream URL with a path (``http://host/sora``) may be the relay itself, mounted there, or
    a host that reads the whole path from its root: the path it receives names the endpoint
    whatever part of it the prefix supplied.
    """
    return resolved == target or resolved.endswith(target)  # target starts with "/": whole segments only


def _loose_segment(segment: str, last: bool) -> str:
    text = unicodedata.normalize("NFKC", segment).casefold()
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "CZ")  # spaces, controls, format
    if last:
        text = text.split(".", 1)[0]  # a format suffix: characters.json
    return text.strip("".join(ch for ch in set(text) if not ch.isalnum()))


def loose_path(resolved: str) -> str:
    """The resolved path as a lenient server could still route it: each segment in NFKC and case-folded,
    without whitespace, control or format characters, leading or trailing punctuation, and the last one
    without a format suffix. ``/sora/v1/characters.json`` and ``/sora/v1/characters%20`` read as
    ``/sora/v1/characters``.
    """
    segments = resolved.split("/")
    kept = [_loose_segment(segment, i == len(segments) - 1) for i, segment in enumerate(segments)]
    return normalize_path("/".join(kept)).rstrip("/") or "/"
