"""The composition root: one build of a mock's parts, found again from every adapter."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from mock_server import MockConfig, create_app
from mock_server.contract.spec import ENDPOINT_PATH
from mock_server.mock.compose import Composition, build, composition_of, find_composition
from mock_server.mock.core import Request
from mock_server.testing import SoraRouter

BODY = json.dumps({"url": "https://example.com/clip.mp4", "timestamps": "1,3"}).encode()
AUTH = (("Authorization", "Bearer core-token-0123"),)


def test_build_gives_an_endpoint_over_the_state_it_opened() -> None:
    composition = build(MockConfig(seed=3, journal_size=5))
    answer = composition.endpoint.handle(Request("POST", ENDPOINT_PATH, AUTH, BODY))
    assert answer.status == 200
    assert composition.endpoint.state is composition.state
    assert composition.seed == 3 and composition.state.journal_size == 5
    assert [entry["outcome"] for entry in composition.state.requests()] == ["created"]


def test_create_app_serves_and_administers_its_one_composition() -> None:
    app = create_app({"seed": 4})
    composition = composition_of(app)
    assert isinstance(composition, Composition)
    created = app.test_client().post(ENDPOINT_PATH, data=BODY, headers=dict(AUTH))
    assert created.status_code == 200
    composition.endpoint.handle(Request("POST", ENDPOINT_PATH, AUTH, b"{}"))
    journal = app.test_client().get("/__mock/requests").get_json()
    assert [entry["outcome"] for entry in journal] == ["created", "missing_required_parameter"]


def test_the_respx_router_answers_from_its_apps_composition() -> None:
    import httpx

    with SoraRouter(config={"seed": 5}) as router:
        httpx.post(f"https://api.jxincm.cn{ENDPOINT_PATH}", content=BODY, headers=dict(AUTH))
        assert len(composition_of(router.app).state.requests()) == 1


def test_an_app_without_a_composition_is_named() -> None:
    plain = Flask("plain")
    assert find_composition(plain) is None and find_composition(object()) is None
    with pytest.raises(TypeError, match="not a mock app"):
        composition_of(plain)
