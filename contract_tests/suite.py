"""The schemathesis contract suite: target, custom checks, generation hooks, boundary cases, runner.

The rules module (:mod:`mock_server.contract.rules`) is the oracle: a check decodes the bytes that were
really sent and asks :func:`~mock_server.contract.rules.conforms` whether a conforming server would answer
200, so the prose rules (1..3 s span, exactly one source) are judged exactly as the mock applies them.

Two profiles:

- **strict** (default in-process, against the mock): a conforming request must get 200, errors must
  carry the full OpenAI envelope, and schemathesis' status-code, content-type and response-schema
  checks apply.
- **lenient** (default for a URL target): only what the seed spec and its prose state, plus answers
  no client could use. What the contract leaves open may go either way — a conforming request may
  be refused with a 4xx (unknown task, unreachable video, decimals or spaces not supported, a
  ``model`` the relay does not take), errors need only be JSON, any 4xx status is a valid
  rejection, and methods or paths outside the spec are never judged (a 501 to ``TRACE`` is fine).

In both profiles ``model`` (a field the seed does not define) is an unknown field like any other:
it never makes a request rule-breaking, nor a rule-breaking one conforming.

Both profiles fail a 200 to a rule-breaking request, a 5xx to a request the spec defines, a
malformed 200 body, a 2xx without a valid token, and a 401/403 to a request carrying the
configured token (a wrong token fails loudly).

Without a configured token (``SORA_API_KEY`` unset, URL target) the suite cannot know which bearer
tokens are wrong: the wrong-token checks are skipped (and reported as skipped); a missing token or
another scheme must still be refused.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup

from mock_server.contract.rules import RuleError, check_character, check_error_body, conforms, decode_body
from mock_server.contract.spec import ENDPOINT_PATH, load_contract, refined_spec_path

from .verdicts import Kind, NotJudged, Pacer, Tally, classify, install, parse_rate, send_until_judged

__all__ = [
    "BOUNDARY_CASES",
    "DEFAULT_SEED",
    "DEFAULT_TOKEN",
    "UNKNOWN_TOKEN_NOTE",
    "AnyCase",
    "BoundaryCase",
    "CaseFailure",
    "SuiteResult",
    "Target",
    "build_schema",
    "checks_for",
    "flatmap_body",
    "make_case",
    "operation_of",
    "parse_rate",
    "register",
    "relaxed",
    "run_boundary",
    "run_fuzz",
    "run_suite",
    "send",
    "skip_reason",
    "sora_ignored_auth",
    "sora_no_server_error",
    "tally_of",
]

DEFAULT_TOKEN = "contract-suite-token"
UNKNOWN_TOKEN_NOTE = (
    "SORA_API_KEY is not set, so the suite cannot know which tokens the server refuses: "
    "wrong-token checks skipped (export SORA_API_KEY to enforce them)"
)
DEFAULT_SEED = 20251125
VIDEO = "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4"
TASK = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"
_CONTRACT = load_contract()
AnyCase: TypeAlias = "Case[Any]"
_URL, _TASK = _CONTRACT.sources


@dataclass(frozen=True)
class Target:
    """The server under test: a WSGI app in-process, or a base URL."""

    token: str = field(default=DEFAULT_TOKEN, repr=False)
    base_url: str | None = None
    app: Any = field(default=None, repr=False, compare=False)
    strict: bool = True
    token_known: bool = True
    """Whether ``token`` is the one the server expects (so any other bearer token must be refused)."""
    rate: float | None = None
    """Requests per second to send at most, set up front (``RATE=N/s``); ``None``: as fast as answered."""

    @classmethod
    def in_process(cls, defects: tuple[str, ...] = (), token: str = DEFAULT_TOKEN) -> Target:
        """The mock app (with optional defects) as the target; strict profile."""
        from mock_server.mock.app import create_app
        from mock_server.mock.config import MockConfig

        return cls(token=token, app=create_app(MockConfig(token=token, defects=defects)), strict=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Target:
        """``SORA_CONTRACT_TARGET`` (URL; unset = in-process mock), ``SORA_API_KEY``, ``SORA_CONTRACT_STRICT``,
        ``SORA_CONTRACT_RATE`` (``N/s``, ``N/m``, or a number per second)."""
        env = os.environ if env is None else env
        url = env.get("SORA_CONTRACT_TARGET", "").strip().rstrip("/")
        key = env.get("SORA_API_KEY", "").strip()
        token = key or DEFAULT_TOKEN
        strict_raw = env.get("SORA_CONTRACT_STRICT", "").strip().lower()
        rate = parse_rate(env.get("SORA_CONTRACT_RATE", ""))
        if not url:
            target = cls.in_process(token=token)
            strict = target.strict if not strict_raw else strict_raw in ("1", "true", "yes")
            return cls(token, None, target.app, strict, rate=rate)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"SORA_CONTRACT_TARGET must be an http(s) URL, got {url!r}")
        strict = strict_raw in ("1", "true", "yes")
        return cls(token=token, base_url=url, strict=strict, token_known=bool(key), rate=rate)

    @property
    def label(self) -> str:
        return self.base_url or "in-process mock"

    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_TARGETS: dict[int, tuple[object, Target, Tally]] = {}


def register(schema: Any, target: Target, tally: Tally | None = None) -> Tally:
    """Make the custom checks judge requests of ``schema`` (a loaded schemathesis schema) for ``target``.

    Every request of a URL target then goes through :class:`~contract_tests.verdicts.ResendingTransport`:
    throttled and transient answers are waited out and resent, and ``tally`` (returned) counts the
    requests judged and those that were not.
    """
    tally = tally or Tally()
    _TARGETS[id(schema.raw_schema)] = (schema.raw_schema, target, tally)
    if target.app is None:
        install(schema, tally, Pacer(floor=1 / target.rate if target.rate else 0.0))
    return tally


def tally_of(schema: Any) -> Tally:
    """The tally of a schema passed to :func:`register`."""
    return _TARGETS[id(schema.raw_schema)][2]


def _schema_target(case: AnyCase, response: Response | None = None) -> Target | None:
    """The target of ``case``'s schema, or ``None`` (not ours, or an answer that is no verdict)."""
    raw = case.operation.schema.raw_schema
    entry = _TARGETS.get(id(raw))
    if entry is None or entry[0] is not raw:
        return None
    if response is not None and classify(response.status_code, response.headers, response.content or b"") in (
        Kind.THROTTLED,
        Kind.GUARD,
    ):
        return None  # a limiter or a guard answered: not the relay's verdict (normally resent before this)
    return entry[1]


