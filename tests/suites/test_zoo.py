"""The zoo: no false alarm on any healthy relay, every defect caught behind infrastructure, no hollow green.

Each relay of :mod:`tests.relay_zoo` is served on 127.0.0.1; the URL suite (lenient, as ``make contract``
runs it) and the live run must be green against every healthy one, within the live budget of one
billable create; every planted defect must be caught behind a limiter without ``Retry-After`` and
behind a gateway with transient 503s; a run that could judge too little is never green and says why.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract_tests.kill_matrix import run_one
from contract_tests.live import LiveSettings, main, run
from contract_tests.suite import BOUNDARY_CASES, Target, run_suite
from contract_tests.verdicts import (
    EXIT_NOT_JUDGED,
    MAX_SINGLE_WAIT,
    Kind,
    Tally,
    cannot_have_billed,
    classify,
    resend_delay,
    send_until_judged,
)
from mock_server.mock.defects import DEFECTS

from ..helpers import ROOT, serve_wsgi
from ..relay_zoo import TOKEN, ZOO, gateway, guard_like, limiter, relay

HTML = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
ENVELOPE = b'{"error": {"message": "down", "type": "server_error", "param": null, "code": null}}'


def _quiet(line: str) -> None:
    """Progress lines are not needed here."""


# --- the one classification ---


@pytest.mark.parametrize(
    ("status", "headers", "content", "kind"),
    [
        (429, {}, b"", Kind.THROTTLED),
        (429, {"Retry-After": "1"}, ENVELOPE, Kind.THROTTLED),
        (503, {"Content-Type": "text/html"}, HTML, Kind.TRANSIENT),
        (503, {}, b"Service Unavailable", Kind.TRANSIENT),
        (502, {}, b"<html>bad gateway</html>", Kind.TRANSIENT),
        (503, {"retry-after": ["2"]}, ENVELOPE, Kind.TRANSIENT),
        (503, {}, ENVELOPE, Kind.VERDICT),
        (500, {}, HTML, Kind.VERDICT),
        (422, {}, ENVELOPE, Kind.VERDICT),
        (422, {"X-Sora-Guard": "local"}, ENVELOPE, Kind.GUARD),
        (400, {"x-sora-guard": ["blocked"]}, ENVELOPE, Kind.GUARD),
        (200, {"X-Sora-Guard": "forwarded"}, b"{}", Kind.VERDICT),
    ],
)
def test_one_classification_of_every_answer(status: int, headers: dict[str, Any], content: bytes, kind: Kind) -> None:
    assert classify(status, headers, content) is kind


def test_only_answers_that_never_reached_the_relay_may_resend_a_create() -> None:
    assert cannot_have_billed(429, {}, b"")
    assert cannot_have_billed(503, {}, HTML) and cannot_have_billed(502, {}, b"Bad Gateway")
    assert not cannot_have_billed(504, {}, HTML)  # the relay may have created after the gateway gave up
    assert not cannot_have_billed(503, {}, ENVELOPE)  # the relay's own 503: judged, not resent
    assert not cannot_have_billed(500, {}, HTML) and not cannot_have_billed(200, {}, b"{}")


def test_retry_after_in_seconds_or_as_a_date_is_honoured_and_capped_else_a_growing_back_off() -> None:
    import email.utils
    import time

    assert resend_delay({"Retry-After": "2"}, 0) == 2.0
    assert resend_delay({"Retry-After": "3600"}, 0) == MAX_SINGLE_WAIT
    dated = resend_delay({"Retry-After": email.utils.formatdate(time.time() + 5, usegmt=True)}, 0)
    assert 3.0 <= dated <= 5.0
    backoff = [resend_delay({}, attempt) for attempt in range(4)]
    assert backoff == sorted(backoff) and backoff[0] < backoff[-1] and backoff[0] > 0


def test_a_5xx_that_persists_on_resend_is_judged_and_a_429_throughout_is_not() -> None:
    slept: list[float] = []
    answers = iter([(503, HTML)] * 10)
    tally = Tally()
    sent = send_until_judged(lambda: next(answers), lambda a: (a[0], {}, a[1]), tally=tally, sleep=slept.append)
    assert sent.judged and sent.kind is Kind.TRANSIENT and len(sent.resends) == len(slept) == 5
    throttled = send_until_judged(lambda: (429, b""), lambda a: (a[0], {}, a[1]), tally=tally, sleep=slept.append)
    assert not throttled.judged and len(throttled.resends) == 5
    assert tally.judged == 1 and tally.not_judged["throttled"] == 1 and not tally.enough
    assert "NOT JUDGED: 1 of 2 requests" in tally.line() and "RATE=" in tally.line()
    for _ in range(2):
        send_until_judged(lambda: (429, b""), lambda a: (a[0], {}, a[1]), tally=tally, sleep=slept.append)
    slept.clear()
    once = send_until_judged(lambda: (429, b""), lambda a: (a[0], {}, a[1]), tally=tally, sleep=slept.append)
    assert len(once.resends) == 1 and tally.streak == 5  # three in a row still throttled or failing: give up sooner
    send_until_judged(lambda: (200, b"{}"), lambda a: (a[0], {}, a[1]), tally=tally, sleep=slept.append)
    assert tally.streak == 0 and tally.resends_left(5) == 5


# --- the healthy zoo: no alarm, exact budget ---


@pytest.mark.slow
@pytest.mark.parametrize("quirk", ZOO)
def test_every_healthy_relay_of_the_zoo_is_green_in_both_runs_within_the_budget(quirk: str) -> None:
    member = relay(quirk)
    with serve_wsgi(member.app) as url:
        suite = run_suite(Target(token=TOKEN, base_url=url, strict=False), max_examples=6)
        quirks = {status for status in member.statuses if status in (429, 502, 503)}
        assert quirks or quirk in ("python-lenient", "js-lenient", "strict-422", "slow-creates")
        assert suite.ok, [(f.check, f.case, f.status, f.message) for f in suite.failures]
        assert suite.green and suite.tally.missing == 0 and suite.tally.total >= len(BOUNDARY_CASES)
        member.creates.clear()
        live = run(LiveSettings(api_key=TOKEN, base_url=url, timeout=10), echo=_quiet)
    assert live.ok and not live.failed_checks() and not live.not_judged(), [(o.name, o.detail) for o in live.outcomes]
    assert live.created == 1 and live.creates_sent == 1 and len(member.creates) == 1


def test_both_readings_of_not_given_are_open_in_the_lenient_profile_only() -> None:
    """In-process (no socket), two seeds: a Python and a JavaScript relay pass lenient; strict flags them."""
    for quirk in ("python-lenient", "js-lenient"):
        app = relay(quirk).app
        for seed in (1, 20251125):
            from contract_tests.pytest_suite import make_tests  # noqa: F401 - the pytest path shares send()
            from contract_tests.suite import SuiteResult as Result
            from contract_tests.suite import build_schema, run_boundary, run_fuzz

            target = Target(token=TOKEN, app=app, strict=False)
            import schemathesis

            schema = build_schema(target, config=schemathesis.Config(seed=seed))
            result = Result(target=target.label)
            run_boundary(schema, target, result)
            run_fuzz(schema, target, result, max_examples=10)
            assert result.ok, (quirk, seed, result.failures)
        strict = run_suite(Target(token=TOKEN, app=app, strict=True), max_examples=0)
        assert "sora_rejects_broken_rules" in strict.caught_by(), quirk


def test_the_open_values_are_exactly_the_falsy_ones_and_the_rules_stay_strict() -> None:
    from contract_tests.suite import relaxed
    from mock_server import load_contract
    from mock_server.contract.rules import conforms

    contract = load_contract()
    video = "https://example.com/v.mp4"
    for empty in (None, False, 0, 0.0, "", "  ", {}, []):
        assert conforms(relaxed({"url": video, "timestamps": "1,3", "from_task": empty}), contract), empty
        assert not conforms(relaxed({"url": empty, "timestamps": "1,3"}), contract), empty  # still no source
        assert not conforms(relaxed({"url": video, "from_task": empty, "timestamps": "3,1"}), contract)
    for given in (True, 1, "x", {"a": 1}, [0]):
        assert not conforms(relaxed({"url": video, "timestamps": "1,3", "from_task": given}), contract), given


# --- every defect caught behind infrastructure, default settings ---


def _behind(layer: Callable[[Any], Any]) -> Callable[[str, tuple[str, ...]], contextlib.AbstractContextManager[str]]:
    @contextlib.contextmanager
    def serving(token: str, defects: tuple[str, ...]) -> Iterator[str]:
        with serve_wsgi(relay("", defects, layer=layer).app) as url:
            yield url

    return serving


INFRASTRUCTURE: dict[str, Callable[[Any], Any]] = {
    "limiter-without-retry-after": lambda app: limiter(app, 60, 5, None),
    "gateway-transient-html-503": lambda app: gateway(app, 10, 503),
}


@pytest.mark.slow
@pytest.mark.parametrize("defect", ["healthy", *sorted(DEFECTS)])  # one test each: xdist spreads them
@pytest.mark.parametrize("layer", sorted(INFRASTRUCTURE))
def test_every_defect_is_caught_behind_infrastructure(layer: str, defect: str) -> None:
    """The kill matrix behind each piece of infrastructure, one variant of the mock per test."""
    variant = None if defect == "healthy" else defect
    row = run_one(variant, sockets=True, max_examples=0, serve=_behind(INFRASTRUCTURE[layer]), token=TOKEN)
    assert row.defect == defect  # the boundary cases (max_examples=0) reach every rule
    if defect == "healthy":
        assert row.passed and row.live.created == 1, row.live.outcomes
    else:
        assert row.passed, (row.live_caught, row.suite_caught)
    assert row.suite is not None and row.suite.tally.enough and not row.live.not_judged(), defect


# --- no hollow green ---


def _always(status: int, body: bytes, *headers: tuple[str, str]) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(f"{status} X", [("Content-Type", "application/json"), *headers])
        return [body]

    return wsgi


def test_a_run_throttled_throughout_is_not_green_and_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contract_tests.verdicts import Pacer

    monkeypatch.setattr("contract_tests.verdicts.FIRST_BACKOFF", 0.001)  # the waits are not under test here
    monkeypatch.setattr("contract_tests.live.Pacer", lambda floor: Pacer(floor=floor, ceiling=0.01))
    throttle = _always(429, b'{"error": {"message": "slow down"}}')
    result = run_suite(Target(token=TOKEN, app=throttle, strict=False), max_examples=0)
    assert result.checks_passed and not result.ok and result.tally.missing == result.tally.total > 0
    assert "throttled throughout" in result.tally.line() and "RATE=" in result.tally.line()
    out = io.StringIO()
    junit = tmp_path / "live.xml"
    env = {"SORA_API_KEY": TOKEN, "SORA_BASE_URL": "http://relay.invalid"}
    code = main(
        ["--junit", str(junit), "--max-wait", "0"], env=env, out=out, transport=httpx.WSGITransport(app=throttle)
    )
    text = out.getvalue()
    assert code == EXIT_NOT_JUDGED and "CONTRACT HOLDS" not in text
    assert [line for line in text.splitlines() if line.startswith("live: NOT JUDGED")] != []
    assert 'name="enough_was_judged"' in junit.read_text(encoding="utf-8")


def test_through_a_guard_the_live_run_and_the_suite_count_the_guards_answers_and_are_not_green() -> None:
    member = relay("", layer=guard_like)
    with serve_wsgi(member.app) as url:
        live = run(LiveSettings(api_key=TOKEN, base_url=url, timeout=10), echo=_quiet)
        suite = run_suite(Target(token=TOKEN, base_url=url, strict=False), max_examples=0)
    assert not live.ok and not live.failed_checks() and len(live.not_judged()) >= 10
    line = live.not_judged_line()
    assert "answered by the guard" in line and "--pass-through" in line and "SORA_BASE_URL" in line
    assert suite.checks_passed and not suite.ok and suite.tally.not_judged["guard"] >= 10
    assert "answered by the guard" in suite.tally.line() and "--pass-through" in suite.tally.line()


def test_a_create_is_resent_only_after_an_answer_that_cannot_have_billed_it() -> None:
    """A 429 or a gateway's 503 before the create: resent, said so, one create. A 504: never resent."""
    for layer, resent in ((lambda app: limiter(app, 2, 2, None), True), (lambda app: gateway(app, 4, 503), True)):
        member = relay("", layer=layer)
        with serve_wsgi(member.app) as url:
            live = run(LiveSettings(api_key=TOKEN, base_url=url, timeout=10), echo=_quiet)
        assert live.ok and live.created == 1 and len(member.creates) == 1, live.outcomes
        assert any(line.startswith("create_url: after") for line in live.resent) is resent
    calls: list[httpx.Request] = []

    def gateway_timeout(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if b'"1,3"' in request.content and request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return httpx.Response(504, text="<html>504 Gateway Time-out</html>")
        return httpx.Response(401, json={"error": {"message": "no"}})

    live = run(
        LiveSettings(api_key=TOKEN, base_url="http://relay.invalid", timeout=5),
        transport=httpx.MockTransport(gateway_timeout),
        echo=_quiet,
        probes=None,
        sleep=lambda _: None,
    )
    creates = [c for c in calls if b'"url"' in c.content and c.headers.get("Authorization") == f"Bearer {TOKEN}"]
    outcome = {o.name: o for o in live.outcomes}["create_url"]
    assert outcome.verdict == "not judged" and "may have been billed" in outcome.detail
    assert len([c for c in creates if b'"1,3"' in c.content and b"from_task" not in c.content]) == 1
    assert not live.ok


# --- make contract: the pytest path ---


def _make_contract(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    env = clean | {"SORA_CONTRACT_TARGET": url, "SORA_API_KEY": TOKEN, "SORA_CONTRACT_MAX_EXAMPLES": "4"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "contract_tests/test_target.py", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_make_contract_is_green_behind_a_limiter_and_exits_4_when_throttled_throughout(tmp_path: Path) -> None:
    with serve_wsgi(relay("", layer=lambda app: limiter(app, 30, 5, None)).app) as url:
        done = _make_contract(url)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "requests judged" in done.stdout and "resent" in done.stdout
    # a limiter that lets the preflight through and then throttles everything
    calls = [0]

    def tight(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        calls[0] += 1
        if calls[0] > 2:
            start_response("429 Too Many Requests", [("Content-Type", "application/json")])
            return [b'{"error": {"message": "slow down"}}']
        return relay("strict-422").app(environ, start_response)  # type: ignore[no-any-return]

    junit = tmp_path / "contract.xml"
    with serve_wsgi(tight) as url:
        done = _make_contract(url, "-k", "url_1_3 or enough", f"--junitxml={junit}")
    assert done.returncode == EXIT_NOT_JUDGED, done.stdout[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("contract: NOT JUDGED")]
    assert len(lines) == 1 and "throttled throughout" in lines[0] and "RATE=" in lines[0]
    report = junit.read_text(encoding="utf-8")
    assert "test_enough_was_judged" in report and "NOT JUDGED" in report
    assert '<property name="requests_not_judged" value="1"' in report


@pytest.mark.slow
def test_make_contract_with_the_endpoint_path_prints_only_the_hint_and_names_the_default_target() -> None:
    done = _make_contract("http://127.0.0.1:9/sora/v1/characters")
    assert done.returncode == 2 and "use TARGET=http://127.0.0.1:9" in done.stdout
    assert "testing POST" not in done.stdout
    paced = _make_contract("http://127.0.0.1:9", "--rate-limit", "often")
    assert paced.returncode == 2 and "RATE (SORA_CONTRACT_RATE) must be" in paced.stdout, paced.stdout[-2000:]
    dry = subprocess.run(["make", "-n", "contract"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "no TARGET given: testing the default http://127.0.0.1:8000" in dry.stdout
    explicit = subprocess.run(
        ["make", "-n", "contract", "TARGET=http://127.0.0.1:9"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "no TARGET given" not in explicit.stdout


def test_the_pace_can_be_set_up_front_and_slows_down_by_itself_on_429s() -> None:
    from contract_tests.verdicts import Pacer, parse_rate

    assert parse_rate("2/s") == 2.0 and parse_rate("30/m") == 0.5 and parse_rate("4") == 4.0 and parse_rate("") is None
    for bad in ("fast", "0/s", "-1/s", "2/y"):
        with pytest.raises(ValueError, match="RATE"):
            parse_rate(bad)
    assert Target.from_env({"SORA_CONTRACT_RATE": "3/s"}).rate == 3.0
    from contract_tests.preflight import describe

    assert describe(Target.from_env({"SORA_CONTRACT_RATE": "3/s"}), 1, env={}).endswith("at most 3 requests/s (RATE)")
    pacer = Pacer()
    for _ in range(4):
        pacer.learn(Kind.THROTTLED)
    slowed = pacer.interval
    assert slowed >= 0.4
    pacer.learn(Kind.VERDICT)
    assert 0 < pacer.interval < slowed
    gaps: list[float] = []
    paced = Pacer(floor=0.5, sleep=gaps.append)
    paced.wait()
    paced.wait()
    assert gaps and 0.4 < gaps[-1] <= 0.5
    out = io.StringIO()
    code = main(["--rate-limit", "often"], env={"SORA_API_KEY": TOKEN}, out=out)
    assert code == 2 and "--rate-limit" in out.getvalue()


def test_through_the_kits_own_guard_the_live_run_says_the_relay_judged_too_few(tmp_path: Path) -> None:
    """``sora-mock guard`` in front of a healthy relay: its own answers (``blocked``, ``budget``) are counted."""
    from mock_server.relay.guard import GuardConfig, create_guard_app, guard_state_of

    member = relay("strict-422")
    with serve_wsgi(member.app) as upstream:
        guard = create_guard_app(GuardConfig(upstream=upstream, max_creates=5))
        try:
            with serve_wsgi(guard) as url:
                out = io.StringIO()
                env = {"SORA_API_KEY": TOKEN, "SORA_BASE_URL": url}
                code = main(["--junit", str(tmp_path / "live.xml"), "--max-wait", "0"], env=env, out=out)
        finally:
            guard_state_of(guard).close()
    text = out.getvalue()
    assert code == EXIT_NOT_JUDGED and "CONTRACT HOLDS" not in text
    line = [row for row in text.splitlines() if row.startswith("live: NOT JUDGED")]
    assert len(line) == 1 and "answered by the guard" in line[0] and "not the guard" in line[0]
    assert len(member.creates) == 1
