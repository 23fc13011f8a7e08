"""The Flask mock: rules, statuses, auth, errors and ids, through the WSGI test client."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from werkzeug.test import EnvironBuilder, run_wsgi_app

from mock_server import Contract, Fault, check_character, check_error_body, conforms, load_spec
from mock_server.mock.compose import composition_of

from ..helpers import AUTH, TASK, TOKEN, VIDEO

PATH = "/sora/v1/characters"


@pytest.fixture(scope="module")
def schemas() -> dict[str, OAS30Validator]:
    spec = load_spec()
    components = {"components": spec["components"]}
    return {
        name: OAS30Validator({"$ref": f"#/components/schemas/{name}", **components})
        for name in ("Character", "Error", "CreateCharacterRequest")
    }


def post(client: FlaskClient, payload: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(PATH, json=payload, headers=AUTH if headers is None else headers)


def assert_error(response: Any, status: int, schemas: dict[str, Any], param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    schemas["Error"].validate(body)
    assert check_error_body(body) == []
    assert body["error"]["param"] == param
    assert body["error"]["message"]
    return dict(body["error"])


@pytest.mark.parametrize(
    "payload",
    [
        {"url": VIDEO, "timestamps": "1,3"},
        {"from_task": TASK, "timestamps": "0,1"},
        {"url": VIDEO, "timestamps": "2,5"},
        {"url": VIDEO, "timestamps": "1.5, 3", "model": "sora-2-character", "note": "ignored"},
    ],
)
def test_conforming_requests_get_a_character(
    client: FlaskClient, contract: Contract, schemas: dict[str, Any], payload: dict[str, str]
) -> None:
    response = post(client, payload)
    assert response.status_code == 200
    character = response.get_json()
    schemas["Character"].validate(character)
    assert check_character(character, contract) == []
    assert character["permalink"].endswith("/" + character["username"])


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"url": VIDEO, "timestamps": "1,1.999"}, "timestamps", "invalid_timestamps_span"),
        ({"url": VIDEO, "timestamps": "1,4.001"}, "timestamps", "invalid_timestamps_span"),
        ({"url": VIDEO, "timestamps": "2,2"}, "timestamps", "invalid_timestamps_span"),
        ({"url": VIDEO, "timestamps": "4,1"}, "timestamps", "invalid_timestamps_order"),
        ({"url": VIDEO, "timestamps": "-1,1"}, "timestamps", "invalid_timestamps"),
        ({"url": VIDEO, "timestamps": "1-3"}, "timestamps", "invalid_timestamps"),
        ({"url": VIDEO}, "timestamps", "missing_required_parameter"),
        ({"url": VIDEO, "from_task": TASK, "timestamps": "1,3"}, "url", "conflicting_sources"),
        ({"timestamps": "1,3"}, "url", "missing_source"),
        ({"url": "notaurl", "timestamps": "1,3"}, "url", "invalid_url"),
        ({"from_task": "12345", "timestamps": "1,3"}, "from_task", "invalid_task_id"),
        ({"url": VIDEO, "timestamps": [1, 3]}, "timestamps", "invalid_type"),
    ],
)
def test_rule_violations_are_422_naming_the_field(
    client: FlaskClient, schemas: dict[str, Any], payload: dict[str, Any], param: str, code: str
) -> None:
    error = assert_error(post(client, payload), 422, schemas, param)
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"url": "x", ', "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"", "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid_json"),
        (b'["url", "timestamps"]', "invalid_body"),
        (b'"1,3"', "invalid_body"),
        (b"null", "invalid_body"),
    ],
    ids=["truncated", "not-utf8", "empty", "deep-array", "deep-object", "array", "string", "null"],
)
def test_unreadable_bodies_are_400(client: FlaskClient, schemas: dict[str, Any], raw: bytes, code: str) -> None:
    response = client.post(PATH, data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert assert_error(response, 400, schemas)["code"] == code


def test_content_type_is_not_required(client: FlaskClient) -> None:
    raw = json.dumps({"url": VIDEO, "timestamps": "1,3"})
    response = client.post(PATH, data=raw, headers={**AUTH, "Content-Type": "text/plain"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": ""}, "missing_api_key"),
        ({"Authorization": "Bearer"}, "invalid_authorization_scheme"),
        ({"Authorization": "Bearer    "}, "invalid_authorization_scheme"),
        ({"Authorization": f"Basic {TOKEN}"}, "invalid_authorization_scheme"),
        ({"Authorization": TOKEN}, "invalid_authorization_scheme"),
        ({"Authorization": "Bearer wrong-token"}, "invalid_api_key"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "invalid_api_key"),
    ],
)
def test_auth_failures_are_401(
    client: FlaskClient, schemas: dict[str, Any], headers: dict[str, str], code: str
) -> None:
    error = assert_error(post(client, {"url": VIDEO, "timestamps": "1,3"}, headers), 401, schemas)
    assert error["code"] == code and error["type"] == "authentication_error"
    assert TOKEN not in json.dumps(error)


def test_auth_is_checked_before_the_body(client: FlaskClient, schemas: dict[str, Any]) -> None:
    response = client.post(PATH, data=b"{not json", headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, schemas)


def test_bearer_scheme_is_case_insensitive(client: FlaskClient) -> None:
    response = post(client, {"url": VIDEO, "timestamps": "1,3"}, {"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


def test_without_configured_token_any_token_is_accepted(make_app: Callable[..., Flask]) -> None:
    client = make_app(token=None).test_client()
    ok = post(client, {"url": VIDEO, "timestamps": "1,3"}, {"Authorization": "Bearer anything"})
    assert ok.status_code == 200
    assert post(client, {"url": VIDEO, "timestamps": "1,3"}, {}).status_code == 401


def test_unknown_path_is_404_json(client: FlaskClient, schemas: dict[str, Any]) -> None:
    for path in ("/", "/sora/v1/character", "/sora/v2/characters"):
        assert_error(client.post(path, json={}, headers=AUTH), 404, schemas)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_json_with_allow(client: FlaskClient, schemas: dict[str, Any], method: str) -> None:
    response = client.open(PATH, method=method, headers=AUTH)
    error = assert_error(response, 405, schemas)
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert error["message"].endswith("allowed: OPTIONS, POST.")


def test_oversized_body_is_413_without_reading_it(app: Flask, schemas: dict[str, Any]) -> None:
    class Endless:
        """A body stream that counts what the mock reads of it."""

        consumed = 0

        def read(self, size: int = -1) -> bytes:
            chunk = 65536 if size < 0 else min(size, 65536)
            self.consumed += chunk
            assert self.consumed <= 2 * 1024 * 1024, "the mock buffered an oversized body"
            return b" " * chunk

        def readline(self, size: int = -1) -> bytes:
            return self.read(size)

    stream = Endless()
    environ = EnvironBuilder(path=PATH, method="POST", headers=AUTH, content_type="application/json").get_environ()
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(10 * 1024 * 1024)})
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    response = app.response_class(body, status=status, headers=headers)
    error = assert_error(response, 413, schemas)
    assert error["code"] == "request_too_large"
    assert stream.consumed == 0


def _chunked(app: Flask, raw: bytes) -> Any:
    """Send ``raw`` with no Content-Length, as a server passes on a chunked upload."""
    environ = EnvironBuilder(path=PATH, method="POST", headers=AUTH, content_type="application/json").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BytesIO(raw), "wsgi.input_terminated": True})
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return app.response_class(body, status=status, headers=headers)


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (-1, 200), (1, 413), (3_000_000, 413)])
def test_chunked_bodies_are_capped_at_the_limit(
    make_app: Callable[..., Flask], schemas: dict[str, Any], extra: int, status: int
) -> None:
    limit = 4096
    payload = json.dumps({"url": VIDEO, "timestamps": "1,3", "pad": ""}).encode()
    raw = payload[:-2] + b" " * (limit - len(payload) + extra) + payload[-2:]  # valid JSON, len = limit + extra
    response = _chunked(make_app(max_body_bytes=limit), raw)
    if status == 413:
        assert assert_error(response, 413, schemas)["code"] == "request_too_large"
        assert response.headers["Connection"] == "close"
    else:
        assert response.status_code == 200, response.get_data(as_text=True)


def test_body_just_under_the_limit_is_read(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_body_bytes=4096).test_client()
    padded = {"url": VIDEO, "timestamps": "1,3", "pad": "x" * 3900}
    assert post(client, padded).status_code == 200
    assert post(client, {**padded, "pad": "x" * 4100}).status_code == 413


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        (Fault(status=429, retry_after=2), 429, "rate_limit_error"),
        (Fault(status=500), 500, "server_error"),
        (Fault(status=503), 503, "server_error"),
    ],
)
def test_injected_faults_use_the_envelope(
    app: Flask, schemas: dict[str, Any], fault: Fault, status: int, error_type: str
) -> None:
    composition_of(app).state.push_fault(fault, times=2)
    client = app.test_client()
    for _ in range(2):
        response = post(client, {"url": VIDEO, "timestamps": "1,3"})
        assert assert_error(response, status, schemas)["type"] == error_type
    if status == 429:
        assert response.headers["Retry-After"] == "2"
    assert post(client, {"url": VIDEO, "timestamps": "1,3"}).status_code == 200


def test_unexpected_failure_is_a_500_envelope_without_secrets(
    make_app: Callable[..., Flask], schemas: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    def broken_clock() -> float:
        raise RuntimeError("clock failure")

    client = make_app(clock=broken_clock).test_client()
    with caplog.at_level(logging.ERROR):
        response = post(client, {"url": VIDEO, "timestamps": "1,3"})
    assert assert_error(response, 500, schemas)["code"] == "server_error"
    assert "RuntimeError" in caplog.text
    assert TOKEN not in caplog.text


def test_journal_keeps_requests_with_the_token_redacted(app: Flask) -> None:
    client = app.test_client()
    post(client, {"url": VIDEO, "timestamps": "1,3"})
    post(client, {"timestamps": "1,3"})
    client.post(PATH, data=b"{", headers=AUTH)
    state = composition_of(app).state
    entries = state.requests()
    assert [e["status"] for e in entries] == [200, 422, 400]
    assert entries[0]["body"] == {"url": VIDEO, "timestamps": "1,3"}
    assert entries[2]["body"] is None
    assert all(e["headers"]["Authorization"] == "[redacted]" for e in entries)
    assert TOKEN not in json.dumps(entries)
    assert len(state.characters()) == 1


def test_journal_is_bounded(make_app: Callable[..., Flask]) -> None:
    app = make_app(journal_size=5)
    client = app.test_client()
    for second in range(8):
        post(client, {"url": VIDEO, "timestamps": f"{second},{second + 1}"})
    state = composition_of(app).state
    assert [e["body"]["timestamps"] for e in state.requests()] == [f"{s},{s + 1}" for s in range(3, 8)]
    assert len(state.characters()) == 5


def test_same_seed_gives_same_characters(make_app: Callable[..., Flask]) -> None:
    def usernames(seed: int) -> list[str]:
        client = make_app(seed=seed).test_client()
        return [post(client, {"url": VIDEO, "timestamps": "1,3"}).get_json()["username"] for _ in range(3)]

    assert usernames(42) == usernames(42)
    assert usernames(42) != usernames(43)


def test_ids_are_unique_under_concurrent_requests(app: Flask, contract: Contract) -> None:
    def create_many(_: int) -> list[str]:
        client = app.test_client()
        ids = []
        for _ in range(60):
            response = post(client, {"url": VIDEO, "timestamps": "1,3"})
            assert response.status_code == 200
            ids.append(response.get_json()["id"])
        return ids

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [i for batch in pool.map(create_many, range(8)) for i in batch]
    assert len(ids) == len(set(ids)) == 480
    assert len(composition_of(app).state.characters()) == 480


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
windows = st.builds(lambda a, b: f"{a},{b}", st.decimals(0, 20, places=2), st.decimals(0, 20, places=2)) | st.text(
    max_size=12
)
bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "url": st.sampled_from([VIDEO, "", "ftp://x/y", "https://h.example/a b"]) | json_values,
            "from_task": st.sampled_from([TASK, "video_x"]) | json_values,
            "timestamps": windows | json_values,
            "model": st.sampled_from(["sora-2-character", "other"]) | json_values,
        },
    )
    | json_values
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=bodies)
def test_any_body_gets_200_exactly_when_it_conforms(client: FlaskClient, contract: Contract, payload: Any) -> None:
    response = client.post(PATH, data=json.dumps(payload), headers=AUTH)
    expected = 200 if conforms(payload, contract) else (400, 422)
    assert response.status_code == expected if isinstance(expected, int) else response.status_code in expected
    body = response.get_json()
    if response.status_code == 200:
        assert check_character(body, contract) == []
    else:
        assert check_error_body(body) == []
