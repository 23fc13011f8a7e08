"""The hand-picked boundary cases: one deterministic request each, and how to build it for a target."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .target import TASK, TASK_FIELD, UNKNOWN_TOKEN_NOTE, URL_FIELD, VIDEO, AnyCase, Target

__all__ = [
    "BOUNDARY_CASES",
    "BoundaryCase",
    "make_case",
    "skip_reason",
]


@dataclass(frozen=True)
class BoundaryCase:
    """One deterministic request: a JSON body (or raw bytes) and an auth variant."""

    name: str
    body: object = None
    raw: bytes | None = None
    auth: str = "token"
    """``token``, ``none``, ``basic`` or ``wrong``."""
    must_create: bool = False
    """The canonical create: 200 required in both profiles (a server refusing everything fails)."""


def _u(window: str, **extra: object) -> dict[str, object]:
    return {URL_FIELD: VIDEO, "timestamps": window, **extra}


BOUNDARY_CASES: tuple[BoundaryCase, ...] = (
    BoundaryCase("url_1_3", _u("1,3"), must_create=True),
    BoundaryCase("url_span_exactly_1", _u("0,1")),
    BoundaryCase("url_span_exactly_3", _u("0,3")),
    BoundaryCase("url_decimals", _u("1.5,4.5")),
    BoundaryCase("url_spaces", _u(" 1 , 3 ")),
    BoundaryCase("url_with_model", _u("0.5,2.5", model="sora-2-character")),
    BoundaryCase("url_with_other_model", _u("1,3", model="sora-2-pro-character")),
    BoundaryCase("url_extra_field", _u("1,3", note="ignored")),
    BoundaryCase("task_1_3", {TASK_FIELD: TASK, "timestamps": "1,3"}),
    BoundaryCase("span_just_under_1", _u("0,0.999")),
    BoundaryCase("span_just_over_3", _u("0,3.001")),
    BoundaryCase("span_5", _u("0,5")),
    BoundaryCase("span_far_over", _u("0,600")),
    BoundaryCase("span_zero", _u("2,2")),
    BoundaryCase("span_half", _u("1,1.5")),
    BoundaryCase("reversed", _u("3,1")),
    BoundaryCase("negative_start", _u("-1,1")),
    BoundaryCase("malformed_dash", _u("1-3")),
    BoundaryCase("malformed_three_numbers", _u("1,3,5")),
    BoundaryCase("timestamps_empty", _u("")),
    BoundaryCase("timestamps_number", _u(13)),  # type: ignore[arg-type]
    BoundaryCase("timestamps_null", _u(None)),  # type: ignore[arg-type]
    BoundaryCase("missing_timestamps", {URL_FIELD: VIDEO}),
    BoundaryCase("both_sources", {URL_FIELD: VIDEO, TASK_FIELD: TASK, "timestamps": "1,3"}),
    BoundaryCase("no_source", {"timestamps": "1,3"}),
    BoundaryCase("url_empty", _u("1,3") | {URL_FIELD: ""}),
    BoundaryCase("url_not_http", _u("1,3") | {URL_FIELD: "ftp://example.com/v.mp4"}),
    BoundaryCase("task_malformed", {TASK_FIELD: "video_123", "timestamps": "1,3"}),
    BoundaryCase("model_unknown", _u("1,3", model="sora-1")),
    BoundaryCase("model_null", _u("1,3", model=None)),
    BoundaryCase("model_not_string", _u("1,3", model=2)),
    BoundaryCase("open_task_null_with_url", _u("1,3", from_task=None)),
    BoundaryCase("open_task_empty_object_with_url", _u("1,3", from_task={})),
    BoundaryCase("open_url_empty_list_with_task", {URL_FIELD: [], TASK_FIELD: TASK, "timestamps": "1,3"}),
    BoundaryCase("open_task_false_with_url", _u("1,3", from_task=False)),
    BoundaryCase("open_task_zero_with_url", _u("1,3", from_task=0)),
    BoundaryCase("open_task_empty_string_with_url", _u("1,3", from_task="")),
    BoundaryCase("open_url_false_with_task", {URL_FIELD: False, TASK_FIELD: TASK, "timestamps": "1,3"}),
    BoundaryCase("open_leading_dot", _u(".5,2")),
    BoundaryCase("open_url_padded", _u("1,3") | {URL_FIELD: f" {VIDEO} "}),
    BoundaryCase("body_not_json", raw=b"url=video&timestamps=1,3"),
    BoundaryCase("body_json_array", raw=b'[{"timestamps": "1,3"}]'),
    BoundaryCase("body_empty", raw=b""),
    BoundaryCase("no_token", _u("1,3"), auth="none"),
    BoundaryCase("basic_scheme", _u("1,3"), auth="basic"),
    BoundaryCase("wrong_token", _u("1,3"), auth="wrong"),
)


def skip_reason(boundary: BoundaryCase, target: Target) -> str | None:
    """Why ``boundary`` cannot be judged against ``target`` (``None``: it can)."""
    if boundary.auth == "wrong" and not target.token_known:
        return UNKNOWN_TOKEN_NOTE
    return None


def make_case(operation: Any, boundary: BoundaryCase, target: Target) -> AnyCase:
    headers: dict[str, str] = {}
    if boundary.auth == "token":
        headers.update(target.auth_header())
    elif boundary.auth == "basic":
        headers["Authorization"] = "Basic Y29udHJhY3Q6c3VpdGU="
    elif boundary.auth == "wrong":
        headers["Authorization"] = "Bearer sk-invalid-" + secrets.token_hex(16)  # never derived from the real token
    if boundary.raw is not None:
        headers["Content-Type"] = "application/json"
        return operation.Case(body=boundary.raw.decode(), media_type="text/plain", headers=headers)  # type: ignore[no-any-return]
    return operation.Case(body=boundary.body, headers=headers)  # type: ignore[no-any-return]
