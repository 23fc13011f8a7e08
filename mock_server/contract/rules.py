"""The endpoint's rules, as pure functions: no Flask, no I/O.

Both the mock server and the contract suites' custom checks call these, so one definition
decides what a conforming request and a conforming answer look like. The numbers and
patterns come from the refined spec, passed in as a :class:`Contract`
(see :func:`mock_server.contract.spec.load_contract`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import ContractError

__all__ = [
    "EXAMPLE_TASK_ID",
    "EXAMPLE_VIDEO_URL",
    "RULE_OUTCOMES",
    "Contract",
    "RuleError",
    "Timestamps",
    "Violation",
    "check_character",
    "check_error_body",
    "check_request",
    "conforms",
    "decode_body",
    "error_body",
    "parse_timestamps",
]

EXAMPLE_VIDEO_URL = "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4"
"""The spec's example clip (``url``): what the corpus, the suites and the live run send."""
EXAMPLE_TASK_ID = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"
"""The spec's example ``from_task`` id."""


@dataclass(frozen=True)
class Contract:
    """What the refined spec says, in a form the rule functions can apply."""

    timestamps_pattern: re.Pattern[str]
    timestamps_max_length: int
    span_min: Decimal
    span_max: Decimal
    sources: tuple[str, str]
    url_pattern: re.Pattern[str]
    url_max_length: int
    from_task_pattern: re.Pattern[str]
    required: tuple[str, ...]
    id_pattern: re.Pattern[str]
    username_pattern: re.Pattern[str]
    permalink_template: str
    picture_url_pattern: re.Pattern[str]


@dataclass(frozen=True)
class Timestamps:
    """A parsed ``"start,end"`` window, in exact decimal seconds."""

    start: Decimal
    end: Decimal

    @property
    def span(self) -> Decimal:
        return self.end - self.start


@dataclass(frozen=True)
class Violation:
    """One broken rule: the HTTP status it earns, the field at fault and a message."""

    status: int
    param: str | None
    code: str
    message: str


