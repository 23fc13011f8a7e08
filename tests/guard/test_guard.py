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
from flask.testing import FlaskClient
from werkzeug.wrappers import Request as WzRequest
from werkzeug.wrappers import Response as WzResponse

from mock_server.contract.rules import Contract, check_character
from mock_server.mock.fixtures import case, cases_from, iter_cases
from mock_server.relay import files as guard_files
from mock_server.relay.guard import GUARD_HEADER, GuardConfig, judge_answer
from mock_server.relay.paths import forwarded_path, normalize_path, resolve_path

from ..helpers import TASK, VIDEO, MockProcess, mock_journal, serve_wsgi
from ..misbehaving_relay import MisbehavingRelay

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


def push_fault(server: MockProcess, fault: dict[str, Any]) -> None:
    assert httpx.post(server.url("/__mock/faults"), json=fault, timeout=10).status_code == 201


@pytest.fixture
def make_guard(upstream: MockProcess, guard_client: Callable[..., FlaskClient]) -> Callable[..., FlaskClient]:
    """A guard app's test client; keyword arguments are :class:`GuardConfig` fields (upstream: the mock)."""
    httpx.post(upstream.url("/__mock/reset"), timeout=10)

    def build(**overrides: Any) -> FlaskClient:
        return guard_client(**{"upstream": upstream.url(""), **overrides})

    return build


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
    assert mock_journal(upstream) == []  # nothing reached the upstream
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
    arrived = mock_journal(upstream)
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
    assert len(mock_journal(upstream)) == 1
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
    assert len(mock_journal(upstream)) == 3
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
    assert len(mock_journal(upstream)) == 4


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
    assert len(mock_journal(upstream)) == 5


def test_a_max_of_zero_forwards_nothing(make_guard: Callable[..., FlaskClient], upstream: MockProcess) -> None:
    guard = make_guard(max_creates=0)
    assert send(guard, VALID).status_code == 429
    assert mock_journal(upstream) == []


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
    while not (arrived := mock_journal(upstream)) and time.monotonic() < deadline:
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
    """A WSGI upstream that records each request's headers and raw body and answers a fixed, gzipped body."""

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

        self.app = app


@pytest.fixture
def echo() -> Iterator[tuple[EchoUpstream, str]]:
    """The echo upstream, served on 127.0.0.1, and its URL."""
    upstream = EchoUpstream()
    with serve_wsgi(upstream.app) as url:
        yield upstream, url


def test_requests_go_upstream_byte_for_byte_and_answers_come_back_unchanged(
    make_guard: Callable[..., FlaskClient], echo: tuple[EchoUpstream, str]
) -> None:
    upstream, url = echo
    guard = make_guard(upstream=url)
    raw = '{ "timestamps" : "1,3",\n  "url": "https://example.com/角色.mp4", "note": 1.50 }'.encode()
    headers = {**AUTH, "Content-Type": "application/json", "X-Trace": "t-1", "Connection": "keep-alive, X-Drop"}
    answer = guard.post(PATH, data=raw, headers={**headers, "X-Drop": "hop", "Keep-Alive": "5"})
    sent_headers, sent_body = upstream.seen[0]
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


# --- hostile clients: paths, methods, duplicate keys, surrogates ---------------------------------

TRICKY_PATHS = [
    "/sora/v1/./characters",
    "/sora/v1/characters/.",
    "/sora/v1/%2e/characters",
    "/x/../sora/v1/characters",
    "/sora//v1/characters",
    "/SORA/v1/Characters/",
]


def test_paths_are_resolved_as_a_lenient_upstream_would_read_them() -> None:
    endpoint = [
        *TRICKY_PATHS,
        "/sora/v1%2Fcharacters",
        "/sora/v1/%252e/characters",  # decoded twice by a proxy
        "/sora/v1/characters;jsessionid=1",
        "\\sora\\v1\\characters",
        "/sora/v1/characters%3Fx=1",
        "/__guard/../sora/v1/characters",
    ]
    for path in endpoint:
        assert resolve_path(path) == PATH, path
    for path in ("/sora/v1/characters/x", "/sora/v1/characters/..", "/sora/v2/characters", "/"):
        assert resolve_path(path) != PATH, path
    assert normalize_path("/sora//v1/./x/../characters/") == "/sora/v1/characters/"
    assert normalize_path("/../..") == "/"
    assert forwarded_path("/a b/./ü;x=1") == "/a%20b/%C3%BC;x=1"


