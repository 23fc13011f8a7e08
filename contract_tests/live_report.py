"""The live run's report: one outcome per probe, what was spent, the table and the JUnit file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .verdicts import (
    MAX_NOT_JUDGED_SHARE,
)

__all__ = [
    "ANY_TOKEN_NOTE",
    "GUARD_NOTE",
    "NOT_JUDGED",
    "THROTTLED_NOTE",
    "LiveReport",
    "Outcome",
    "format_table",
    "write_junit",
]

NOT_JUDGED = "not judged"
GUARD_NOTE = "answered by the guard"
THROTTLED_NOTE = "throttled throughout"

ANY_TOKEN_NOTE = (
    "a random bearer token was accepted (HTTP {status}): this server accepts any token. sora-mock does "
    "so when started without TOKEN / SORA_MOCK_TOKEN: start it with SORA_MOCK_TOKEN set to SORA_API_KEY's "
    "value to check auth; a relay that does so breaks the contract"
)
"""What the run can know when a random token gets a 2xx: the server takes any token, not why."""


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
        guard = sum(1 for outcome in missing if outcome.detail.startswith(GUARD_NOTE))
        throttled = sum(1 for outcome in missing if outcome.detail.startswith(THROTTLED_NOTE))
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


def accepts_any_token(outcome: Outcome) -> bool:
    """Whether ``outcome`` failed because the server took a random bearer token."""
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
            f"{o.name} (the server accepts any bearer token)" if accepts_any_token(o) else o.name
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
