"""The guard in-process (Flask test client) in front of `sora-mock serve` subprocesses on 127.0.0.1.

What reached the upstream is counted through its journal (``GET /__mock/requests``).
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WzRequest
from werkzeug.wrappers import Response as WzResponse

from mock_server.contract.rules import Contract, check_character
from mock_server.fixtures import case, cases_from, iter_cases
from mock_server.relay.guard import GUARD_HEADER, GuardConfig, create_guard_app, judge_answer

from .conftest import TASK, VIDEO
from .helpers import MockProcess

PATH = "/sora/v1/characters"
TOKEN = "guard-test-secret-7c1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID = {"url": VIDEO, "timestamps": "1,3"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockProcess]:
    with MockProcess(["--token", TOKEN, "--workers", "1", "--seed", "5"]) as server:
        yield server


@pytest.fixture(scope="module")
def defect_upstreams() -> Iterator[Callable[[str], MockProcess]]:
    started: dict[str, MockProcess] = {}

    def get(defect: str) -> MockProcess:
        if defect not in started:
            server = MockProcess(["--token", TOKEN, "--workers", "1", "--defect", defect])
            started[defect] = server.__enter__()
        return started[defect]

    yield get
    for server in started.values():
        server.__exit__(None, None, None)


def journal(server: MockProcess) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(server.url("/__mock/requests"), timeout=10).json()
    return entries


def push_fault(server: MockProcess, fault: dict[str, Any]) -> None:
    assert httpx.post(server.url("/__mock/faults"), json=fault, timeout=10).status_code == 201


@pytest.fixture
def make_guard(upstream: MockProcess) -> Iterator[Callable[..., FlaskClient]]:
    """A guard app's test client; keyword arguments are :class:`GuardConfig` fields (upstream: the mock)."""
    apps: list[Flask] = []
    httpx.post(upstream.url("/__mock/reset"), timeout=10)

    def build(**overrides: Any) -> FlaskClient:
        overrides.setdefault("upstream", upstream.url(""))
        app = create_guard_app(GuardConfig(**overrides))
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        app.extensions["sora_guard"].close()


def report(client: FlaskClient) -> dict[str, Any]:
    answer = client.get("/__guard/report")
    assert answer.status_code == 200
    data: dict[str, Any] = answer.get_json()
    return data


def send(client: FlaskClient, body: object, headers: dict[str, str] | None = None) -> Any:
    return client.post(PATH, json=body, headers=AUTH if headers is None else headers)


# --- requests that break a rule never reach the upstream -----------------------------------------