def test_every_path_that_resolves_to_the_endpoint_is_checked_and_budgeted(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=3, pass_through=True)
    answers = [guard.post(path, json=VALID, headers=AUTH) for path in TRICKY_PATHS]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429]
    assert [a.headers[GUARD_HEADER] for a in answers] == ["forwarded"] * 3 + ["budget"] * 3
    assert "Location" not in answers[4].headers  # no redirect for the doubled slash
    refused = guard.post("/sora/v1/%2e/characters", json={"url": VIDEO, "timestamps": "0,10"}, headers=AUTH)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "invalid_timestamps_span")
    assert refused.headers[GUARD_HEADER] == "blocked"
    arrived = mock_journal(upstream)
    assert [(entry["path"], entry["status"]) for entry in arrived] == [(PATH, 200)] * 3
    data = report(guard)
    assert (data["forwarded"], data["creates"], data["over_budget"], data["passed"]) == (3, 3, 3, 0)


@pytest.mark.parametrize("path", [PATH, "/sora/v1/./characters", "/Sora/V1/characters/"])
def test_other_methods_and_method_overrides_on_the_endpoint_get_a_local_405(
    path: str, make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(pass_through=True)
    for method in ("PUT", "GET", "PATCH", "DELETE", "HEAD", "PROPFIND"):
        answer = guard.open(path, method=method, json=VALID, headers=AUTH)
        assert (answer.status_code, answer.headers["Allow"], answer.headers[GUARD_HEADER]) == (
            405,
            "OPTIONS, POST",
            "blocked",
        ), method
    for name in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        answer = guard.post(path, json=VALID, headers={**AUTH, name: "PUT"})
        assert answer.status_code == 405, name
        assert answer.get_json()["error"]["param"] == name
    assert mock_journal(upstream) == []
    same = guard.post(path, json=VALID, headers={**AUTH, "X-HTTP-Method-Override": "post"})
    assert same.status_code == 200  # an override that asks for POST is a POST, checked as one
    assert report(guard)["passed"] == 0


def test_options_is_answered_in_the_kits_style(make_guard: Callable[..., FlaskClient]) -> None:
    for pass_through in (False, True):
        guard = make_guard(pass_through=pass_through)
        for path, allow in [
            (PATH, "OPTIONS, POST"),
            ("/sora/v1/./characters", "OPTIONS, POST"),
            ("/__guard/report", "GET, HEAD, OPTIONS"),
            ("/__guard/reset", "OPTIONS, POST"),
        ]:
            answer = guard.options(path)
            assert (answer.status_code, answer.headers["Allow"], answer.headers[GUARD_HEADER]) == (
                204,
                allow,
                "local",
            ), path
            assert "Content-Type" not in answer.headers and answer.get_data() == b""
        assert report(guard)["blocked"] == 0


def test_duplicate_keys_are_refused_locally_with_the_mocks_answer(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard()
    raw = b'{"url": "https://example.com/v.mp4", "timestamps": "0,10", "timestamps": "1,3"}'
    answer = guard.post(PATH, data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert (answer.status_code, answer.headers[GUARD_HEADER]) == (400, "blocked")
    assert answer.get_json()["error"]["code"] == "duplicate_key"
    assert mock_journal(upstream) == []
    mock = httpx.post(upstream.url(PATH), content=raw, headers={**AUTH, "Content-Type": "application/json"}, timeout=10)
    assert answer.get_json() == mock.json()  # the mock's own envelope


def test_a_lone_surrogate_never_crashes_and_with_record_leaves_a_whole_file_and_the_finding(
    make_guard: Callable[..., FlaskClient], defect_upstreams: Callable[[str], MockProcess], tmp_path: Path
) -> None:
    server = defect_upstreams("drop_picture")  # its answers break the contract: each one is a finding
    guard = make_guard(upstream=server.url(""), record_dir=str(tmp_path))
    raw = b'{"url": "https://example.com/\\ud800.mp4", "timestamps": "1,3"}'
    answer = guard.post(PATH, data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert (answer.status_code, answer.headers[GUARD_HEADER]) == (200, "forwarded")
    data = report(guard)
    assert data["creates"] == 1
    [finding] = data["findings"]
    assert finding["request"]["body"]["url"] == "https://example.com/\\ud800.mp4"  # shown, as text
    assert any("profile_picture_url" in problem for problem in finding["problems"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
    [recorded] = sorted(tmp_path.glob("*.json"))
    [item] = cases_from(json.loads(recorded.read_text(encoding="utf-8")))
    assert item.content() == raw  # kept as the text it was sent as
    assert item.status == 200


# --- recordings and short tokens -----------------------------------------------------------------


@pytest.fixture(scope="module")
def any_token_upstream() -> Iterator[MockProcess]:
    """A mock that takes any bearer token and answers creates without profile_picture_url (a finding each)."""
    with MockProcess(["--workers", "1", "--defect", "drop_picture"]) as server:
        yield server


def test_a_binary_body_is_scrubbed_before_it_is_base64_encoded(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess, tmp_path: Path
) -> None:
    guard = make_guard(pass_through=True, record_dir=str(tmp_path))
    raw = b"\xff\xfe" + TOKEN.encode() + b"\x00" + TOKEN.encode("utf-16-le") + b" ?sig=abc&"
    answer = guard.post("/v1/uploads", data=raw, headers={**AUTH, "Content-Type": "application/octet-stream"})
    assert (answer.status_code, answer.headers[GUARD_HEADER]) == (404, "passed")
    [recorded] = sorted(tmp_path.glob("*.json"))
    [item] = cases_from(json.loads(recorded.read_text(encoding="utf-8")))
    kept = item.content()
    assert kept.startswith(b"\xff\xfe[redacted]") and kept.endswith(b" ?sig=[redacted]&")
    assert kept.count(b"[redacted]") == 3  # the NUL between two forms may go with either
    for form in ("utf-8", "utf-16-le", "utf-16-be"):
        assert TOKEN.encode(form) not in kept


def test_a_short_token_is_not_redacted_out_of_urls(
    make_guard: Callable[..., FlaskClient], any_token_upstream: MockProcess, tmp_path: Path
) -> None:
    guard = make_guard(upstream=any_token_upstream.url(""), record_dir=str(tmp_path))
    body = {"url": "https://example.com/v.mp4", "timestamps": "1,3"}
    assert send(guard, body, {"Authorization": "Bearer mp4"}).status_code == 200
    [finding] = report(guard)["findings"]
    assert finding["request"]["body"] == body
    [recorded] = sorted(tmp_path.glob("*.json"))
    [item] = cases_from(json.loads(recorded.read_text(encoding="utf-8")))
    assert item.json_body == body
    assert item.request["headers"]["Authorization"] == "Bearer {token}"  # the credential header still is


# --- the reset ------------------------------------------------------------------------------------


def test_reset_needs_a_json_content_type_and_the_guards_own_origin(
    make_guard: Callable[..., FlaskClient], upstream: MockProcess
) -> None:
    guard = make_guard(max_creates=1)
    assert send(guard, VALID).status_code == 200
    refused = [
        guard.post("/__guard/reset", data="{}", headers={"Content-Type": "text/plain"}),
        guard.post("/__guard/reset", json={}, headers={"Origin": "https://evil.example"}),
        guard.post("/__guard/reset", json={}, headers={"Origin": "null"}),
        guard.post("/__guard/reset", json={}, headers={"Sec-Fetch-Site": "cross-site"}),
        # DNS rebinding: a foreign page's name pointed at 127.0.0.1 is "same origin" to the browser.
        guard.post(
            "/__guard/reset", json={}, headers={"Origin": "http://evil.example:8001", "Host": "evil.example:8001"}
        ),
    ]
    assert [(a.status_code, a.get_json()["error"]["code"]) for a in refused] == [
        (415, "unsupported_media_type"),
        (403, "cross_origin"),
        (403, "cross_origin"),
        (403, "cross_origin"),
        (403, "cross_origin"),
    ]
    assert {a.headers[GUARD_HEADER] for a in refused} == {"blocked"}
    assert report(guard)["budget_left"] == 0  # none of them reset anything
    same_origin = guard.post(
        "/__guard/reset", json={}, headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    )
    assert same_origin.status_code == 200
    assert report(guard)["budget_left"] == 1


# --- hostile upstreams ----------------------------------------------------------------------------


def test_an_answer_the_guard_cannot_decode_keeps_its_reservation_and_is_a_502(
    make_guard: Callable[..., FlaskClient],
) -> None:
    with MisbehavingRelay("gzip-lie") as relay:
        guard = make_guard(upstream=relay.url, max_creates=1)
        answers = [send(guard, VALID, {**AUTH, "Accept-Encoding": "br, zstd, gzip;q=0.5"}) for _ in range(4)]
        assert [a.status_code for a in answers] == [502, 429, 429, 429]
        first = answers[0]
        assert first.headers[GUARD_HEADER] == "upstream-error"
        assert first.get_json()["error"]["code"] == "upstream_answer_unreadable"
        assert set(first.get_json()["error"]) == {"message", "type", "param", "code"}
        assert len(relay.seen) == 1  # one billed create, not four
        assert relay.seen[0].headers["accept-encoding"] == "gzip;q=0.5"  # only what the guard can decode
        data = report(guard)
        assert (data["forwarded"], data["creates"], data["budget_left"], data["over_budget"]) == (1, 1, 0, 3)
        [finding] = data["findings"]
        assert finding["status"] == 200 and "gzip" in finding["problems"][0]
        assert guard.post("/__guard/reset", json={}).status_code == 200
        after = report(guard)  # a new budget; the run's counts and its finding stay
        assert (after["creates"], after["budget_left"], after["over_budget"], len(after["findings"])) == (1, 1, 3, 1)


@pytest.mark.parametrize(
    ("behavior", "code"), [("huge", "upstream_answer_too_large"), ("bomb", "upstream_answer_too_large")]
)
def test_an_answer_over_the_size_limit_is_a_502_and_is_not_read_to_the_end(
    behavior: str, code: str, make_guard: Callable[..., FlaskClient]
) -> None:
    with MisbehavingRelay(behavior, size=64 * 1024 * 1024) as relay:
        guard = make_guard(upstream=relay.url, max_creates=2, max_answer_bytes=1024 * 1024)
        answer = send(guard, VALID)
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (502, code)
        assert answer.headers[GUARD_HEADER] == "upstream-error"
        data = report(guard)
        assert (data["creates"], data["budget_left"]) == (1, 1)  # a 200 over the limit was billed
        assert len(data["findings"]) == 1
        if behavior == "huge":
            assert relay.hung_up.wait(10)  # the guard hung up long before 64 MiB
            assert relay.sent_bytes < relay.size


@pytest.mark.parametrize(("behavior", "creates", "uncertain"), [("trickle-body", 1, 0), ("trickle-head", 0, 1)])
def test_the_timeout_bounds_the_whole_exchange_not_each_read(
    behavior: str, creates: int, uncertain: int, make_guard: Callable[..., FlaskClient]
) -> None:
    # One byte every 0.1 s for 6 s: every read is quick, the whole answer is not.
    with MisbehavingRelay(behavior, pause=0.1, steps=60) as relay:
        guard = make_guard(upstream=relay.url, max_creates=1, timeout=1.0)
        answer = send(guard, VALID)
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (504, "upstream_timeout")
        data = report(guard)
        assert (data["forwarded"], data["creates"], data["uncertain"], data["budget_left"]) == (
            1,
            creates,
            uncertain,
            0,
        )
        assert "upstream_timeout" in data["findings"][0]["problems"][0]


def test_a_redirect_never_leads_the_client_past_the_guard(make_guard: Callable[..., FlaskClient]) -> None:
    with MisbehavingRelay("redirect") as relay:
        guard = make_guard(upstream=relay.url, pass_through=True)
        relay.location = f"{relay.url}/v1/elsewhere?x=1"
        answer = guard.get("/v1/old", headers=AUTH)
        assert (answer.status_code, answer.headers["Location"]) == (308, "/v1/elsewhere?x=1")  # back to the guard
        relay.location = "https://relay.example/v1/elsewhere"
        answer = guard.get("/v1/old", headers=AUTH)
        assert answer.status_code == 308 and "Location" not in answer.headers


def test_a_prefixed_upstream_is_guarded_on_the_whole_path_it_receives(make_guard: Callable[..., FlaskClient]) -> None:
    with MisbehavingRelay("gzip-lie") as relay:
        guard = make_guard(upstream=f"{relay.url}/api", pass_through=True, max_creates=0)
        # A proxy that decodes twice reads /api/%2e%2e/api/sora/v1/characters as its endpoint.
        for path in ("/%252e%252e/api/sora/v1/characters", "/../sora/v1/characters"):
            answer = guard.post(path, json=VALID, headers=AUTH)
            assert (answer.status_code, answer.headers[GUARD_HEADER]) == (429, "budget"), path
        assert relay.seen == []


def test_a_recording_that_cannot_be_written_leaves_no_partial_file(
    make_guard: Callable[..., FlaskClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = make_guard(record_dir=str(tmp_path))

    def full_disk(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(guard_files.os, "replace", full_disk)
    answer = send(guard, VALID)
    monkeypatch.undo()
    assert answer.status_code == 200  # billed: the client still gets it
    assert list(tmp_path.iterdir()) == []
    assert report(guard)["creates"] == 1


def test_the_relay_url_and_public_url_are_defined_once_for_the_relay_package() -> None:
    from mock_server.contract.spec import RELAY_BASE_URL
    from mock_server.relay import config, guard, recorder

    relay = Path(guard.__file__).parent
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted(relay.glob("*.py"))}
    assert [name for name, text in sources.items() if RELAY_BASE_URL in text] == []
    assert GuardConfig().upstream == RELAY_BASE_URL
    assert [name for name, text in sources.items() if "public_url(url: str)" in text] == ["config.py"]
    assert guard.public_url is recorder.public_url is config.public_url


def test_the_guard_module_keeps_every_name_it_exported() -> None:
    from mock_server.relay import guard

    expected = {
        "CONFORMING_STATUSES", "DECLARED_STATUSES", "DEFAULT_MAX_ANSWER_BYTES", "DEFAULT_UPSTREAM", "GUARD_HEADER",
        "GUARD_PREFIX", "METHOD_OVERRIDE_HEADERS", "GuardConfig", "GuardState", "create_guard_app", "guard_report",
        "judge_answer", "public_url", "summary_line", "upstream_problem", "write_report", "SETTLING",
    }  # fmt: skip
    assert expected <= set(guard.__all__)
    assert all(hasattr(guard, name) for name in guard.__all__)


def test_the_guards_recorder_needs_no_request_context(tmp_path: Path) -> None:
    from mock_server.relay.recorder import AnswerRecorder, Forwarded

    secret = "sk-recorded-token-0123456789"
    raw = json.dumps({"url": f"{VIDEO}?k={secret}", "timestamps": "1,3"}).encode()
    answer = json.dumps({"error": {"message": f"bad key {secret}", "type": "invalid_request_error"}}).encode()
    headers = httpx.Headers({"Content-Type": "application/json"})
    forwarded = Forwarded("POST", PATH, True, "application/json", raw, secret, 401, headers, answer, 0.25)
    AnswerRecorder(tmp_path, "http://127.0.0.1:9").save(forwarded)  # no Flask request anywhere
    [written] = tmp_path.iterdir()
    assert secret not in written.read_text(encoding="utf-8")
    [item] = json.loads(written.read_text(encoding="utf-8"))["cases"]
    assert item["request"]["headers"] == {"Authorization": "Bearer {token}", "Content-Type": "application/json"}
    assert item["request"]["json"]["timestamps"] == "1,3"
    assert item["response"]["status"] == 401 and item["response"]["elapsed_ms"] == 250
    assert item["response"]["body"]["error"]["message"] == "bad key [redacted]"
