"""The suite's custom checks and the two profiles (strict, lenient) that choose among them.

The rules module is the oracle: a check decodes the bytes really sent and asks
:func:`~mock_server.contract.rules.conforms` whether a conforming server would answer 200.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlsplit

import schemathesis
from schemathesis import CheckContext, Response
from schemathesis.checks import CheckFunction

from mock_server.contract.rules import RuleError, check_character, check_error_body, conforms, decode_body
from mock_server.contract.spec import ENDPOINT_PATH

from .target import CONTRACT, TASK_FIELD, URL_FIELD, AnyCase, Target, schema_target
from .verdicts import NotJudged

__all__ = [
    "checks_for",
    "relaxed",
    "sora_accepts_conforming",
    "sora_auth_enforced",
    "sora_character_shape",
    "sora_errors_are_json",
    "sora_ignored_auth",
    "sora_no_server_error",
    "sora_rejects_broken_rules",
    "sora_token_accepted",
]


def _defined(case: AnyCase, response: Response) -> bool:
    """Whether the request really sent is one the spec defines: POST on the endpoint's path."""
    method = (response.request.method or case.method or "").upper()
    path = urlsplit(response.request.url or "").path
    return method == "POST" and (path == ENDPOINT_PATH or path.endswith(ENDPOINT_PATH))


def _target_of(case: AnyCase, response: Response) -> Target | None:
    """The target of a schema this module built, for a POST to the endpoint (other methods: built-ins only)."""
    if (case.method or "").upper() != "POST":
        return None
    return schema_target(case, response)


def _sent(response: Response) -> tuple[bytes, str | None]:
    body = response.request.body
    raw = body.encode() if isinstance(body, str) else (body or b"")
    return raw, response.request.headers.get("Authorization")


def _sent_conforming(response: Response) -> bool:
    raw, _ = _sent(response)
    try:
        return conforms(decode_body(raw), CONTRACT)
    except RuleError:
        return False


def _number(text: str) -> str | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return format(Decimal(repr(value)).normalize(), "f")


def relaxed(body: object) -> object:
    """``body`` as a liberal relay may read it where the contract is open.

    What a Python or a JavaScript relay reads as "not given" in the optional source fields
    (``null``, ``false``, ``0``, empty or blank strings, ``{}``, ``[]``) counts as absent,
    whitespace around values is trimmed, and numbers in ``timestamps``
    are read like ``float`` does (``.5``, ``1e0``). The span, the order, the sign and the
    exactly-one-source rules are not relaxed.
    """
    if not isinstance(body, Mapping):
        return body
    fixed = {k: v for k, v in body.items() if not (k in (URL_FIELD, TASK_FIELD) and _empty(v))}
    for key in (URL_FIELD, TASK_FIELD):
        if isinstance(fixed.get(key), str):
            fixed[key] = fixed[key].strip()
    window = fixed.get("timestamps")
    if isinstance(window, str) and window.count(",") == 1:
        parts = [_number(part) for part in window.split(",")]
        if all(part is not None for part in parts):
            fixed["timestamps"] = ",".join(part for part in parts if part is not None)
    return fixed


def _empty(value: object) -> bool:
    """What a liberal relay may read as "not given": Python's falsy values (``null``, ``""``, ``{}``, ``[]``,
    ``0``, ``false``) and JavaScript's (``null``, ``false``, ``0``, ``""``), blank strings too."""
    if value is None or value is False:
        return True
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and len(value) == 0


def _open_to_either(response: Response) -> bool:
    """Whether a rule-breaking request conforms once read liberally (lenient: 200 or 4xx both fine)."""
    raw, _ = _sent(response)
    try:
        return conforms(relaxed(decode_body(raw)), CONTRACT)
    except RuleError:
        return False


def _json_body(response: Response) -> tuple[bool, object]:
    try:
        return True, json.loads(response.content or b"")
    except ValueError:
        return False, None


