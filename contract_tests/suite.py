"""The schemathesis contract suite: building the schema and running it.

Its parts live by concern: the target and its registry in :mod:`contract_tests.target`, the custom
checks and the profiles in :mod:`contract_tests.checks`, the generation hooks in
:mod:`contract_tests.generation`, the hand-picked cases in :mod:`contract_tests.boundary`; every
public name stays importable from here.

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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from requests.structures import CaseInsensitiveDict
from schemathesis import GenerationMode, Response
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup

from mock_server.contract.spec import ENDPOINT_PATH, refined_spec_path

from .boundary import BOUNDARY_CASES, BoundaryCase, make_case, skip_reason
from .checks import checks_for, relaxed, sora_ignored_auth, sora_no_server_error
from .generation import flatmap_body
from .target import DEFAULT_SEED, DEFAULT_TOKEN, TASK, UNKNOWN_TOKEN_NOTE, VIDEO, AnyCase, Target, register, tally_of
from .verdicts import NotJudged, Tally, parse_rate, send_until_judged

__all__ = [
    "BOUNDARY_CASES",
    "DEFAULT_SEED",
    "DEFAULT_TOKEN",
    "TASK",
    "UNKNOWN_TOKEN_NOTE",
    "VIDEO",
    "AnyCase",
    "BoundaryCase",
    "CaseFailure",
    "SuiteResult",
    "Target",
    "build_schema",
    "checks_for",
    "flatmap_body",
    "iter_fuzz_cases",
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
