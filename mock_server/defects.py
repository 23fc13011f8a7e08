"""Named, deliberate ways of breaking the contract, to prove the suites catch them.

Each defect is one realistic bug. ``DEFECTS`` maps its name to a one-line description.
The app calls three small hooks, each a no-op when no defect is active:

- :func:`check_request` replaces :func:`mock_server.contract.rules.check_request` (request-rule bugs);
- :func:`overrule_denial` may wave through a request the auth step refused (auth bugs);
- :func:`response_hook` is an ``after_request`` function that bends answers (answer bugs).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from flask import Response, request

from .contract.rules import Contract, Violation
from .contract.rules import check_request as _check_request
from .contract.spec import ENDPOINT_PATH
from .provider import PERMALINK_PREFIX

__all__ = ["DEFECTS", "check_request", "mangle_character", "overrule_denial", "response_hook", "validate"]

DEFECTS: dict[str, str] = {
    "span_too_wide": "accepts a timestamps span of up to 5 seconds (limit 3)",
    "span_too_short": "accepts a timestamps span under 1 second, zero included",
    "reversed_window": "accepts an end before the start (uses the absolute span)",
    "missing_timestamps": "defaults a missing timestamps field to 0,3 instead of rejecting it",
    "both_sources": "accepts url and from_task together (silently uses url)",
    "no_source": "accepts a body with neither url nor from_task (uses a stock video)",
    "skip_auth": "never checks the Authorization header",
    "any_token": "accepts any bearer token, not only the configured one",
    "drop_picture": "leaves profile_picture_url out of the 200 answer",
    "foreign_permalink": "answers a permalink that points at another user's profile",
    "numeric_id": "answers the character id as a number",
    "crash_on_non_json": "answers 500 to a body that is not JSON",
    "error_as_200": "answers a rejected request with 200 and the error envelope",
    "plain_text_errors": "answers errors as text/plain instead of JSON",
}

_STOCK_VIDEO = "https://filesystem.site/cdn/stock/video.mp4"


def validate(active: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``active`` unchanged, or raise ``ValueError`` naming an unknown defect."""
    unknown = sorted(set(active) - set(DEFECTS))
    if unknown:
        raise ValueError(f"unknown defect(s): {', '.join(unknown)}; known: {', '.join(sorted(DEFECTS))}")
    return active


def check_request(body: object, contract: Contract, active: tuple[str, ...]) -> Violation | None:
    """:func:`mock_server.contract.rules.check_request`, bent by the active request-rule defects."""
    if not active:
        return _check_request(body, contract)
    if "span_too_wide" in active:
        contract = dataclasses.replace(contract, span_max=Decimal(5))
    if "span_too_short" in active:
        contract = dataclasses.replace(contract, span_min=Decimal(0))
    if isinstance(body, Mapping):
        fixed: dict[str, Any] = dict(body)
        url_field, task_field = contract.sources
        window = fixed.get("timestamps")
        if "reversed_window" in active and isinstance(window, str) and window.count(",") == 1:
            start, end = window.split(",")
            try:
                if Decimal(end.strip()) < Decimal(start.strip()):
                    fixed["timestamps"] = f"{end},{start}"
            except ArithmeticError:
                pass
        if "missing_timestamps" in active:
            fixed.setdefault("timestamps", "0,3")
        if "both_sources" in active and url_field in fixed and task_field in fixed:
            del fixed[task_field]
        if "no_source" in active and url_field not in fixed and task_field not in fixed:
            fixed[url_field] = _STOCK_VIDEO
        body = fixed
    return _check_request(body, contract)


def overrule_denial(denied: Response | None, active: tuple[str, ...]) -> Response | None:
    """The auth step's refusal, or ``None`` when an active auth defect waves the request through."""
    if denied is None or not active:
        return denied
    if "skip_auth" in active:
        return None
    if "any_token" in active and _error_code(denied) == "invalid_api_key":
        return None
    return denied


def mangle_character(character: dict[str, Any], active: tuple[str, ...]) -> dict[str, Any]:
    """A 200 answer's body, bent by the active answer defects."""
    body = dict(character)
    if "drop_picture" in active:
        body.pop("profile_picture_url", None)
    if "foreign_permalink" in active and isinstance(body.get("username"), str):
        first, _, second = body["username"].partition(".")
        body["permalink"] = f"{PERMALINK_PREFIX}{second or 'someone'}.{first}"
    if "numeric_id" in active and isinstance(body.get("id"), str):
        body["id"] = int(body["id"][3:11], 16)
    return body


def response_hook(active: tuple[str, ...]) -> Callable[[Response], Response]:
    """An ``after_request`` function applying the active answer defects to endpoint answers."""

    def bend(response: Response) -> Response:
        if not active or request.path != ENDPOINT_PATH or request.method != "POST":
            return response
        status = response.status_code
        if status == 200 and response.is_json:
            body = response.get_json(silent=True)
            if isinstance(body, dict) and "error" not in body:
                response.set_data(json.dumps(mangle_character(body, active), ensure_ascii=False))
            return response
        if "crash_on_non_json" in active and status == 400 and _error_code(response) == "invalid_json":
            response.status_code = 500
            response.set_data(json.dumps({"error": {"message": "Internal error", "type": "server_error"}}))
            return response
        if "error_as_200" in active and 400 <= status < 500 and status != 429:
            response.status_code = 200
            return response
        if "plain_text_errors" in active and status >= 400:
            response.set_data(f"{status} {response.status.partition(' ')[2]}")
            response.mimetype = "text/plain"
        return response

    return bend


def _error_code(response: Response) -> str | None:
    body = response.get_json(silent=True)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None
