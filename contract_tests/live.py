"""Budgeted live smoke run of the contract against a real relay (or any server).

The settings live in :mod:`contract_tests.live_settings`, the report (table, JUnit) in
:mod:`contract_tests.live_report`; their public names stay importable from here.

One billable create (a conforming ``url`` request), fully checked, then one request per broken
rule, each of which a conforming server rejects with a 4xx JSON answer. Hard caps on creates and
requests. Throttled and transient answers (:func:`contract_tests.verdicts.classify`) are waited out
within a bounded total wait and the same request is sent again, a create only after an answer that
cannot have billed it (:func:`contract_tests.verdicts.cannot_have_billed`): the report lists every
resend and why. A probe throttled throughout, answered by a guard (``X-Sora-Guard: local``), or
left unsent after a create's answer that may have billed is *not judged*: any such probe makes the
run not green (exit 4). The bearer token is only ever put into the ``Authorization`` header: never
printed, never written to the report.

Run ``python -m contract_tests.live --help`` for the environment it reads.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import jsonschema  # type: ignore[import-untyped]

from mock_server.contract.rules import check_character, check_request, decode_body
from mock_server.contract.spec import ENDPOINT_PATH, load_contract, load_spec
from mock_server.mock.faults import DroppedConnection

from .live_report import (
    ANY_TOKEN_NOTE,
    GUARD_NOTE,
    NOT_JUDGED,
    THROTTLED_NOTE,
    LiveReport,
    Outcome,
    accepts_any_token,
    format_table,
    write_junit,
)
from .live_settings import (
    DEFAULT_BASE_URL,
    DEFAULT_JUNIT,
    DEFAULT_MAX_WAIT,
    DEFAULT_VIDEO_URL,
    ENV_HELP,
    EXAMPLE_TASK_ID,
    LiveSettings,
    SettingsError,
)
from .verdicts import (
    EXIT_NOT_JUDGED,
    Kind,
    Pacer,
    Sent,
    cannot_have_billed,
    parse_rate,
    send_until_judged,
)

__all__ = [
    "ANY_TOKEN_NOTE",
    "DEFAULT_BASE_URL",
    "DEFAULT_VIDEO_URL",
    "EXAMPLE_TASK_ID",
    "LiveReport",
    "LiveSettings",
    "Outcome",
    "Probe",
    "SettingsError",
    "main",
    "plan",
    "run",
]


@dataclass(frozen=True)
class Probe:
    """One planned request: what is sent, how it authenticates, and what a conforming server does."""

    name: str
    request: str
    """Human description for the table (never the token)."""
    body: bytes
    auth: str = "token"
    """``token`` (Bearer + SORA_API_KEY), ``none``, ``basic`` (another scheme) or ``wrong`` (a random token)."""
    create: bool = False
    """A conforming request with the real token: the server must create (200) and it is billable."""


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def plan(settings: LiveSettings) -> list[Probe]:
    """The probes of one run, in order: auth, create(s), then one probe per broken rule."""
    url = settings.video_url
    task = settings.task_id or EXAMPLE_TASK_ID
    good = _json({"url": url, "timestamps": "1,3"})
    probes = [
        Probe("no_token", "conforming url body, no Authorization header", good, auth="none"),
        Probe("non_bearer_scheme", "conforming url body, Authorization: Basic …", good, auth="basic"),
        Probe("wrong_token", "conforming url body, Bearer <random token>", good, auth="wrong"),
        Probe("create_url", 'url=$SORA_LIVE_VIDEO_URL, timestamps="1,3"', good, create=True),
    ]
    if settings.task_id:
        probes.append(
            Probe(
                "create_task",
                'from_task=$SORA_LIVE_TASK_ID, timestamps="1,3"',
                _json({"from_task": settings.task_id, "timestamps": "1,3"}),
                create=True,
            )
        )
    rules: list[tuple[str, str, object]] = [
        ("span_too_wide", 'timestamps="0,5" (span 5 s)', {"url": url, "timestamps": "0,5"}),
        ("span_just_over", 'timestamps="0,3.5" (span 3.5 s)', {"url": url, "timestamps": "0,3.5"}),
        ("span_too_short", 'timestamps="1,1.5" (span 0.5 s)', {"url": url, "timestamps": "1,1.5"}),
        ("span_zero", 'timestamps="2,2" (span 0)', {"url": url, "timestamps": "2,2"}),
        ("reversed_window", 'timestamps="3,1" (end before start)', {"url": url, "timestamps": "3,1"}),
        ("malformed_timestamps", 'timestamps="1-3"', {"url": url, "timestamps": "1-3"}),
        ("timestamps_not_string", "timestamps=13 (a number)", {"url": url, "timestamps": 13}),
        ("missing_timestamps", "url only, no timestamps", {"url": url}),
        ("both_sources", "url and from_task together", {"url": url, "from_task": task, "timestamps": "1,3"}),
        ("no_source", 'timestamps="1,3" only', {"timestamps": "1,3"}),
    ]
    probes.extend(Probe(name, text, _json(body)) for name, text, body in rules)  # type: ignore[arg-type]
    probes.append(Probe("body_not_json", "body: url=…&timestamps=1,3 (not JSON)", b"url=video&timestamps=1,3"))
    return probes


class _Budget(Exception):
    """A cap stopped the run before this probe could be sent."""


class _Aborted(Exception):
    """The token was refused: the rest of the run would prove nothing."""


class _Unreachable(Exception):
    """No connection could be made: the server is down, misnamed or its TLS is broken."""


# What says nothing about the contract: no connection at all (refused, DNS, TLS handshake, connect timeout).
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Runner:
    def __init__(
        self,
        settings: LiveSettings,
        client: httpx.Client,
        echo: Callable[[str], None],
        sleep: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.client = client
        self.echo = echo
        self.sleep = sleep
        self.contract = load_contract()
        self.character_schema = load_spec()["components"]["schemas"]["Character"]
        self.report = LiveReport(outcomes=[])
        self.pacer = Pacer(floor=1 / settings.rate if settings.rate else 0.0)
        """Slows the run down after each 429, so a tight limiter does not eat SORA_LIVE_MAX_REQUESTS."""

    def headers(self, probe: Probe) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if probe.auth == "token":
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        elif probe.auth == "basic":
            headers["Authorization"] = "Basic Y29udHJhY3Q6c3VpdGU="  # "contract:suite"
        elif probe.auth == "wrong":
            wrong = "sk-invalid-" + secrets.token_hex(16)
            while wrong == self.settings.api_key:  # pragma: no cover - astronomically unlikely
                wrong = "sk-invalid-" + secrets.token_hex(16)
            headers["Authorization"] = f"Bearer {wrong}"
        return headers

    def billable(self, probe: Probe) -> bool:
        """Whether a conforming server would answer 200 (and bill) this probe."""
        try:
            return probe.auth == "token" and check_request(decode_body(probe.body), self.contract) is None
        except ValueError:
            return False

    def send(self, probe: Probe) -> Sent:
        """Send ``probe`` until the relay judges it, within the caps and the create budget."""
        billable = self.billable(probe)
        report = self.report

        def post() -> httpx.Response:
            if report.requests_sent >= self.settings.max_requests:
                raise _Budget(f"request cap SORA_LIVE_MAX_REQUESTS={self.settings.max_requests} reached")
            if billable and report.creates_sent >= self.settings.max_creates:
                raise _Budget(f"create cap SORA_LIVE_MAX_CREATES={self.settings.max_creates} reached")
            report.requests_sent += 1
            if billable:
                report.creates_sent += 1
            response = self.client.post(
                ENDPOINT_PATH, content=probe.body, headers=self.headers(probe), timeout=self.settings.timeout
            )
            if response.status_code == 200:
                report.created += 1
            if billable and cannot_have_billed(response.status_code, response.headers, response.content):
                report.creates_sent -= 1  # refused before the relay did any work: the create is not spent
            return response

        def may_resend(status: int, headers: Any, content: bytes, delay: float) -> bool:
            if billable and not cannot_have_billed(status, headers, content):
                return False  # a 504: the relay may have created (and billed) after the gateway gave up
            if report.waited + delay > self.settings.max_wait or report.requests_sent >= self.settings.max_requests:
                return False
            why = "a create refused before the relay: not billed" if billable else "not billable"
            report.resent.append(f"{probe.name}: after {status} ({why}), waited {delay:g} s")
            self.echo(f"          {status}: waiting {delay:g} s before sending {probe.name} again ({why})")
            report.waited += delay
            return True

        return send_until_judged(
            post,
            lambda response: (response.status_code, response.headers, response.content),
            pacer=self.pacer,
            sleep=self.sleep,
            may_resend=may_resend,
        )

    def run(self, probes: Sequence[Probe]) -> LiveReport:
        total = len(probes)
        aborted: str | None = None
        for index, probe in enumerate(probes, 1):
            expected = "200 + valid character" if probe.create else "4xx + JSON body"
            outcome = Outcome(probe.name, probe.request, expected)
            self.report.outcomes.append(outcome)
            if self.report.unreachable is not None:
                outcome.detail = "not run: the server is unreachable"
                continue
            if aborted is not None:
                outcome.detail = aborted
            else:
                try:
                    self.check(probe, outcome)
                except _Budget as exc:
                    outcome.verdict, outcome.detail = "FAIL", f"not sent: {exc}"
                except _Aborted as exc:
                    aborted = str(exc)
                except _Unreachable as exc:
                    self.report.unreachable = str(exc)
                    outcome.got, outcome.verdict, outcome.detail = "no connection", "unreachable", str(exc)
                    continue  # main() says it once; nothing after this probe is sent
            line = f"[{index:>2}/{total}] {probe.name:<22} {outcome.verdict:<8} {outcome.got}"
            self.echo(line + (f"  {outcome.detail}" if outcome.detail else ""))
        return self.report

    def check(self, probe: Probe, outcome: Outcome) -> None:
        if probe.create and self.report.creates_sent >= self.settings.max_creates:
            outcome.verdict = "skipped"
            outcome.detail = f"create budget SORA_LIVE_MAX_CREATES={self.settings.max_creates} already spent"
            return
        try:
            sent = self.send(probe)
        except _UNREACHABLE as exc:
            raise _Unreachable(f"cannot connect to {self.settings.base_url} ({_why(exc)})") from None
        except httpx.TimeoutException:
            outcome.got, outcome.verdict = "timeout", "FAIL"
            outcome.detail = f"no answer within SORA_LIVE_TIMEOUT={self.settings.timeout:g} s"
            return
        except (httpx.TransportError, OSError, DroppedConnection) as exc:
            outcome.got, outcome.verdict = "no answer", "FAIL"
            outcome.detail = f"connection failed or dropped ({type(exc).__name__})"
            return
        response: httpx.Response = sent.response
        status = response.status_code
        outcome.got = str(status)
        if not sent.judged:
            outcome.verdict, outcome.detail = NOT_JUDGED, self.unjudged_detail(sent, self.billable(probe))
            return
        try:
            body: object = response.json()
        except ValueError:
            body = None
            is_json = False
        else:
            is_json = True
        problems = self.judge(probe, status, body, is_json)
        outcome.verdict = "FAIL" if problems else "pass"
        outcome.detail = "; ".join(problems)
        if probe.create and status in (401, 403):
            outcome.detail = (
                f"the server refused SORA_API_KEY (HTTP {status}): the token is wrong or expired; "
                "the remaining checks were not run"
            )
            raise _Aborted(f"SORA_API_KEY refused by {probe.name}")

    def unjudged_detail(self, sent: Sent, billable: bool) -> str:
        if sent.kind is Kind.GUARD:
            return f"{GUARD_NOTE} (X-Sora-Guard: {sent.response.headers.get('X-Sora-Guard')}), not the relay"
        if sent.kind is Kind.THROTTLED:
            return f"{THROTTLED_NOTE}: {len(sent.resends)} resends, {self.report.waited:g} s waited in total"
        response: httpx.Response = sent.response
        if billable and not cannot_have_billed(response.status_code, response.headers, response.content):
            return f"a create answered {response.status_code} by a gateway may have been billed: not sent again"
        return f"not sent again within --max-wait / SORA_LIVE_MAX_REQUESTS ({response.status_code})"

    def judge(self, probe: Probe, status: int, body: object, is_json: bool) -> list[str]:
        if status >= 500:
            return [f"server error {status}"]
        if probe.create:
            if status != 200:
                return [f"a conforming create was not accepted (HTTP {status})"]
            if not is_json:
                return ["the 200 answer is not JSON"]
            problems = check_character(body, self.contract)
            if not problems:
                validator = jsonschema.Draft4Validator(self.character_schema)
                problems = [f"schema: {error.message}" for error in validator.iter_errors(body)]
            return problems
        if 200 <= status < 300:
            if isinstance(body, Mapping) and "error" in body:
                return [f"{status} carrying an error body"]
            if probe.auth == "wrong":
                return [ANY_TOKEN_NOTE.format(status=status)]
            return [f"accepted ({status}) a request a conforming server rejects"]
        if not 400 <= status < 500:
            return [f"unexpected status {status}"]
        problems = []
        if not is_json:
            problems.append("the error answer is not JSON")
        if probe.auth == "token" and status in (401, 403):
            problems.append(f"rejected for the token (HTTP {status}), not for the rule: is SORA_API_KEY valid?")
        return problems


def run(
    settings: LiveSettings,
    *,
    transport: httpx.BaseTransport | None = None,
    echo: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    probes: Sequence[Probe] | None = None,
) -> LiveReport:
    """Send the planned probes (within the caps) and judge each answer."""
    say = echo or (lambda line: print(line, flush=True))
    with httpx.Client(base_url=settings.base_url, transport=transport, follow_redirects=False) as client:
        runner = _Runner(settings, client, say, sleep)
        return runner.run(plan(settings) if probes is None else probes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contract_tests.live",
        description=(
            "Budgeted live smoke test of POST /sora/v1/characters: one billable create, fully checked, "
            "then one rejection probe per contract rule."
        ),
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--junit", type=Path, default=DEFAULT_JUNIT, help="JUnit XML report path (%(default)s)")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=DEFAULT_MAX_WAIT,
        help="total seconds the run may wait before resends (429, a gateway's 502/503) (%(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        default="",
        help="the pace set up front, e.g. 1/s or 30/m (default: as fast as answered, slower after each 429)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Command line entry point; returns the exit status (``transport`` serves in-process runs)."""
    args = _parser().parse_args(argv)
    stream = out or sys.stdout
    try:
        rate = parse_rate(args.rate_limit)
    except ValueError as exc:
        print(f"live: --rate-limit: {exc}", file=sys.stderr if out is None else stream)
        return 2
    try:
        settings = LiveSettings.from_env(env, max_wait=args.max_wait, rate=rate)
    except SettingsError as exc:
        print(f"live: {exc}", file=sys.stderr if out is None else stream)
        return 2
    print(
        f"live: checking POST {settings.base_url}{ENDPOINT_PATH} "
        f"(max {settings.max_creates} create(s), max {settings.max_requests} requests)",
        file=stream,
        flush=True,
    )
    report = run(settings, transport=transport, echo=lambda line: print(line, file=stream, flush=True))
    if report.unreachable is not None:
        write_junit(report, args.junit, settings.base_url)
        print(
            f"live: UNREACHABLE: {report.unreachable}; nothing was checked (is the server up, SORA_BASE_URL right?)",
            file=stream,
        )
        return 3
    print("\n" + format_table(report), file=stream, flush=True)
    write_junit(report, args.junit, settings.base_url)
    print(f"live: JUnit report written to {args.junit}", file=stream)
    if any("refused SORA_API_KEY" in outcome.detail for outcome in report.outcomes):
        print("live: FAILED: the server refused SORA_API_KEY (wrong or expired token)", file=stream)
    if any(accepts_any_token(outcome) for outcome in report.outcomes):
        print(
            "live: FAILED wrong_token: the server accepts any bearer token. Against `make mock` this is the mock "
            'started without a token: SORA_MOCK_TOKEN="$SORA_API_KEY" make mock checks auth too',
            file=stream,
        )
    if report.failed_checks():
        return 1
    if not report.judged_enough:
        print(f"live: {report.not_judged_line()}", file=stream)
        return EXIT_NOT_JUDGED
    return 0


if __name__ == "__main__":
    sys.exit(main())
