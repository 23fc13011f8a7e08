"""Admin safety and start-up of `sora-mock serve`: warning beyond loopback, admin token, busy port, quiet start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from mock_server.serving import cli
from mock_server.serving.server import is_loopback

from ..helpers import MockProcess

ADMIN_SECRET = "admin-secret-9c1d77"
ENDPOINT_SECRET = "endpoint-secret-31aa"


def _serve_args(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[Any, dict[str, Any]]:
    """Run the serve command with the serving itself replaced: the CLI result and what it would serve."""
    seen: dict[str, Any] = {}

    def fake_serve(config: Any, **kwargs: Any) -> None:
        seen.update(kwargs, config=config)

    monkeypatch.setattr(cli, "serve_forever", fake_serve)
    monkeypatch.delenv("SORA_MOCK_ADMIN_TOKEN", raising=False)
    result = CliRunner().invoke(cli.main, ["serve", *args])
    return result, seen


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com"))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_binding_beyond_loopback_with_the_admin_api_warns_and_names_it(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    result, seen = _serve_args(monkeypatch, ["--host", host])
    assert result.exit_code == 0 and seen["host"] == host
    warning = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warning) == 1 and "/__mock/ admin API" in warning[0] and "--admin-token" in warning[0]


def test_no_warning_on_loopback_or_without_the_admin_api(monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (["--host", "127.0.0.1"], ["--host", "0.0.0.0", "--no-admin"]):
        result, _ = _serve_args(monkeypatch, args)
        assert result.exit_code == 0 and "warning" not in result.output


def test_admin_token_comes_from_the_flag_or_the_environment_and_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    result, seen = _serve_args(monkeypatch, ["--host", "0.0.0.0", "--admin-token", ADMIN_SECRET])
    assert seen["config"].admin_token == ADMIN_SECRET and "protected by --admin-token" in result.output
    assert ADMIN_SECRET not in result.output and ADMIN_SECRET not in repr(seen["config"])
    monkeypatch.setattr(cli, "serve_forever", lambda config, **kwargs: seen.update(config=config))
    result = CliRunner().invoke(cli.main, ["serve"], env={"SORA_MOCK_ADMIN_TOKEN": ADMIN_SECRET})
    assert result.exit_code == 0 and seen["config"].admin_token == ADMIN_SECRET
    result = CliRunner().invoke(cli.main, ["serve", "--admin-token", " "])
    assert result.exit_code == 2 and "--admin-token" in result.output


@pytest.mark.slow
def test_admin_token_guards_every_admin_route_but_not_the_endpoint() -> None:
    env = {"SORA_MOCK_ADMIN_TOKEN": ADMIN_SECRET, "SORA_MOCK_TOKEN": ENDPOINT_SECRET}
    with MockProcess(["--workers", "1"], env=env) as server:
        admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
        for method, path in (("GET", "health"), ("GET", "requests"), ("POST", "reset"), ("GET", "faults")):
            url = server.url(f"/__mock/{path}")
            assert requests.request(method, url, timeout=10).status_code == 401
            denied = requests.request(method, url, headers={"Authorization": f"Bearer {ENDPOINT_SECRET}"}, timeout=10)
            assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_admin_token"
            assert requests.request(method, url, headers=admin, timeout=10).status_code == 200
        for method, path in (("GET", "nope"), ("DELETE", "requests"), ("PUT", "reset"), ("GET", "")):
            url = server.url(f"/__mock/{path}")
            denied = requests.request(method, url, timeout=10)
            assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_admin_token", (method, path)
            assert requests.request(method, url, headers=admin, timeout=10).status_code in (404, 405)
        create = requests.post(
            server.url("/sora/v1/characters"),
            json={"url": "https://example.com/v.mp4", "timestamps": "1,3"},
            headers={"Authorization": f"Bearer {ENDPOINT_SECRET}"},
            timeout=10,
        )
        assert create.status_code == 200
        journal = requests.get(server.url("/__mock/requests"), headers=admin, timeout=10).json()
        assert len(journal) == 1 and ADMIN_SECRET not in str(journal) and ENDPOINT_SECRET not in str(journal)
        assert server.stop() == 0
    output = "".join(server.stderr)
    assert ADMIN_SECRET not in output and ENDPOINT_SECRET not in output


@pytest.mark.slow
def test_start_is_quiet_and_a_busy_port_fails_at_once_with_one_line() -> None:
    with MockProcess(["--workers", "2"]) as server:
        time.sleep(0.5)
        assert len(server.stderr) <= 2 and "listening on" in server.stderr[0], server.stderr
        command = [sys.executable, "-c", "from mock_server.serving.cli import main; main()", "serve"]
        started = time.monotonic()
        second = subprocess.run(
            [*command, "--host", server.host, "--port", str(server.port)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ},
        )
        assert time.monotonic() - started < 5
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "address already in use" in lines[0] and str(server.port) in lines[0]
        assert requests.get(server.url("/__mock/health"), timeout=10).status_code == 200  # first one unharmed
