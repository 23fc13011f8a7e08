"""Hostile or unusual clients against a real `sora-mock serve`: each gets a clear answer or nothing billed.

Half-closed clients, chunked trailers, over-long request lines and header sections, a ``Host``
that would steer a redirect, the token inside a body, and many distinct large header sets.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from mock_server import create_app
from mock_server.mock import core
from mock_server.mock.compose import composition_of

from ..helpers import MockProcess

pytestmark = pytest.mark.slow

TOKEN = "hostile-test-token-0123456789"
PATH = "/sora/v1/characters"
BODY = b'{"url": "https://example.com/v.mp4", "timestamps": "1,3"}'


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess([], env={"SORA_MOCK_TOKEN": TOKEN}) as served:
        yield served


def _exchange(server: MockProcess, raw: bytes, *, half_close: bool = False) -> tuple[int | None, dict[str, str], bytes]:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    if not answer:
        return None, {}, b""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").lower().split("\r\n"):
        if line.startswith("content-length:"):
            return len(body) >= int(line.split(":", 1)[1])
    return False


def _post(path: str = PATH, extra: str = "", body: bytes = BODY, auth: str = f"Bearer {TOKEN}") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n{extra}"
    return f"{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def _journal(server: MockProcess) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = requests.get(server.url("/__mock/requests"), timeout=10).json()
    return entries


def test_a_half_closed_client_creates_nothing_and_is_not_journaled(server: MockProcess) -> None:
    before = len(_journal(server))
    characters = len(requests.get(server.url("/__mock/characters"), timeout=10).json())
    status, _, _ = _exchange(server, _post(), half_close=True)
    # granian closes a connection whose client shut its write side, so no answer can reach it:
    # then nothing may be created or journaled either.
    assert status is None
    assert len(_journal(server)) == before
    assert len(requests.get(server.url("/__mock/characters"), timeout=10).json()) == characters
    status, _, _ = _exchange(server, _post())  # the same request, not half-closed, is created
    assert status == 200 and len(_journal(server)) == before + 1


def test_a_chunked_body_with_a_trailer_is_accepted(server: MockProcess) -> None:
    chunks = b"%x\r\n%s\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n" % (len(BODY), BODY)
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n"
    status, _, body = _exchange(server, f"{head}Trailer: X-Checksum\r\n\r\n".encode() + chunks)
    assert status == 200, body
    assert json.loads(body)["id"].startswith("ch_")
    status, _, body = _exchange(server, head.encode() + b"\r\n" + chunks)  # no Trailer announcement: the same
    assert status == 200, body
    broken = b"zz\r\n%s\r\n0\r\n\r\n" % BODY  # a chunk size that is not hex is still refused
    status, _, body = _exchange(server, head.encode() + b"\r\n" + broken)
    assert status == 400 and json.loads(body)["error"]["code"] == "malformed_body"


def test_an_overlong_request_target_is_a_414_envelope(server: MockProcess) -> None:
    status, headers, body = _exchange(server, _post(path=PATH + "?" + "q" * 20_000))
    assert status == 414 and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "uri_too_long" and "8192" in error["message"]


def test_an_oversized_header_section_is_a_431_envelope(server: MockProcess) -> None:
    status, headers, body = _exchange(server, _post(extra=f"X-Padding: {'p' * 100_000}\r\n"))
    assert status == 431 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "headers_too_large"
    status, _, _ = _exchange(server, _post(extra=f"X-Padding: {'p' * 30_000}\r\n"))  # under the limit: served
    assert status == 200


def test_every_401_names_the_bearer_scheme(server: MockProcess) -> None:
    for auth in ("", "Basic dXNlcjpwYXNz", "Bearer wrong-token"):
        raw = _post(auth=auth) if auth else _post().replace(f"Authorization: Bearer {TOKEN}\r\n".encode(), b"")
        status, headers, body = _exchange(server, raw)
        assert status == 401, body
        assert headers["www-authenticate"].lower().startswith("bearer")


def test_no_answer_builds_a_url_from_the_host_header(server: MockProcess) -> None:
    for path in ("/sora//v1/characters", "//sora/v1/characters"):
        raw = _post(path=path).replace(b"Host: 127.0.0.1", b"Host: evil.example")
        status, headers, body = _exchange(server, raw)
        assert status == 200, body  # merged slashes are the endpoint; never a redirect
        assert "location" not in headers and b"evil.example" not in body
    assert _journal(server)[-1]["path"] == "//sora/v1/characters"  # journaled as received
    status, headers, _ = _exchange(server, _post(path="/__mock//health").replace(b"POST", b"GET"))
    assert status == 404 and "location" not in headers


def test_the_configured_token_inside_a_body_is_redacted_in_the_journal(server: MockProcess) -> None:
    body = json.dumps({"url": f"https://example.com/v.mp4?key={TOKEN}", "timestamps": "1,3", "note": TOKEN}).encode()
    status, _, _ = _exchange(server, _post(body=body))
    assert status == 200
    text = requests.get(server.url("/__mock/requests"), timeout=10).text
    assert TOKEN not in text
    entry = _journal(server)[-1]
    assert entry["body"] == {
        "url": "https://example.com/v.mp4?key=[redacted]",
        "timestamps": "1,3",
        "note": "[redacted]",
    }


def test_the_journal_header_cache_is_bounded_in_bytes() -> None:
    endpoint = composition_of(create_app({"token": TOKEN})).endpoint
    for n in range(400):
        headers = (("authorization", f"Bearer {TOKEN}"), ("x-unique", f"{n:05d}" + "h" * 5_000))
        endpoint.handle(core.Request("POST", PATH, headers, BODY))
    assert 0 < endpoint._header_cache_bytes <= core._HEADER_CACHE_BYTES  # 400 x 5 KB sets: it started over
    assert len(endpoint._header_cache) < 400
    assert all(sum(len(a) + len(b) for a, b in key) <= core._HEADER_CACHE_ITEM for key in endpoint._header_cache)
