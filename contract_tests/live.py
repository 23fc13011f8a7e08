"""Budgeted live smoke run of the contract against a real relay (or any server).

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
import math
import os
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx
import jsonschema  # type: ignore[import-untyped]

from mock_server.contract.rules import check_character, check_request, decode_body
from mock_server.contract.spec import ENDPOINT_PATH, RELAY_BASE_URL, load_contract, load_spec
from mock_server.errors import ConfigError
from mock_server.mock.faults import DroppedConnection
from mock_server.relay.budget import Budget, BudgetError

from .verdicts import (
    EXIT_NOT_JUDGED,
    MAX_NOT_JUDGED_SHARE,
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

DEFAULT_BASE_URL = RELAY_BASE_URL
DEFAULT_VIDEO_URL = "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4"
EXAMPLE_TASK_ID = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"
DEFAULT_JUNIT = Path("reports/live.xml")
DEFAULT_MAX_WAIT = 120.0
NOT_JUDGED = "not judged"

ENV_HELP = """\
environment:
  SORA_BASE_URL           server to check (default https://api.jxincm.cn, the paid relay)
  SORA_API_KEY            bearer token (required; when unset or empty nothing is sent, exit 2)
  SORA_LIVE_MAX_CREATES   at most this many requests a conforming server answers 200, i.e.
                          billable creates (default 1; 0 skips the create checks)
  SORA_LIVE_MAX_REQUESTS  hard cap on requests sent, retries included (default 40)
  SORA_LIVE_VIDEO_URL     video for the create and for every rejection probe
                          (default: the seed's example video)
  SORA_LIVE_TASK_ID       optional task id; when set (and the create budget allows) the
                          from_task form is also created, counted against SORA_LIVE_MAX_CREATES
  SORA_LIVE_TIMEOUT       seconds per request (default 60); a slow create is not a failure

cost: a run sends about 15 requests; only the create (plus the task create, when
SORA_LIVE_TASK_ID is set and SORA_LIVE_MAX_CREATES >= 2) is billable on a conforming server.
resends: a 429, and a gateway's 502/503 (not the relay's JSON error, or with Retry-After), are
waited out (Retry-After, at most 10 s, else 0.25 s doubling; --max-wait in total) and sent again,
at most 5 times. A create is resent only after a 429 or a gateway's 502/503 (it never reached the
relay, so it cannot have been billed); never after a 504 or a timeout (the relay may have created).
exit status: 0 when the contract holds, 1 when a check fails, 2 on a configuration error,
3 when the server cannot be reached (connection refused, DNS or TLS failure): the run stops at
the first such failure, and nothing is said about the contract; 4 when a probe got no verdict
(throttled throughout, answered by a guard, a create not resent): the contract was not checked.
"""


ANY_TOKEN_NOTE = (
    "a random bearer token was accepted (HTTP {status}): this server accepts any token. sora-mock does "
    "so when started without TOKEN / SORA_MOCK_TOKEN: start it with SORA_MOCK_TOKEN set to SORA_API_KEY's "
    "value to check auth; a relay that does so breaks the contract"
)
"""What the run can know when a random token gets a 2xx: the server takes any token, not why."""


class SettingsError(ConfigError, ValueError):
    """The environment does not describe a run that can start (nothing was sent)."""


@dataclass(frozen=True)
class LiveSettings:
    """What one live run may do; built from the environment by :meth:`from_env`."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    max_creates: int = 1
    max_requests: int = 40
    video_url: str = DEFAULT_VIDEO_URL
    task_id: str | None = None
    timeout: float = 60.0
    max_wait: float = DEFAULT_MAX_WAIT
    rate: float | None = None
    """Probes per second at most, set up front (``--rate-limit``); the run also slows down on 429s."""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, max_wait: float = DEFAULT_MAX_WAIT, rate: float | None = None
    ) -> LiveSettings:
        """Read the ``SORA_*`` variables; :class:`SettingsError` says what is missing or wrong."""
        env = os.environ if env is None else env
        key = env.get("SORA_API_KEY", "").strip()
        if not key:
            raise SettingsError(
                "SORA_API_KEY is not set: export the relay's bearer token as SORA_API_KEY; nothing was sent"
            )
        base_url = env.get("SORA_BASE_URL", "").strip() or DEFAULT_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise SettingsError(f"SORA_BASE_URL must be an http(s) URL, got {base_url!r}")
        if "/sora/v1" in urlsplit(base_url).path:
            base = base_url[: base_url.index("/sora/v1", base_url.index("//") + 2)]
            raise SettingsError(
                f"SORA_BASE_URL is the server's base URL, without the endpoint path: the run adds {ENDPOINT_PATH} "
                f"itself; use SORA_BASE_URL={base}; nothing was sent"
            )
        raw_timeout = env.get("SORA_LIVE_TIMEOUT", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 60.0
        except ValueError:
            raise SettingsError(f"SORA_LIVE_TIMEOUT must be a number of seconds, got {raw_timeout!r}") from None
        if not math.isfinite(timeout) or timeout <= 0:
            raise SettingsError(f"SORA_LIVE_TIMEOUT must be a positive number of seconds, got {raw_timeout!r}")
        try:
            budget = Budget.from_env(env)
        except BudgetError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            api_key=key,
            base_url=base_url.rstrip("/"),
            max_creates=budget.max_creates,
            max_requests=budget.max_requests,
            video_url=env.get("SORA_LIVE_VIDEO_URL", "").strip() or DEFAULT_VIDEO_URL,
            task_id=env.get("SORA_LIVE_TASK_ID", "").strip() or None,
            timeout=timeout,
            max_wait=max_wait,
            rate=rate,
        )


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


