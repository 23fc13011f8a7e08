"""pytest hooks of ``make contract`` (``pytest contract_tests/test_target.py``).

Before collecting: one line naming the target, profile, token and fuzz seed, then the checks of
:mod:`contract_tests.preflight`; a wrong setup or an unreachable target stops the run there with
one message (a ``TARGET`` ending in the endpoint path gets only its hint). After the run: how many
requests were judged; after a red run, the seed and the command that sends the same cases again.
A run whose only failure is ``test_enough_was_judged`` (too many requests without a verdict) exits
:data:`~contract_tests.verdicts.EXIT_NOT_JUDGED` (4) with its one line.
"""

from __future__ import annotations

import os

import pytest

from .preflight import EXIT_SETUP, Problem, base_url_hint, check_target, contract_seed, describe
from .pytest_suite import JUDGED_TEST, RUN_TALLY
from .suite import Target
from .verdicts import EXIT_NOT_JUDGED


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rate-limit",
        default=None,
        help="the pace set up front, e.g. 2/s or 30/m (make contract RATE=2/s; env SORA_CONTRACT_RATE)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """``--rate-limit`` reaches the target as ``SORA_CONTRACT_RATE`` (read when the test module is collected)."""
    rate = config.getoption("--rate-limit", default=None)
    if rate:
        os.environ["SORA_CONTRACT_RATE"] = str(rate)


def _say(config: pytest.Config, line: str, **markup: bool) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line, **markup)
    else:  # pragma: no cover - pytest -p no:terminal
        print(line, flush=True)


_STOPPED = pytest.StashKey[Problem]()


def _stop(config: pytest.Config, problem: Problem) -> None:
    config.stash[_STOPPED] = problem
    _say(config, f"contract: {problem.message}", red=True, bold=True)
    pytest.exit(f"contract: stopped before testing (exit {problem.exit_code})", returncode=problem.exit_code)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Before collecting (which loads the spec for the target): name the target, then check it."""
    config = session.config
    try:
        seed = contract_seed()
        target = Target.from_env()
    except ValueError as exc:
        _stop(config, Problem(str(exc), EXIT_SETUP))
        return
    hint = base_url_hint(target.base_url) if target.base_url else None
    if hint is not None:  # the hint alone: "testing POST …/characters/sora/v1/characters" would mislead
        _stop(config, Problem(hint, EXIT_SETUP))
        return
    _say(config, describe(target, seed))
    problem = check_target(target)
    if problem is not None:
        _stop(config, problem)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count failures other than the judged-enough test (which alone makes the run exit 4)."""
    if report.failed and JUDGED_TEST not in report.nodeid:
        _FAILURES.append(report.nodeid)


_FAILURES: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Too little judged and nothing else failed: the run's own status, not "a check failed"."""
    if _STOPPED in session.config.stash:
        return
    if exitstatus == pytest.ExitCode.TESTS_FAILED and not RUN_TALLY.enough and not _FAILURES:
        session.exitstatus = EXIT_NOT_JUDGED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if _STOPPED in config.stash:
        return
    target = os.environ.get("SORA_CONTRACT_TARGET", "").strip()
    terminalreporter.write_line(f"contract: tested {target or 'the in-process mock'}: {RUN_TALLY.summary()}")
    if not RUN_TALLY.enough:
        terminalreporter.write_line(f"contract: {RUN_TALLY.line()}", red=True, bold=True)
    if exitstatus == pytest.ExitCode.TESTS_FAILED:
        seed = contract_seed()
        terminalreporter.write_line(
            f"contract: fuzz seed {seed}; the same cases again: make contract TARGET={target} FUZZ_SEED={seed}",
            bold=True,
        )
