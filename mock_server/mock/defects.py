"""Named, deliberate ways of breaking the contract, to prove the suites catch them.

Each defect is one realistic bug. ``DEFECTS`` maps its name to a one-line description.
:class:`Defects` is the endpoint core's :class:`~mock_server.mock.core.DefectPolicy` for a set of
them; it bends the core at its three named hooks:

- ``check_request`` — request-rule bugs (the rules see a bent contract or a "fixed" body);
- ``overrule_refusal`` — auth bugs (a refused request is waved through);
- ``bend`` — answer bugs (a created character or an error answer is changed before it is sent).
"""

from __future__ import annotations

import dataclasses
import http
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..contract.rules import Contract, Violation
from .core import HEALTHY, Answer, DefectPolicy
from .provider import PERMALINK_PREFIX

__all__ = ["DEFECTS", "Defects", "mangle_character", "policy", "validate"]

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


def policy(active: tuple[str, ...]) -> DefectPolicy:
    """The endpoint's policy for the ``active`` defects (the healthy one when there are none)."""
    return Defects(validate(active)) if active else HEALTHY


class Defects(DefectPolicy):
    """The endpoint core bent by the ``active`` named defects."""

    def __init__(self, active: tuple[str, ...]) -> None:
        self.active = frozenset(validate(active))

    def __repr__(self) -> str:
        return f"Defects({sorted(self.active)!r})"

    def overrule_refusal(self, refusal: Violation | None) -> Violation | None:
        if refusal is None:
            return None
        if "skip_auth" in self.active:
            return None
        if "any_token" in self.active and refusal.code == "invalid_api_key":
            return None
        return refusal

    def check_request(self, body: object, contract: Contract) -> Violation | None:
        active = self.active
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
        return super().check_request(body, contract)

    def bend(self, answer: Answer) -> Answer:
        active = self.active
        status = answer.status
        if answer.drop:
            return answer
        if status == 200 and answer.outcome == "created":
            body = json.loads(answer.body)
            answer.body = json.dumps(mangle_character(body, tuple(active)), ensure_ascii=False).encode()
            return answer
        if "crash_on_non_json" in active and status == 400 and answer.outcome == "invalid_json":
            answer.status = 500
            answer.body = json.dumps({"error": {"message": "Internal error", "type": "server_error"}}).encode()
            return answer
        if "error_as_200" in active and 400 <= status < 500 and status != 429:
            answer.status = 200
            return answer
        if "plain_text_errors" in active and status >= 400:
            answer.body = f"{status} {http.HTTPStatus(status).phrase}".encode()
            answer.headers = [
                ("Content-Type", "text/plain; charset=utf-8") if name.lower() == "content-type" else (name, value)
                for name, value in answer.headers
            ]
        return answer


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