@schemathesis.check
def sora_rejects_broken_rules(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """A request that breaks a rule (per the rules module) gets a 4xx: never 2xx/3xx, never 5xx."""
    target = _target_of(case, response)
    if target is None or _sent_conforming(response):
        return None
    status = response.status_code
    if not target.strict and status < 500 and _open_to_either(response):
        return None
    if not 400 <= status < 500:
        raw, _ = _sent(response)
        raise AssertionError(f"a request that breaks a contract rule got {status}, not a 4xx: {raw[:200]!r}")
    return None


@schemathesis.check
def sora_accepts_conforming(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """Strict profile: a conforming request carrying the configured token gets 200."""
    target = _target_of(case, response)
    if target is None or not target.strict:
        return None
    _, auth = _sent(response)
    if auth == f"Bearer {target.token}" and _sent_conforming(response) and response.status_code != 200:
        raise AssertionError(f"a conforming request got {response.status_code}, not 200")
    return None


@schemathesis.check
def sora_character_shape(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """A 200 carries a character: ch_ + 32 hex id, word.word username, matching permalink, https picture."""
    if _target_of(case, response) is None or response.status_code != 200:
        return None
    ok, body = _json_body(response)
    problems = check_character(body, CONTRACT) if ok else ["the 200 answer is not JSON"]
    if problems:
        raise AssertionError("; ".join(problems))
    return None


@schemathesis.check
def sora_errors_are_json(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """An error answer is JSON (strict profile: the full OpenAI error envelope)."""
    target = _target_of(case, response)
    if target is None or response.status_code < 400:
        return None
    ok, body = _json_body(response)
    if not ok:
        raise AssertionError(f"the {response.status_code} answer is not JSON: {response.content[:80]!r}")
    if target.strict:
        problems = check_error_body(body)
        if problems:
            raise AssertionError("; ".join(problems))
    return None


@schemathesis.check
def sora_no_server_error(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """No 5xx to a request the spec defines (strict: to any request, other methods and paths included)."""
    target = schema_target(case, response)
    if target is None or response.status_code < 500:
        return None
    if not target.strict and not _defined(case, response):
        return None  # methods and paths outside the spec are not the contract's (501 to TRACE is RFC 9110's answer)
    raise AssertionError(f"server error {response.status_code} to {response.request.method} {ENDPOINT_PATH}")


@schemathesis.check
def sora_token_accepted(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """A request carrying the configured token is never refused for auth (401/403): wrong token = loud failure."""
    target = _target_of(case, response)
    if target is None or response.status_code not in (401, 403):
        return None
    _, auth = _sent(response)
    if auth == f"Bearer {target.token}":
        if not target.token_known:
            raise AssertionError(
                f"the server refused the suite's placeholder token (HTTP {response.status_code}): "
                "export SORA_API_KEY with the token it expects"
            )
        raise AssertionError(
            f"the server refused the configured token (HTTP {response.status_code}): wrong or expired?"
        )
    return None


@schemathesis.check
def sora_auth_enforced(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """A request without the configured bearer token never succeeds (no token, other scheme, wrong token)."""
    target = _target_of(case, response)
    if target is None or not 200 <= response.status_code < 300:
        return None
    _, auth = _sent(response)
    if not target.token_known and _is_bearer(auth):
        return None  # any bearer token may be the right one when the suite was not told which
    if auth != f"Bearer {target.token}":
        shown = "none" if auth is None else auth.split(" ", 1)[0] + " <other credentials>"
        raise AssertionError(f"answered {response.status_code} without the configured token (Authorization: {shown})")
    return None


@schemathesis.check
def sora_ignored_auth(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """schemathesis' ``ignored_auth``, whose probes (no token, an invalid token) get no verdict when throttled.

    A probe throttled on every resend, or answered by a guard, raises
    :class:`~contract_tests.verdicts.NotJudged` in the transport: counted as not judged, never a failure.
    """
    from schemathesis.specs.openapi.checks import ignored_auth

    if schema_target(case, response) is None and schema_target(case) is not None:
        return None
    try:
        return ignored_auth(ctx, response, case)
    except NotJudged:
        return None


def _is_bearer(auth: str | None) -> bool:
    scheme, _, token = (auth or "").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


_CUSTOM: tuple[CheckFunction, ...] = (
    sora_rejects_broken_rules,
    sora_accepts_conforming,
    sora_character_shape,
    sora_errors_are_json,
    sora_token_accepted,
    sora_auth_enforced,
)


def checks_for(target: Target) -> list[CheckFunction]:
    """The checks a run applies: the custom ones plus the built-ins that cannot false-alarm."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    chosen: list[CheckFunction] = [not_a_server_error if target.strict else sora_no_server_error]
    if target.token_known:  # probes with an invalid token prove nothing when any token may be valid
        chosen.append(sora_ignored_auth)
    chosen += _CUSTOM
    if target.strict:
        chosen += [status_code_conformance, content_type_conformance, response_schema_conformance]
    return chosen
