"""Odd bytes in a request target (path and query): every one is served or refused with a 4xx naming it.

Raw UTF-8 beyond Latin-1 (a full-width digit), invalid UTF-8 raw and percent-encoded, surrogate
encodings and control bytes, sent as raw bytes to ``sora-mock serve`` and through the Flask test
client (which hands the app the bytes granian would refuse itself). Never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from ..helpers import MockProcess, parse_answer, raw_exchange

WIDE = "２".encode()  # a full-width digit: UTF-8, not Latin-1
E_ACUTE = "é".encode()

# (raw target, status, param of a 400 invalid_parameter or None)
SERVED = [
    (b"/__mock/health?x=" + WIDE, 200, None),
    (b"/__mock/requests?x=" + WIDE, 200, None),
    (b"/__mock/characters?x=" + WIDE, 200, None),
    (b"/__mock/coverage?x=" + WIDE, 200, None),
    (b"/nowhere?x=" + WIDE, 404, None),
    (b"/__mock/nowhere?x=" + WIDE, 404, None),
    (b"/__mock/" + WIDE + b"?x=" + WIDE, 404, None),
    (b"/__mock/requests?code=" + E_ACUTE, 400, "code"),
    (b"/__mock/requests?code=%C3%A9", 400, "code"),
    (b"/__mock/requests?status=" + WIDE, 400, "status"),
    (b"/__mock/requests?limit=" + WIDE, 400, "limit"),
    (b"/__mock/characters?after=" + WIDE, 400, "after"),
    (b"/__mock/requests?status=%FF", 400, "status"),
    (b"/__mock/requests?" + WIDE + b"=1&limit=1", 200, None),
    (b"/__mock/requests?x=%ff%fe%00", 200, None),
    (b"/sora/v1/characters?x=" + WIDE, 405, None),
]
# bytes granian refuses before any app sees them; the Flask test client hands them on
INVALID = [
    (b"/__mock/requests?status=\xff", 400, "status"),
    (b"/__mock/requests?code=\xed\xa0\x80", 400, "code"),
    (b"/__mock/requests?code=\xc3", 400, "code"),
    (b"/__mock/requests?limit=1\x80", 400, "limit"),
    (b"/__mock/requests?\xff=1", 200, None),
    (b"/__mock/requests?x=\xff&limit=1", 200, None),
    (b"/__mock/health?x=\xff", 200, None),
    (b"/__mock/health?x=\x01\x7f", 200, None),
    (b"/__mock/h\xffealth", 404, None),
    (b"/nowhere\x01?\x00", 404, None),
]


def _check(status: int, body: bytes, want_status: int, param: str | None) -> None:
    assert status == want_status, body[:300]
    if status >= 400:
        error = json.loads(body)["error"]
        assert error["type"] != "server_error"
        if status == 400:
            assert error["code"] == "invalid_parameter" and error["param"] == param, error


@pytest.mark.parametrize(("target", "status", "param"), SERVED + INVALID)
def test_flask_app_serves_or_names_the_parameter(
    client: FlaskClient, target: bytes, status: int, param: str | None
) -> None:
    path, _, query = target.partition(b"?")
    answer = client.get(path.decode("latin-1"), environ_overrides={"QUERY_STRING": query.decode("latin-1")})
    _check(answer.status_code, answer.get_data(), status, param)


@pytest.fixture(scope="module")
def served() -> Iterator[MockProcess]:
    with MockProcess([]) as server:
        yield server


def _raw_get(server: MockProcess, target: bytes) -> tuple[int, bytes]:
    request = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    status, _, body = parse_answer(raw_exchange((server.host, server.port), request))
    return status, body


@pytest.mark.slow
@pytest.mark.parametrize(("target", "status", "param"), SERVED)
def test_served_mock_serves_or_names_the_parameter(
    served: MockProcess, target: bytes, status: int, param: str | None
) -> None:
    _check(*_raw_get(served, target), status, param)


@pytest.mark.slow
@pytest.mark.parametrize("target", [t for t, _, _ in INVALID])
def test_served_mock_refuses_undecodable_targets_with_a_4xx(served: MockProcess, target: bytes) -> None:
    """granian refuses a target that is not UTF-8 or holds control bytes (400) before the app sees it."""
    status, body = _raw_get(served, target)
    assert 400 <= status < 500, body[:300]
    if body:
        assert json.loads(body)["error"]["type"] != "server_error"