def _defined(case: AnyCase, response: Response) -> bool:
    """Whether the request really sent is one the spec defines: POST on the endpoint's path."""
    method = (response.request.method or case.method or "").upper()
    path = urlsplit(response.request.url or "").path
    return method == "POST" and (path == ENDPOINT_PATH or path.endswith(ENDPOINT_PATH))


def _target_of(case: AnyCase, response: Response) -> Target | None:
    """The target of a schema this module built, for a POST to the endpoint (other methods: built-ins only)."""
    if (case.method or "").upper() != "POST":
        return None
    return _schema_target(case, response)


def _sent(response: Response) -> tuple[bytes, str | None]:
    body = response.request.body
    raw = body.encode() if isinstance(body, str) else (body or b"")
    return raw, response.request.headers.get("Authorization")


def _sent_conforming(response: Response) -> bool:
    raw, _ = _sent(response)
    try:
        return conforms(decode_body(raw), _CONTRACT)
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
    fixed = {k: v for k, v in body.items() if not (k in (_URL, _TASK) and _empty(v))}
    for key in (_URL, _TASK):
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
        return conforms(relaxed(decode_body(raw)), _CONTRACT)
    except RuleError:
        return False


def _json_body(response: Response) -> tuple[bool, object]:
    try:
        return True, json.loads(response.content or b"")
    except ValueError:
        return False, None


# --- custom checks (registered with schemathesis; inert for schemas this module did not build) ---


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
    problems = check_character(body, _CONTRACT) if ok else ["the 200 answer is not JSON"]
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
    target = _schema_target(case, response)
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

    if _schema_target(case, response) is None and _schema_target(case) is not None:
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


def flatmap_body(context: schemathesis.HookContext, body: object) -> st.SearchStrategy[object]:
    """Generation hook: bend each generated body of the endpoint towards the prose rules."""
    operation = getattr(context, "operation", None)
    if operation is not None and (operation.path != ENDPOINT_PATH or operation.method.upper() != "POST"):
        return st.just(body)
    return _variants(body)


