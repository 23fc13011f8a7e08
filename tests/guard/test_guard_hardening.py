"""The guard against hostile upstream URL shapes, near-endpoint paths, odd queries and headers.

The upstream is a :class:`~tests.misbehaving_relay.MisbehavingRelay` on 127.0.0.1 that answers
every request with a plain character (200), so a create that reached it would have been billed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from mock_server.relay.guard import GUARD_HEADER
from mock_server.relay.paths import loose_path, names_path

from ..helpers import VIDEO, GuardProcess, parse_answer, raw_exchange
from ..misbehaving_relay import CHARACTER, MisbehavingRelay

PATH = "/sora/v1/characters"
TOKEN = "guard-hardening-secret-5e2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID = {"url": VIDEO, "timestamps": "1,3"}
BROKEN = {"url": VIDEO, "timestamps": "1,9"}


@pytest.fixture
def relay() -> Iterator[MisbehavingRelay]:
    with MisbehavingRelay("trickle-body", pause=0, steps=0) as server:  # a plain 200 character at once
        yield server


def exchange(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, no blank line) and ``body`` as bytes; read the answer to EOF."""
    length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
    request = head + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + length + b"\r\n" + body
    return parse_answer(raw_exchange(("127.0.0.1", port), request, timeout=30))


# --- item 1: every upstream URL shape ------------------------------------------------------------

UPSTREAM_SHAPES = [
    ("/sora", "/v1/characters"),
    ("/sora/", "/v1/characters"),
    ("/sora/v1", "/characters"),
    ("/sora/v1/", "/characters"),
    ("/sora/v1", "/characters/"),
    ("/sora/v1", "/./characters"),
    ("/%73ora/v1", "/characters"),
    ("/SORA/V1", "/Characters"),
    ("/sora//v1", "/characters"),
    ("/sora/v1;x=1", "/characters"),
    ("/sora/v1/characters", "/"),
    ("/sora/v1/x/..", "/characters"),
    ("/sora/v1/%2e%2e/v1", "/characters"),
    ("/gateway/sora", "/v1/characters"),  # a gateway mounting the relay below a path
    ("/api", "/sora/v1/characters"),
    ("", "/sora/v1/characters"),
]


@pytest.mark.parametrize(("prefix", "path"), UPSTREAM_SHAPES)
def test_the_path_the_upstream_receives_decides_what_is_budgeted(
    prefix: str, path: str, relay: MisbehavingRelay, guard_client: Callable[..., FlaskClient]
) -> None:
    guard = guard_client(upstream=relay.url + prefix, pass_through=True, max_creates=1)
    refused = guard.post(path, json=BROKEN, headers=AUTH)
    assert (refused.status_code, refused.headers[GUARD_HEADER]) == (422, "blocked")
    answers = [guard.post(path, json=VALID, headers=AUTH) for _ in range(3)]
    assert [(a.status_code, a.headers[GUARD_HEADER]) for a in answers] == [
        (200, "forwarded"),
        (429, "budget"),
        (429, "budget"),
    ]
    assert len(relay.seen) == 1  # one create reached the upstream, the rule-breaking one never did
    data = guard.get("/__guard/report").get_json()
    assert (data["creates"], data["budget_left"], data["over_budget"], data["passed"]) == (1, 0, 2, 0)
    assert guard.get(path, headers=AUTH).status_code == 405  # the endpoint takes POST only


def test_a_prefix_that_only_partly_matches_is_not_the_endpoint(
    relay: MisbehavingRelay, guard_client: Callable[..., FlaskClient]
) -> None:
    guard = guard_client(upstream=relay.url + "/sor", pass_through=True, max_creates=0)
    answer = guard.post("/a/v1/characters", json=VALID, headers=AUTH)  # the upstream gets /sor/a/v1/characters
    assert (answer.status_code, answer.headers[GUARD_HEADER]) == (200, "passed")
    assert [seen.path for seen in relay.seen] == ["/sor/a/v1/characters"]
    assert not names_path("/xsora/v1/characters", "/sora/v1/characters")


# --- item 11: near-endpoint paths are refused, never forwarded unchecked ---------------------------

NEAR_ENDPOINT = [
    "/sora/v1/characters%20",
    "/sora/v1/characters.json",
    "/sora/v1/characters%09",
    "/sora/v1/characters%E2%80%8B",  # a zero-width space
    "/sora/v1/characters~",
    "/sora/v1/%EF%BD%83haracters",  # a full-width c (NFKC: c)
    "/sora%20/v1/characters",
    "/sora/v1/characters.json/",
]


@pytest.mark.parametrize("path", NEAR_ENDPOINT)
def test_near_endpoint_paths_are_refused_locally_with_pass_through(
    path: str, relay: MisbehavingRelay, guard_client: Callable[..., FlaskClient]
) -> None:
    guard = guard_client(upstream=relay.url, pass_through=True, max_creates=5)
    for method in ("POST", "PUT", "GET"):
        answer = guard.open(path, method=method, json=VALID, headers=AUTH)
        assert (answer.status_code, answer.headers[GUARD_HEADER]) == (404, "blocked"), method
        assert answer.get_json()["error"]["code"] == "near_endpoint"
    assert relay.seen == []
    assert loose_path("/sora/v1/characters.json") == "/sora/v1/characters"