class RuleError(ContractError, ValueError):
    """Raised by the parsing helpers; carries the :class:`Violation`."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


RULE_OUTCOMES: dict[str, int] = {
    "invalid_json": 400,
    "duplicate_key": 400,
    "invalid_body": 400,
    "invalid_type": 422,
    "missing_required_parameter": 422,
    "invalid_timestamps": 422,
    "invalid_timestamps_order": 422,
    "invalid_timestamps_span": 422,
    "conflicting_sources": 422,
    "missing_source": 422,
    "invalid_url": 422,
    "invalid_task_id": 422,
}
"""Every ``code`` a rule of this module answers, with its status (the catalogue of
:mod:`mock_server.mock.coverage` is read from here)."""


def _invalid(param: str | None, code: str, message: str, status: int | None = None) -> Violation:
    if status is None:
        status = RULE_OUTCOMES.get(code, 422)
    return Violation(status=status, param=param, code=code, message=message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        # Not a corpus rule (no ``_invalid`` call): only the mock is this strict, a relay may bill such a body.
        message = f"The request body repeats the key {_short(key)}; send each key once."
        raise RuleError(Violation(status=400, param=key, code="duplicate_key", message=message))
    return obj


_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


def decode_body(raw: bytes, *, reject_duplicates: bool = False) -> object:
    """Decode a request body as strict UTF-8 JSON; a :class:`RuleError` (400) otherwise.

    With ``reject_duplicates`` an object that repeats a key is a 400 ``duplicate_key`` naming it
    (what the mock answers); without it the last value wins, as most JSON parsers do (what the
    suites assume of a relay, so a relay that accepts duplicates is not failed for it).
    """
    if not raw.strip():
        raise RuleError(_invalid(None, "invalid_json", "The request body is empty; send a JSON object.", 400))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(
            _invalid(None, "invalid_json", f"The request body is not valid UTF-8 (byte {exc.start}).", 400)
        ) from None
    try:
        if reject_duplicates:
            return _STRICT_DECODER.decode(text)
        return json.loads(text, parse_constant=_reject_constant)
    except RuleError:
        raise
    except RecursionError:
        raise RuleError(_invalid(None, "invalid_json", "The request body is nested too deeply.", 400)) from None
    except json.JSONDecodeError as exc:
        raise RuleError(_invalid(None, "invalid_json", _json_message(exc), 400)) from None
    except ValueError as exc:
        raise RuleError(_invalid(None, "invalid_json", f"The request body is not valid JSON: {exc}.", 400)) from None


def _json_message(exc: json.JSONDecodeError) -> str:
    """The 400 message for a body ``json`` cannot read; a comment gets said so (JSON has none)."""
    if exc.doc[exc.pos : exc.pos + 2] in ("//", "/*"):
        return (
            f"The request body is not valid JSON: JSON has no comments, and there is one at line {exc.lineno} "
            f"column {exc.colno}; remove the {exc.doc[exc.pos : exc.pos + 2]} comment (or the commented-out line)."
        )
    return f"The request body is not valid JSON: {exc}."


def _short(value: str, limit: int = 40) -> str:
    text = value if len(value) <= limit else value[:limit] + "…"
    return json.dumps(text)


def parse_timestamps(value: str, contract: Contract) -> Timestamps:
    """Parse and check ``"start,end"``; a :class:`RuleError` names what is wrong."""
    if len(value) <= contract.timestamps_max_length and contract.timestamps_pattern.fullmatch(value):
        start_text, end_text = value.split(",")
        window = Timestamps(Decimal(start_text.strip()), Decimal(end_text.strip()))
        if window.start <= window.end and contract.span_min <= window.end - window.start <= contract.span_max:
            return window  # the common case: no message to build
    allowed = (
        f'timestamps must be "start,end" in non-negative seconds with a span of at least '
        f'{contract.span_min} and at most {contract.span_max} seconds, e.g. "1,3"'
    )
    if len(value) > contract.timestamps_max_length:
        raise RuleError(
            _invalid(
                "timestamps",
                "invalid_timestamps",
                f"{allowed}, in at most {contract.timestamps_max_length} characters; "
                f"got {len(value)} characters: {_short(value)}.",
            )
        )
    if not contract.timestamps_pattern.fullmatch(value):
        raise RuleError(_invalid("timestamps", "invalid_timestamps", f"{allowed}; got {_short(value)}."))
    start_text, end_text = value.split(",")
    window = Timestamps(Decimal(start_text.strip()), Decimal(end_text.strip()))
    if window.end < window.start:
        raise RuleError(
            _invalid("timestamps", "invalid_timestamps_order", f"{allowed}; end is before start in {_short(value)}.")
        )
    if not contract.span_min <= window.span <= contract.span_max:
        raise RuleError(
            _invalid(
                "timestamps",
                "invalid_timestamps_span",
                f"{allowed}; {_short(value)} spans {window.span.normalize():f} seconds.",
            )
        )
    return window


def check_request(body: object, contract: Contract) -> Violation | None:
    """The first rule ``body`` breaks, or ``None`` when it conforms.

    Order: body shape, field types, required ``timestamps``, the window, exactly one source,
    the source's format. Fields the contract does not define (``model`` among them: the seed has
    no such field, and relays differ on it) are ignored, whatever their value.
    """
    if not isinstance(body, Mapping):
        kind = type(body).__name__ if body is not None else "null"
        return _invalid(None, "invalid_body", f"The request body must be a JSON object, not {kind}.", 400)
    for field in (*contract.sources, "timestamps"):
        if field in body and not isinstance(body[field], str):
            got = "null" if body[field] is None else type(body[field]).__name__
            return _invalid(field, "invalid_type", f"{field} must be a string, not {got}.")
    for field in contract.required:
        if field not in body:
            return _invalid(field, "missing_required_parameter", f'{field} is required, e.g. "1,3".')
    try:
        parse_timestamps(body["timestamps"], contract)
    except RuleError as exc:
        return exc.violation
    url_field, task_field = contract.sources
    given = [field for field in contract.sources if field in body]
    if len(given) == 2:
        return _invalid(url_field, "conflicting_sources", f"Give exactly one of {url_field} or {task_field}, not both.")
    if not given:
        return _invalid(
            url_field, "missing_source", f"Give exactly one of {url_field} (a video URL) or {task_field} (a task id)."
        )
    if url_field in body:
        url = body[url_field]
        if len(url) > contract.url_max_length or not contract.url_pattern.fullmatch(url):
            return _invalid(
                url_field,
                "invalid_url",
                f"{url_field} must be an absolute http(s) URL of at most {contract.url_max_length} "
                f"characters; got {_short(url)}.",
            )
    else:
        task = body[task_field]
        if not contract.from_task_pattern.fullmatch(task):
            return _invalid(
                task_field,
                "invalid_task_id",
                f'{task_field} must be a task id like "{EXAMPLE_TASK_ID}"; got {_short(task)}.',
            )
    return None


def conforms(body: object, contract: Contract) -> bool:
    """Whether a decoded request body obeys every rule (a conforming server answers 200)."""
    return check_request(body, contract) is None


def check_character(body: object, contract: Contract) -> list[str]:
    """What is wrong with a 200 answer's body (an empty list when it conforms)."""
    if not isinstance(body, Mapping):
        return [f"a 200 body must be a JSON object, not {type(body).__name__}"]
    if "error" in body:
        return ["a 200 body carries an 'error' member"]
    problems: list[str] = []
    fields = ("id", "username", "permalink", "profile_picture_url")
    for field in fields:
        if not isinstance(body.get(field), str):
            problems.append(f"{field} is missing or not a string")
    if problems:
        return problems
    if not contract.id_pattern.fullmatch(body["id"]):
        problems.append(f"id {_short(body['id'])} is not 'ch_' followed by 32 lowercase hex digits")
    if not contract.username_pattern.fullmatch(body["username"]):
        problems.append(f"username {_short(body['username'])} is not two dot-separated lowercase parts")
    expected = contract.permalink_template.format(username=body["username"])
    if body["permalink"] != expected:
        problems.append(f"permalink {_short(body['permalink'], 80)} is not {_short(expected, 80)}")
    if not contract.picture_url_pattern.fullmatch(body["profile_picture_url"]):
        problems.append("profile_picture_url is not an absolute https URL")
    return problems


def check_error_body(body: object) -> list[str]:
    """What is wrong with an error answer's envelope ``{"error": {message, type, param, code}}``."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return ["an error body must be a JSON object with an 'error' object"]
    error = body["error"]
    problems = [f"error.{key} is missing" for key in ("message", "type", "param", "code") if key not in error]
    if isinstance(error.get("message"), str) and not error["message"].strip():
        problems.append("error.message is empty")
    return problems


def error_body(violation: Violation, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """The OpenAI-style envelope for a violation."""
    return {
        "error": {
            "message": violation.message,
            "type": error_type,
            "param": violation.param,
            "code": violation.code,
        }
    }
