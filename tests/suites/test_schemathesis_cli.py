"""``schemathesis run`` with the kit's hooks module and schemathesis.toml: green on the healthy mock,
red on defects, the token never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server import SoraServer

from ..helpers import ROOT

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOKEN = "sk-cli-secret-5d1e"


def schemathesis_run(url: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    """Exactly what the docs say, from the checkout, with a fixed seed for a reproducible run."""
    env = {**os.environ, "SORA_API_KEY": token, "SCHEMATHESIS_HOOKS": "contract_tests.hooks"}
    return subprocess.run(
        [str(SCHEMATHESIS), "run", "openapi/characters.yaml", "--url", url, "--seed", "20251125", "--no-color"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_config_picks_the_kits_checks() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "schemathesis.toml").read_text(encoding="utf-8"))
    assert config["headers"] == {"Authorization": "Bearer ${SORA_API_KEY}"}
    enabled = {name for name, value in config["checks"].items() if isinstance(value, dict) and value["enabled"]}
    assert config["checks"]["enabled"] is False
    assert {"sora_rejects_broken_rules", "sora_auth_enforced", "sora_character_shape"} <= enabled
    assert "positive_data_acceptance" not in enabled and "negative_data_rejection" not in enabled


@pytest.mark.slow
def test_green_on_the_healthy_mock() -> None:
    with SoraServer({"token": TOKEN}) as server:
        done = schemathesis_run(server.url)
        sent = server.requests
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    bodies = [entry["body"] for entry in sent if isinstance(entry["body"], dict)]
    # the prose-rule generation hook ran: both sources, no source, and windows with spaces were sent
    assert any("url" in body and "from_task" in body for body in bodies)
    assert any("url" not in body and "from_task" not in body and "timestamps" in body for body in bodies)
    assert any(" , " in str(body.get("timestamps")) for body in bodies)
    assert TOKEN not in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("defect", "check"),
    [
        ("span_too_wide", "sora_rejects_broken_rules"),
        ("both_sources", "sora_rejects_broken_rules"),
        ("drop_picture", "sora_character_shape"),
    ],
)
def test_red_on_defects(defect: str, check: str) -> None:
    with SoraServer({"token": TOKEN, "defects": (defect,)}) as server:
        done = schemathesis_run(server.url)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert check in done.stdout
    assert TOKEN not in done.stdout + done.stderr


@pytest.mark.slow
def test_green_behind_a_limiter_before_auth_and_a_flaky_gateway() -> None:
    """429s before auth (no ``Retry-After``) and a gateway's HTML 503s are waited out and resent by the hooks'
    transport: never "Expected 401 or 403, got 429", never a server error."""
    from ..helpers import serve_wsgi
    from ..relay_zoo import TOKEN as ZOO_TOKEN
    from ..relay_zoo import gateway, limiter, relay

    member = relay("", layer=lambda app: gateway(limiter(app, 20, 5, None), 9, 503))
    with serve_wsgi(member.app) as url:
        done = subprocess.run(
            [str(SCHEMATHESIS), "run", "openapi/characters.yaml", "--url", url, "--seed", "1", "--max-examples", "8"],
            cwd=ROOT,
            env={**os.environ, "SORA_API_KEY": ZOO_TOKEN, "SCHEMATHESIS_HOOKS": "contract_tests.hooks"},
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "FAILURES" not in done.stdout and "ERRORS" not in done.stdout and "429" not in done.stdout, done.stdout
    assert 429 in member.statuses and 503 in member.statuses  # both quirks fired, and were waited out
