"""No web page drives the admin API: foreign or null origins, cross-site fetches, form/text writes and
DNS-rebound host names are refused, while scripts, curl, the fixtures and same-origin pages still work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from mock_server import MockConfig
from mock_server.contract.http import cross_origin, trusted_host

from ..helpers import AUTH, MockProcess

STUB = {"response": {"status": 404, "json": {"error": {"message": "x", "type": "t", "param": None, "code": "c"}}}}
FAULT = {"status": 503, "times": 1}
EVIL = "http://evil.example"
JSON = "application/json"
WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/__mock/stubs", STUB),
    ("POST", "/__mock/faults", FAULT),
    ("POST", "/__mock/reset", None),
    ("DELETE", "/__mock/stubs", None),
]
# (headers, status, code, param) a page's request carries, and what the admin API answers
PAGES: list[tuple[dict[str, str], int, str, str]] = [
    (
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        403,
        "cross_origin",
        "Sec-Fetch-Site",
    ),
    ({"Origin": EVIL, "Content-Type": JSON}, 403, "cross_origin", "Origin"),
    ({"Origin": "null", "Content-Type": JSON}, 403, "cross_origin", "Origin"),
    ({"Origin": "http://localhost:3000", "Content-Type": JSON}, 403, "cross_origin", "Origin"),
    ({"Origin": "https://localhost", "Content-Type": JSON}, 403, "cross_origin", "Origin"),
    ({"Sec-Fetch-Site": "cross-site", "Content-Type": JSON}, 403, "cross_origin", "Sec-Fetch-Site"),
    ({"Sec-Fetch-Site": "same-site", "Content-Type": JSON}, 403, "cross_origin", "Sec-Fetch-Site"),
    ({"Content-Type": "text/plain"}, 415, "unsupported_media_type", "Content-Type"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "Content-Type"),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type", "Content-Type"),
    ({"Content-Type": "text/plain; charset=application/json"}, 415, "unsupported_media_type", "Content-Type"),
    ({"Host": "evil.example", "Content-Type": JSON}, 403, "untrusted_host", "Host"),
    ({"Host": "evil.example:80", "Origin": "http://evil.example", "Content-Type": JSON}, 403, "untrusted_host", "Host"),
    ({"Host": "127.0.0.1.nip.io", "Content-Type": JSON}, 403, "untrusted_host", "Host"),
]


def _send(client: FlaskClient, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Any:
    import json

    data = json.dumps(body) if body is not None else ("x" if "Content-Type" in headers else None)
    host = headers.get("Host", "127.0.0.1:8000")
    rest = {k: v for k, v in headers.items() if k != "Host"}
    return client.open(path, method=method, data=data, headers=rest, base_url=f"http://{host}")


def _untouched(client: FlaskClient) -> None:
    assert client.get("/__mock/stubs").get_json() == [] and client.get("/__mock/faults").get_json() == []


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize(("headers", "status", "code", "param"), PAGES)
def test_a_web_page_cannot_write(
    client: FlaskClient, method: str, path: str, body: Any, headers: dict[str, str], status: int, code: str, param: str
) -> None:
    client.post("/__mock/stubs", json=STUB)  # something a reset or a delete would remove
    client.post("/__mock/faults", json=FAULT)
    answer = _send(client, method, path, body, headers)
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"], error["param"]) == (status, code, param), error
    assert len(client.get("/__mock/stubs").get_json()) == 1 and len(client.get("/__mock/faults").get_json()) == 1


@pytest.mark.parametrize("path", ["/__mock/requests", "/__mock/characters", "/__mock/stubs", "/__mock/coverage"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "EVIL.example:8000", "localhost.evil.example"])
def test_a_rebound_name_cannot_read(client: FlaskClient, path: str, host: str) -> None:
    answer = client.get(path, base_url=f"http://{host}")
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "untrusted_host"
    cross = client.get(path, headers={"Origin": EVIL})
    assert cross.status_code == 403 and cross.get_json()["error"]["code"] == "cross_origin"


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "10.1.2.3", "LOCALHOST"])
def test_scripts_and_same_origin_pages_still_work(client: FlaskClient, host: str) -> None:
    base = f"http://{host}"
    assert client.post("/__mock/stubs", json=STUB, base_url=base).status_code == 201  # a script: no Origin
    page = {"Origin": base.lower(), "Sec-Fetch-Site": "same-origin"}
    assert client.post("/__mock/faults", json=FAULT, headers=page, base_url=base).status_code == 201
    assert client.get("/__mock/requests", headers={"Sec-Fetch-Site": "none"}, base_url=base).status_code == 200
    assert client.post("/__mock/reset", base_url=base).status_code == 200  # no body, no type (curl -X POST)
    assert client.post("/__mock/faults", data=b'{"status": 500}', base_url=base).status_code == 201  # data=, no type
    assert (
        client.post("/__mock/stubs", json=STUB, headers={"Content-Type": "application/merge+json"}).status_code == 201
    )


def test_allowed_hosts_open_the_admin_api_to_those_names(make_app: Callable[..., Flask]) -> None:
    client = make_app(allowed_hosts=("mock.internal",)).test_client()
    base = "http://mock.internal:8000"
    assert client.get("/__mock/requests", base_url=base).status_code == 200
    page = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/__mock/stubs", json=STUB, headers=page, base_url=base).status_code == 201
    assert client.get("/__mock/requests", base_url="http://other.internal").status_code == 403
    anyone = make_app(allowed_hosts="*").test_client()
    assert anyone.get("/__mock/requests", base_url="http://whatever.example").status_code == 200
    assert anyone.get("/__mock/requests", headers={"Origin": EVIL}).status_code == 403  # origins still checked


def test_the_admin_token_comes_first_and_does_not_open_it_to_pages(make_app: Callable[..., Flask]) -> None:
    client = make_app(admin_token="admin-secret-123").test_client()
    assert client.post("/__mock/reset", headers={"Origin": EVIL}).status_code == 401
    auth = {"Authorization": "Bearer admin-secret-123"}
    assert client.post("/__mock/reset", headers={**auth, "Origin": EVIL}).status_code == 403
    assert client.post("/__mock/reset", headers=auth).status_code == 200


def test_the_endpoint_is_not_the_admin_api(client: FlaskClient) -> None:
    body = {"url": "https://example.com/v.mp4", "timestamps": "1,3"}
    headers = {**AUTH, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    assert (
        client.post("/sora/v1/characters", json=body, headers=headers, base_url="http://evil.example").status_code
        == 200
    )


def test_allowed_hosts_are_checked() -> None:
    assert MockConfig(allowed_hosts=("Mock.Internal.",)).allowed_hosts == ("mock.internal",)
    assert MockConfig.from_mapping({"allowed_hosts": "a.internal, b"}).allowed_hosts == ("a.internal", "b")
    for bad in ("http://a", "a:8000", "a b", ""):
        with pytest.raises(ValueError, match="host name"):
            MockConfig(allowed_hosts=(bad,))


def test_the_shared_rules() -> None:
    assert trusted_host("127.0.0.1:1") and trusted_host("[::1]:1") and trusted_host("localhost")
    assert not trusted_host("evil.example") and trusted_host("evil.example", ("evil.example",))
    same = {"fetch_site": None, "host": "127.0.0.1:8000", "scheme": "http"}
    assert cross_origin(origin="http://127.0.0.1:8000", **same) is None  # type: ignore[arg-type]
    assert cross_origin(origin=None, **same) is None  # type: ignore[arg-type]
    assert cross_origin(origin="null", **same) is not None  # type: ignore[arg-type]
    assert cross_origin(origin="http://evil.example:8000", fetch_site=None, host="evil.example:8000", scheme="http")


@pytest.fixture(scope="module")
def served() -> Iterator[MockProcess]:
    with MockProcess([], env={"SORA_MOCK_ALLOWED_HOSTS": "mock.internal"}) as server:
        yield server


@pytest.mark.slow
def test_served_mock_refuses_pages_and_serves_scripts(served: MockProcess) -> None:
    evil = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    for method, path, _ in WRITES:
        answer = requests.request(method, served.url(path), data="{}", headers=evil, timeout=10)
        assert answer.status_code == 403, answer.text
    rebound = requests.get(served.url("/__mock/requests"), headers={"Host": f"evil.example:{served.port}"}, timeout=10)
    assert rebound.status_code == 403 and rebound.json()["error"]["param"] == "Host"
    named = requests.get(served.url("/__mock/requests"), headers={"Host": f"mock.internal:{served.port}"}, timeout=10)
    assert named.status_code == 200
    form = requests.post(served.url("/__mock/faults"), data={"status": "503"}, timeout=10)
    assert form.status_code == 415 and form.json()["error"]["param"] == "Content-Type"
    assert requests.post(served.url("/__mock/faults"), json=FAULT, timeout=10).status_code == 201
    assert requests.post(served.url("/__mock/reset"), timeout=10).status_code == 200


def test_health_answers_any_host_name(client: FlaskClient) -> None:
    assert client.get("/__mock/health", base_url="http://sora-mock:8000").status_code == 200
    assert client.get("/__mock/healthz", base_url="http://sora-mock:8000").status_code == 403


@pytest.mark.parametrize(
    "origin",
    ["http://[::1", "http://[zz]", "http://\u2100", "\x00", "HTTP://127.0.0.1:8000x"],
)
def test_an_unreadable_origin_is_refused_not_a_500(client: FlaskClient, origin: str) -> None:
    answer = client.post("/__mock/reset", headers={"Origin": origin}, base_url="http://127.0.0.1:8000")
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "cross_origin"


@pytest.mark.parametrize("value", ["http://mock.internal", "mock.internal:8000", "a b"])
def test_a_bad_allowed_host_is_refused_before_serving(value: str) -> None:
    from click.testing import CliRunner

    from mock_server.serving.cli import main

    result = CliRunner().invoke(main, ["serve", "--allowed-host", value])
    assert result.exit_code == 2 and "--allowed-host" in result.output


def test_a_host_name_the_mock_binds_is_allowed() -> None:
    from mock_server.serving.cli import _bound_name

    assert _bound_name("Mock.Internal") == ("mock.internal",)
    assert _bound_name("0.0.0.0") == () and _bound_name("::") == () and _bound_name("localhost") == ()


def test_the_coverage_command_explains_a_refused_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    from click.testing import CliRunner

    from mock_server.serving.cli import main

    def refuse(request: Any, timeout: float) -> Any:
        raise urllib.error.HTTPError(request.full_url, 403, "Forbidden", None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    result = CliRunner().invoke(main, ["coverage", "http://mock.internal:8000"])
    assert result.exit_code == 1 and "--allowed-host" in result.output
