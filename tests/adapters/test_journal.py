"""The journal: always RFC 8259 JSON, flagged raw text, truncation, redaction, duplicate keys, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server.mock import journal

from ..helpers import AUTH, TOKEN, VIDEO

PATH = "/sora/v1/characters"


def strict_loads(text: str | bytes) -> Any:
    """Parse as RFC 8259 JSON only: no NaN/Infinity constants."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not RFC 8259 JSON")

    return json.loads(text, parse_constant=refuse)


def post_raw(client: FlaskClient, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post(PATH, data=raw, headers={**AUTH, "Content-Type": "application/json", **(headers or {})})


def last_entry(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/__mock/requests")
    entries = strict_loads(response.get_data())
    assert isinstance(entries, list) and entries
    entry: dict[str, Any] = entries[-1]
    return entry


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        (b'{"url": "%s", "timestamps": "1,3", "x": 1e400}' % VIDEO.encode(), "non_finite_number"),
        (b'{"url": "%s", "timestamps": "1,3", "x": "\\ud800"}' % VIDEO.encode(), "lone_surrogate"),
        (b"[" * 974 + b"]" * 974, "too_deep"),
        (b'{"timestamps": "1,3", ', "invalid_json"),
        (b'{"url": "\xff"}', "not_utf8"),
    ],
    ids=["1e400", "lone-surrogate", "974-deep", "invalid-json", "not-utf8"],
)
def test_bodies_that_are_not_representable_are_kept_as_raw_text_with_a_flag(
    client: FlaskClient, raw: bytes, issue: str
) -> None:
    post_raw(client, raw)
    entry = last_entry(client)
    assert entry["body"] is None
    assert entry["body_issue"] == issue
    expected = raw.decode("utf-8", "backslashreplace")
    assert entry["body_text"] == expected
    assert "Infinity" not in client.get("/__mock/requests").get_data(as_text=True)


def test_a_huge_finite_number_is_answered_like_any_other_value_and_journaled_as_text(client: FlaskClient) -> None:
    answer = post_raw(client, b'{"url": "%s", "timestamps": "1,3", "x": 1e400}' % VIDEO.encode())
    assert answer.status_code in (200, 422)  # the rules judge the fields; the journal stays JSON
    assert last_entry(client)["body_issue"] == "non_finite_number"


def test_duplicate_keys_are_a_400_naming_the_key_and_journaled_raw(client: FlaskClient) -> None:
    raw = b'{"url": "%s", "timestamps": "1,3", "timestamps": "0,9"}' % VIDEO.encode()
    answer = post_raw(client, raw)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert (error["code"], error["param"]) == ("duplicate_key", "timestamps")
    entry = last_entry(client)
    assert (entry["status"], entry["body"], entry["body_issue"], entry["body_text"]) == (
        400,
        None,
        "duplicate_key",
        raw.decode(),
    )
    assert client.get("/__mock/characters").get_json() == []


def test_a_body_over_the_cap_is_truncated_and_flagged(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    raw = json.dumps({"url": VIDEO, "timestamps": "1,3", "pad": "é" * 100_000}).encode()
    assert post_raw(client, raw).status_code == 200
    entry = last_entry(client)
    assert entry["body"] is None and entry["body_truncated"] is True and entry["body_bytes"] == len(raw)
    assert len(entry["body_text"].encode()) <= journal.BODY_CAP
    assert raw.decode().startswith(entry["body_text"])


def test_every_credential_header_and_any_value_carrying_the_token_is_redacted(app: Flask) -> None:
    client = app.test_client(use_cookies=False)  # so the Cookie header goes out as given
    presented = "sk-presented-but-unconfigured-1234"
    headers = {
        "Proxy-Authorization": f"Bearer {TOKEN}",
        "Cookie": f"session={TOKEN}",
        "X-Api-Key": "anything",
        "X-Forwarded-Token": f"prefix-{TOKEN}-suffix",
        "X-Plain": "kept",
    }
    body = json.dumps({"url": VIDEO, "timestamps": "1,3"}).encode()
    post_raw(client, body, headers)
    entry = last_entry(client)
    for name in ("Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Forwarded-Token"):
        assert entry["headers"][name] == journal.REDACTED, name
    assert entry["headers"]["X-Plain"] == "kept"
    post_raw(client, body, {"Authorization": f"Bearer {presented}", "X-Echo": presented})
    assert last_entry(client)["headers"]["X-Echo"] == journal.REDACTED
    text = client.get("/__mock/requests").get_data(as_text=True)
    assert TOKEN not in text and presented not in text


def test_encode_body_and_entry_units() -> None:
    assert journal.encode_body(None) == b'"body":null'
    assert journal.encode_body(b"", journal.NoBody, "invalid_json") == b'"body":null'
    assert journal.encode_body(b'{"a":1}', {"a": 1}) == b'"body":{"a":1}'
    entry = journal.encode_entry(time=1.5, method="POST", path="/p", status=None, headers={"A": "b"})
    assert strict_loads(entry) == {
        "time": 1.5,
        "method": "POST",
        "path": "/p",
        "status": None,
        "headers": {"A": "b"},
        "body": None,
    }
    assert strict_loads(journal.with_seq(7, entry))["seq"] == 7
    assert journal.with_seq(3, b"{}") == b'{"seq":3}'


def test_lists_are_streamed_and_paged_by_seq(make_app: Callable[..., Flask]) -> None:
    client = make_app(journal_size=50).test_client()
    ids = []
    for i in range(60):
        answer = client.post(PATH, json={"url": VIDEO, "timestamps": f"{i},{i + 1}"}, headers=AUTH)
        ids.append(answer.get_json()["id"])
    response = client.get("/__mock/requests")
    assert response.is_streamed
    entries = strict_loads(response.get_data())
    assert [e["seq"] for e in entries] == list(range(11, 61))  # the newest 50
    page = client.get("/__mock/requests?limit=5&after=20").get_json()
    assert [e["seq"] for e in page] == [21, 22, 23, 24, 25]
    assert [e["body"]["timestamps"] for e in page] == [f"{i},{i + 1}" for i in range(20, 25)]
    assert client.get("/__mock/requests?after=60").get_json() == []
    assert client.get("/__mock/requests?limit=0").get_json() == []
    characters = client.get("/__mock/characters?after=55").get_json()
    assert [(c["seq"], c["id"]) for c in characters] == list(zip(range(56, 61), ids[55:], strict=True))


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("after=1.5", "after"),
        ("limit=99999999", "limit"),
        ("after=", "after"),
    ],
)
def test_bad_paging_parameters_are_a_400_naming_them(client: FlaskClient, query: str, param: str) -> None:
    for path in ("/__mock/requests", "/__mock/characters"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert (error["param"], error["code"]) == (param, "invalid_parameter")