# --- generation: teach the fuzzer the prose rules ---


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_starts = st.one_of(st.integers(0, 600).map(Decimal), st.decimals(0, 600, places=2))


@st.composite
def _valid_window(draw: st.DrawFn) -> str:
    start = draw(_starts)
    span = draw(st.one_of(st.sampled_from([Decimal(1), Decimal(2), Decimal(3)]), st.decimals(1, 3, places=2)))
    text = f"{_fmt(start)},{_fmt(start + span)}"
    return draw(st.sampled_from([text, text.replace(",", " , ")]))


@st.composite
def _broken_window(draw: st.DrawFn) -> str:
    """A well-formed window that breaks the span rule: near both limits, zero, far over, reversed."""
    start = draw(_starts)
    span = draw(
        st.one_of(
            st.sampled_from([Decimal("3.001"), Decimal("3.5"), Decimal(4), Decimal(5)]),  # just over the maximum
            st.sampled_from([Decimal(0), Decimal("0.5"), Decimal("0.999")]),  # under the minimum
            st.decimals(Decimal("0.01"), Decimal("0.99"), places=2),
            st.decimals(Decimal("3.01"), Decimal(6), places=2),
            st.decimals(Decimal(6), Decimal(1000), places=1),
            st.decimals(Decimal(-3), Decimal("-0.01"), places=2),
        )
    )
    if start + span < 0:  # reversed: keep both numbers non-negative
        start = -span + start.copy_abs()
    return f"{_fmt(start)},{_fmt(start + span)}"


_MALFORMED = [
    "",
    " ",
    "1",
    "1,",
    ",3",
    "1-3",
    "1;3",
    "1,3,5",
    "-1,1",
    "+1,3",
    "1e0,3",
    "1,3s",
    "a,b",
    "NaN,1",
    "inf,2",
    "١,٣",
    "1 ,\t3",
    "0x1,3",
    "1.,3",
    ".5,2",
]


