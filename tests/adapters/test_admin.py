"""The /__mock/ admin API through the WSGI test client: journal, characters, reset, bounds, --no-admin."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server import check_error_body

from ..helpers import AUTH, TASK, TOKEN, VIDEO

PATH = "/sora/v1/characters"
ADMIN_GETS = ("/__mock/health", "/__mock/requests", "/__mock/characters", "/__mock/faults")
ADMIN_POSTS = ("/__mock/reset", "/__mock/faults")


def create(client: FlaskClient, payload: Any = None, headers: dict[str, str] | None = None) -> Any:
    payload = {"url": VIDEO, "timestamps": "1,3"} if payload is None else payload
    return client.post(PATH, json=payload, headers=AUTH if headers is None else headers)


def test_health_is_ok_without_a_token(client: FlaskClient) -> None:
    response = client.get("/__mock/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "state": "memory"}


def test_journal_lists_endpoint_requests_oldest_first_with_authorization_redacted(client: FlaskClient) -> None:
    create(client, {"url": VIDEO, "timestamps": "1,3"})
    create(client, {"from_task": TASK, "timestamps": "1,9"})
    create(client, headers={})
    client.post(PATH, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    client.get("/__mock/health")  # admin calls are not journaled

    response = client.get("/__mock/requests")
    assert response.status_code == 200
    entries = response.get_json()
    assert [e["status"] for e in entries] == [200, 422, 401, 400]
    assert [e["body"] for e in entries] == [
        {"url": VIDEO, "timestamps": "1,3"},
        {"from_task": TASK, "timestamps": "1,9"},
        None,  # refused before its body was read
        None,  # unreadable JSON
    ]
    for entry in entries:
        assert set(entry) >= {"time", "method", "path", "status", "body", "headers"}
        assert entry["method"] == "POST"
        assert entry["path"] == PATH
        assert isinstance(entry["time"], float)
    assert entries[0]["time"] <= entries[-1]["time"]
    assert entries[0]["headers"]["Authorization"] == "[redacted]"
    assert "Authorization" not in entries[2]["headers"]
    assert TOKEN not in response.get_data(as_text=True)


def test_characters_lists_exactly_the_created_ones(client: FlaskClient) -> None:
    created = [create(client).get_json() for _ in range(3)]
    create(client, {"url": VIDEO, "timestamps": "0,9"})  # 422 creates nothing
    listed = client.get("/__mock/characters").get_json()
    assert [c.pop("seq") for c in listed] == [1, 2, 3]
    assert listed == created
    assert len({c["id"] for c in listed}) == 3


def test_reset_clears_journal_characters_and_pending_faults(client: FlaskClient) -> None:
    create(client)
    assert client.post("/__mock/faults", json={"status": 503, "times": 5}).status_code == 201
    assert len(client.get("/__mock/faults").get_json()) == 1

    response = client.post("/__mock/reset")
    assert response.status_code == 200
    assert response.get_json() == {"status": "reset"}
    assert client.get("/__mock/requests").get_json() == []
    assert client.get("/__mock/characters").get_json() == []
    assert client.get("/__mock/faults").get_json() == []
    assert create(client).status_code == 200  # the queued 503s are gone
    assert len(client.get("/__mock/requests").get_json()) == 1


@pytest.mark.parametrize("size", [1, 3])
def test_journal_and_characters_are_bounded_oldest_dropped(make_app: Callable[..., Flask], size: int) -> None:
    client = make_app(journal_size=size).test_client()
    sent = [{"url": VIDEO, "timestamps": f"{i},{i + 2}"} for i in range(size + 4)]
    ids = [create(client, body).get_json()["id"] for body in sent]

    journal = client.get("/__mock/requests").get_json()
    assert [e["body"] for e in journal] == sent[-size:]
    characters = client.get("/__mock/characters").get_json()
    assert [c["id"] for c in characters] == ids[-size:]


def test_admin_needs_no_token_even_when_the_endpoint_does(make_app: Callable[..., Flask]) -> None:
    client = make_app(token=TOKEN).test_client()
    assert create(client, headers={"Authorization": "Bearer wrong"}).status_code == 401
    for path in ADMIN_GETS:
        assert client.get(path).status_code == 200, path
    assert client.post("/__mock/reset").status_code == 200


@pytest.mark.parametrize("path", ADMIN_GETS + ADMIN_POSTS)
def test_no_admin_makes_the_admin_paths_json_404s(make_app: Callable[..., Flask], path: str) -> None:
    client = make_app(admin=False).test_client()
    response = client.post(path) if path in ADMIN_POSTS else client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert check_error_body(response.get_json()) == []
    assert create(client).status_code == 200  # the endpoint itself is unaffected


def test_wrong_method_on_an_admin_path_is_a_json_405(client: FlaskClient) -> None:
    response = client.delete("/__mock/requests")
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert "GET" in response.headers["Allow"]
    assert check_error_body(response.get_json()) == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/__mock/nope", 404),
        ("GET", "/__mock", 404),
        ("GET", "/__mock/", 404),
        ("DELETE", "/__mock/requests", 405),
        ("PUT", "/__mock/reset", 405),
        ("POST", "/__mock/health", 405),
        ("OPTIONS", "/__mock/faults", 200),
    ],
)
def test_with_an_admin_token_unknown_admin_paths_and_wrong_methods_ask_for_it_first(
    make_app: Callable[..., Flask], method: str, path: str, status: int
) -> None:
    client = make_app(admin_token="admin-secret-5150").test_client()
    denied = client.open(path, method=method)
    assert denied.status_code == 401
    assert denied.get_json()["error"]["code"] == "invalid_admin_token"
    assert "Allow" not in denied.headers  # nothing about the route is told before the token
    allowed = client.open(path, method=method, headers={"Authorization": "Bearer admin-secret-5150"})
    assert allowed.status_code == status
    assert create(client).status_code == 200  # the endpoint does not take the admin token
    assert client.get("/elsewhere").status_code == 404  # only admin paths ask for it


def test_journal_is_valid_json_for_any_endpoint_body(client: FlaskClient) -> None:
    odd = {"url": VIDEO, "timestamps": "1,3", "note": 'é\u2028"quoted"', "nested": {"a": [1, 2.5, None]}}
    create(client, odd)
    text = client.get("/__mock/requests").get_data(as_text=True)
    assert json.loads(text)[0]["body"] == odd