def test_near_endpoint_below_a_prefix_is_refused_and_real_sub_paths_pass(
    relay: MisbehavingRelay, guard_client: Callable[..., FlaskClient]
) -> None:
    guard = guard_client(upstream=relay.url + "/sora", pass_through=True)
    assert guard.post("/v1/characters.json", json=VALID, headers=AUTH).status_code == 404
    assert relay.seen == []
    for path in ("/v1/characters/ch_1", "/v1/charactersheet", "/v2/characters"):
        assert guard.get(path, headers=AUTH).headers[GUARD_HEADER] == "passed", path
    assert [seen.path for seen in relay.seen] == [
        "/sora/v1/characters/ch_1",
        "/sora/v1/charactersheet",
        "/sora/v2/characters",
    ]


# --- item 2: a request target that is not Latin-1 --------------------------------------------------


def test_raw_utf8_queries_are_served_through_the_real_server(relay: MisbehavingRelay) -> None:
    args = ["--upstream", relay.url, "--max-creates", "1"]
    body = json.dumps(VALID).encode()
    post = b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Type: application/json"
    with GuardProcess(args) as guard:
        for query in (b"x=\xef\xbc\x92", b"\xc3\xa9=\xc3\xa9", b"x=%ff", b"x=\xf0\x9f\x98\x80"):
            status, headers, payload = exchange(guard.port, b"GET /__guard/report?" + query + b" HTTP/1.1")
            assert (status, headers.get("x-sora-guard")) == (200, "local"), query
            assert json.loads(payload)["max_creates"] == 1
            status, headers, payload = exchange(guard.port, b"GET /nothing?" + query + b" HTTP/1.1")
            assert (status, headers.get("x-sora-guard")) == (404, "blocked"), query
            assert json.loads(payload)["error"]["code"] == "not_found"
        status, headers, _ = exchange(guard.port, b"POST /sora/v1/characters?x=\xef\xbc\x92 HTTP/1.1\r\n" + post, body)
        assert (status, headers.get("x-sora-guard")) == (200, "forwarded")
        status, headers, _ = exchange(guard.port, b"POST /sora/v1/characters?x=\xc3\xa9 HTTP/1.1\r\n" + post, body)
        assert (status, headers.get("x-sora-guard")) == (429, "budget")
    assert [seen.path for seen in relay.seen] == ["/sora/v1/characters?x=%EF%BC%92"]  # the query as sent, encoded


# --- item 9: every answer of the guard is marked ---------------------------------------------------


def test_the_serving_layers_own_refusals_carry_the_guard_header(relay: MisbehavingRelay) -> None:
    post = b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Type: application/json"
    with GuardProcess(["--upstream", relay.url]) as guard:
        status, headers, payload = exchange(
            guard.port, b"POST /sora/v1/characters HTTP/1.1\r\n" + post + b"\r\nContent-Length: 99999999"
        )
        assert (status, headers.get("x-sora-guard")) == (413, "blocked")
        assert json.loads(payload)["error"]["code"] == "request_too_large"
        status, headers, payload = exchange(guard.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1")
        assert (status, headers.get("x-sora-guard")) == (414, "blocked")
    assert relay.seen == []


class ConnectionListingRelay(MisbehavingRelay):
    """Answers a character with ``Connection: close, X-Hop-Secret, x-other`` naming two headers it also sends."""

    def _answer(self, conn: socket.socket) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(CHARACTER)}\r\nX-Hop-Secret: s3cr3t\r\nX-Other: 1\r\nX-Kept: yes\r\n"
            "Connection: close, X-Hop-Secret\r\nConnection: x-other\r\n\r\n"
        )
        conn.sendall(head.encode() + CHARACTER)


@pytest.mark.parametrize("path", ["/sora/v1/characters", "/elsewhere"])
def test_headers_named_in_connection_are_dropped_both_ways(path: str, guard_client: Callable[..., FlaskClient]) -> None:
    with ConnectionListingRelay("listing") as relay:
        guard = guard_client(upstream=relay.url, pass_through=True)
        sent = {**AUTH, "Connection": "keep-alive, X-Client-Hop", "X-Client-Hop": "c1", "X-Client-Kept": "k"}
        answer = guard.post(path, json=VALID, headers=sent)
        assert answer.status_code == 200
        assert "X-Hop-Secret" not in answer.headers and "X-Other" not in answer.headers
        assert answer.headers["X-Kept"] == "yes"
        [seen] = relay.seen
        assert "x-client-hop" not in seen.headers and seen.headers["x-client-kept"] == "k"


# --- item 8: recordings keep no token, nor a fragment or another spelling of it ----------------------

SECRET = "sk-Zq7/Vx+Rt5_Lm9Pw3Kd8"


