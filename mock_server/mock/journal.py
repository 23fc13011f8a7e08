"""How one endpoint request is written into the journal: always RFC 8259 JSON, never a secret.

An entry is one JSON object::

    {"time": 1763202593.1, "method": "POST", "path": "/sora/v1/characters", "status": 200,
     "outcome": "created", "headers": {"Authorization": "[redacted]", ...}, "body": {...}}

- ``path`` is the path as received; ``status`` is ``null`` for a dropped connection; ``outcome``
  names what the request met: ``created``, the error envelope's ``code``, or ``dropped``.
- ``error`` (only on an error the mock itself answered: a broken rule, auth, a fault) holds the
  envelope's ``message`` and ``param``, any secret in the message reading ``[redacted]``.

- ``body`` is the request body as JSON (the text received, spacing included, when it holds only
  strings and no escapes; else re-encoded compactly), or ``null`` when there was none or it cannot be kept as
  JSON. Then ``body_text`` holds the raw text and ``body_issue`` says why: ``invalid_json``,
  ``not_utf8`` (``body_text`` then shows bad bytes as ``\\xNN``), ``duplicate_key`` (the mock
  refuses such bodies with 400), ``non_finite_number`` (``1e400``), ``lone_surrogate``
  (``"\\ud800"``), ``too_deep`` (nesting the encoder cannot take) or ``redacted`` (a secret could
  not be cut out of the body's JSON text cleanly, so none of it is kept).
- A body larger than :data:`BODY_CAP` bytes is kept as the first :data:`BODY_CAP` bytes of its
  text, with ``"body_truncated": true`` and its full size in ``body_bytes``.
- ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``X-Api-Key`` and any header whose value
  contains a secret (the configured token, the bearer token presented) read ``[redacted]``; a
  secret inside the body reads ``[redacted]`` there too. Both also in the secret's common encodings
  (:func:`~mock_server.contract.http.secret_forms`: percent-encoded, ``\\u``-escaped, UTF-16), and
  a body is scrubbed before it is cut, so a truncated body keeps no part of one. Header names are written in title case
  (``Content-Type``), whatever the client sent, repeated headers joined with a comma.
- Read back through the store, each entry also carries its ``seq`` (first key).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

from ..contract.http import secret_forms

__all__ = [
    "BODY_CAP",
    "CREDENTIAL_HEADERS",
    "REDACTED",
    "NoBody",
    "dumps",
    "encode_body",
    "encode_entry",
    "encode_entry_bytes",
    "redact_headers",
    "titled",
    "with_seq",
]

BODY_CAP = 64 * 1024
"""Bytes of one request body the journal keeps; past this it keeps a truncated text and says so."""
REDACTED = "[redacted]"
_REDACTED_BYTES = REDACTED.encode()
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
"""Headers (lowercase) whose value is always redacted, whatever it is."""

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class NoBody:
    """Marks a body that was not decoded (none sent, or not JSON): the entry keeps its raw text."""


def dumps(value: object) -> bytes:
    """``value`` as compact RFC 8259 JSON bytes; ``ValueError`` (non-finite number), ``UnicodeEncodeError``
    (lone surrogate) or ``RecursionError`` (too deep) when it cannot be.
    """
    return _ENCODER.encode(value).encode("utf-8")


def _holds_any(data: bytes, forms: Iterable[bytes]) -> bool:
    return any(form in data for form in forms)


def redact_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers as a dict, credential headers and any value containing one of ``secrets`` (in any of its
    :func:`~mock_server.contract.http.secret_forms`, e.g. percent-encoded) redacted."""
    forms = _forms(tuple(secrets))
    kept: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in CREDENTIAL_HEADERS or (
            forms and _holds_any(value.encode("utf-8", "surrogateescape"), forms)
        ):
            kept[name] = REDACTED
        else:
            kept[name] = value
    return kept


def titled(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers with title-case names (``content-type`` → ``Content-Type``), repeated names joined with a comma."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.title()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return list(joined.items())


def _scrub(encoded: bytes, texts: Iterable[bytes]) -> bytes:
    """``encoded`` (body members) with each secret's JSON text replaced by ``[redacted]``, still valid JSON.

    A replacement that would break an escape sequence keeps no body at all (``body_issue``
    ``redacted``) rather than a secret or invalid JSON.
    """
    for text in texts:
        encoded = encoded.replace(text, REDACTED.encode())
    try:
        json.loads(b"{" + encoded + b"}")
    except ValueError:
        return b'"body":null,"body_issue":"redacted"'
    return encoded


def _raw_text(raw: bytes) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), "not_utf8"