def test_every_rule_breaking_corpus_request_gets_the_mocks_answer_locally(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard()
    blocked = 0
    for item in [*iter_cases("invalid"), case("too-large")]:
        if item.name == "auth-wrong-token":  # only the relay knows its tokens: forwarded, answered 401 there
            continue
        answer = guard.open(item.path, method=item.method, headers=item.headers(TOKEN), data=item.content())
        assert answer.status_code == item.status, item.name
        assert answer.get_json() == item.body, item.name  # the very envelope the mock answers
        assert answer.headers[GUARD_HEADER] == "blocked", item.name
        blocked += 1
    assert journal(upstream) == []  # nothing reached the upstream
    data = report(guard)
    assert (data["blocked"], data["forwarded"], data["creates"], data["budget_left"]) == (blocked, 0, 0, 10)
    assert blocked >= 20


def test_conforming_creates_are_forwarded_and_answered_unchanged(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess, contract: Contract
) -> None:
    guard = make_guard()
    valid = list(iter_cases("valid"))
    for item in valid:
        answer = guard.open(item.path, method=item.method, headers=item.headers(TOKEN), data=item.content())
        assert answer.status_code == 200, item.name
        assert answer.headers[GUARD_HEADER] == "forwarded"
        assert check_character(answer.get_json(), contract) == []
    arrived = journal(upstream)
    assert [entry["body"] for entry in arrived] == [item.json_body for item in valid]
    assert all(entry["status"] == 200 for entry in arrived)
    data = report(guard)
    assert (data["forwarded"], data["creates"], data["budget_left"], data["findings"]) == (6, 6, 4, [])


def test_a_token_the_upstream_refuses_is_its_401_passed_through_and_gives_the_create_back(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=1)
    answer = send(guard, VALID, {"Authorization": "Bearer not-the-token"})
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "invalid_api_key"
    assert answer.headers[GUARD_HEADER] == "forwarded"
    assert len(journal(upstream)) == 1
    data = report(guard)
    assert (data["forwarded"], data["creates"], data["budget_left"], data["findings"]) == (1, 0, 1, [])


# --- the budget ----------------------------------------------------------------------------------


def test_the_budget_holds_exactly_and_reset_starts_a_new_one(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=3)
    statuses = [send(guard, {"from_task": TASK, "timestamps": "1,2"}) for _ in range(5)]
    assert [a.status_code for a in statuses] == [200, 200, 200, 429, 429]
    refused = statuses[-1]
    assert refused.headers[GUARD_HEADER] == "budget"
    assert refused.get_json()["error"]["code"] == "budget_exhausted"
    assert "Retry-After" not in refused.headers  # waiting does not help: only a reset does
    assert len(journal(upstream)) == 3
    data = report(guard)
    assert (data["creates"], data["budget_left"], data["over_budget"]) == (3, 0, 2)

    reset = guard.post("/__guard/reset", json={})
    assert reset.get_json() == {"status": "reset", "budget_left": 3}
    assert reset.headers[GUARD_HEADER] == "local"
    assert report(guard)["budget_left"] == 3  # a new budget ...
    assert send(guard, VALID).status_code == 200
    data = report(guard)  # ... and the run's counts as they were: 4 billed in all, 2 refused before the reset
    assert (data["creates"], data["forwarded"], data["budget_left"], data["over_budget"]) == (4, 4, 2, 2)
    assert data["resets"] == 1
    assert len(journal(upstream)) == 4


def test_concurrent_clients_never_overspend(make_guard: Callable[..., FlaskClient], upstream: MockProcess) -> None:
    guard = make_guard(max_creates=5)
    statuses: list[int] = []
    lock = threading.Lock()

    def client_loop() -> None:
        for _ in range(4):
            code = send(guard, VALID).status_code
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=client_loop) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] * 5 + [429] * 27
    assert len(journal(upstream)) == 5


def test_a_max_of_zero_forwards_nothing(make_guard: Callable[..., FlaskClient], upstream: MockProcess) -> None:
    guard = make_guard(max_creates=0)
    assert send(guard, VALID).status_code == 429
    assert journal(upstream) == []


# --- upstream errors, faults and findings --------------------------------------------------------


def test_upstream_errors_pass_through_and_give_the_create_back(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=1)
    push_fault(upstream, {"status": 429, "retry_after": 7})
    answer = send(guard, VALID)
    assert (answer.status_code, answer.headers["Retry-After"], answer.headers[GUARD_HEADER]) == (429, "7", "forwarded")
    assert answer.get_json()["error"]["code"] == "rate_limit_exceeded"
    for status in (503, 500):
        push_fault(upstream, {"status": status})
        assert send(guard, VALID).status_code == status
    assert send(guard, VALID).status_code == 200  # the one create of the budget is still there
    data = report(guard)
    assert (data["forwarded"], data["creates"], data["budget_left"], data["findings"]) == (4, 1, 0, [])


