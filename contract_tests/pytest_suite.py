"""Pytest test factory: the boundary cases and the schemathesis fuzz test for one target.

``make_tests(target)`` returns two test functions; a test module binds them to ``test_*`` names
(see :mod:`contract_tests.test_target` for the URL/env-driven module and the in-process tests).
Both count into a :class:`~contract_tests.verdicts.Tally`; ``judged_test(tally)`` is the last test of
a run: it fails with one line when too many requests got no verdict (throttled throughout, answered
by a guard), so the run and its JUnit report are not green.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from schemathesis import GenerationMode

from .suite import (
    BOUNDARY_CASES,
    DEFAULT_SEED,
    AnyCase,
    BoundaryCase,
    SuiteResult,
    Target,
    build_schema,
    checks_for,
    make_case,
    operation_of,
    send,
    skip_reason,
)
from .verdicts import Tally

__all__ = ["JUDGED_TEST", "RUN_TALLY", "judged_test", "make_tests"]

RUN_TALLY = Tally()
"""The tally of ``make contract`` (:mod:`contract_tests.test_target`), read by its conftest."""
JUDGED_TEST = "test_enough_was_judged"


def _report(result: SuiteResult) -> str:
    return "\n".join(f"{f.check} on {f.case} (HTTP {f.status}): {f.message}" for f in result.failures)


def _stop_if_gone(target: Target) -> None:
    """After a failed connection: stop the whole run once if the target no longer accepts connections."""
    from .preflight import EXIT_UNREACHABLE, reachable

    why = reachable(target.base_url) if target.base_url else None
    if why is not None:
        pytest.exit(f"contract: UNREACHABLE during the run: {why}; the rest was not checked", EXIT_UNREACHABLE)


def make_tests(
    target: Target, max_examples: int = 50, seed: int = DEFAULT_SEED, tally: Tally | None = None
) -> tuple[Callable[..., None], Callable[..., None]]:
    """``(test_boundary, test_fuzz)`` for ``target``: ``seed`` for the fuzzing, no example database."""
    tally = tally if tally is not None else Tally()
    schema = build_schema(target, config=schemathesis.Config(seed=seed), tally=tally)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=max_examples, database="none"
    )
    checks = checks_for(target)

    @pytest.mark.parametrize("boundary", BOUNDARY_CASES, ids=lambda b: b.name)
    def test_boundary(boundary: BoundaryCase) -> None:
        """One hand-picked request; every check must pass on its answer."""
        reason = skip_reason(boundary, target)
        if reason is not None:
            pytest.skip(reason)
        result = SuiteResult(target=target.label, tally=tally)
        send(make_case(operation_of(schema), boundary, target), target, checks, result, boundary.name, boundary)
        if any(failure.check == "connection" for failure in result.failures):
            _stop_if_gone(target)
        assert result.checks_passed, _report(result)  # too little judged: test_enough_was_judged says so

    parametrize: Callable[[Callable[..., None]], Callable[..., None]] = schema.parametrize()

    @parametrize
    def test_fuzz(case: AnyCase) -> None:
        """Property-based requests from the refined spec, bent towards the prose rules by the hooks."""
        result = SuiteResult(target=target.label, tally=tally)
        send(case, target, checks, result, "fuzz")
        if any(failure.check == "connection" for failure in result.failures):
            _stop_if_gone(target)
        assert result.checks_passed, _report(result)  # too little judged: test_enough_was_judged says so

    return test_boundary, test_fuzz


def judged_test(tally: Tally) -> Callable[..., None]:
    """A test that fails (one line) when more than the documented share of requests got no verdict."""

    def test_enough_was_judged(record_testsuite_property: Callable[[str, object], None]) -> None:
        """Throttled throughout, answered by a guard: such requests are no verdict, and too many is no green."""
        record_testsuite_property("requests_judged", tally.judged)
        record_testsuite_property("requests_not_judged", tally.missing)
        for reason, count in sorted(tally.not_judged.items()):
            record_testsuite_property(f"not_judged_{reason}", count)
        record_testsuite_property("requests_resent", sum(tally.resent.values()))
        if not tally.enough:
            pytest.fail(tally.line(), pytrace=False)

    return test_enough_was_judged