def encode_body(
    raw: bytes | None, body: object = NoBody, issue: str | None = None, secrets: Iterable[str] = ()
) -> bytes:
    """The body members of an entry (``"body":…`` and the flags), as JSON text without braces.

    ``raw`` is what was received (``None``: nothing read); ``body`` what it decoded to, or
    :class:`NoBody` when it did not decode; ``issue`` why not (e.g. ``invalid_json``). Any of
    ``secrets`` found in it, in any of its :func:`~mock_server.contract.http.secret_forms`
    (percent-encoded, ``\\u``-escaped, UTF-16…), reads ``[redacted]``: in the bytes received
    first, so that cutting a large body never keeps part of a secret, then in the JSON written.
    """
    forms = _forms(tuple(secrets))
    size = 0 if raw is None else len(raw)
    scrubbed = False
    if forms and raw:
        for form in forms:
            if form in raw:
                raw = raw.replace(form, _REDACTED_BYTES)
                scrubbed = True
    encoded = _encode_body(raw, body, issue, size)
    found = [form for form in forms if form in encoded]
    return _scrub(encoded, found) if found or scrubbed else encoded


def _forms(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """Every form of every non-empty secret, longest first (computed once for secrets of usual length)."""
    return _known_forms(secrets) if sum(map(len, secrets)) <= 1024 else _forms_of(secrets)


@functools.lru_cache(maxsize=64)
def _known_forms(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    return _forms_of(secrets)


def _forms_of(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    found = {form for secret in secrets if secret for form in secret_forms(secret)}
    return tuple(sorted(found, key=len, reverse=True))


def _encode_body(raw: bytes | None, body: object, issue: str | None, size: int) -> bytes:
    if raw is None or (not raw and body is NoBody):
        return b'"body":null'
    if size > BODY_CAP:
        text = raw[:BODY_CAP].decode("utf-8", "ignore")  # a cut may split one character
        extra = f',"body_issue":{_ENCODER.encode(issue)}' if issue else ""
        return b'"body":null,"body_text":%s,"body_truncated":true,"body_bytes":%d%s' % (
            dumps(text),
            size,
            extra.encode(),
        )
    if body is not NoBody:
        if type(body) is dict and b"\\" not in raw and all(type(value) is str for value in body.values()):
            # Strings only and no escape sequences: the text received is already the strict JSON to keep.
            return b'"body":' + raw.strip()
        try:
            return b'"body":' + dumps(body)
        except UnicodeEncodeError:
            issue = "lone_surrogate"
        except RecursionError:
            issue = "too_deep"
        except ValueError:
            issue = "non_finite_number"
    text, text_issue = _raw_text(raw)
    return b'"body":null,"body_text":%s,"body_issue":%s' % (dumps(text), dumps(text_issue or issue or "invalid_json"))


def encode_entry(
    *,
    time: float,
    method: str,
    path: str,
    status: int | None,
    headers: dict[str, str],
    body: bytes = b'"body":null',
) -> bytes:
    """One journal entry; ``body`` is what :func:`encode_body` returned."""
    head = {"time": time, "method": method, "path": path, "status": status, "headers": headers}
    return dumps(head)[:-1] + b"," + body + b"}"


def encode_entry_bytes(
    *,
    time: float,
    method: str,
    path: str,
    status: int | None,
    headers: bytes,
    body: bytes = b'"body":null',
    outcome: str | None = None,
    stub: str | None = None,
    off_contract: bool = False,
    error: tuple[str, str | None] | None = None,
) -> bytes:
    """:func:`encode_entry` with the headers object already encoded (``dumps`` of :func:`redact_headers`),
    the request's ``outcome``, the ``error`` the mock answered (its envelope's ``message`` and
    ``param``) and, for a stubbed answer, the ``stub`` id (and ``off_contract``)."""
    answered = b"" if stub is None else b',"stub":' + dumps(stub) + (b',"off_contract":true' if off_contract else b"")
    if error is not None:
        answered = b',"error":' + dumps({"message": error[0], "param": error[1]}) + answered
    return b'{"time":%r,"method":%s,"path":%s,"status":%s,"outcome":%s%s,"headers":%s,%s}' % (
        time,
        _text(method),
        _text(path),
        b"null" if status is None else b"%d" % status,
        b"null" if outcome is None else _text(outcome),
        answered,
        headers,
        body,
    )


@functools.lru_cache(maxsize=256)  # methods, paths and outcomes repeat from one request to the next
def _text(value: str) -> bytes:
    """``value`` as a JSON string (bytes that cannot be UTF-8, such as an undecodable path, replaced)."""
    return dumps(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def with_seq(seq: int, item: bytes) -> bytes:
    """A stored entry (a JSON object) with ``"seq": seq`` as its first member."""
    return b'{"seq":%d,%s' % (seq, item[1:]) if item != b"{}" else b'{"seq":%d}' % seq