def test_a_timeout_is_504_and_keeps_the_create_counted(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=2, timeout=0.3)
    push_fault(upstream, {"delay_ms": 1500})
    answer = send(guard, VALID)
    assert answer.status_code == 504
    assert answer.headers[GUARD_HEADER] == "upstream-error"
    assert answer.get_json()["error"]["code"] == "upstream_timeout"
    data = report(guard)
    assert (data["forwarded"], data["creates"], data["budget_left"]) == (1, 0, 1)
    assert data["findings"][0]["status"] is None
    assert "upstream_timeout" in data["findings"][0]["problems"][0]
    deadline = time.monotonic() + 10  # the late answer upstream was a billed create: counting it was right
    while not (arrived := journal(upstream)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [entry["status"] for entry in arrived] == [200]


def test_a_dropped_connection_is_502_and_an_unreachable_upstream_is_502_without_spending(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=2)
    push_fault(upstream, {"drop": True})
    dropped = send(guard, VALID)
    assert (dropped.status_code, dropped.get_json()["error"]["code"]) == (502, "upstream_disconnected")
    assert report(guard)["budget_left"] == 1  # it may have been billed

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = make_guard(upstream=f"http://127.0.0.1:{closed}", max_creates=2)
    answer = send(unreachable, VALID)
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (502, "upstream_unreachable")
    assert answer.headers[GUARD_HEADER] == "upstream-error"
    data = report(unreachable)
    assert (data["forwarded"], data["budget_left"], data["findings"]) == (0, 2, [])


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("drop_picture", "profile_picture_url is missing or not a string"),
        ("foreign_permalink", "permalink"),
        ("numeric_id", "id is missing or not a string"),
    ],
)
def test_answers_that_break_the_contract_pass_through_and_become_findings(
    defect: str,
    expected: str,
    defect_upstreams: Callable[[str], MockProcess],
    make_guard: Callable[..., FlaskClient],
) -> None:
    server = defect_upstreams(defect)
    guard = make_guard(upstream=server.url(""))
    answer = send(guard, VALID)
    assert answer.status_code == 200
    assert answer.headers[GUARD_HEADER] == "forwarded"
    findings = report(guard)["findings"]
    assert len(findings) == 1
    finding = findings[0]
    assert finding["status"] == 200
    assert any(problem.startswith(expected) for problem in finding["problems"]), finding["problems"]
    assert finding["request"] == {"method": "POST", "path": PATH, "body": VALID}
    assert finding["time"].endswith("Z")
    if defect == "drop_picture":
        assert "profile_picture_url" not in answer.get_json()  # passed on as it came


def test_plain_text_errors_upstream_become_findings(
    defect_upstreams: Callable[[str], MockProcess], make_guard: Callable[..., FlaskClient]
) -> None:
    server = defect_upstreams("plain_text_errors")
    guard = make_guard(upstream=server.url(""))
    answer = send(guard, VALID, {"Authorization": "Bearer wrong"})
    assert answer.status_code == 401
    assert answer.mimetype == "text/plain"
    problems = report(guard)["findings"][0]["problems"]
    assert any("not application/json" in p for p in problems)
    assert "the body is not JSON" in problems


def test_judge_answer_names_status_class_and_header_problems(contract: Contract) -> None:
    json_type = {"Content-Type": "application/json"}
    envelope = json.dumps({"error": {"message": "m", "type": "t", "param": None, "code": "c"}}).encode()
    assert judge_answer(429, json_type, envelope, contract) == ["a 429 without Retry-After"]
    assert judge_answer(429, {**json_type, "Retry-After": "2"}, envelope, contract) == []
    assert judge_answer(201, json_type, envelope, contract)[0].startswith("status 201 is not one the contract declares")
    assert judge_answer(422, json_type, envelope, contract)[0].startswith("status 422 to a request that obeys")
    assert judge_answer(422, json_type, envelope, contract, conforming=False) == []
    assert judge_answer(500, json_type, b'{"detail": "x"}', contract) == [
        "an error body must be a JSON object with an 'error' object"
    ]


# --- routing -------------------------------------------------------------------------------------


def test_other_paths_are_404_unless_pass_through(make_guard: Callable[..., FlaskClient], upstream: MockProcess) -> None:
    closed = make_guard()
    answer = closed.get("/__mock/health")
    assert (answer.status_code, answer.get_json()["error"]["code"], answer.headers[GUARD_HEADER]) == (
        404,
        "not_found",
        "blocked",
    )
    wrong_method = closed.get(PATH, headers=AUTH)
    assert (wrong_method.status_code, wrong_method.headers["Allow"]) == (405, "OPTIONS, POST")  # as the mock

    open_guard = make_guard(pass_through=True)
    health = open_guard.get("/__mock/health")
    assert (health.status_code, health.get_json(), health.headers[GUARD_HEADER]) == (
        200,
        {"status": "ok", "state": "memory"},
        "passed",
    )
    assert open_guard.get("/__guard/nothing").status_code == 404  # the guard's own prefix is never forwarded
    assert report(open_guard)["passed"] == 1


# --- transparency: bytes, headers, encodings -----------------------------------------------------


