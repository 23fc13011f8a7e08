"""Pytest test factory: the boundary cases and the schemathesis fuzz test for one target.

``make_tests(target)`` returns two test functions; a test module binds them to ``test_*`` names
(see :mod:`contract_tests.test_target` for the URL/env-driven module and the in-process tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
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

__all__ = ["make_tests"]


def _report(result: SuiteResult) -> str:
    return "\n".join(f"{f.check} on {f.case} (HTTP {f.status}): {f.message}" for f in result.failures)


def _stop_if_gone(target: Target) -> None:
    """After a failed connection: stop the whole run once if the target no longer accepts connections."""
    from .preflight import EXIT_UNREACHABLE, reachable

    why = reachable(target.base_url) if target.base_url else None
    if why is not None:
        pytest.exit(f"contract: UNREACHABLE during the run: {why}; the rest was not checked", EXIT_UNREACHABLE)


def make_tests(
    target: Target, max_examples: int = 50, seed: int = DEFAULT_SEED
) -> tuple[Callable[..., None], Callable[..., None]]:
    """``(test_boundary, test_fuzz)`` for ``target``: ``seed`` for the fuzzing, no example database."""
    schema = build_schema(target, config=schemathesis.Config(seed=seed))
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
        result = SuiteResult(target=target.label)
        send(make_case(operation_of(schema), boundary, target), target, checks, result, boundary.name, boundary)
        if any(failure.check == "connection" for failure in result.failures):
            _stop_if_gone(target)
        assert result.ok, _report(result)

    parametrize: Callable[[Callable[..., None]], Callable[..., None]] = schema.parametrize()

    @parametrize
    def test_fuzz(case: AnyCase) -> None:
        """Property-based requests from the refined spec, bent towards the prose rules by the hooks."""
        headers: dict[str, Any] = dict(case.headers or {})
        headers.setdefault("Authorization", target.auth_header()["Authorization"])
        kwargs: dict[str, Any] = {"base_url": target.base_url} if target.base_url else {}
        try:
            case.call_and_validate(headers=headers, checks=checks, **kwargs)
        except requests.ConnectionError:
            _stop_if_gone(target)
            raise

    return test_boundary, test_fuzz
