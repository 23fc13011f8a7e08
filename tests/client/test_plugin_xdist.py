"""Contract coverage under pytest-xdist: the session's coverage is the sum over every worker, in the
terminal section, the ``--sora-coverage`` JSON and ``--sora-require``, with each ``--dist`` mode."""

from __future__ import annotations

import json

import pytest

from mock_server.mock.coverage import OUTCOMES

from .test_plugin_coverage import STRICT

pytest_plugins = ["pytester"]

TOTAL = len(OUTCOMES)

# Two modules with two classes each, so every --dist mode (load, loadfile, loadscope) can hand work to both
# workers. Each test meets outcomes through its fixture's mock and notes which worker ran it.
_MODULE = """
import os
from pathlib import Path

import pytest


def _note(name):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with Path(os.environ["SORA_XDIST_NOTES"]).open("a", encoding="utf-8") as notes:
        notes.write(f"{{worker}} {{name}}\\n")


class TestServer:
    def test_created(self, sora_server):
        sora_server.state.count_outcome("created")
        _note("created")

    @pytest.mark.sora(seed=3)
    def test_limited(self, sora_server):
        sora_server.state.count_outcome("{limited}")
        _note("{limited}")


class TestRespx:
    def test_dropped(self, sora_respx):
        sora_respx.state.count_outcome("{dropped}")
        sora_respx.state.count_outcome("created")
        _note("{dropped}")
        _note("created")

    def test_plain(self):
        assert True
"""

FILES = {
    "test_first": _MODULE.format(limited="rate_limit_exceeded", dropped="dropped"),
    "test_second": _MODULE.format(limited="invalid_json", dropped="server_error"),
}
MET = {"created": 4, "rate_limit_exceeded": 1, "dropped": 1, "invalid_json": 1, "server_error": 1}
"""What the tests above meet, summed over the session (the tests' own notes say the same)."""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[pytest.RunResult, set[str]]:
    """Run the files with ``args``; the result and the workers that met outcomes."""
    notes = pytester.path / "notes.txt"
    monkeypatch.setenv("SORA_XDIST_NOTES", str(notes))
    pytester.makepyfile(**FILES)
    result = pytester.runpytest_subprocess(*STRICT, "-p", "xdist", *args)
    lines = [line.split() for line in notes.read_text(encoding="utf-8").splitlines()]
    met: dict[str, int] = {}
    for _, outcome in lines:
        met[outcome] = met.get(outcome, 0) + 1
    assert met == MET  # every test ran once, wherever it ran
    return result, {worker for worker, _ in lines}


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["load", "loadfile", "loadscope"])
def test_coverage_is_the_sum_over_every_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dist: str
) -> None:
    result, workers = _run(
        pytester,
        monkeypatch,
        "-n",
        "2",
        f"--dist={dist}",
        "--sora-require=rate_limit_exceeded,dropped,server_error",
        "--sora-coverage=reports/sora.json",
    )
    assert result.ret == 0, result.stdout.str()
    assert workers == {"gw0", "gw1"}  # both workers met outcomes, so the sums below span them
    report = json.loads((pytester.path / "reports" / "sora.json").read_text(encoding="utf-8"))
    seen = {row["outcome"]: row["seen"] for row in report["outcomes"] if row["seen"]}
    assert seen == MET
    assert (report["met"], report["total"]) == (len(MET), TOTAL)
    result.stdout.fnmatch_lines(
        [
            f"*sora contract coverage: {len(MET)} of {TOTAL} outcomes met*",
            "*required sora outcomes met: rate_limit_exceeded, server_error, dropped*",
        ]
    )


@pytest.mark.slow
def test_a_requirement_no_worker_met_fails_the_xdist_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, workers = _run(pytester, monkeypatch, "-n", "2", "--sora-require=dropped,missing_api_key")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert workers == {"gw0", "gw1"}
    result.stdout.fnmatch_lines(["*FAIL required sora outcomes never met: missing_api_key*"])


@pytest.mark.slow
def test_without_xdist_the_same_sums(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = pytester.path / "notes.txt"
    monkeypatch.setenv("SORA_XDIST_NOTES", str(notes))
    pytester.makepyfile(**FILES)
    result = pytester.runpytest_subprocess(*STRICT, "-p", "no:xdist", "--sora-coverage=sora.json")
    assert result.ret == 0, result.stdout.str()
    report = json.loads((pytester.path / "sora.json").read_text(encoding="utf-8"))
    assert {row["outcome"]: row["seen"] for row in report["outcomes"] if row["seen"]} == MET
