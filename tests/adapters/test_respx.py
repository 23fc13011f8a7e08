"""``sora_respx`` / :class:`SoraRouter`: the relay's endpoint answered in-process for httpx."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mock_server import check_character, load_contract
from mock_server.testing import DEFAULT_TOKEN
from mock_server.testing.respx_router import RELAY_BASE_URL, SoraRouter, default_base_urls

ENDPOINT = RELAY_BASE_URL + "/sora/v1/characters"
VALID = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sync_client(sora_respx: SoraRouter) -> None:
    with httpx.Client() as client:
        answer = client.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert check_character(answer.json(), load_contract()) == []
    assert sora_respx.characters == [answer.json()]
    (entry,) = sora_respx.requests
    assert entry["body"] == VALID and entry["status"] == 200
    assert entry["headers"]["Authorization"] == "[redacted]"
    assert sora_respx.calls.call_count == 1  # still a respx router


def test_async_client(sora_respx: SoraRouter) -> None:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=RELAY_BASE_URL, headers=auth(sora_respx.token)) as client:
            return list(await asyncio.gather(*(client.post("/sora/v1/characters", json=VALID) for _ in range(5))))

    answers = asyncio.run(run())
    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.json()["id"] for a in answers}) == 5
    assert len(sora_respx.characters) == 5


def test_errors_match_the_mock(sora_respx: SoraRouter) -> None:
    denied = httpx.post(ENDPOINT, json=VALID)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "missing_api_key"
    wide = httpx.post(ENDPOINT, json={**VALID, "timestamps": "1,9"}, headers=auth(sora_respx.token))
    assert wide.status_code == 422 and wide.json()["error"]["param"] == "timestamps"
    not_json = httpx.post(ENDPOINT, content=b"{", headers=auth(sora_respx.token))
    assert not_json.status_code == 400
    wrong_method = httpx.get(ENDPOINT)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]


def test_fail_next_429_with_retry_after(sora_respx: SoraRouter) -> None:
    sora_respx.fail_next(429, retry_after=2)
    limited = httpx.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert httpx.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token)).status_code == 200


def test_drop_is_a_transport_error_sync_and_async(sora_respx: SoraRouter) -> None:
    sora_respx.drop_next(times=2)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token))

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            await client.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token))

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(run())
    assert httpx.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token)).status_code == 200


def test_other_hosts_and_paths_are_not_swallowed(sora_respx: SoraRouter) -> None:
    with pytest.raises(AssertionError, match="not mocked"):
        httpx.get("https://example.com/")
    with pytest.raises(AssertionError, match="not mocked"):
        httpx.post(RELAY_BASE_URL + "/v1/videos", json={})
    assert sora_respx.requests == []


def test_user_routes_live_beside_the_mock(sora_respx: SoraRouter) -> None:
    sora_respx.get("https://cdn.example.com/avatar.png").mock(return_value=httpx.Response(200, content=b"png"))
    assert httpx.get("https://cdn.example.com/avatar.png").content == b"png"
    assert httpx.post(ENDPOINT, json=VALID, headers=auth(sora_respx.token)).status_code == 200


@pytest.mark.sora(token="respx-only", seed=5)
def test_marker_applies_to_respx(sora_respx: SoraRouter) -> None:
    assert sora_respx.token == "respx-only"
    assert httpx.post(ENDPOINT, json=VALID, headers=auth(DEFAULT_TOKEN)).status_code == 401
    first = httpx.post(ENDPOINT, json=VALID, headers=auth("respx-only")).json()
    with SoraRouter({"token": "x", "seed": 5}, base_urls=["http://other.test"]) as again:
        second = httpx.post("http://other.test/sora/v1/characters", json=VALID, headers=auth(again.token)).json()
    assert first["username"] == second["username"]


def test_sora_base_url_env_is_routed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_BASE_URL", "http://staging.example:9000/relay/")
    assert default_base_urls() == (RELAY_BASE_URL, "http://staging.example:9000/relay")
    with SoraRouter() as router:
        answer = httpx.post(
            "http://staging.example:9000/relay/sora/v1/characters", json=VALID, headers=auth(router.token)
        )
        relay = httpx.post(ENDPOINT, json=VALID, headers=auth(router.token))
    assert answer.status_code == 200 and relay.status_code == 200
    assert [entry["path"] for entry in router.requests] == ["/sora/v1/characters"] * 2
    monkeypatch.setenv("SORA_BASE_URL", RELAY_BASE_URL + "/")
    assert default_base_urls() == (RELAY_BASE_URL,)


def test_bad_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        SoraRouter(base_urls=["relay.internal"])


def test_router_stops_patching_after_the_block() -> None:
    closed = "http://127.0.0.1:9/sora/v1/characters"  # discard port: nothing listens
    with SoraRouter(base_urls=["http://127.0.0.1:9"]) as router:
        assert httpx.post(closed, json=VALID, headers=auth(router.token)).status_code == 200
    assert "SoraRouter" in repr(router) and router.token not in repr(router)
    with pytest.raises(httpx.ConnectError):
        httpx.post(closed, json=VALID, timeout=5)