class EchoingRelay(MisbehavingRelay):
    """Answers ``body`` as text/plain."""

    body = b""

    def _answer(self, conn: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(self.body)}\r\n"
        head += "Connection: close\r\n\r\n"
        conn.sendall(head.encode() + self.body)


def _spellings(token: str) -> list[bytes]:
    import base64
    import re
    import urllib.parse

    data = token.encode()
    return [
        data,
        urllib.parse.quote(token, safe="").encode(),
        re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(token, safe="")).encode(),
        json.dumps(token, ensure_ascii=True)[1:-1].replace("/", "\\/").encode(),
        "".join(f"\\u{ord(c):04x}" for c in token).encode(),
        token.encode("utf-16-le"),
        token.encode("utf-16-be"),
        base64.b64encode(b"x" + data),
        base64.urlsafe_b64encode(b"xy" + data),
        urllib.parse.quote(token[:5], safe="").encode() + data[5:],  # partly encoded
        urllib.parse.quote(urllib.parse.quote(token, safe=""), safe="").encode(),  # encoded twice
        data.hex().encode(),
        data.hex().upper().encode(),
    ]


def test_a_recording_is_scrubbed_before_it_is_cut_and_in_every_spelling(
    guard_client: Callable[..., FlaskClient], tmp_path: Any
) -> None:
    with EchoingRelay("echo") as relay:
        guard = guard_client(upstream=relay.url, pass_through=True, record_dir=str(tmp_path))
        auth = {"Authorization": f"Bearer {SECRET}"}
        for cut_at in (1995, 1999, 2000 - len(SECRET) + 1):
            relay.body = b"a" * cut_at + SECRET.encode() + b" tail"  # the token straddles the 2,000-character cut
            assert guard.get("/notes", headers=auth).status_code == 200
        relay.body = b" | ".join(_spellings(SECRET))
        assert guard.get("/notes", headers=auth).status_code == 200
        written = b"".join(path.read_bytes() for path in tmp_path.glob("*.json"))
        assert len(list(tmp_path.glob("*.json"))) == 4
        assert SECRET[:6].encode() not in written  # not even the first characters
        for form in _spellings(SECRET):
            core = form[4:-4] if len(form) > 12 else form
            assert core not in written, form


def test_sora_mock_record_scrubs_before_it_cuts_too() -> None:
    from mock_server.mock.fixtures import case
    from mock_server.relay.recorder import record_cases

    with EchoingRelay("echo") as relay:
        relay.body = b"a" * 1995 + SECRET.encode() + b" and " + SECRET.encode("utf-16-le")
        document = record_cases([case("url-form")], relay.url, SECRET, timeout=10)
    written = json.dumps(document).encode()
    assert SECRET[:5].encode() not in written and b"aaaa[reda" in written  # the mark is what the cut shortened


# --- item 5: a slow upstream never starves the guard's local answers ----------------------------------


class SlowRelay(MisbehavingRelay):
    """A trickling relay whose listen queue holds every connection of the test."""

    def __init__(self) -> None:
        super().__init__("trickle-body", pause=0.1, steps=60)  # about 6 s an answer
        self.server.socket.listen(128)


def test_local_answers_never_wait_behind_forwarded_creates() -> None:
    creates = 12  # more than the guard's 8 threads
    with SlowRelay() as relay, GuardProcess(["--upstream", relay.url, "--max-creates", "50"]) as guard:
        done: list[int] = []

        def create() -> None:
            done.append(httpx.post(guard.url(PATH), json=VALID, headers=AUTH, timeout=60).status_code)

        threads = [threading.Thread(target=create) for _ in range(creates)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(relay.seen) < 8 and time.monotonic() < deadline:  # every app thread would now be waiting
            time.sleep(0.05)
        with httpx.Client(timeout=60) as client:
            assert client.get(guard.url("/__guard/report")).status_code == 200
            refused = client.post(guard.url(PATH), json=BROKEN, headers=AUTH)
            assert refused.status_code == 422
            reset = client.post(guard.url("/__guard/reset"), headers={"Content-Type": "application/json"})
            assert reset.status_code == 200
        assert done == []  # all three answered while every forwarded create still waited on the upstream
        for thread in threads:
            thread.join(timeout=60)
        assert done == [200] * creates
        assert len(relay.seen) == creates


def test_a_findings_request_summary_is_scrubbed_before_it_is_cut(
    relay: MisbehavingRelay, guard_client: Callable[..., FlaskClient]
) -> None:
    guard = guard_client(upstream=relay.url)
    relay.behavior = "gzip-lie"  # an unreadable answer: a finding that shows the request
    url = "https://example.com/" + "a" * 170 + SECRET + ".mp4"  # the token straddles the 200-character cut
    answer = guard.post(PATH, json={"url": url, "timestamps": "1,3"}, headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 502
    [finding] = guard.get("/__guard/report").get_json()["findings"]
    shown = json.dumps(finding)
    assert SECRET[:5] not in shown and "[reda" in finding["request"]["body"]["url"]
