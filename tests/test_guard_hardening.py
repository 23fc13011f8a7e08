"""The guard against hostile upstream URL shapes, near-endpoint paths, odd queries and headers.

The upstream is a :class:`~tests.misbehaving_relay.MisbehavingRelay` on 127.0.0.1 that answers
every request with a plain character (200), so a create that reached it would have been billed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server.relay.guard import GUARD_HEADER, GuardConfig, create_guard_app
from mock_server.relay.paths import loose_path, names_path

from .conftest import VIDEO
from .misbehaving_relay import MisbehavingRelay

TOKEN = "guard-hardening-secret-5e2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID = {"url": VIDEO, "timestamps": "1,3"}
BROKEN = {"url": VIDEO, "timestamps": "1,9"}


@pytest.fixture
def relay() -> Iterator[MisbehavingRelay]:
    with MisbehavingRelay("trickle-body", pause=0, steps=0) as server:  # a plain 200 character at once
        yield server


@pytest.fixture
def make_guard() -> Iterator[Callable[..., FlaskClient]]:
    apps: list[Flask] = []

    def build(**overrides: Any) -> FlaskClient:
        app = create_guard_app(GuardConfig(**overrides))
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        app.extensions["sora_guard"].close()


# --- item 1: every upstream URL shape ------------------------------------------------------------

UPSTREAM_SHAPES = [
    ("/sora", "/v1/characters"),
    ("/sora/", "/v1/characters"),
    ("/sora/v1", "/characters"),
    ("/sora/v1/", "/characters"),
    ("/sora/v1", "/characters/"),
    ("/sora/v1", "/./characters"),
    ("/%73ora/v1", "/characters"),
    ("/SORA/V1", "/Characters"),
    ("/sora//v1", "/characters"),
    ("/sora/v1;x=1", "/characters"),
    ("/sora/v1/characters", "/"),
    ("/sora/v1/x/..", "/characters"),
    ("/sora/v1/%2e%2e/v1", "/characters"),
    ("/gateway/sora", "/v1/characters"),  # a gateway mounting the relay below a path
    ("/api", "/sora/v1/characters"),
    ("", "/sora/v1/characters"),
]


@pytest.mark.parametrize(("prefix", "path"), UPSTREAM_SHAPES)
def test_the_path_the_upstream_receives_decides_what_is_budgeted(
    prefix: str, path: str, relay: MisbehavingRelay, make_guard: Callable[..., FlaskClient]
) -> None:
    guard = make_guard(upstream=relay.url + prefix, pass_through=True, max_creates=1)
    refused = guard.post(path, json=BROKEN, headers=AUTH)
    assert (refused.status_code, refused.headers[GUARD_HEADER]) == (422, "blocked")
    answers = [guard.post(path, json=VALID, headers=AUTH) for _ in range(3)]
    assert [(a.status_code, a.headers[GUARD_HEADER]) for a in answers] == [
        (200, "forwarded"),
        (429, "budget"),
        (429, "budget"),
    ]
    assert len(relay.seen) == 1  # one create reached the upstream, the rule-breaking one never did
    data = guard.get("/__guard/report").get_json()
    assert (data["creates"], data["budget_left"], data["over_budget"], data["passed"]) == (1, 0, 2, 0)
    assert guard.get(path, headers=AUTH).status_code == 405  # the endpoint takes POST only


def test_a_prefix_that_only_partly_matches_is_not_the_endpoint(
    relay: MisbehavingRelay, make_guard: Callable[..., FlaskClient]
) -> None:
    guard = make_guard(upstream=relay.url + "/sor", pass_through=True, max_creates=0)
    answer = guard.post("/a/v1/characters", json=VALID, headers=AUTH)  # the upstream gets /sor/a/v1/characters
    assert (answer.status_code, answer.headers[GUARD_HEADER]) == (200, "passed")
    assert [seen.path for seen in relay.seen] == ["/sor/a/v1/characters"]
    assert not names_path("/xsora/v1/characters", "/sora/v1/characters")


# --- item 11: near-endpoint paths are refused, never forwarded unchecked ---------------------------

NEAR_ENDPOINT = [
    "/sora/v1/characters%20",
    "/sora/v1/characters.json",
    "/sora/v1/characters%09",
    "/sora/v1/characters%E2%80%8B",  # a zero-width space
    "/sora/v1/characters~",
    "/sora/v1/%EF%BD%83haracters",  # a full-width c (NFKC: c)
    "/sora%20/v1/characters",
    "/sora/v1/characters.json/",
]


@pytest.mark.parametrize("path", NEAR_ENDPOINT)
def test_near_endpoint_paths_are_refused_locally_with_pass_through(
    path: str, relay: MisbehavingRelay, make_guard: Callable[..., FlaskClient]
) -> None:
    guard = make_guard(upstream=relay.url, pass_through=True, max_creates=5)
    for method in ("POST", "PUT", "GET"):
        answer = guard.open(path, method=method, json=VALID, headers=AUTH)
        assert (answer.status_code, answer.headers[GUARD_HEADER]) == (404, "blocked"), method
        assert answer.get_json()["error"]["code"] == "near_endpoint"
    assert relay.seen == []
    assert loose_path("/sora/v1/characters.json") == "/sora/v1/characters"


def test_near_endpoint_below_a_prefix_is_refused_and_real_sub_paths_pass(
    relay: MisbehavingRelay, make_guard: Callable[..., FlaskClient]
) -> None:
    guard = make_guard(upstream=relay.url + "/sora", pass_through=True)
    assert guard.post("/v1/characters.json", json=VALID, headers=AUTH).status_code == 404
    assert relay.seen == []
    for path in ("/v1/characters/ch_1", "/v1/charactersheet", "/v2/characters"):
        assert guard.get(path, headers=AUTH).headers[GUARD_HEADER] == "passed", path
    assert [seen.path for seen in relay.seen] == [
        "/sora/v1/characters/ch_1",
        "/sora/v1/charactersheet",
        "/sora/v2/characters",
    ]
