"""The plugin's contract coverage (terminal section, --sora-coverage, --sora-require, ini options) and the
Python stub API of the fixtures and SoraServer."""

from __future__ import annotations

import json
import re

import pytest
import requests

from mock_server import SoraServer
from mock_server.mock import fixtures
from mock_server.mock.coverage import OUTCOMES
from mock_server.mock.stubs import StubError

from ..helpers import ROOT
from .test_plugin_readme import readme_examples

pytest_plugins = ["pytester"]

STRICT = ("-W", "error", "--strict-markers", "-p", "no:cacheprovider")
TOTAL = len(OUTCOMES)

# The fixtures' mocks are told what they answered through count_outcome, so these tests hold whatever
# the endpoint itself counts.
CLIENT_TESTS = """
import pytest


def test_server_meets_created(sora_server):
    sora_server.state.count_outcome("created")
    sora_server.state.count_outcome("created")


@pytest.mark.sora(seed=3)
def test_a_configured_server_meets_a_429(sora_server):
    sora_server.state.count_outcome("rate_limit_exceeded")


def test_respx_meets_a_drop(sora_respx):
    sora_respx.state.count_outcome("dropped")
    sora_respx.state.count_outcome("created")


def test_without_the_mock():
    assert True
"""


def _run(pytester: pytest.Pytester, *args: str, source: str = CLIENT_TESTS) -> pytest.RunResult:
    pytester.makepyfile(test_client=source)
    return pytester.runpytest(*STRICT, *args)


def test_the_terminal_section_sums_every_fixture(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--sora-coverage-report=term")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*sora contract coverage: 3 of {TOTAL} outcomes met*"])
    (never,) = [line for line in result.stdout.lines if line.startswith("never met: ")]
    named = never.removeprefix("never met: ").split(", ")
    assert len(named) == TOTAL - 3
    assert "missing_api_key" in named and "created" not in named and "dropped" not in named


def test_no_section_unless_asked_like_pytest_cov(pytester: pytest.Pytester) -> None:
    result = _run(pytester)  # the fixtures met three outcomes, but nobody asked for a report
    assert result.ret == 0 and result.parseoutcomes() == {"passed": 4}
    assert "sora contract coverage" not in result.stdout.str() and "never met" not in result.stdout.str()
    asked = _run(pytester, "--sora-coverage=sora.json")
    asked.stdout.fnmatch_lines([f"*sora contract coverage: 3 of {TOTAL} outcomes met*"])


def test_the_section_can_be_turned_off_by_flag_or_ini(pytester: pytest.Pytester) -> None:
    quiet = _run(pytester, "--sora-coverage-report=no", "--sora-require=dropped", "--sora-coverage=sora.json")
    assert quiet.ret == 0
    assert "sora contract coverage" not in quiet.stdout.str() and "required sora" not in quiet.stdout.str()
    assert json.loads((pytester.path / "sora.json").read_text(encoding="utf-8"))["met"] == 3  # still written
    failed = _run(pytester, "--sora-coverage-report=no", "--sora-require=server_error")
    assert failed.ret == pytest.ExitCode.TESTS_FAILED  # the verdict and its reason stay
    assert "sora contract coverage" not in failed.stdout.str()
    failed.stdout.fnmatch_lines(["*FAIL required sora outcomes never met: server_error*"])
    pytester.makeini("[pytest]\nsora_coverage_report = false\nsora_require = dropped\n")
    assert "sora contract coverage" not in _run(pytester).stdout.str()
    _run(pytester, "--sora-coverage-report=term").stdout.fnmatch_lines(["*sora contract coverage: 3 of*"])
    pytester.makeini("[pytest]\nsora_coverage_report = true\n")
    _run(pytester).stdout.fnmatch_lines(["*sora contract coverage: 3 of*"])


@pytest.mark.parametrize("args", [("--sora-coverage-report=json",), ()])
def test_an_unknown_report_choice_is_a_usage_error(pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    if not args:
        pytester.makeini("[pytest]\nsora_coverage_report = maybe\n")
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "expected term or no" in output and "Traceback" not in output


def test_the_section_says_when_the_fixtures_answered_nothing(pytester: pytest.Pytester) -> None:
    source = "def test_x(sora_server):\n    assert sora_server.requests == []\n"
    result = _run(pytester, "--sora-coverage-report=term", source=source)
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*sora contract coverage: 0 of {TOTAL} outcomes met*"])


def test_sora_coverage_writes_the_summed_json(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--sora-coverage=reports/sora.json")
    assert result.ret == 0
    report = json.loads((pytester.path / "reports" / "sora.json").read_text(encoding="utf-8"))
    seen = {row["outcome"]: row["seen"] for row in report["outcomes"]}
    assert (seen["created"], seen["rate_limit_exceeded"], seen["dropped"], seen["invalid_json"]) == (3, 1, 1, 0)
    assert (report["met"], report["total"]) == (3, TOTAL)


def test_sora_require_passes_when_met(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--sora-require=rate_limit_exceeded,dropped")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*required sora outcomes met: rate_limit_exceeded, dropped*"])


def test_sora_require_fails_the_session_naming_what_was_never_met(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--sora-require=created,invalid_timestamps_span,server_error")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAIL required sora outcomes never met: invalid_timestamps_span, server_error*"])
    # the session's last line says it failed, and why, after the pass count
    assert re.fullmatch(r"=+ 4 passed, 2 required sora outcomes never met in [\d.]+s =+", result.stdout.lines[-1])
    one = _run(pytester, "-q", "--sora-require=server_error")
    assert re.fullmatch(r"4 passed, 1 required sora outcome never met in [\d.]+s", one.stdout.lines[-1])
    assert _run(pytester, "--sora-require=created").stdout.lines[-1].count("never met") == 0


