"""Judging an upstream answer against the contract, and what a finding shows of the request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..contract.http import is_json_type
from ..contract.rules import Contract, check_character, check_error_body
from .recorder import scrub

__all__ = ["CONFORMING_STATUSES", "DECLARED_STATUSES", "judge_answer", "request_summary"]

DECLARED_STATUSES = frozenset({200, 400, 401, 404, 405, 413, 422, 429, 500, 503})
"""Statuses the contract declares for the endpoint."""
CONFORMING_STATUSES = frozenset({200, 401, 429, 500, 503})
"""What a conforming relay may answer to a request that obeys every rule (401: the token is the relay's to judge)."""
_SUMMARY_FIELDS = ("url", "from_task", "timestamps", "model")


def judge_answer(
    status: int, headers: Mapping[str, str], body: bytes, contract: Contract, *, conforming: bool = True
) -> list[str]:
    """What is wrong with an upstream answer to ``POST /sora/v1/characters`` (empty when it conforms).

    ``headers`` is case-insensitive (an ``httpx.Headers``); ``body`` is decoded (no content
    coding). ``conforming`` says the request obeyed every rule, so only :data:`CONFORMING_STATUSES`
    fit.
    """
    problems: list[str] = []
    if status not in DECLARED_STATUSES:
        problems.append(
            f"status {status} is not one the contract declares ({', '.join(map(str, sorted(DECLARED_STATUSES)))})"
        )
    elif conforming and status not in CONFORMING_STATUSES:
        problems.append(
            f"status {status} to a request that obeys every rule "
            f"(expected {', '.join(map(str, sorted(CONFORMING_STATUSES)))})"
        )
    content_type = headers.get("Content-Type")
    if not is_json_type(content_type):
        problems.append(f"Content-Type is {content_type or 'missing'}, not application/json")
    try:
        data: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        problems.append("the body is not JSON")
        return problems
    if status == 200:
        problems.extend(check_character(data, contract))
    elif status >= 400:
        problems.extend(check_error_body(data))
    if status == 429:
        retry_after = headers.get("Retry-After")
        if retry_after is None:
            problems.append("a 429 without Retry-After")
        elif not retry_after.strip().isdigit():
            problems.append(f"Retry-After {retry_after!r} is not a whole number of seconds")
    return problems


def _printable(value: Any) -> Any:
    """``value`` with every string UTF-8 can hold: a lone surrogate becomes the text ``\\ud800``."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def request_summary(method: str, path: str, body: object, token: str) -> dict[str, Any]:
    """Method, path and the contract's fields of the body: what a finding shows of a request, never the token."""
    summary: dict[str, Any] = {"method": method, "path": path}
    if isinstance(body, Mapping):
        summary["body"] = {  # scrubbed before the cut: a cut never keeps the first characters of a token
            name: (scrub(_printable(value), token)[:200] if isinstance(value, str) else value)
            for name, value in body.items()
            if name in _SUMMARY_FIELDS
        }
    return dict(scrub(_printable(summary), token))
