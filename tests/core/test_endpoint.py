"""The endpoint core on its own: a :class:`Request` in, an :class:`Answer` out.

No server, no Flask, no socket: each test builds an :class:`Endpoint` over an in-memory state and
calls :meth:`Endpoint.handle` directly, so a rule or an outcome is checked in milliseconds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mock_server.contract.http import AUTH_CHALLENGE, malformed_body, too_large
from mock_server.contract.rules import RULE_OUTCOMES, Violation, check_character, check_error_body
from mock_server.contract.spec import ENDPOINT_PATH, load_contract
from mock_server.mock import defects
from mock_server.mock.config import MockConfig
from mock_server.mock.core import ALLOWED_METHODS, Answer, Endpoint, Request
from mock_server.mock.faults import Fault
from mock_server.mock.fixtures import Case, iter_cases
from mock_server.mock.state import MockState
from mock_server.mock.stubs import parse_stub

TOKEN = "core-token-0123"
CONTRACT = load_contract()
BODY = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}


def endpoint(**overrides: Any) -> Endpoint:
    """An endpoint over a fresh in-memory state; keyword arguments are :class:`MockConfig` fields."""
    overrides.setdefault("seed", 7)
    config = MockConfig(**overrides)
    state = MockState.open(config.state, journal_size=config.journal_size, journal_bytes=config.journal_bytes)
    assert config.seed is not None
    return Endpoint(config, state, CONTRACT, seed=config.seed, policy=defects.policy(config.defects))


def post(body: object = BODY, *, token: str | None = TOKEN, raw: bytes | None = None, **extra: Any) -> Request:
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    content = raw if raw is not None else json.dumps(body).encode()
    return Request("POST", ENDPOINT_PATH, tuple(headers), content, "127.0.0.1", **extra)


def error_of(answer: Answer) -> dict[str, Any]:
    data = json.loads(answer.body)
    assert check_error_body(data) == [], answer.body
    error: dict[str, Any] = data["error"]
    return error


def corpus_request(case: Case) -> Request:
    headers = tuple(case.headers(TOKEN).items())
    return Request(case.method, case.path, headers, case.content(), "127.0.0.1")


# --- rule outcomes -----------------------------------------------------------------------------

RULE_CASES = [case for case in iter_cases() if case.code in RULE_OUTCOMES]


def test_the_corpus_reaches_every_rule_outcome_but_duplicate_keys() -> None:
    reached = {case.code for case in RULE_CASES}
    assert reached | {"duplicate_key"} == set(RULE_OUTCOMES)


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda case: case.name)
def test_each_rule_break_is_answered_with_its_code_status_and_field(case: Case) -> None:
    point = endpoint(token=TOKEN)
    answer = point.handle(corpus_request(case))
    error = error_of(answer)
    assert (answer.status, error["code"], error["param"]) == (case.status, case.code, case.param)
    assert answer.status == RULE_OUTCOMES[error["code"]]
    assert answer.outcome == case.code
    assert [entry["outcome"] for entry in point.state.requests()] == [case.code]


@pytest.mark.parametrize("case", list(iter_cases("valid")), ids=lambda case: case.name)
def test_each_valid_case_is_created_with_a_character_that_keeps_the_contract(case: Case) -> None:
    answer = endpoint(token=TOKEN).handle(corpus_request(case))
    assert (answer.status, answer.outcome, answer.is_json) == (200, "created", True)
    assert check_character(json.loads(answer.body), CONTRACT) == []


def test_duplicate_keys_are_a_400_naming_the_key() -> None:
    answer = endpoint().handle(post(raw=b'{"url": "https://example.com/a.mp4", "url": "x", "timestamps": "1,2"}'))
    error = error_of(answer)
    assert (answer.status, error["code"], answer.outcome) == (400, "duplicate_key", "duplicate_key")
    assert "url" in error["message"]


# --- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_authorization_scheme"),
        ("Bearer wrong-token-0123", "invalid_api_key"),
    ],
)
def test_auth_refusals_come_before_the_body_with_a_challenge(authorization: str | None, code: str) -> None:
    headers = (("Authorization", authorization),) if authorization else ()
    answer = endpoint(token=TOKEN).handle(Request("POST", ENDPOINT_PATH, headers, b"not json"))
    assert (answer.status, error_of(answer)["code"], answer.outcome) == (401, code, code)
    assert AUTH_CHALLENGE in answer.headers


def test_without_a_pinned_token_any_bearer_token_is_accepted() -> None:
    assert endpoint().handle(post(token="anything-at-all")).status == 200


# --- methods -----------------------------------------------------------------------------------


def test_options_is_a_204_with_allow_and_no_body() -> None:
    answer = endpoint().handle(Request("OPTIONS", ENDPOINT_PATH))
    assert (answer.status, answer.body, answer.headers) == (204, b"", [("Allow", ALLOWED_METHODS)])


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_a_405_with_allow(method: str) -> None:
    answer = endpoint().handle(Request(method, ENDPOINT_PATH, (("Authorization", f"Bearer {TOKEN}"),)))
    assert (answer.status, error_of(answer)["code"]) == (405, "method_not_allowed")
    assert ("Allow", ALLOWED_METHODS) in answer.headers


def test_the_endpoint_owns_its_path_with_doubled_slashes_only() -> None:
    point = endpoint()
    assert point.owns(ENDPOINT_PATH) and point.owns("/sora//v1/characters")
    assert not point.owns("/sora/v1/character") and not point.owns(ENDPOINT_PATH + "/")


# --- transport refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (too_large(1024), 413, "request_too_large"),
        (Violation(408, None, "request_timeout", "The request body did not arrive in time."), 408, "request_timeout"),
        (malformed_body(), 400, malformed_body().code),
    ],
)
def test_a_transport_refusal_is_answered_after_auth_and_closes_the_connection(
    refusal: Violation, status: int, code: str
) -> None:
    point = endpoint(token=TOKEN)
    answer = point.handle(_refused(refusal))
    assert (answer.status, error_of(answer)["code"], answer.outcome) == (status, code, code)
    assert ("Connection", "close") in answer.headers
    denied = point.handle(_refused(refusal, token="wrong-token-0123"))
    assert denied.status == 401  # auth is decided first


def _refused(refusal: Violation, token: str = TOKEN) -> Request:
    headers = (("Authorization", f"Bearer {token}"),)
    return Request("POST", ENDPOINT_PATH, headers, None, "127.0.0.1", refusal)


def test_an_unsure_chunked_end_that_does_not_decode_is_malformed_framing() -> None:
    answer = endpoint().handle(post(raw=b'{"url": ', unsure_end=True))
    assert (answer.status, error_of(answer)["code"]) == (400, malformed_body().code)
    assert endpoint().handle(post(unsure_end=True)).status == 200


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault(status=429, retry_after=2), 429, "rate_limit_exceeded"),
        (Fault(status=500), 500, "server_error"),
        (Fault(status=503), 503, "server_error"),
    ],
)
def test_a_pending_fault_answers_after_auth_and_rules(fault: Fault, status: int, code: str) -> None:
    point = endpoint(token=TOKEN)
    point.state.push_fault(fault)
    assert point.handle(post(token="wrong-token-0123")).status == 401
    assert point.handle(post({"url": "x"})).status == 422
    answer = point.handle(post())
    assert (answer.status, error_of(answer)["code"]) == (status, code)
    if status == 429:
        assert ("Retry-After", "2") in answer.headers
    assert point.handle(post()).status == 200  # used up


def test_a_drop_fault_drops_and_a_delay_fault_answers_late() -> None:
    point = endpoint()
    point.state.push_fault(Fault(drop=True))
    dropped = point.handle(post())
    assert (dropped.drop, dropped.outcome) == (True, "dropped")
    point.state.push_fault(Fault(delay_ms=250))
    late = point.handle(post())
    assert (late.status, late.delay) == (200, 0.25)


def test_latency_is_added_to_every_post() -> None:
    assert endpoint(latency_ms=40).handle(post()).delay == pytest.approx(0.04)


def test_a_fault_rate_of_one_fails_every_valid_request_with_the_fault_status() -> None:
    point = endpoint(fault_rate=1.0, fault_status=503)
    assert [point.handle(post()).status for _ in range(3)] == [503, 503, 503]
    assert point.handle(post({})).status == 422


# --- stubs -------------------------------------------------------------------------------------


def _stub(point: Endpoint, stub_id: str, data: dict[str, Any]) -> None:
    point.state.add_stub(parse_stub(data, CONTRACT, stub_id=stub_id))


def test_stubs_answer_newest_first_and_only_when_they_match() -> None:
    point = endpoint()
    busy = {"error": {"message": "busy", "type": "server_error", "param": None, "code": "server_error"}}
    _stub(point, "older", {"response": {"status": 500, "json": busy}})
    _stub(point, "newer", {"match": {"body": {"timestamps": "1,2"}}, "response": {"status": 503, "json": busy}})
    assert point.handle(post({**BODY, "timestamps": "1,2"})).status == 503
    assert point.handle(post()).status == 500
    assert point.handle(post({})).status == 422  # the rules come before any stub


# --- the 200, the journal and coverage ----------------------------------------------------------


def test_the_character_keeps_the_contract_and_is_seeded() -> None:
    first = endpoint(seed=11).handle(post())
    again = endpoint(seed=11, clock=lambda: 1_760_000_000.0).handle(post())
    character = json.loads(first.body)
    assert check_character(character, CONTRACT) == []
    assert json.loads(again.body)["username"] == character["username"]
    assert first.headers == [("Content-Type", "application/json")]


def test_every_post_is_journaled_with_its_outcome_and_the_token_redacted() -> None:
    point = endpoint(token=TOKEN)
    point.handle(post())
    point.handle(post({"url": "https://example.com/a.mp4"}))
    point.handle(Request("GET", ENDPOINT_PATH))
    entries = point.state.requests()
    assert [(entry["status"], entry["outcome"]) for entry in entries] == [
        (200, "created"),
        (422, "missing_required_parameter"),
    ]
    assert TOKEN not in json.dumps(entries)
    assert entries[1]["body"] == {"url": "https://example.com/a.mp4"}


def test_outcomes_are_counted_for_coverage() -> None:
    point = endpoint(token=TOKEN)
    for request in (post(), post(), post({}), post(token=None)):
        point.handle(request)
    seen = {row["outcome"]: row["seen"] for row in point.state.coverage()["outcomes"]}
    assert seen["created"] == 2
    assert seen["missing_source"] + seen["missing_required_parameter"] == 1
    assert seen["missing_api_key"] == 1