@dataclass
class Outcome:
    """What happened to one probe."""

    name: str
    request: str
    expected: str
    got: str = "-"
    verdict: str = "not run"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"

    @property
    def unjudged(self) -> bool:
        return self.verdict == NOT_JUDGED


@dataclass
class LiveReport:
    """The whole run: outcomes in order plus what was spent."""

    outcomes: list[Outcome]
    requests_sent: int = 0
    creates_sent: int = 0
    created: int = 0
    """200 answers received (what a run actually cost on a billing relay)."""
    waited: float = 0.0
    unreachable: str | None = None
    """Why the server could not be reached (the run stopped there), or ``None``."""
    resent: list[str] = field(default_factory=list)
    """``"<probe>: <status> (why it could be resent)"``, one per resend."""

    @property
    def ok(self) -> bool:
        """Green: reachable, no check failed, and (nearly) every probe judged by the relay itself."""
        return self.unreachable is None and not self.failed_checks() and self.judged_enough

    def failed_checks(self) -> list[str]:
        return [outcome.name for outcome in self.outcomes if outcome.failed]

    def not_judged(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.unjudged]

    @property
    def judged(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.verdict in ("pass", "FAIL"))

    @property
    def judged_enough(self) -> bool:
        missing = len(self.not_judged())
        return missing <= MAX_NOT_JUDGED_SHARE * (missing + self.judged)

    def not_judged_line(self) -> str:
        """One line: how many probes got no verdict, why, and what to do."""
        missing = self.not_judged()
        guard = sum(1 for outcome in missing if outcome.detail.startswith(_GUARD_NOTE))
        throttled = sum(1 for outcome in missing if outcome.detail.startswith(_THROTTLED_NOTE))
        held = len(missing) - guard - throttled
        why = [
            f"{count} {text}"
            for count, text in (
                (throttled, "throttled throughout"),
                (guard, "answered by the guard"),
                (held, "not sent again"),
            )
            if count
        ]
        advice = []
        if throttled:
            advice.append("run it again later or with a larger --max-wait")
        if guard:
            advice.append(
                "the relay itself judged too few: point SORA_BASE_URL at the relay, not the guard "
                "(the guard answers rule-breaking probes itself, with or without --pass-through)"
            )
        if held:
            advice.append("a create answered 504 (or a timeout) may have been billed: check before running again")
        return (
            f"NOT JUDGED: {len(missing)} of {len(missing) + self.judged} probes got no verdict from the relay "
            f"({', '.join(why)}): the contract was not checked; " + "; ".join(advice)
        )


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


