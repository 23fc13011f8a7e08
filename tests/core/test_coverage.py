"""Contract coverage: the outcome catalogue and reports (pure; the counts a state keeps are in tests/store)."""

from __future__ import annotations

import pytest

from mock_server import Contract
from mock_server.contract.rules import RULE_OUTCOMES, RuleError, check_request, decode_body
from mock_server.mock import fixtures
from mock_server.mock.coverage import OUTCOMES, Outcome, coverage_report, merge, missing, outcome_ids, parse_required

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
