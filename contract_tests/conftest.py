"""pytest hooks of ``make contract`` (``pytest contract_tests/test_target.py``).

Before collecting: one line naming the target, profile, token and fuzz seed, then the checks of
:mod:`contract_tests.preflight`; a wrong setup or an unreachable target stops the run there with
one message. After a red run: the seed, and the command that sends the same cases again.
"""

from __future__ import annotations

import os

import pytest

from .preflight import EXIT_SETUP, Problem, check_target, contract_seed, describe
from .suite import Target


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
    _say(config, describe(target, seed))
    problem = check_target(target)
    if problem is not None:
        _stop(config, problem)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if _STOPPED in config.stash:
        return
    target = os.environ.get("SORA_CONTRACT_TARGET", "").strip()
    terminalreporter.write_line(f"contract: tested {target or 'the in-process mock'}")
    if exitstatus == pytest.ExitCode.TESTS_FAILED:
        seed = contract_seed()
        terminalreporter.write_line(
            f"contract: fuzz seed {seed}; the same cases again: make contract TARGET={target} FUZZ_SEED={seed}",
            bold=True,
        )