_GUARD_NOTE = "answered by the guard"
_THROTTLED_NOTE = "throttled throughout"


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
            return f"{_GUARD_NOTE} (X-Sora-Guard: {sent.response.headers.get('X-Sora-Guard')}), not the relay"
        if sent.kind is Kind.THROTTLED:
            return f"{_THROTTLED_NOTE}: {len(sent.resends)} resends, {self.report.waited:g} s waited in total"
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


def _any_token(outcome: Outcome) -> bool:
    return outcome.failed and outcome.detail.startswith(ANY_TOKEN_NOTE.split("{", 1)[0])


def format_table(report: LiveReport) -> str:
    """The final table: check, request, expected, got, verdict (+ why)."""
    header = ("check", "request", "expected", "got", "verdict")
    rows = [
        (o.name, o.request, o.expected, o.got, o.verdict + (f": {o.detail}" if o.detail else ""))
        for o in report.outcomes
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * 7)
    if report.unreachable is not None:
        verdict = "SERVER UNREACHABLE: nothing was checked, the contract is neither kept nor broken"
    elif report.ok:
        verdict = "CONTRACT HOLDS"
    elif not report.failed_checks():
        verdict = report.not_judged_line()
    else:
        verdict = "CONTRACT BROKEN: " + ", ".join(
            f"{o.name} (the server accepts any bearer token)" if _any_token(o) else o.name
            for o in report.outcomes
            if o.failed
        )
    summary = (
        f"requests sent: {report.requests_sent}, conforming creates sent: {report.creates_sent}, "
        f"200 answers: {report.created}, judged: {report.judged}, not judged: {len(report.not_judged())}, "
        f"resent: {len(report.resent)}, waited: {report.waited:g} s -> {verdict}"
    )
    resends = [f"resent {line}" for line in report.resent]
    return "\n".join([*lines, "", *resends, summary])


def write_junit(report: LiveReport, path: Path, base_url: str) -> None:
    """A JUnit XML file with one test case per check."""
    suite = ET.Element(
        "testsuite",
        name="sora-live-contract",
        tests=str(len(report.outcomes)),
        failures=str(len(report.failed_checks())),
        skipped=str(sum(1 for o in report.outcomes if o.verdict in ("skipped", "not run"))),
        errors=str(sum(1 for o in report.outcomes if o.verdict in ("unreachable", NOT_JUDGED))),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("base_url", base_url),
        ("requests_sent", report.requests_sent),
        ("creates_sent", report.creates_sent),
        ("answers_200", report.created),
        ("judged", report.judged),
        ("not_judged", len(report.not_judged())),
        ("resent", len(report.resent)),
    ):
        ET.SubElement(props, "property", name=name, value=str(value))
    if not report.judged_enough:
        suite.set("tests", str(len(report.outcomes) + 1))
        suite.set("failures", str(len(report.failed_checks()) + 1))
        judged = ET.SubElement(suite, "testcase", classname="live", name="enough_was_judged")
        ET.SubElement(judged, "failure", message=report.not_judged_line()).text = report.not_judged_line()
    for outcome in report.outcomes:
        case = ET.SubElement(suite, "testcase", classname="live", name=outcome.name)
        text = f"request: {outcome.request}\nexpected: {outcome.expected}\ngot: {outcome.got}\n{outcome.detail}"
        if outcome.failed:
            ET.SubElement(case, "failure", message=outcome.detail or "failed").text = text
        elif outcome.verdict in ("unreachable", NOT_JUDGED):
            ET.SubElement(case, "error", message=f"{outcome.verdict}: {outcome.detail}").text = text
        elif outcome.verdict in ("skipped", "not run"):
            ET.SubElement(case, "skipped", message=outcome.detail or outcome.verdict)
        ET.SubElement(case, "system-out").text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


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
    if any(_any_token(outcome) for outcome in report.outcomes):
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