def _variants(body: object) -> st.SearchStrategy[object]:
    if not isinstance(body, dict):
        return st.just(body)
    base: dict[str, Any] = dict(body)

    def with_window(window: str) -> dict[str, Any]:
        return {**base, "timestamps": window}

    def one_source(window: str, use_task: bool) -> dict[str, Any]:
        fixed = {k: v for k, v in base.items() if k not in (_URL, _TASK)}
        fixed["timestamps"] = window
        fixed[_TASK if use_task else _URL] = TASK if use_task else VIDEO
        return fixed

    def both(window: str) -> dict[str, Any]:
        return {**base, "timestamps": window, _URL: base.get(_URL, VIDEO), _TASK: base.get(_TASK, TASK)}

    def neither(window: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k not in (_URL, _TASK)} | {"timestamps": window}

    wrong_types = [
        {**base, "timestamps": 13},
        {**base, "timestamps": None},
        {**base, "timestamps": ["1", "3"]},
        {**base, _URL: None},
        {**base, _TASK: 123},
        {**base, "model": None},
        {**base, _TASK: {}},
        {**base, _URL: []},
        {k: v for k, v in base.items() if k != "timestamps"},
        {**base, _URL: ""},
        {**base, _TASK: ""},
    ]
    # Weighted so that the bodies isolating one prose rule (one source with a broken window,
    # both sources, no source) come often enough for a few dozen examples to reach every rule.
    weighted: list[tuple[st.SearchStrategy[object], int]] = [
        (st.just(body), 1),
        (st.builds(one_source, _valid_window(), st.booleans()), 2),
        (_valid_window().map(with_window), 1),
        (_broken_window().map(with_window), 1),
        (st.builds(one_source, _broken_window(), st.booleans()), 4),
        (st.sampled_from(_MALFORMED).map(with_window), 1),
        (_valid_window().map(both), 2),
        (_valid_window().map(neither), 2),
        (st.sampled_from(wrong_types), 1),
    ]
    return st.sampled_from([strategy for strategy, weight in weighted for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


def build_schema(target: Target, config: schemathesis.Config | None = None, tally: Tally | None = None) -> Any:
    """Load the refined spec for ``target``, with the generation hooks installed (``tally``: see :func:`register`)."""
    # An explicit config: the checkout's schemathesis.toml is for the CLI (it needs SORA_API_KEY), not for us.
    schema = schemathesis.openapi.from_path(refined_spec_path(), config=config or schemathesis.Config())
    if target.app is not None:
        schema.app = target.app
    if target.base_url:
        schema.config.update(base_url=target.base_url)
    schema.config.update(headers=target.auth_header())
    schema.config.generation.update(database="none", max_examples=25)
    schema.hook(flatmap_body)
    register(schema, target, tally)
    return schema


def operation_of(schema: Any) -> Any:
    return schema[ENDPOINT_PATH]["POST"]


# --- hand-picked boundary cases ---


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
    return {_URL: VIDEO, "timestamps": window, **extra}


BOUNDARY_CASES: tuple[BoundaryCase, ...] = (
    BoundaryCase("url_1_3", _u("1,3"), must_create=True),
    BoundaryCase("url_span_exactly_1", _u("0,1")),
    BoundaryCase("url_span_exactly_3", _u("0,3")),
    BoundaryCase("url_decimals", _u("1.5,4.5")),
    BoundaryCase("url_spaces", _u(" 1 , 3 ")),
    BoundaryCase("url_with_model", _u("0.5,2.5", model="sora-2-character")),
    BoundaryCase("url_with_other_model", _u("1,3", model="sora-2-pro-character")),
    BoundaryCase("url_extra_field", _u("1,3", note="ignored")),
    BoundaryCase("task_1_3", {_TASK: TASK, "timestamps": "1,3"}),
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
    BoundaryCase("missing_timestamps", {_URL: VIDEO}),
    BoundaryCase("both_sources", {_URL: VIDEO, _TASK: TASK, "timestamps": "1,3"}),
    BoundaryCase("no_source", {"timestamps": "1,3"}),
    BoundaryCase("url_empty", _u("1,3") | {_URL: ""}),
    BoundaryCase("url_not_http", _u("1,3") | {_URL: "ftp://example.com/v.mp4"}),
    BoundaryCase("task_malformed", {_TASK: "video_123", "timestamps": "1,3"}),
    BoundaryCase("model_unknown", _u("1,3", model="sora-1")),
    BoundaryCase("model_null", _u("1,3", model=None)),
    BoundaryCase("model_not_string", _u("1,3", model=2)),
    BoundaryCase("open_task_null_with_url", _u("1,3", from_task=None)),
    BoundaryCase("open_task_empty_object_with_url", _u("1,3", from_task={})),
    BoundaryCase("open_url_empty_list_with_task", {_URL: [], _TASK: TASK, "timestamps": "1,3"}),
    BoundaryCase("open_task_false_with_url", _u("1,3", from_task=False)),
    BoundaryCase("open_task_zero_with_url", _u("1,3", from_task=0)),
    BoundaryCase("open_task_empty_string_with_url", _u("1,3", from_task="")),
    BoundaryCase("open_url_false_with_task", {_URL: False, _TASK: TASK, "timestamps": "1,3"}),
    BoundaryCase("open_leading_dot", _u(".5,2")),
    BoundaryCase("open_url_padded", _u("1,3") | {_URL: f" {VIDEO} "}),
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


# --- running ---


@dataclass(frozen=True)
class CaseFailure:
    """One check that failed on one request."""

    check: str
    case: str
    status: int | None
    message: str


@dataclass
class SuiteResult:
    """Everything one suite run found."""

    target: str
    requests: int = 0
    failures: list[CaseFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Checks that could not run, with why (e.g. wrong-token checks without ``SORA_API_KEY``)."""
    tally: Tally = field(default_factory=Tally)
    """Requests judged and not judged (throttled throughout, answered by a guard, unreachable)."""

    @property
    def checks_passed(self) -> bool:
        """No check failed (whatever share of the requests was judged)."""
        return not self.failures

    @property
    def ok(self) -> bool:
        """Green: no check failed and at most the documented share of requests went without a verdict."""
        return self.checks_passed and self.tally.enough

    @property
    def green(self) -> bool:
        """The same as :attr:`ok`."""
        return self.ok

    def caught_by(self) -> list[str]:
        """Names of the checks that failed at least once, in first-failure order."""
        return list(dict.fromkeys(failure.check for failure in self.failures))


def send(
    case: AnyCase,
    target: Target,
    checks: list[CheckFunction],
    result: SuiteResult,
    name: str,
    boundary: BoundaryCase | None = None,
) -> None:
    """Send one case (keeping its own Authorization choice) and run each check on the answer."""
    headers = dict(case.headers or {})
    if "Authorization" not in headers and name.startswith("fuzz"):
        headers.update(target.auth_header())
    case.headers = CaseInsensitiveDict(headers)
    result.requests += 1
    try:
        response = _call(case, target, result.tally)
    except NotJudged:
        return  # counted by the tally; no check judges a limiter's or a guard's answer
    except Exception as exc:  # a dropped connection or a timeout is a failure, not a crash
        result.failures.append(CaseFailure("connection", name, None, type(exc).__name__))
        return
    if boundary is not None and boundary.must_create and response.status_code != 200:
        message = f"the canonical url create got {response.status_code}, not 200"
        result.failures.append(CaseFailure("sora_canonical_create", name, response.status_code, message))
    for check in checks:
        try:
            case.validate_response(response, checks=[check], headers=headers)
        except FailureGroup as group:
            message = "; ".join(
                _first_line(getattr(f, "title", ""), getattr(f, "message", "")) for f in group.exceptions
            )
            result.failures.append(CaseFailure(check.__name__, name, response.status_code, message))


def _call(case: AnyCase, target: Target, tally: Tally) -> Response:
    """Send ``case``: a URL target's schema resends by itself (:func:`register`); an app target here."""
    if target.base_url:
        return case.call(base_url=target.base_url)
    sent = send_until_judged(
        case.call, lambda answer: (answer.status_code, answer.headers, answer.content or b""), tally=tally
    )
    if not sent.judged:
        raise NotJudged(sent.kind, sent.response.status_code)
    response: Response = sent.response
    return response


def _first_line(title: object, message: object) -> str:
    lines = [line for line in f"{message}".splitlines() if line.strip()]
    return f"{title}: {lines[0]}" if lines else str(title)


def run_boundary(schema: Any, target: Target, result: SuiteResult) -> None:
    """Send every hand-picked boundary case."""
    operation = operation_of(schema)
    checks = checks_for(target)
    for boundary in BOUNDARY_CASES:
        reason = skip_reason(boundary, target)
        if reason is not None:
            result.skipped.append(f"boundary:{boundary.name}: {reason}")
            continue
        send(make_case(operation, boundary, target), target, checks, result, f"boundary:{boundary.name}", boundary)


def iter_fuzz_cases(schema: Any, max_examples: int, seed_value: int = DEFAULT_SEED) -> Iterator[AnyCase]:
    """Generated cases (positive then negative mode), reproducible for a given seed."""
    operation = operation_of(schema)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        cases: list[AnyCase] = []

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=max_examples,
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        )
        @seed(seed_value)
        def collect(case: AnyCase) -> None:
            cases.append(case)  # noqa: B023 - consumed before the next iteration rebinds it

        collect()
        yield from cases


def run_fuzz(schema: Any, target: Target, result: SuiteResult, max_examples: int = 25) -> None:
    """Generate and send ``max_examples`` cases per mode, running every check on each answer."""
    checks = checks_for(target)
    for index, case in enumerate(iter_fuzz_cases(schema, max_examples)):
        send(case, target, checks, result, f"fuzz:{index}")


def run_suite(target: Target, max_examples: int = 25, echo: Callable[[str], None] | None = None) -> SuiteResult:
    """Boundary cases then fuzzing against ``target``; failures are collected, not raised."""
    schema = build_schema(target)
    result = SuiteResult(target=target.label, tally=tally_of(schema))
    run_boundary(schema, target, result)
    if max_examples:
        run_fuzz(schema, target, result, max_examples)
    if echo is not None:
        for note in result.skipped:
            echo(f"skipped {note}")
        for failure in result.failures:
            echo(f"{failure.check}: {failure.case} -> {failure.status}: {failure.message}")
        echo(result.tally.summary() if result.tally.enough else result.tally.line())
    return result