class EchoUpstream:
    """A werkzeug server on 127.0.0.1 that records each request's raw bytes and answers a fixed, gzipped body."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []

        @WzRequest.application
        def app(req: WzRequest) -> WzResponse:
            self.seen.append((dict(req.headers), req.get_data()))
            body = gzip.compress(b'{"id": 1}')
            return WzResponse(
                body,
                status=201,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Upstream": "yes"},
            )

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def echo() -> Iterator[EchoUpstream]:
    server = EchoUpstream()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=10)


def test_requests_go_upstream_byte_for_byte_and_answers_come_back_unchanged(
    make_guard: Callable[..., FlaskClient], echo: EchoUpstream
) -> None:
    guard = make_guard(upstream=echo.url())
    raw = '{ "timestamps" : "1,3",\n  "url": "https://example.com/角色.mp4", "note": 1.50 }'.encode()
    headers = {**AUTH, "Content-Type": "application/json", "X-Trace": "t-1", "Connection": "keep-alive, X-Drop"}
    answer = guard.post(PATH, data=raw, headers={**headers, "X-Drop": "hop", "Keep-Alive": "5"})
    sent_headers, sent_body = echo.seen[0]
    assert sent_body == raw
    assert sent_headers["Authorization"] == AUTH["Authorization"]
    assert sent_headers["X-Trace"] == "t-1"
    for hop in ("X-Drop", "Keep-Alive"):
        assert hop not in sent_headers
    assert "python-httpx" not in sent_headers.get("User-Agent", "")  # no header the client did not send
    # The answer: status and bytes as sent (still gzipped), upstream headers kept, verdict added.
    assert answer.status_code == 201
    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.get_data()) == b'{"id": 1}'
    assert (answer.headers["X-Upstream"], answer.headers[GUARD_HEADER]) == ("yes", "forwarded")
    problems = report(guard)["findings"][0]["problems"]  # judged on the decoded body
    assert problems[0].startswith("status 201 is not one the contract declares")
    assert "the body is not JSON" not in problems


# --- secrets and recordings ----------------------------------------------------------------------


def test_the_token_never_reaches_reports_findings_recordings_or_logs(
    make_guard: Callable[..., FlaskClient],
    defect_upstreams: Callable[[str], MockProcess],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = defect_upstreams("drop_picture")
    guard = make_guard(upstream=server.url(""), record_dir=str(tmp_path / "rec"), max_creates=1)
    body = {**VALID, "url": f"{VIDEO}?sig={TOKEN}"}  # a careless client puts the token in the body too
    assert send(guard, body).status_code == 200
    assert send(guard, {"timestamps": "1,3"}).status_code == 422
    assert send(guard, VALID).status_code == 429
    text = json.dumps(report(guard))
    assert TOKEN not in text
    assert "[redacted]" in text
    files = sorted((tmp_path / "rec").glob("*.json"))
    assert len(files) == 1  # only what was forwarded is recorded
    recorded = files[0].read_text(encoding="utf-8")
    assert TOKEN not in recorded
    assert TOKEN not in caplog.text
    [item] = cases_from(json.loads(recorded))
    assert item.request["headers"]["Authorization"] == "Bearer {token}"
    assert item.status == 200
    assert "profile_picture_url" not in item.body
    assert item.json_body["timestamps"] == "1,3"


def test_recordings_scrub_signatures_and_load_as_corpus_cases(
    make_guard: Callable[..., FlaskClient], tmp_path: Path
) -> None:
    guard = make_guard(record_dir=str(tmp_path))
    send(guard, VALID)
    send(guard, VALID, {"Authorization": "Bearer wrong"})
    items = [item for path in sorted(tmp_path.glob("*.json")) for item in cases_from(json.loads(path.read_text()))]
    assert sorted(item.status for item in items) == [200, 401]
    created = next(item for item in items if item.status == 200)
    assert "sig=[redacted]" in created.body["profile_picture_url"]
    assert created.response["headers"] == {"Content-Type": "application/json"}


def test_config_validates_and_its_repr_hides_credentials() -> None:
    config = GuardConfig(upstream="https://user:pw@relay.example/api?k=v", state_url="redis://:hunter2@db:6379/0")
    shown = repr(config)
    assert "pw" not in shown and "hunter2" not in shown and "k=v" not in shown
    assert "https://relay.example/api" in shown
    for bad in ({"upstream": "ftp://x"}, {"max_creates": -1}, {"timeout": 0}):
        with pytest.raises(ValueError):
            GuardConfig(**bad)
