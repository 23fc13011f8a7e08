"""``GET /__mock/requests?status=N&code=CODE``: filters on the journal, combinable with paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server.mock.compose import composition_of
from mock_server.mock.state import MockState

from ..helpers import AUTH, VIDEO, MockProcess

# (status, outcome) of the entries journaled, in order
ENTRIES = [
    (200, "created"),
    (429, "rate_limit_exceeded"),
    (422, "invalid_timestamps_span"),
    (200, "created"),
    (None, "dropped"),
    (429, "rate_limit_exceeded"),
    (422, "invalid_url"),
    (200, "created"),
]


@pytest.fixture
def journaled(make_app: Callable[..., Flask]) -> FlaskClient:
    """A mock whose journal holds :data:`ENTRIES` (each with the ``outcome`` member the endpoint writes)."""
    app = make_app()
    state: MockState = composition_of(app).state
    for status, outcome in ENTRIES:
        state.record(
            {
                "time": 1.0,
                "method": "POST",
                "path": "/sora/v1/characters",
                "status": status,
                "headers": {},
                "body": {"n": 422},
                "outcome": outcome,
            }
        )
    return app.test_client()


def _seqs(client: FlaskClient, query: str) -> list[int]:
    answer = client.get("/__mock/requests" + query)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [entry["seq"] for entry in answer.get_json()]


def _expected(status: int | None = None, code: str | None = None) -> list[int]:
    return [
        seq
        for seq, (got_status, outcome) in enumerate(ENTRIES, 1)
        if (status is None or got_status == status) and (code is None or outcome == code)
    ]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?status=200", 200, None),
        ("?status=422", 422, None),
        ("?code=rate_limit_exceeded", None, "rate_limit_exceeded"),
        ("?code=dropped", None, "dropped"),
        ("?status=422&code=invalid_url", 422, "invalid_url"),
        ("?status=200&code=invalid_url", 200, "invalid_url"),
        ("?status=503", 503, None),
        ("?code=task_not_found", None, "task_not_found"),
    ],
)
def test_filters_keep_the_matching_entries(
    journaled: FlaskClient, query: str, status: int | None, code: str | None
) -> None:
    assert _seqs(journaled, query) == _expected(status, code)


def test_a_body_that_mentions_the_status_does_not_match_by_itself(journaled: FlaskClient) -> None:
    assert _seqs(journaled, "?status=422") == [3, 7]  # every body holds 422; only two entries answered it


def test_filters_combine_with_limit_and_after(journaled: FlaskClient) -> None:
    created = _expected(200)
    assert _seqs(journaled, "?status=200&limit=2") == created[:2]
    assert _seqs(journaled, f"?status=200&after={created[0]}") == created[1:]
    assert _seqs(journaled, f"?code=created&after={created[0]}&limit=1") == created[1:2]
    assert _seqs(journaled, "?status=200&limit=0") == []


def test_without_filters_the_journal_is_unchanged(journaled: FlaskClient) -> None:
    assert _seqs(journaled, "") == list(range(1, len(ENTRIES) + 1))


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("?status=abc", "status"),
        ("?status=99", "status"),
        ("?status=600", "status"),
        ("?status=-1", "status"),
        ("?status=", "status"),
        ("?code=", "code"),
        ("?code=a%20b", "code"),
        ("?code=" + "x" * 101, "code"),
        ("?code=created&limit=x", "limit"),
        ("?status=200&after=-3", "after"),
    ],
)
def test_a_malformed_filter_is_a_400_naming_the_parameter(journaled: FlaskClient, query: str, param: str) -> None:
    answer = journaled.get("/__mock/requests" + query)
    assert answer.status_code == 400
    error: dict[str, Any] = answer.get_json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_parameter")
    assert param in error["message"]


def test_the_status_filter_on_real_endpoint_answers(client: FlaskClient) -> None:

    client.post("/sora/v1/characters", json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    client.post("/sora/v1/characters", json={"url": VIDEO, "timestamps": "1,9"}, headers=AUTH)
    client.post("/sora/v1/characters", json={"url": VIDEO, "timestamps": "1,3"})
    refused = client.get("/__mock/requests?status=422").get_json()
    assert [(entry["seq"], entry["body"]["timestamps"]) for entry in refused] == [(2, "1,9")]
    assert [entry["seq"] for entry in client.get("/__mock/requests?status=401").get_json()] == [3]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_served_filters_see_every_worker_s_answers(workers: list[str]) -> None:
    import requests

    with MockProcess(workers) as mock:
        endpoint = mock.url("/sora/v1/characters")
        auth = {"Authorization": "Bearer filter-test-token"}
        for _ in range(6):  # several connections, so two workers both answer
            assert requests.post(endpoint, json={"url": VIDEO, "timestamps": "1,3"}, headers=auth, timeout=10).ok
            assert (
                requests.post(endpoint, json={"url": VIDEO, "timestamps": "1,9"}, headers=auth, timeout=10).status_code
                == 422
            )
        spans = requests.get(mock.url("/__mock/requests?code=invalid_timestamps_span"), timeout=10).json()
        assert len(spans) == 6 and {entry["status"] for entry in spans} == {422}
        created = requests.get(mock.url("/__mock/requests?status=200&limit=4"), timeout=10).json()
        assert len(created) == 4 and {entry["outcome"] for entry in created} == {"created"}
        later = requests.get(mock.url(f"/__mock/requests?status=200&after={created[-1]['seq']}"), timeout=10).json()
        assert len(later) == 2
        assert requests.get(mock.url("/__mock/requests?status=abc"), timeout=10).json()["error"]["param"] == "status"
