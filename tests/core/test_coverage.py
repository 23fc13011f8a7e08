"""Contract coverage: the outcome catalogue, reports, and the counts a state keeps on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from mock_server import Contract
from mock_server.contract.rules import RULE_OUTCOMES, RuleError, check_request, decode_body
from mock_server.mock import fixtures
from mock_server.mock.compose import composition_of
from mock_server.mock.coverage import OUTCOMES, Outcome, coverage_report, merge, missing, outcome_ids, parse_required
from mock_server.mock.state import MockState
from mock_server.mock.stubs import parse_stub

from ..helpers import MockProcess, free_port

ROUTING = {"not_found", "method_not_allowed"}


def test_the_catalogue_holds_every_code_the_corpus_answers_on_the_endpoint() -> None:
    ids = set(outcome_ids())
    by_id = {o.id: o.status for o in OUTCOMES}
    for item in fixtures.iter_cases():
        code = "created" if item.status == 200 else item.code
        assert code is not None, item.name
        if code in ROUTING:  # not the endpoint's
            assert code not in ids
            continue
        assert code in ids, item.name
        if item.fault is None or item.status < 500:
            assert by_id[code] == item.status, item.name


def test_the_rule_registry_gives_the_status_each_rule_answers(contract: Contract) -> None:
    rules = contract
    for item in fixtures.iter_cases("invalid"):
        if item.status == 401:
            continue
        try:
            violation = check_request(decode_body(item.content(), reject_duplicates=True), rules)
        except RuleError as exc:
            violation = exc.violation
        assert violation is not None, item.name
        assert RULE_OUTCOMES[violation.code] == violation.status == item.status, item.name


def test_the_catalogue_comes_from_the_rules_auth_limits_faults_and_the_store() -> None:
    ids = outcome_ids()
    assert ids[0] == "created" and len(ids) == len(set(ids))
    assert set(RULE_OUTCOMES) <= set(ids)
    for needed in (
        "missing_api_key",
        "invalid_api_key",
        "request_too_large",
        "request_timeout",
        "rate_limit_exceeded",
        "server_error",
        "dropped",
        "state_unavailable",
        "incomplete_body",
        "malformed_body",
    ):
        assert needed in ids
    assert Outcome("dropped", None) in OUTCOMES and Outcome("request_too_large", 413) in OUTCOMES
    assert "invalid_model" not in ids and not ROUTING & set(ids)


def test_a_report_lists_every_outcome_and_counts_the_met_ones() -> None:
    report = coverage_report({"created": 3, "rate_limit_exceeded": 1, "server_error": 0})
    assert report["total"] == len(OUTCOMES) and report["met"] == 2
    rows = {row["outcome"]: row for row in report["outcomes"]}
    assert rows["created"] == {"outcome": "created", "status": 200, "seen": 3}
    assert rows["dropped"] == {"outcome": "dropped", "status": None, "seen": 0}
    assert "stubbed" not in report
    assert missing(report, ["created", "dropped", "server_error"]) == ["server_error", "dropped"]


def test_codes_outside_the_catalogue_are_reported_apart() -> None:
    report = coverage_report({"task_not_found": 2, "created": 1}, {"task_not_found": 404})
    assert report["met"] == 1
    assert report["stubbed"] == [{"outcome": "task_not_found", "status": 404, "seen": 2}]


def test_merge_sums_reports() -> None:
    first = coverage_report({"created": 2, "task_not_found": 1}, {"task_not_found": 404})
    second = coverage_report({"created": 1, "dropped": 4})
    merged = merge([first, second])
    rows = {row["outcome"]: row["seen"] for row in merged["outcomes"]}
    assert (rows["created"], rows["dropped"], merged["met"]) == (3, 4, 2)
    assert merged["stubbed"] == [{"outcome": "task_not_found", "status": 404, "seen": 1}]
    assert merge([])["met"] == 0


def test_outcome_of_names_one_answer() -> None:
    from mock_server.mock.coverage import outcome_of

    assert outcome_of(None) == "dropped" and outcome_of(200) == "created" and outcome_of(200, "x") == "created"
    assert outcome_of(422, "invalid_url") == "invalid_url" and outcome_of(503, None) == "server_error"


def test_parse_required_reads_a_comma_list_or_all() -> None:
    assert parse_required(" dropped , created") == ("created", "dropped")
    assert parse_required("all") == outcome_ids()
    with pytest.raises(ValueError, match="unknown outcome 'rate_limited'"):
        parse_required("created,rate_limited")
    with pytest.raises(ValueError, match="at least one"):
        parse_required(" , ")


# --- the state: counters in the store --------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MockState]:
    url = {"memory": "memory", "sqlite": f"sqlite:///{tmp_path}/state.db"}.get(request.param)
    if url is None:
        url = request.getfixturevalue("redis_url")
    opened = MockState.open(url)
    yield opened
    opened.close()


def test_counts_live_in_the_store_and_reset_zeroes_them(state: MockState, contract: Contract) -> None:
    for outcome in ("created", "created", "rate_limit_exceeded"):
        state.count_outcome(outcome)
    stub = parse_stub(
        {
            "response": {
                "status": 404,
                "json": {"error": {"message": "m", "type": "t", "param": None, "code": "task_not_found"}},
            }
        },
        contract,
        stub_id="s",
    )
    state.add_stub(stub)
    state.count_outcome(stub.outcome)
    report = state.coverage()
    rows = {row["outcome"]: row["seen"] for row in report["outcomes"]}
    assert (rows["created"], rows["rate_limit_exceeded"], report["met"]) == (2, 1, 2)
    assert report["stubbed"] == [{"outcome": "task_not_found", "status": 404, "seen": 1}]
    state.reset()
    after = state.coverage()
    assert after["met"] == 0 and "stubbed" not in after
    state.add_stub(stub)  # the same code again starts from zero
    assert state.coverage()["stubbed"][0]["seen"] == 0


def test_two_states_on_one_url_share_the_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = MockState.open(url), MockState.open(url)
    try:
        first.count_outcome("dropped")
        second.count_outcome("dropped")
        rows = {row["outcome"]: row["seen"] for row in first.coverage()["outcomes"]}
        assert rows["dropped"] == 2
    finally:
        first.close()
        second.close()


def test_get_coverage_answers_the_report_and_reset_zeroes_it(client: FlaskClient, app: Flask) -> None:
    state: MockState = composition_of(app).state
    state.count_outcome("invalid_timestamps_span")
    report = client.get("/__mock/coverage").get_json()
    assert report["met"] == 1 and report["total"] == len(OUTCOMES)
    assert {"outcome": "invalid_timestamps_span", "status": 422, "seen": 1} in report["outcomes"]
    client.post("/__mock/reset")
    assert client.get("/__mock/coverage").get_json()["met"] == 0


# --- sora-mock coverage URL ------------------------------------------------------------------------


def _coverage_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from mock_server.serving.cli import main; main()", "coverage", *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_sora_mock_coverage_prints_the_table_of_a_running_mock(workers: list[str]) -> None:
    with MockProcess(workers) as mock:
        done = _coverage_cli(mock.url(""))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["outcome", "status", "seen"]
        assert any(line.split() == ["dropped", "-", "0"] for line in lines)
        assert any(line.split() == ["rate_limit_exceeded", "429", "0"] for line in lines)
        assert lines[-1] == f"0 of {len(OUTCOMES)} outcomes met"
        as_json = _coverage_cli(mock.url("/"), "--json")
        report = json.loads(as_json.stdout)
        assert report["total"] == len(OUTCOMES) and len(report["outcomes"]) == len(OUTCOMES)
        required = _coverage_cli(mock.url(""), "--require", "created,dropped")
        assert required.returncode == 1 and "never met: created, dropped" in required.stderr
        unknown = _coverage_cli(mock.url(""), "--require", "nope")
        assert unknown.returncode == 2 and "unknown outcome 'nope'" in unknown.stderr
        assert mock.stop() == 0


def test_sora_mock_coverage_takes_the_admin_token_from_the_environment() -> None:
    secret = "admin-" + os.urandom(6).hex()
    with MockProcess([], env={"SORA_MOCK_ADMIN_TOKEN": secret}) as mock:
        refused = _coverage_cli(mock.url(""))
        assert refused.returncode == 1 and "401" in refused.stderr and "--admin-token" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
        assert _coverage_cli(mock.url(""), env={"SORA_MOCK_ADMIN_TOKEN": secret}).returncode == 0
        assert _coverage_cli(mock.url(""), "--admin-token", secret).returncode == 0
        wrong = _coverage_cli(mock.url(""), "--admin-token", "wrong")
        assert wrong.returncode == 1 and "wrong --admin-token" in wrong.stderr and secret not in wrong.stderr


def test_sora_mock_coverage_says_when_nothing_answers_or_it_is_not_a_mock(tmp_path: Path) -> None:
    unreachable = _coverage_cli(f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1 and "Traceback" not in unreachable.stderr
    (tmp_path / "__mock").mkdir()
    (tmp_path / "__mock" / "coverage").write_text("<html>hello</html>", encoding="utf-8")
    other = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path),
            str(port := free_port()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.05)
        not_a_mock = _coverage_cli(f"http://127.0.0.1:{port}")
        assert not_a_mock.returncode == 1 and "is it a sora-mock?" in not_a_mock.stderr
        missing_route = _coverage_cli(f"http://127.0.0.1:{port}/elsewhere")
        assert missing_route.returncode == 1 and "404" in missing_route.stderr
    finally:
        other.terminate()
        other.wait(timeout=10)
    bad_url = _coverage_cli("127.0.0.1:8000")
    assert bad_url.returncode == 2 and "http(s) URL" in bad_url.stderr
