"""The journal keeps no part of a secret: scrubbed before a large body is cut, and in its common encodings.

Percent-encoded (either hex case, ``+`` for space, every byte escaped), JSON ``\\u``-escaped (either
case) or ``\\/``-escaped, and UTF-16 (either byte order): in a body of any size and in header values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
from flask import Flask

from mock_server.contract.http import secret_forms
from mock_server.mock import journal

TOKEN = "sk-live+Ab/cd=ef 0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/sora/v1/characters"


def _every_byte(text: str, case: Callable[[str], str] = str.upper) -> str:
    return "".join(case(f"%{byte:02x}") for byte in text.encode())


def _u_escaped(text: str) -> str:
    return "".join(f"\\u{ord(char):04x}" for char in text)


def _fragments(text: str) -> list[str]:
    """Pieces of the token a journal must not keep (its halves; the token has no common 10-character run)."""
    return [TOKEN[: len(TOKEN) // 2], TOKEN[len(TOKEN) // 2 :], TOKEN[:5]]


def _journaled(make_app: Callable[..., Flask], raw: bytes, headers: dict[str, str] | None = None) -> str:
    client = make_app(token=TOKEN).test_client()
    client.post(PATH, data=raw, headers={**AUTH, "Content-Type": "application/json", **(headers or {})})
    entries = client.get("/__mock/requests").get_json()
    assert len(entries) == 1
    return json.dumps(entries[0], ensure_ascii=False)


@pytest.mark.parametrize("offset", [-20, -10, -5, -1, 0, 1])
def test_a_large_body_is_scrubbed_before_it_is_cut(make_app: Callable[..., Flask], offset: int) -> None:
    head = b'{"url": "https://example.com/v.mp4", "timestamps": "1,3", "note": "'
    pad = b"a" * (journal.BODY_CAP - len(head) + offset)  # the token straddles the cut
    raw = head + pad + TOKEN.encode() + b'", "more": "' + b"b" * 1000 + b'"}'
    entry = _journaled(make_app, raw)
    assert '"body_truncated": true' in entry and f'"body_bytes": {len(raw)}' in entry
    for fragment in _fragments(TOKEN):
        assert fragment not in entry


ENCODED = [
    quote(TOKEN, safe=""),
    re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(TOKEN, safe="")),
    quote_plus(TOKEN, safe=""),
    _every_byte(TOKEN),
    _every_byte(TOKEN, str.lower),
]


@pytest.mark.parametrize("form", ENCODED)
def test_percent_encoded_secrets_are_scrubbed_from_bodies_and_headers(
    make_app: Callable[..., Flask], form: str
) -> None:
    raw = json.dumps({"url": f"https://example.com/v.mp4?key={form}", "timestamps": "1,3"}).encode()
    entry = _journaled(make_app, raw, {"Referer": f"https://example.com/?key={form}"})
    assert form not in entry
    assert "[redacted]" in entry


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize(
    "raw_token",
    [_u_escaped(TOKEN), _u_escaped(TOKEN).upper().replace("\\U", "\\u"), json.dumps(TOKEN)[1:-1].replace("/", "\\/")],
)
def test_json_escaped_secrets_are_scrubbed(make_app: Callable[..., Flask], raw_token: str, big: bool) -> None:
    pad = "p" * (journal.BODY_CAP + 10) if big else "p"
    raw = f'{{"url": "https://example.com/v.mp4", "timestamps": "1,3", "note": "{raw_token}", "pad": "{pad}"}}'
    entry = _journaled(make_app, raw.encode())
    assert raw_token not in entry and raw_token.replace("\\", "\\\\") not in entry
    for fragment in _fragments(TOKEN):
        assert fragment not in entry


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16"])
def test_utf16_secrets_are_scrubbed(make_app: Callable[..., Flask], encoding: str) -> None:
    raw = json.dumps({"url": "https://example.com/v.mp4", "timestamps": "1,3", "note": TOKEN}).encode(encoding)
    entry = _journaled(make_app, raw)
    spaced = "\\u0000".join(TOKEN[:8])  # how the journal writes UTF-16 text read as UTF-8
    assert spaced not in entry and spaced.replace("\\u0000", "\u0000") not in entry


def test_secret_forms_cover_the_encodings() -> None:
    forms = secret_forms(TOKEN)
    for form in [TOKEN, *ENCODED, _u_escaped(TOKEN)]:
        assert form.encode() in forms
    assert TOKEN.encode("utf-16-le") in forms and TOKEN.encode("utf-16-be") in forms
    assert list(forms) == sorted(forms, key=len, reverse=True)


def test_forms_of_huge_presented_tokens_are_not_kept(make_app: Callable[..., Flask]) -> None:
    from mock_server.contract import http

    client = make_app(token=TOKEN).test_client()
    before = http._known_forms.cache_info().currsize
    for number in range(5):
        huge = f"{number}" + "t" * 20_000
        client.post(PATH, data=b'{"note": "' + huge.encode() + b'"}', headers={"Authorization": f"Bearer {huge}"})
    assert http._known_forms.cache_info().currsize <= before + 1
    assert huge not in json.dumps(client.get("/__mock/requests").get_json())
