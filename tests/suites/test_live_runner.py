"""The budgeted live runner: refusal without a key, budgets, 429 handling, failures, secrecy."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from flask import Flask

from contract_tests.live import LiveSettings, main, plan, run
from mock_server import MockConfig, create_app
from mock_server.mock.compose import composition_of
from mock_server.mock.faults import Fault

from ..helpers import ROOT, free_port

KEY = "sk-live-secret-7f3a9c1e5b"


def _app(token: str | None = KEY, **overrides: object) -> Flask:
    return create_app(MockConfig(token=token, seed=3, **overrides))  # type: ignore[arg-type]


def _run_main(app: Flask | None, env: dict[str, str], tmp_path: Path) -> tuple[int, str, Path]:
    out = io.StringIO()
    junit = tmp_path / "reports" / "live.xml"
    transport = httpx.WSGITransport(app=app) if app is not None else None
    code = main(["--junit", str(junit), "--max-wait", "0"], env=env, out=out, transport=transport)
    return code, out.getvalue(), junit


def _env(**extra: str) -> dict[str, str]:
    return {"SORA_API_KEY": KEY, "SORA_BASE_URL": "http://mock.invalid", **extra}


def test_refuses_to_start_without_a_key_and_sends_nothing(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: calls.append(request) or httpx.Response(200))  # type: ignore[func-returns-value]
    for env in ({}, {"SORA_API_KEY": ""}, {"SORA_API_KEY": "   "}):
        out = io.StringIO()
        code = main(["--junit", str(tmp_path / "x.xml")], env=env, out=out, transport=transport)
        assert code == 2
        assert "SORA_API_KEY is not set" in out.getvalue()
    assert calls == []
    assert not (tmp_path / "x.xml").exists()


def test_cli_exits_non_zero_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    env["SORA_BASE_URL"] = "http://127.0.0.1:9"  # discard port: nothing may be sent anyway
    result = subprocess.run(
        [sys.executable, "-m", "contract_tests.live", "--junit", str(tmp_path / "r.xml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SORA_API_KEY" in result.stderr
    assert result.stdout == ""


def test_help_explains_every_variable() -> None:
    with pytest.raises(SystemExit) as exit_info, _capture() as out:
        main(["--help"])
    assert exit_info.value.code == 0
    for name in (
        "SORA_BASE_URL",
        "SORA_API_KEY",
        "SORA_LIVE_MAX_CREATES",
        "SORA_LIVE_MAX_REQUESTS",
        "SORA_LIVE_VIDEO_URL",
        "SORA_LIVE_TASK_ID",
        "SORA_LIVE_TIMEOUT",
    ):
        assert name in out.getvalue()


class _capture:
    def __enter__(self) -> io.StringIO:
        self.buffer, self.saved = io.StringIO(), sys.stdout
        sys.stdout = self.buffer
        return self.buffer

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self.saved


def test_healthy_mock_passes_within_budget_and_keeps_the_token_secret(tmp_path: Path) -> None:
    app = _app()
    code, output, junit = _run_main(app, _env(), tmp_path)
    assert code == 0, output
    assert "CONTRACT HOLDS" in output
    journal = composition_of(app).state.requests()
    assert len(journal) <= 40
    assert sum(1 for entry in journal if entry["status"] == 200) == 1
    tree = ET.parse(junit).getroot()
    assert tree.get("failures") == "0" and int(tree.get("tests", "0")) == len(plan(LiveSettings(api_key=KEY)))
    assert KEY not in output and KEY not in junit.read_text(encoding="utf-8")
    for name in ("create_url", "span_too_wide", "both_sources", "no_source", "body_not_json", "no_token"):
        assert name in output


def test_wrong_token_fails_loudly(tmp_path: Path) -> None:
    code, output, junit = _run_main(_app(token="the-real-token"), _env(), tmp_path)
    assert code == 1
    assert "refused SORA_API_KEY" in output and "CONTRACT BROKEN" in output
    assert KEY not in output and KEY not in junit.read_text(encoding="utf-8")
    assert ET.parse(junit).getroot().get("failures") != "0"


def test_task_form_is_counted_against_the_create_budget() -> None:
    task = "video_0a1b2c3d-0000-4000-8000-000000000001"
    app = _app()
    one = run(
        LiveSettings(api_key=KEY, base_url="http://m", task_id=task),
        transport=httpx.WSGITransport(app=app),
        echo=lambda _: None,
    )
    skipped = {o.name: o.verdict for o in one.outcomes}
    assert skipped["create_task"] == "skipped" and one.creates_sent == 1 and one.ok
    two = run(
        LiveSettings(api_key=KEY, base_url="http://m", task_id=task, max_creates=2),
        transport=httpx.WSGITransport(app=_app()),
        echo=lambda _: None,
    )
    assert {o.name: o.verdict for o in two.outcomes}["create_task"] == "pass" and two.creates_sent == 2


def test_429_retry_after_is_honoured_within_a_bounded_wait() -> None:
    app = _app()
    composition_of(app).state.push_fault(Fault(status=429, retry_after=2), 2)
    slept: list[float] = []
    report = run(
        LiveSettings(api_key=KEY, base_url="http://m", max_wait=10),
        transport=httpx.WSGITransport(app=app),
        echo=lambda _: None,
        sleep=slept.append,
    )
    assert report.ok and slept == [2.0, 2.0] and report.waited == 4.0

    endless = _app()
    composition_of(endless).state.push_fault(Fault(status=429, retry_after=3), 1000)
    slept.clear()
    report = run(
        LiveSettings(api_key=KEY, base_url="http://m", max_wait=7),
        transport=httpx.WSGITransport(app=endless),
        echo=lambda _: None,
        sleep=slept.append,
    )
    assert not report.ok and sum(slept) <= 7 and report.requests_sent <= 40


def test_request_cap_stops_the_run() -> None:
    app = _app()
    report = run(
        LiveSettings(api_key=KEY, base_url="http://m", max_requests=5),
        transport=httpx.WSGITransport(app=app),
        echo=lambda _: None,
    )
    assert report.requests_sent == 5 and len(composition_of(app).state.requests()) == 5
    assert not report.ok and any("request cap" in o.detail for o in report.outcomes)


def test_server_errors_drops_and_timeouts_fail() -> None:
    app = _app()
    composition_of(app).state.push_fault(Fault(status=503), 1)
    report = run(
        LiveSettings(api_key=KEY, base_url="http://m"), transport=httpx.WSGITransport(app=app), echo=lambda _: None
    )
    assert report.failed_checks() == ["create_url"]  # a fault hits the first request that passes auth and rules

    dropping = _app()
    composition_of(dropping).state.push_fault(Fault(drop=True), 1)
    report = run(
        LiveSettings(api_key=KEY, base_url="http://m"), transport=httpx.WSGITransport(app=dropping), echo=lambda _: None
    )
    failed = [outcome for outcome in report.outcomes if outcome.failed]
    assert report.failed_checks() == ["create_url"] and failed[0].got == "no answer"

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    report = run(
        LiveSettings(api_key=KEY, base_url="http://m", timeout=0.5),
        transport=httpx.MockTransport(slow),
        echo=lambda _: None,
    )
    assert report.outcomes[0].got == "timeout" and not report.ok


def test_200_with_error_body_is_flagged() -> None:
    report = run(
        LiveSettings(api_key=KEY, base_url="http://m"),
        transport=httpx.WSGITransport(app=_app(defects=("error_as_200",))),
        echo=lambda _: None,
    )
    details = {o.name: o.detail for o in report.outcomes}
    assert "carrying an error body" in details["span_too_wide"]


def test_settings_reject_bad_numbers() -> None:
    from contract_tests.live import SettingsError

    for env in ({"SORA_LIVE_MAX_REQUESTS": "x"}, {"SORA_LIVE_TIMEOUT": "0"}, {"SORA_BASE_URL": "ftp://x"}):
        with pytest.raises(SettingsError):
            LiveSettings.from_env({"SORA_API_KEY": KEY, **env})
    assert KEY not in repr(LiveSettings.from_env({"SORA_API_KEY": KEY}))


@pytest.mark.slow
def test_cli_against_a_served_mock_over_sockets(tmp_path: Path) -> None:
    """What ``make live`` does against ``sora-mock serve --token``: green, then loud with a wrong token."""
    from contract_tests.kill_matrix import serve_mock

    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    with serve_mock(KEY) as base_url:
        results = {}
        for index, key in enumerate((KEY, "sk-expired-0000")):
            junit = tmp_path / str(index) / "live.xml"
            done = subprocess.run(
                [sys.executable, "-m", "contract_tests.live", "--junit", str(junit)],
                env={**env, "SORA_BASE_URL": base_url, "SORA_API_KEY": key},
                capture_output=True,
                text=True,
                timeout=120,
            )
            results[key] = (done.returncode, done.stdout + done.stderr, junit.read_text(encoding="utf-8"))
    code, output, xml = results[KEY]
    assert code == 0, output
    assert "requests sent: 15, conforming creates sent: 1, 200 answers: 1" in output
    assert KEY not in output and KEY not in xml
    code, output, xml = results["sk-expired-0000"]
    assert code == 1 and "refused SORA_API_KEY" in output
    assert "sk-expired-0000" not in output and "sk-expired-0000" not in xml


def test_an_unreachable_server_stops_the_run_with_status_3(tmp_path: Path) -> None:
    """Connection refused on 127.0.0.1 (nothing listens): one line says unreachable, not a broken contract."""
    base_url = f"http://127.0.0.1:{free_port()}"
    code, output, junit = _run_main(None, _env(SORA_BASE_URL=base_url), tmp_path)
    assert code == 3, output
    assert output.count("ConnectError") == 1
    assert "FAIL" not in output and "CONTRACT BROKEN" not in output
    assert "live: UNREACHABLE: cannot connect to " + base_url in output
    assert len(output.strip().splitlines()) == 2  # the "checking" line and the unreachable line
    suite = ET.parse(junit).getroot()
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    assert KEY not in output and KEY not in junit.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("[Errno -2] Name or service not known"),
        httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    ],
    ids=["dns", "tls"],
)
def test_dns_and_tls_failures_are_unreachable_too(error: httpx.ConnectError) -> None:
    sent: list[httpx.Request] = []

    def fail(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise type(error)(str(error), request=request)

    lines: list[str] = []
    settings = LiveSettings(api_key=KEY, base_url="https://relay.invalid")
    report = run(settings, transport=httpx.MockTransport(fail), echo=lines.append)
    assert len(sent) == 1 and report.requests_sent == 1
    assert report.unreachable is not None and str(error) in report.unreachable
    assert not report.ok and report.failed_checks() == []
    assert [o.verdict for o in report.outcomes[1:]] == ["not run"] * (len(report.outcomes) - 1)


def test_an_any_token_server_fails_wrong_token_and_says_why(tmp_path: Path) -> None:
    """What the run can know: a random token got a 2xx, so the server accepts any. It says so, and how a mock
    started without a token is pinned, without calling a relay that does the same healthy."""
    code, output, junit = _run_main(_app(token=None), _env(), tmp_path)
    assert code == 1
    assert "CONTRACT BROKEN: wrong_token (the server accepts any bearer token)" in output
    assert output.count("live: FAILED wrong_token: the server accepts any bearer token") == 1
    assert (
        'SORA_MOCK_TOKEN="$SORA_API_KEY" make mock' in output and "a relay that does so breaks the contract" in output
    )
    failures = ET.parse(junit).getroot().findall("testcase/failure")
    assert [failure.get("message", "").split(":")[0] for failure in failures] == [
        "a random bearer token was accepted (HTTP 200)"
    ]
    assert KEY not in output


@pytest.mark.parametrize("path", ["/sora/v1", "/sora/v1/", "/sora/v1/characters"])
def test_a_base_url_with_the_endpoint_path_is_refused_with_a_hint(tmp_path: Path, path: str) -> None:
    code, output, _ = _run_main(_app(), _env(SORA_BASE_URL="http://127.0.0.1:8000" + path), tmp_path)
    assert code == 2
    assert "SORA_BASE_URL is the server's base URL" in output and "use SORA_BASE_URL=http://127.0.0.1:8000;" in output


@pytest.mark.slow
def test_make_live_says_the_runner_status_and_the_direct_command_keeps_it(tmp_path: Path) -> None:
    """make turns every failure into 2, so ``make live`` prints the runner's own status (3: unreachable);
    scripts that need it run the command directly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    env |= {"SORA_API_KEY": KEY, "SORA_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    root = ROOT
    made = subprocess.run(
        ["make", "--no-print-directory", "live", f"VENV={sys.prefix}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 2
    assert "UNREACHABLE" in made.stdout and "contract_tests.live exited 3" in made.stdout
    direct = subprocess.run(
        [sys.executable, "-m", "contract_tests.live", "--junit", str(tmp_path / "live.xml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert direct.returncode == 3 and "UNREACHABLE" in direct.stdout
    assert KEY not in made.stdout + made.stderr + direct.stdout + direct.stderr