def test_sora_require_all(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--sora-require=all")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (line,) = [line for line in result.stdout.lines if "FAIL required sora outcomes never met" in line]
    assert len(line.split(": ", 1)[1].split(", ")) == TOTAL - 3


def test_an_unknown_outcome_is_a_usage_error_without_a_traceback(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--sora-require=created,rate_limited")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "unknown outcome 'rate_limited'" in output and "Traceback" not in output


def test_ini_options_do_the_same(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsora_require = server_error\nsora_coverage = out/coverage.json\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAIL required sora outcomes never met: server_error*"])
    assert json.loads((pytester.path / "out" / "coverage.json").read_text(encoding="utf-8"))["met"] == 3
    assert _run(pytester, "--sora-require=dropped").ret == 0  # the flag wins over the ini


def test_an_unknown_outcome_in_the_ini_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsora_require = nope\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown outcome 'nope'" in result.stdout.str() + result.stderr.str()


# --- the Python stub API ----------------------------------------------------------------------------


ERROR = {
    "error": {
        "message": "No such task.",
        "type": "invalid_request_error",
        "param": "from_task",
        "code": "task_not_found",
    }
}


def test_stub_stores_lists_and_clears(sora_server: SoraServer) -> None:
    made = sora_server.stub(match={"body": {"from_task": "video_x"}}, response={"status": 404, "json": ERROR}, times=1)
    assert made["id"] and (made["hits"], made["remaining"], made["times"]) == (0, 1, 1)
    assert made["match"] == {"body": {"from_task": "video_x"}}
    second = sora_server.stub(response={"status": 200, "json": fixtures.case("url-form").body})
    assert [s["id"] for s in sora_server.stubs] == [second["id"], made["id"]]
    sora_server.clear_stubs()
    assert sora_server.stubs == []


def test_stub_refuses_what_the_contract_refuses(sora_server: SoraServer) -> None:
    with pytest.raises(StubError, match="character") as refused:
        sora_server.stub(response={"status": 200, "json": {"id": "nope"}})
    assert refused.value.status == 422 and refused.value.param == "response.json"
    with pytest.raises(StubError) as malformed:
        sora_server.stub(response={"status": 404, "json": ERROR, "headers": {"Content-Length": "1"}})
    assert malformed.value.param == "response.headers.Content-Length"
    flagged = sora_server.stub(response={"status": 200, "json": {"id": "nope"}}, off_contract=True)
    assert flagged["off_contract"] is True


def test_stub_from_a_corpus_case_and_reset(sora_server: SoraServer) -> None:
    made = sora_server.stub_from("rate-limited", times=2)
    assert made["response"]["status"] == 429 and made["response"]["headers"] == {"Retry-After": "2"}
    assert made["remaining"] == 2
    sora_server.reset()
    assert sora_server.stubs == []


def test_the_respx_router_has_the_same_api(sora_respx: object) -> None:
    from mock_server.testing import SoraRouter

    assert isinstance(sora_respx, SoraRouter)
    sora_respx.stub_from(fixtures.case("span-too-wide"))
    assert [s["response"]["status"] for s in sora_respx.stubs] == [422]
    assert sora_respx.coverage["total"] == len(OUTCOMES)


def test_coverage_reads_the_state(sora_server: SoraServer) -> None:
    sora_server.state.count_outcome("invalid_url")
    rows = {row["outcome"]: row["seen"] for row in sora_server.coverage["outcomes"]}
    assert rows["invalid_url"] == 1 and sora_server.coverage["met"] == 1


def test_a_soraserver_without_pytest_has_it_too() -> None:
    with SoraServer() as server:
        server.stub(response={"status": 404, "json": ERROR})
        listed = requests.get(server.url + "/__mock/stubs", timeout=10).json()
        assert [s["response"]["json"] for s in listed] == [ERROR]
        assert requests.get(server.url + "/__mock/coverage", timeout=10).json()["total"] == len(OUTCOMES)


# --- what needs the endpoint core to consult stubs and count outcomes ------------------------------


def test_a_stub_answers_a_create(sora_server: SoraServer) -> None:
    sora_server.stub(
        match={"body": {"from_task": fixtures.case("task-form").json_body["from_task"]}},
        response={"status": 404, "json": ERROR},
        times=1,
    )
    body = fixtures.case("task-form").json_body
    headers = {"Authorization": f"Bearer {sora_server.token}"}
    first = requests.post(sora_server.url + "/sora/v1/characters", json=body, headers=headers, timeout=10)
    second = requests.post(sora_server.url + "/sora/v1/characters", json=body, headers=headers, timeout=10)
    assert (first.status_code, first.json()) == (404, ERROR)
    assert second.status_code == 200
    rows = {row["outcome"]: row["seen"] for row in sora_server.coverage.get("stubbed", ())}
    assert rows == {"task_not_found": 1}


def test_the_client_kit_example_meets_a_429_and_passes_sora_require(pytester: pytest.Pytester) -> None:
    source = readme_examples()["test_sora_retry.py"]
    pytester.makepyfile(test_sora_retry=source)
    result = pytester.runpytest(*STRICT, "--sora-require=rate_limit_exceeded")
    assert result.ret == 0, result.stdout.str()
    assert re.search(r"sora contract coverage: \d+ of \d+ outcomes met", result.stdout.str())


def test_the_client_kit_example_is_on_the_page() -> None:
    source = readme_examples()["test_sora_retry.py"]
    assert "429" in source or "fail_next(429" in source
    assert (
        ROOT.joinpath("docs", "client-kit.md").read_text(encoding="utf-8").count("--sora-require=rate_limit_exceeded")
        >= 1
    )
