"""Stubs: parsing against the contract, matching, storage on every backend, the admin API, one-call stubs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from mock_server import Contract, MockConfig, create_app
from mock_server.mock import fixtures
from mock_server.mock.state import STUBS, MockState
from mock_server.mock.stubs import (
    MAX_STUB_BYTES,
    MAX_STUBS,
    OFF_CONTRACT_OUTCOME,
    Stub,
    StubError,
    decode_stub,
    parse_stub,
    stub_from_case,
    stub_from_recording,
)
from mock_server.store import Store, open_store

from ..helpers import AUTH, VIDEO, MockProcess

CHARACTER = fixtures.case("url-form").body
ENVELOPE = {
    "error": {"message": "No such task.", "type": "invalid_request_error", "param": None, "code": "task_not_found"}
}

DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]


def _error(code: str, message: str = "Nope.") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def parse(data: object, contract: Contract) -> Stub:
    return parse_stub(data, contract, stub_id="s1")


# --- parsing --------------------------------------------------------------------------------------


def test_a_200_stub_with_a_conforming_character_is_accepted(contract: Contract) -> None:
    stub = parse({"response": {"status": 200, "json": CHARACTER}}, contract)
    assert (stub.status, stub.outcome, stub.times, stub.off_contract, stub.delay_ms) == (200, "created", None, False, 0)
    assert json.loads(stub.body) == CHARACTER
    assert stub.match_body is None and stub.match_headers == ()


def test_an_error_stub_counts_under_its_code(contract: Contract) -> None:
    stub = parse({"response": {"status": 404, "json": ENVELOPE}, "times": 2}, contract)
    assert (stub.status, stub.outcome, stub.times) == (404, "task_not_found", 2)


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ([], None),
        ({"response": {"status": 200, "json": {}}, "extra": 1}, "extra"),
        ({"response": {"status": 200, "json": {}, "body": 1}}, "response.body"),
        ({"match": {"query": {}}, "response": {"status": 404, "json": ENVELOPE}}, "match.query"),
        ({"match": [], "response": {"status": 404, "json": ENVELOPE}}, "match"),
        ({"match": {"body": "x"}, "response": {"status": 404, "json": ENVELOPE}}, "match.body"),
        ({"match": {"headers": {"X-A": 1}}, "response": {"status": 404, "json": ENVELOPE}}, "match.headers.X-A"),
        (
            {"match": {"headers": {"Authorization": "Bearer x"}}, "response": {"status": 404, "json": ENVELOPE}},
            "match.headers.Authorization",
        ),
        ({}, "response"),
        ({"response": "x"}, "response"),
        ({"response": {"json": ENVELOPE}}, "response.status"),
        ({"response": {"status": "404", "json": ENVELOPE}}, "response.status"),
        ({"response": {"status": True, "json": ENVELOPE}}, "response.status"),
        ({"response": {"status": 201, "json": ENVELOPE}}, "response.status"),
        ({"response": {"status": 302, "json": ENVELOPE}}, "response.status"),
        ({"response": {"status": 600, "json": ENVELOPE}}, "response.status"),
        ({"response": {"status": 404}}, "response.json"),
        (
            {"response": {"status": 404, "json": ENVELOPE, "headers": {"X-A": "a\r\nSet-Cookie: b"}}},
            "response.headers.X-A",
        ),
        ({"response": {"status": 404, "json": ENVELOPE, "headers": {"X-A": "a\nb"}}}, "response.headers.X-A"),
        ({"response": {"status": 404, "json": ENVELOPE, "headers": {"Bad Name": "a"}}}, "response.headers.Bad Name"),
        (
            {"response": {"status": 404, "json": ENVELOPE, "headers": {"Content-Length": "5"}}},
            "response.headers.Content-Length",
        ),
        (
            {"response": {"status": 404, "json": ENVELOPE, "headers": {"transfer-encoding": "chunked"}}},
            "response.headers.transfer-encoding",
        ),
        (
            {"response": {"status": 404, "json": ENVELOPE, "headers": {"Connection": "close"}}},
            "response.headers.Connection",
        ),
        ({"response": {"status": 404, "json": ENVELOPE, "headers": {"X-A": "1", "x-a": "2"}}}, "response.headers.x-a"),
        ({"response": {"status": 404, "json": ENVELOPE, "headers": []}}, "response.headers"),
        ({"response": {"status": 404, "json": ENVELOPE, "delay_ms": -1}}, "response.delay_ms"),
        ({"response": {"status": 404, "json": ENVELOPE, "delay_ms": 60_001}}, "response.delay_ms"),
        ({"response": {"status": 404, "json": ENVELOPE, "delay_ms": 1.5}}, "response.delay_ms"),
        ({"response": {"status": 404, "json": ENVELOPE, "headers": {"X-A": "caf\u00e9"}}}, "response.headers.X-A"),
        (
            {"response": {"status": 404, "json": ENVELOPE, "headers": {"Content-Encoding": "gzip"}}},
            "response.headers.Content-Encoding",
        ),
        ({"match": {"body": {"deep": DEEP}}, "response": {"status": 404, "json": ENVELOPE}}, "match.body.deep"),
        ({"response": {"status": 404, "json": ENVELOPE}, "times": 0}, "times"),
        ({"response": {"status": 404, "json": ENVELOPE}, "times": "2"}, "times"),
        ({"response": {"status": 404, "json": ENVELOPE}, "off_contract": "yes"}, "off_contract"),
        ({"response": {"status": 404, "json": float("nan")}, "off_contract": True}, "response.json"),
    ],
)
def test_a_malformed_stub_is_a_400_naming_the_field(contract: Contract, data: object, param: str | None) -> None:
    with pytest.raises(StubError) as refused:
        parse(data, contract)
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "invalid_stub", param)
    assert str(refused.value)


@pytest.mark.parametrize(
    ("response", "param", "says"),
    [
        ({"status": 200, "json": {"id": "nope"}}, "response.json", "username is missing"),
        ({"status": 200, "json": {**CHARACTER, "id": "ch_XYZ"}}, "response.json", "id"),
        ({"status": 200, "json": _error("x")}, "response.json", "'error' member"),
        ({"status": 404, "json": {"detail": "gone"}}, "response.json", "envelope"),
        (
            {"status": 404, "json": {"error": {"message": "m", "type": "t", "code": "c"}}},
            "response.json",
            "error.param",
        ),
        ({"status": 404, "json": _error("")}, "response.json.error.code", "non-empty"),
        (
            {"status": 404, "json": {"error": {"message": "m", "type": "t", "param": None, "code": None}}},
            "response.json.error.code",
            "non-empty",
        ),
        ({"status": 418, "json": _error("teapot")}, "response.status", "documents no 418"),
        ({"status": 500, "json": _error("rate_limit_exceeded")}, "response.status", "429"),
        ({"status": 400, "json": _error("invalid_timestamps_span")}, "response.status", "422"),
        ({"status": 429, "json": _error("rate_limit_exceeded")}, "response.headers", "Retry-After"),
        ({"status": 404, "json": _error("dropped")}, "response.json.error.code", "not an error answer"),
        ({"status": 404, "json": ENVELOPE, "headers": {"Content-Type": "text/plain"}}, "response.headers", "json"),
    ],
)
def test_a_stub_off_the_contract_is_a_422_naming_the_rule(
    contract: Contract, response: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(StubError) as refused:
        parse({"response": response}, contract)
    assert (refused.value.status, refused.value.code, refused.value.param) == (422, "stub_off_contract", param)
    assert says in str(refused.value)
    accepted = parse({"response": response, "off_contract": True}, contract)
    assert accepted.off_contract and accepted.status == response["status"]


def test_catalogue_codes_keep_their_status_and_server_error_takes_any_5xx(contract: Contract) -> None:
    limited = parse(
        {"response": {"status": 429, "json": _error("rate_limit_exceeded"), "headers": {"Retry-After": "3"}}}, contract
    )
    assert limited.outcome == "rate_limit_exceeded" and limited.headers == (("Retry-After", "3"),)
    assert parse({"response": {"status": 503, "json": _error("server_error")}}, contract).outcome == "server_error"


def test_off_contract_answers_without_a_code_count_as_off_contract(contract: Contract) -> None:
    stub = parse({"response": {"status": 502, "json": "Bad gateway"}, "off_contract": True}, contract)
    assert stub.outcome == OFF_CONTRACT_OUTCOME and stub.body == b'"Bad gateway"'
    teapot = parse({"response": {"status": 418, "json": _error("teapot")}, "off_contract": True}, contract)
    assert teapot.outcome == "teapot"
    odd = parse({"response": {"status": 200, "json": {"ok": True}}, "off_contract": True}, contract)
    assert odd.outcome == "created"


def test_a_stub_over_one_mib_is_refused(contract: Contract) -> None:
    big = {"error": {**ENVELOPE["error"], "message": "x" * MAX_STUB_BYTES}}
    with pytest.raises(StubError) as refused:
        parse({"response": {"status": 404, "json": big}}, contract)
    assert refused.value.status == 400 and "at most" in str(refused.value)


# --- matching -------------------------------------------------------------------------------------


def test_matching_compares_top_level_fields_and_exact_header_values(contract: Contract) -> None:
    stub = parse(
        {
            "match": {"body": {"from_task": "video_1", "n": 1}, "headers": {"X-Run": "a"}},
            "response": {"status": 404, "json": ENVELOPE},
        },
        contract,
    )
    assert stub.match_headers == (("x-run", "a"),)
    headers = {"x-run": "a", "content-type": "application/json"}
    assert stub.matches({"from_task": "video_1", "n": 1, "timestamps": "1,3"}, headers)
    assert stub.matches({"from_task": "video_1", "n": 1.0}, headers)
    assert not stub.matches({"from_task": "video_1", "n": True}, headers)  # JSON: true is not 1
    assert not stub.matches({"from_task": "video_2", "n": 1}, headers)
    assert not stub.matches({"from_task": "video_1"}, headers)
    assert not stub.matches({"from_task": "video_1", "n": 1}, {"x-run": "A"})
    assert not stub.matches({"from_task": "video_1", "n": 1}, {})
    assert not stub.matches(["from_task"], headers)


def test_nested_values_are_compared_as_json(contract: Contract) -> None:
    stub = parse(
        {"match": {"body": {"tags": [1, {"a": False}]}}, "response": {"status": 404, "json": ENVELOPE}}, contract
    )
    assert stub.matches({"tags": [1, {"a": False}]}, {})
    assert not stub.matches({"tags": [1, {"a": 0}]}, {})
    assert not stub.matches({"tags": [1]}, {})


def test_a_stub_without_match_answers_every_request(contract: Contract) -> None:
    stub = parse({"match": {}, "response": {"status": 404, "json": ENVELOPE}}, contract)
    assert stub.matches(None, {}) and stub.matches({"x": 1}, {"a": "b"})


def test_answer_headers_carry_the_json_type_unless_the_stub_sets_one(contract: Contract) -> None:
    plain = parse({"response": {"status": 404, "json": ENVELOPE, "headers": {"X-Trace": "t"}}}, contract)
    assert plain.response_headers() == [("Content-Type", "application/json"), ("X-Trace", "t")]
    typed = parse(
        {"response": {"status": 404, "json": ENVELOPE, "headers": {"content-type": "application/json; charset=utf-8"}}},
        contract,
    )
    assert typed.response_headers() == [("content-type", "application/json; charset=utf-8")]


def test_a_stub_survives_storage(contract: Contract) -> None:
    stub = parse(
        {
            "match": {"body": {"url": "https://e.com/v.mp4"}, "headers": {"X-Run": "a"}},
            "response": {
                "status": 429,
                "json": _error("rate_limit_exceeded"),
                "headers": {"Retry-After": "2"},
                "delay_ms": 5,
            },
            "times": 3,
        },
        contract,
    )
    again = Stub.from_json(json.loads(json.dumps(stub.to_json())))
    assert again == stub
    assert decode_stub(json.dumps(stub.to_json()).encode()) == stub


# --- the store ------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = {"memory": "memory", "sqlite": f"sqlite:///{tmp_path}/state.db"}.get(request.param)
    if url is None:
        url = request.getfixturevalue("redis_url")
    opened = open_store(url, prefix="stubs:")
    yield opened
    opened.close()


def test_stores_keep_stub_rows_in_order_and_count_hits(store: Store) -> None:
    assert store.put(STUBS, "a", b'{"a":1}', None, 10) and store.put(STUBS, "b", b'{"b":1}', 2, 10)
    assert store.entries(STUBS) == [("a", b'{"a":1}', 0, None), ("b", b'{"b":1}', 0, 2)]
    assert store.take(STUBS, "b") and store.take(STUBS, "b")
    assert store.take(STUBS, "b") is None  # used up: stays listed with remaining 0
    assert store.take(STUBS, "a") and store.take(STUBS, "a") and store.take(STUBS, "a")
    assert store.entries(STUBS) == [("a", b'{"a":1}', 3, None), ("b", b'{"b":1}', 2, 0)]
    assert store.take(STUBS, "gone") is None


def test_stores_delete_clear_and_reset_stubs(store: Store) -> None:
    for name in "abc":
        store.put(STUBS, name, name.encode(), 1, 10)
    assert store.remove(STUBS, "b") and not store.remove(STUBS, "b")
    assert [s[0] for s in store.entries(STUBS)] == ["a", "c"]
    store.remove(STUBS)
    assert store.entries(STUBS) == []
    store.put(STUBS, "d", b"d", None, 10)
    store.incr("outcome:created", 4)
    store.reset(counters=("outcome:created",))
    assert store.entries(STUBS) == [] and store.get("outcome:created") == 0


def test_stores_refuse_stubs_past_the_limit_and_replace_by_id(store: Store) -> None:
    assert store.put(STUBS, "a", b"1", None, 2) and store.put(STUBS, "b", b"2", None, 2)
    assert not store.put(STUBS, "c", b"3", None, 2)
    store.take(STUBS, "a")
    assert store.put(STUBS, "a", b"new", 5, 2)  # replacing one held is not one more
    assert store.entries(STUBS) == [("b", b"2", 0, None), ("a", b"new", 0, 5)]


def test_hits_are_atomic_across_threads(store: Store) -> None:
    store.put(STUBS, "once", b"x", 25, 10)
    wins: list[bool] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(10):
            won = store.take(STUBS, "once") is not None
            with lock:
                wins.append(won)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert wins.count(True) == 25 and len(wins) == 40
    assert store.entries(STUBS) == [("once", b"x", 25, 0)]


def test_two_stores_on_one_url_share_stubs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = open_store(url), open_store(url)
    try:
        first.put(STUBS, "a", b"x", 1, 10)
        assert second.take(STUBS, "a") and first.take(STUBS, "a") is None
        assert first.entries(STUBS) == [("a", b"x", 1, 0)]
    finally:
        first.close()
        second.close()


# --- MockState ------------------------------------------------------------------------------------


def test_take_stub_picks_the_newest_match_and_uses_its_times(contract: Contract) -> None:
    state = MockState()
    older = parse_stub({"response": {"status": 404, "json": ENVELOPE}}, contract, stub_id="older")
    newer = parse_stub(
        {
            "match": {"body": {"from_task": "video_1"}},
            "response": {"status": 500, "json": _error("server_error")},
            "times": 1,
        },
        contract,
        stub_id="newer",
    )
    state.add_stub(older)
    state.add_stub(newer)
    assert state.take_stub({"from_task": "video_1"}, {}) == newer
    assert state.take_stub({"from_task": "video_1"}, {}) == older  # newer is used up
    assert state.take_stub({"url": "x"}, {}) == older
    listed = state.list_stubs()
    assert [(s["id"], s["hits"], s["remaining"]) for s in listed] == [("newer", 1, 0), ("older", 2, None)]
    assert state.delete_stub("older") and state.take_stub({}, {}) is None
    state.add_stub(older)
    state.reset()
    assert state.list_stubs() == []


def test_more_than_max_stubs_is_a_stub_error(contract: Contract) -> None:
    state = MockState()
    data = {"response": {"status": 404, "json": ENVELOPE}}
    for number in range(MAX_STUBS):
        state.add_stub(parse_stub(data, contract, stub_id=f"s{number}"))
    with pytest.raises(StubError) as refused:
        state.add_stub(parse_stub(data, contract, stub_id="one-more"))
    assert refused.value.status == 400 and str(MAX_STUBS) in str(refused.value)
    state.clear_stubs()
    assert state.list_stubs() == []


# --- one-call stubs from the corpus and from recordings -------------------------------------------


def test_a_corpus_case_becomes_a_stub_in_one_call(contract: Contract) -> None:
    described = stub_from_recording("rate-limited")
    stub = parse(described, contract)
    assert (stub.status, stub.outcome, dict(stub.headers)) == (429, "rate_limit_exceeded", {"Retry-After": "2"})
    assert stub.match_body == fixtures.case("rate-limited").json_body
    assert "match" not in stub_from_case(fixtures.case("rate-limited"), match_body=False)
    assert stub_from_recording(fixtures.case("url-form"), times=1)["times"] == 1


def test_a_recording_becomes_a_stub(contract: Contract, tmp_path: Path) -> None:
    item = fixtures.case("task-form")
    document = {
        "recorded_from": "http://127.0.0.1:8000",
        "cases": [{"name": item.name, "request": dict(item.request), "response": {**item.response, "elapsed_ms": 12}}],
    }
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    stub = parse(stub_from_recording(path), contract)
    assert stub.status == 200 and json.loads(stub.body) == item.body
    assert stub.matches(item.json_body, {})


def test_recordings_with_several_cases_or_no_answer_say_what_to_do(tmp_path: Path) -> None:
    first, second = fixtures.case("url-form"), fixtures.case("span-too-wide")
    cases = [{"name": c.name, "request": dict(c.request), "response": dict(c.response)} for c in (first, second)]
    path = tmp_path / "rec.json"
    path.write_text(json.dumps({"cases": cases}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"several cases \(url-form, span-too-wide\)"):
        stub_from_recording(path)
    assert stub_from_recording(path, case="span-too-wide")["response"]["status"] == 422
    with pytest.raises(ValueError, match="no case 'nope'"):
        stub_from_recording(path, case="nope")
    dropped = {"name": "x", "request": {}, "response": {"status": None, "transport_error": "ReadError"}}
    with pytest.raises(ValueError, match="drop_next"):
        stub_from_recording({"cases": [dropped]})
    with pytest.raises(KeyError):
        stub_from_recording("no-such-case")


# --- the admin API --------------------------------------------------------------------------------


@pytest.fixture
def admin(make_app: Callable[..., Any]) -> FlaskClient:
    client: FlaskClient = make_app().test_client()
    return client


def test_post_lists_and_deletes_stubs(admin: FlaskClient) -> None:
    created = admin.post("/__mock/stubs", json={"response": {"status": 404, "json": ENVELOPE}, "times": 2})
    assert created.status_code == 201
    stub = created.get_json()
    assert stub["id"] and stub["response"]["status"] == 404 and stub["times"] == 2
    assert (stub["hits"], stub["remaining"], stub["off_contract"]) == (0, 2, False)
    second = admin.post("/__mock/stubs", json={"response": {"status": 200, "json": CHARACTER}}).get_json()
    listed = admin.get("/__mock/stubs").get_json()
    assert [s["id"] for s in listed] == [second["id"], stub["id"]]
    assert admin.delete(f"/__mock/stubs/{stub['id']}").status_code == 200
    gone = admin.delete(f"/__mock/stubs/{stub['id']}")
    assert gone.status_code == 404 and gone.get_json()["error"]["param"] == "id"
    assert admin.delete("/__mock/stubs").get_json() == {"status": "cleared"}
    assert admin.get("/__mock/stubs").get_json() == []


def test_reset_clears_the_stubs(admin: FlaskClient) -> None:
    admin.post("/__mock/stubs", json={"response": {"status": 404, "json": ENVELOPE}})
    admin.post("/__mock/reset")
    assert admin.get("/__mock/stubs").get_json() == []


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"not json", 400, None),
        (b'{"response": {"status": 404, "json": {}}, "x": 1}', 400, "x"),
        (
            b'{"response": {"status": 404, "json": {}, "headers": {"Connection": "close"}}, "off_contract": true}',
            400,
            "response.headers.Connection",
        ),
        (b'{"response": {"status": 200, "json": {"id": "x"}}}', 422, "response.json"),
    ],
)
def test_bad_stubs_get_the_envelope_naming_the_field(
    admin: FlaskClient, body: bytes, status: int, param: str | None
) -> None:
    answer = admin.post("/__mock/stubs", data=body, content_type="application/json")
    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert error["param"] == param and error["message"]
    assert error["code"] == ("stub_off_contract" if status == 422 else "invalid_stub")
    assert admin.get("/__mock/stubs").get_json() == []


def test_a_body_over_one_mib_is_a_400_not_a_413(admin: FlaskClient) -> None:
    body = b'{"response": {"status": 404, "json": "' + b"x" * MAX_STUB_BYTES + b'"}, "off_contract": true}'
    answer = admin.post("/__mock/stubs", data=body, content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_stub"


def test_stubs_are_shared_by_apps_on_one_state(tmp_path: Path) -> None:
    config = MockConfig(state=f"sqlite:///{tmp_path}/state.db")
    first, second = create_app(config).test_client(), create_app(config).test_client()
    made = first.post("/__mock/stubs", json={"response": {"status": 404, "json": ENVELOPE}}).get_json()
    assert [s["id"] for s in second.get("/__mock/stubs").get_json()] == [made["id"]]
    assert second.delete("/__mock/stubs").status_code == 200
    assert first.get("/__mock/stubs").get_json() == []


# --- sora-mock serve, one worker and two ----------------------------------------------------------


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_served_stubs_are_one_set_for_every_worker(workers: list[str]) -> None:
    import requests

    with MockProcess(workers) as mock:
        made = requests.post(
            mock.url("/__mock/stubs"), json={"response": {"status": 404, "json": ENVELOPE}}, timeout=10
        )
        assert made.status_code == 201, made.text
        stub_id = made.json()["id"]
        for _ in range(8):  # fresh connections: with two workers both answer some
            with requests.Session() as fresh:
                assert [s["id"] for s in fresh.get(mock.url("/__mock/stubs"), timeout=10).json()] == [stub_id]
        refused = requests.post(mock.url("/__mock/stubs"), json={"response": {"status": 200, "json": {}}}, timeout=10)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "stub_off_contract"
        assert requests.delete(mock.url(f"/__mock/stubs/{stub_id}"), timeout=10).status_code == 200
        requests.post(mock.url("/__mock/stubs"), json={"response": {"status": 404, "json": ENVELOPE}}, timeout=10)
        assert requests.post(mock.url("/__mock/reset"), timeout=10).status_code == 200
        for _ in range(4):
            with requests.Session() as fresh:
                assert fresh.get(mock.url("/__mock/stubs"), timeout=10).json() == []
        assert mock.stop() == 0


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_served_stubs_answer_creates_exactly_times_across_workers(workers: list[str]) -> None:
    import requests

    body = fixtures.case("task-form").json_body
    auth = {"Authorization": "Bearer sk-test"}
    with MockProcess(workers) as mock:
        stub = {
            "match": {"body": {"from_task": body["from_task"]}},
            "response": {"status": 404, "json": ENVELOPE},
            "times": 3,
        }
        made = requests.post(mock.url("/__mock/stubs"), json=stub, timeout=10).json()
        statuses = []
        for _ in range(6):
            with requests.Session() as fresh:
                answer = fresh.post(mock.url("/sora/v1/characters"), json=body, headers=auth, timeout=10)
                statuses.append(answer.status_code)
                if answer.status_code == 404:
                    assert answer.json() == ENVELOPE
        assert sorted(statuses) == [200, 200, 200, 404, 404, 404]
        rule_break = requests.post(
            mock.url("/sora/v1/characters"), json={**body, "timestamps": "1,9"}, headers=auth, timeout=10
        )
        assert rule_break.status_code == 422  # the rules come before the stubs
        (listed,) = requests.get(mock.url("/__mock/stubs"), timeout=10).json()
        assert (listed["id"], listed["hits"], listed["remaining"]) == (made["id"], 3, 0)
        coverage = requests.get(mock.url("/__mock/coverage"), timeout=10).json()
        seen = {row["outcome"]: row["seen"] for row in coverage["outcomes"]}
        assert (seen["created"], seen["invalid_timestamps_span"]) == (3, 1)
        assert coverage["stubbed"] == [{"outcome": "task_not_found", "status": 404, "seen": 3}]
        stubbed = requests.get(mock.url("/__mock/requests?code=task_not_found"), timeout=10).json()
        assert [(e["status"], e["stub"]) for e in stubbed] == [(404, made["id"])] * 3
        assert not any(e.get("off_contract") for e in stubbed)
        assert mock.stop() == 0


def test_an_off_contract_stub_answer_is_flagged_in_the_journal(make_app: Callable[..., Any]) -> None:

    client = make_app().test_client()
    made = client.post(
        "/__mock/stubs", json={"response": {"status": 502, "json": "Bad gateway"}, "off_contract": True}
    ).get_json()
    answer = client.post("/sora/v1/characters", json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    assert (answer.status_code, answer.get_json()) == (502, "Bad gateway")
    (entry,) = client.get("/__mock/requests").get_json()
    assert (entry["stub"], entry["off_contract"], entry["outcome"]) == (made["id"], True, OFF_CONTRACT_OUTCOME)


def test_sora_respx_answers_from_stubs(sora_respx: Any) -> None:
    import httpx

    sora_respx.stub_from("span-too-wide", match_body=False, times=1)
    first = httpx.post(
        "https://api.jxincm.cn/sora/v1/characters",
        json=fixtures.case("url-form").json_body,
        headers={"Authorization": f"Bearer {sora_respx.token}"},
    )
    assert first.status_code == 422 and first.json() == fixtures.case("span-too-wide").body
