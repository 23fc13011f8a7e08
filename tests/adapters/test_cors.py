"""CORS: the header functions, the ``cors`` setting, ``serve --cors`` / ``SORA_MOCK_CORS``, ``make mock CORS=``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mock_server import MockConfig
from mock_server.mock.cors import (
    MAX_AGE,
    MAX_REQUEST_HEADERS,
    allowed_request_headers,
    answer_headers,
    check_origin,
    exposed_headers,
    parse_origins,
    preflight_headers,
)
from mock_server.serving import cli

from ..helpers import ROOT, MockProcess

FRONT = "http://localhost:5173"
ALLOWED = (FRONT, "https://app.example.com")


def test_an_allowed_origin_gets_allow_origin_and_vary() -> None:
    assert answer_headers(FRONT, ALLOWED) == [("Access-Control-Allow-Origin", FRONT), ("Vary", "Origin")]
    assert answer_headers("https://app.example.com", ALLOWED)[0] == (
        "Access-Control-Allow-Origin",
        "https://app.example.com",
    )


@pytest.mark.parametrize(
    "origin", [None, "", "http://localhost:5174", "https://localhost:5173", "null", "http://evil.example"]
)
def test_another_origin_gets_nothing(origin: str | None) -> None:
    assert answer_headers(origin, ALLOWED) == []
    assert preflight_headers(origin, "POST", ALLOWED) is None


def test_without_origins_nothing_changes() -> None:
    assert answer_headers(FRONT, ()) == []
    assert preflight_headers(FRONT, "POST", ()) is None


def test_star_allows_any_origin() -> None:
    assert answer_headers("http://anything:1", ("*",)) == [("Access-Control-Allow-Origin", "*")]
    assert answer_headers(FRONT, (FRONT, "*")) == [("Access-Control-Allow-Origin", FRONT), ("Vary", "Origin")]


def test_a_preflight_for_post_from_an_allowed_origin() -> None:
    headers = dict(preflight_headers(FRONT, "POST", ALLOWED) or [])
    assert headers == {
        "Access-Control-Allow-Origin": FRONT,
        "Vary": "Origin, Access-Control-Request-Headers",
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "authorization, content-type",
        "Access-Control-Max-Age": str(MAX_AGE),
    }
    assert dict(preflight_headers("http://any.test", "POST", ("*",)) or [])["Vary"] == "Access-Control-Request-Headers"


def test_a_preflight_allows_the_headers_it_asks_for() -> None:
    headers = dict(preflight_headers(FRONT, "POST", ALLOWED, "X-Request-Id, content-type,Idempotency-Key") or [])
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type, x-request-id, idempotency-key"


@pytest.mark.parametrize(
    "asked",
    ["x-ok, bad header", "x-ok, ", "x-ok,(comment)", "x\u00e9", "x" * 129, ",".join(f"x-{n}" for n in range(65))],
)
def test_a_preflight_asking_for_a_malformed_header_gets_the_base_list(asked: str) -> None:
    expected = "authorization, content-type"
    if asked == "x-ok, ":  # an empty item is only a stray comma
        expected += ", x-ok"
    assert allowed_request_headers(asked) == expected
    assert len(",".join(f"x-{n}" for n in range(MAX_REQUEST_HEADERS)).split(",")) == MAX_REQUEST_HEADERS
    assert allowed_request_headers(",".join(f"x-{n}" for n in range(MAX_REQUEST_HEADERS))).endswith("x-63")
    assert allowed_request_headers(None) == "authorization, content-type"


def test_an_answer_exposes_every_header_a_page_could_not_read() -> None:
    carried = ["Content-Type", "Retry-After", "WWW-Authenticate", "Allow", "X-Trace", "Connection", "retry-after"]
    assert exposed_headers(carried) == "Retry-After, WWW-Authenticate, Allow, X-Trace"
    assert exposed_headers(["Content-Type", "Content-Length"]) is None
    assert answer_headers(FRONT, ALLOWED, ["Content-Type", "Retry-After"]) == [
        ("Access-Control-Allow-Origin", FRONT),
        ("Vary", "Origin"),
        ("Access-Control-Expose-Headers", "Retry-After"),
    ]
    assert answer_headers("http://any.test", ("*",), ["Retry-After"])[-1] == (
        "Access-Control-Expose-Headers",
        "Retry-After",
    )
    assert answer_headers("http://evil.example", ALLOWED, ["Retry-After"]) == []


@pytest.mark.parametrize("method", [None, "", "GET", "post", "DELETE"])
def test_a_preflight_for_another_method_is_not_answered(method: str | None) -> None:
    assert preflight_headers(FRONT, method, ALLOWED) is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("*", "*"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("app://local", "app://local"),
    ],
)
def test_origins_are_checked_and_lowered(given: str, kept: str) -> None:
    assert check_origin(given) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "localhost:5173",
        "http://localhost:5173/",
        "http://localhost:5173/app",
        "http://user@host",
        "http://h:0",
        "http://h:70000",
        "http://",
        "**",
        "http://a b",
    ],
)
def test_malformed_origins_are_refused_naming_them(bad: str) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        check_origin(bad)


def test_parse_origins_reads_a_comma_list() -> None:
    assert parse_origins(" http://a.test , https://b.test:8443,") == ("http://a.test", "https://b.test:8443")
    with pytest.raises(ValueError, match="at least one"):
        parse_origins(" , ")


def test_the_cors_setting_is_validated() -> None:
    assert MockConfig().cors == ()
    assert MockConfig(cors=("HTTP://LOCALHOST:5173",)).cors == ("http://localhost:5173",)
    assert MockConfig.from_mapping({"cors": "http://a.test,http://b.test"}).cors == ("http://a.test", "http://b.test")
    assert MockConfig.from_mapping({"cors": ["*"]}).cors == ("*",)
    with pytest.raises(ValueError, match="tuple of origins"):
        MockConfig(cors="*")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not \\* or scheme://host"):
        MockConfig(cors=("http://a.test/",))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[MockConfig]:
    """The configs ``sora-mock serve`` would serve (nothing is started)."""
    seen: list[MockConfig] = []

    def fake_serve(config: MockConfig, **_: Any) -> None:
        seen.append(config)

    monkeypatch.setattr(cli, "serve_forever", fake_serve)
    monkeypatch.delenv("SORA_MOCK_CORS", raising=False)
    return seen


def test_serve_cors_reaches_the_config(served: list[MockConfig]) -> None:
    done = CliRunner().invoke(cli.main, ["serve", "--cors", "http://localhost:5173,https://app.example.com"])
    assert done.exit_code == 0, done.output
    assert served[-1].cors == ALLOWED
    assert "sora-mock: CORS on for http://localhost:5173, https://app.example.com" in done.output
    done = CliRunner().invoke(cli.main, ["serve"], env={"SORA_MOCK_CORS": "*"})
    assert done.exit_code == 0 and served[-1].cors == ("*",)
    done = CliRunner().invoke(cli.main, ["serve"])
    assert done.exit_code == 0 and served[-1].cors == ()
    assert "CORS" not in done.output


def test_serve_refuses_a_malformed_origin_naming_the_option(served: list[MockConfig]) -> None:
    done = CliRunner().invoke(cli.main, ["serve", "--cors", "localhost:5173"])
    assert done.exit_code == 2 and "--cors" in done.output and "localhost:5173" in done.output
    assert "Traceback" not in done.output and not served


def test_make_mock_passes_cors_to_serve() -> None:
    venv = Path(sys.prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    done = subprocess.run(
        ["make", "--no-print-directory", "mock", "PORT=0", f"VENV={venv}", "CORS=not-an-origin"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--cors" in done.stdout + done.stderr and "not-an-origin" in done.stdout + done.stderr
    assert "make mock: CORS on: browser pages from not-an-origin may call the mock" in done.stdout


def test_make_mock_says_when_cors_is_off() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "mock", f"VENV={sys.prefix}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "make mock: CORS off" in done.stdout


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_served_cors_answers_preflights_and_marks_every_answer(workers: list[str]) -> None:
    import requests

    with MockProcess(["--cors", FRONT, *workers]) as mock:
        endpoint = mock.url("/sora/v1/characters")
        preflight = requests.options(
            endpoint,
            headers={
                "Origin": FRONT,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
            timeout=10,
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == FRONT
        assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
        assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert preflight.headers["Access-Control-Max-Age"] == str(MAX_AGE)
        custom = requests.options(
            endpoint,
            headers={
                "Origin": FRONT,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-request-id",
            },
            timeout=10,
        )
        assert custom.headers["Access-Control-Allow-Headers"] == "authorization, content-type, x-request-id"
        refused = requests.post(endpoint, json={}, headers={"Origin": FRONT}, timeout=10)
        assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == FRONT
        assert refused.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate"
        queued = requests.post(mock.url("/__mock/faults"), json={"status": 429, "retry_after": 3}, timeout=10)
        assert queued.status_code == 201
        auth = {"Origin": FRONT, "Authorization": "Bearer sk-test-token-1234"}
        body = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}
        limited = requests.post(endpoint, json=body, headers=auth, timeout=10)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
        assert "Retry-After" in limited.headers["Access-Control-Expose-Headers"].split(", ")
        other = requests.post(endpoint, json={}, headers={"Origin": "http://evil.example"}, timeout=10)
        assert "Access-Control-Allow-Origin" not in other.headers
    with MockProcess([]) as plain:
        answer = requests.post(plain.url("/sora/v1/characters"), json={}, headers={"Origin": FRONT}, timeout=10)
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_a_stubs_own_headers_are_exposed() -> None:
    import requests

    from mock_server import SoraServer

    error = {"error": {"message": "Slow down.", "type": "rate_limit_error", "param": None, "code": "slow_down"}}
    with SoraServer({"cors": (FRONT,)}) as server:
        server.stub(response={"status": 429, "json": error, "headers": {"Retry-After": "7", "X-Relay-Trace": "t-1"}})
        body = {"url": "https://example.com/clip.mp4", "timestamps": "1,3"}
        headers = {"Origin": FRONT, "Authorization": f"Bearer {server.token}"}
        answer = requests.post(f"{server.url}/sora/v1/characters", json=body, headers=headers, timeout=10)
    assert answer.status_code == 429 and answer.headers["X-Relay-Trace"] == "t-1"
    assert set(answer.headers["Access-Control-Expose-Headers"].split(", ")) == {"Retry-After", "X-Relay-Trace"}
