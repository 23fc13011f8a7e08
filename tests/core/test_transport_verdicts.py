"""The transport's verdicts, decided once in :mod:`mock_server.contract.http` from the facts.

Every adapter (the RSGI glue, the Flask route, the respx router) gathers the facts (declared
length, bytes read, elapsed time, target length, header bytes) and maps the verdict to its own kind
of answer; these tests pin each verdict at its boundary.
"""

from __future__ import annotations

import io

import pytest

from mock_server.contract.http import (
    MAX_HEADER_BYTES,
    MAX_TARGET_BYTES,
    body_size_verdict,
    framing_verdict,
    head_verdict,
    time_verdict,
)
from mock_server.web import read_capped, read_upto


def _code(verdict: object) -> tuple[int, str] | None:
    return None if verdict is None else (verdict.status, verdict.code)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("declared", "read", "expected"),
    [
        (None, 0, None),
        (100, 0, None),
        (101, 0, (413, "request_too_large")),  # announced over the limit: refused before reading
        (None, 100, None),
        (None, 101, (413, "request_too_large")),  # read past the limit (a chunked body)
    ],
)
def test_the_size_verdict_refuses_one_byte_past_the_limit(
    declared: int | None, read: int, expected: tuple[int, str] | None
) -> None:
    assert _code(body_size_verdict(declared, read, 100)) == expected


def test_the_size_verdict_names_the_limit() -> None:
    verdict = body_size_verdict(None, 2049, 2048)
    assert verdict is not None and "2048 bytes" in verdict.message


def test_the_time_verdict_is_408_once_the_read_timeout_has_passed() -> None:
    assert time_verdict(4.99, 5.0) is None
    verdict = time_verdict(5.0, 5.0)
    assert _code(verdict) == (408, "request_timeout") and verdict is not None and "5 seconds" in verdict.message


@pytest.mark.parametrize(
    ("declared", "received", "expected"),
    [(10, 10, None), (None, 3, None), (10, 9, (400, "incomplete_body")), (10, None, (400, "incomplete_body"))],
)
def test_the_framing_verdict_is_a_body_shorter_than_announced(
    declared: int | None, received: int | None, expected: tuple[int, str] | None
) -> None:
    assert _code(framing_verdict(declared, received)) == expected


@pytest.mark.parametrize(
    ("target", "headers", "expected"),
    [
        (MAX_TARGET_BYTES, MAX_HEADER_BYTES, None),
        (MAX_TARGET_BYTES + 1, 0, (414, "uri_too_long")),
        (0, MAX_HEADER_BYTES + 1, (431, "headers_too_large")),
        (MAX_TARGET_BYTES + 1, MAX_HEADER_BYTES + 1, (414, "uri_too_long")),  # the request line is judged first
    ],
)
def test_the_head_verdict_judges_the_target_then_the_headers(
    target: int, headers: int, expected: tuple[int, str] | None
) -> None:
    assert _code(head_verdict(target, headers)) == expected


@pytest.mark.parametrize("size", [0, 99, 100, 101, 70_000])
def test_a_chunked_read_stops_one_byte_past_the_limit(size: int) -> None:
    data = b"x" * size
    read = read_upto(io.BytesIO(data), 100)
    assert read == data[:101]
    assert read_capped(io.BytesIO(data), 100) == (data if size <= 100 else None)
