"""Is an answer the relay's verdict, or infrastructure? One classification for every suite.

The URL suite (:mod:`contract_tests.suite`, ``make contract``), the schemathesis CLI hooks
(:mod:`contract_tests.hooks`) and the live run (:mod:`contract_tests.live`) all ask :func:`classify`:

- ``throttled`` — a ``429``: a limiter spoke, not the contract;
- ``transient`` — a ``502``/``503``/``504`` that is not the relay's JSON error envelope, or that
  carries ``Retry-After``: a gateway's hiccup;
- ``guard`` — an answer marked ``X-Sora-Guard`` with anything but ``forwarded``/``passed``: the
  guard in front of the relay answered itself;
- ``verdict`` — everything else: the relay judged the request.

Throttled and transient answers are waited out (:func:`resend_delay`: ``Retry-After`` when given,
capped at :data:`MAX_SINGLE_WAIT`, else a growing back-off) and the same request is sent again, at
most :data:`MAX_RESENDS` times; only the first real answer is judged. A transient 5xx that comes back
on every resend is judged as usual (a relay that crashes on some input is still caught); a request
throttled throughout, or answered by a guard, gets no verdict and is counted by a :class:`Tally`.
A run in which more than :data:`MAX_NOT_JUDGED_SHARE` of the requests got no verdict is not green:
it ends with :data:`EXIT_NOT_JUDGED` and the one line of :meth:`Tally.line`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from schemathesis.core.rate_limit import parse_retry_after

from mock_server.errors import ServingError

__all__ = [
    "EXIT_NOT_JUDGED",
    "FIRST_BACKOFF",
    "GIVE_UP_AFTER",
    "GUARD_HEADER",
    "MAX_NOT_JUDGED_SHARE",
    "MAX_RESENDS",
    "MAX_SINGLE_WAIT",
    "Kind",
    "NotJudged",
    "Pacer",
    "ResendingTransport",
    "Sent",
    "Tally",
    "cannot_have_billed",
    "classify",
    "header",
    "install",
    "parse_rate",
    "resend_delay",
    "send_until_judged",
]

EXIT_NOT_JUDGED = 4
"""Exit status of a run that got too few verdicts (1 a check failed, 2 setup, 3 unreachable)."""
MAX_NOT_JUDGED_SHARE = 0.05
"""Above this share of requests without a verdict (5 %), a run is not green."""
MAX_RESENDS = 5
"""Resends of one request after a throttled or transient answer."""
GIVE_UP_AFTER = 3
"""After this many requests in a row still throttled or failing transiently on every resend, the next
ones are resent once only (until one ends otherwise again): a run against a relay that
throttles or fails everything ends in seconds, not minutes."""
MAX_SINGLE_WAIT = 10.0
"""The longest single wait before a resend, whatever ``Retry-After`` asks (seconds)."""
FIRST_BACKOFF = 0.25
"""The first wait without ``Retry-After``; each further resend of the same request waits twice as long."""
GUARD_HEADER = "X-Sora-Guard"
_RELAY_ANSWERED = frozenset({"forwarded", "passed"})
_GATEWAY_STATUSES = frozenset({502, 503, 504})


class Kind(Enum):
    """What an answer is: the relay's verdict, or one of the kinds of infrastructure."""

    VERDICT = "verdict"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    GUARD = "guard"


class NotJudged(ServingError):
    """A request got no verdict: throttled on every resend, or answered by a guard."""

    def __init__(self, kind: Kind, status: int) -> None:
        if kind is Kind.THROTTLED:
            reason = "throttled throughout: slow the run down (SORA_CONTRACT_RATE=2/s, make contract RATE=2/s)"
        else:
            reason = "answered by a guard, not the relay: run it against the relay itself"
        super().__init__(f"not judged: HTTP {status}, {reason}")
        self.kind = kind
        self.status = status


def parse_rate(text: str) -> float | None:
    """``"2/s"``, ``"30/m"``, ``"5/h"`` or ``"2"`` (per second) as requests per second; ``""``: ``None``."""
    text = text.strip().lower().replace("per", "/").replace(" ", "")
    if not text:
        return None
    count, _, unit = text.partition("/")
    seconds = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}.get(unit)
    try:
        value = float(count)
    except ValueError:
        value = -1.0
    if seconds is None or not 0 < value < float("inf"):
        raise ValueError(f"RATE (SORA_CONTRACT_RATE) must be requests per time like 2/s or 30/m, got {text!r}")
    return value / seconds


def header(headers: Any, name: str) -> str | None:
    """``name`` from any headers mapping (httpx, requests, schemathesis' lists), case-insensitively."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    value = getter(name) if getter is not None else None
    if value is None and isinstance(headers, Mapping):
        lower = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lower), None)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def _relay_envelope(content: bytes) -> bool:
    """Whether ``content`` is the relay's own JSON error envelope: ``{"error": ...}``."""
    try:
        body = json.loads(content or b"")
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and "error" in body


def classify(status: int, headers: Any, content: bytes) -> Kind:
    """The one answer to "is this a verdict or infrastructure?" (see the module's docstring)."""
    guard = header(headers, GUARD_HEADER)
    if guard is not None and guard.strip().lower() not in _RELAY_ANSWERED:
        return Kind.GUARD
    if status == 429:
        return Kind.THROTTLED
    if status in _GATEWAY_STATUSES and (header(headers, "Retry-After") is not None or not _relay_envelope(content)):
        return Kind.TRANSIENT
    return Kind.VERDICT


def cannot_have_billed(status: int, headers: Any, content: bytes) -> bool:
    """Whether an answer proves a create was not processed, so resending it cannot bill twice.

    ``429``: a limiter refused it before any work. ``502``/``503`` from a gateway (not the relay's
    JSON envelope, or with ``Retry-After``): the gateway answered instead of the relay. Never a
    ``504`` or a timeout: the relay may have created (and billed) after the gateway gave up.
    """
    if status == 429:
        return True
    return status in (502, 503) and classify(status, headers, content) is Kind.TRANSIENT


def resend_delay(headers: Any, attempt: int) -> float:
    """Seconds to wait before resend number ``attempt`` (0-based): ``Retry-After``, else a back-off."""
    value = header(headers, "Retry-After")
    asked = parse_retry_after(value.strip()) if value else None
    if asked is not None:
        return min(float(asked), MAX_SINGLE_WAIT)
    return min(FIRST_BACKOFF * 2.0**attempt, MAX_SINGLE_WAIT)


@dataclass
class Pacer:
    """Spaces requests out: slows down on each 429, speeds up again slowly on real answers.

    ``floor`` is the pace the user asked for up front (``RATE=N/s``: ``1/N`` seconds).
    """

    floor: float = 0.0
    ceiling: float = 2.0
    interval: float = 0.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    _last: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait(self) -> None:
        """Before a request: wait until the current interval has passed since the previous one."""
        with self._lock:
            gap = max(self.interval, self.floor) - (time.monotonic() - self._last)
            if gap > 0:
                self.sleep(gap)
            self._last = time.monotonic()

    def learn(self, kind: Kind) -> None:
        """After an answer: double the interval on a 429, shrink it by a tenth otherwise."""
        with self._lock:
            if kind is Kind.THROTTLED:
                self.interval = min(max(self.interval * 2, 0.05), self.ceiling)
            else:
                self.interval *= 0.9


@dataclass
class Tally:
    """Requests that got a verdict and those that did not, with why, and what was resent."""

    judged: int = 0
    not_judged: Counter[str] = field(default_factory=Counter)
    resent: Counter[str] = field(default_factory=Counter)
    """Resends by the status that caused them (``"429"``, ``"503"``...)."""
    streak: int = 0
    """Requests in a row still throttled or transient after every resend."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def verdict(self) -> None:
        with self._lock:
            self.judged += 1

    def unjudged(self, reason: str) -> None:
        """``reason``: ``throttled``, ``guard`` or ``unreachable``."""
        with self._lock:
            self.not_judged[reason] += 1

    def persisted(self, persisted: bool) -> None:
        """After each request: whether it was still throttled or transient after every resend."""
        with self._lock:
            self.streak = self.streak + 1 if persisted else 0

    def resends_left(self, wanted: int) -> int:
        """``wanted``, or 1 once :data:`GIVE_UP_AFTER` requests in a row were throttled throughout."""
        return min(wanted, 1) if self.streak >= GIVE_UP_AFTER else wanted

    def resend(self, status: int) -> None:
        with self._lock:
            self.resent[str(status)] += 1

    @property
    def total(self) -> int:
        return self.judged + sum(self.not_judged.values())

    @property
    def missing(self) -> int:
        return sum(self.not_judged.values())

    @property
    def enough(self) -> bool:
        """Whether the share without a verdict is at most :data:`MAX_NOT_JUDGED_SHARE`."""
        return self.missing <= MAX_NOT_JUDGED_SHARE * self.total

    def summary(self) -> str:
        """``N judged, M not judged (...), K resent (...)``."""
        parts = [f"{self.judged} of {self.total} requests judged"]
        if self.missing:
            why = ", ".join(
                f"{count} {_REASONS.get(reason, reason)}" for reason, count in sorted(self.not_judged.items())
            )
            parts.append(f"{self.missing} not judged ({why})")
        if self.resent:
            sent = ", ".join(f"{count} after {status}" for status, count in sorted(self.resent.items()))
            parts.append(f"resent: {sent}")
        return "; ".join(parts)

    def line(self, rate_hint: str = "RATE=2/s") -> str:
        """The one line of a run that judged too little: how many, why, and what to do."""
        share = self.missing / self.total if self.total else 0.0
        advice = []
        if self.not_judged.get("throttled"):
            advice.append(f"slow the run down ({rate_hint})")
        if self.not_judged.get("guard"):
            advice.append(
                "run it against the relay itself, not the guard "
                "(the guard answers rule-breaking requests itself, with or without --pass-through)"
            )
        if self.not_judged.get("unreachable"):
            advice.append("check that the server stays up")
        return (
            f"NOT JUDGED: {self.missing} of {self.total} requests ({share:.0%}) got no verdict "
            f"({self.summary()}); more than {MAX_NOT_JUDGED_SHARE:.0%} unjudged is not green: "
            + "; ".join(advice or ["run it again"])
        )


_REASONS = {
    "throttled": "throttled throughout",
    "guard": "answered by the guard",
    "unreachable": "unreachable",
}


@dataclass
class Sent:
    """A request's last answer and what it is, after any resends."""

    response: Any
    kind: Kind
    resends: list[str] = field(default_factory=list)
    """One ``"<status>, waited <s> s"`` per resend."""
    held_back: bool = False
    """A resend was due but ``may_resend`` refused it (a create that may have been billed)."""

    @property
    def judged(self) -> bool:
        """Whether the answer is to be judged: a verdict, or a transient 5xx that persisted."""
        return self.kind is Kind.VERDICT or (self.kind is Kind.TRANSIENT and not self.held_back)


def send_until_judged(
    send: Callable[[], Any],
    read: Callable[[Any], tuple[int, Any, bytes]],
    *,
    pacer: Pacer | None = None,
    tally: Tally | None = None,
    sleep: Callable[[float], None] = time.sleep,
    may_resend: Callable[[int, Any, bytes, float], bool] | None = None,
    max_resends: int = MAX_RESENDS,
) -> Sent:
    """Send, and send the same request again after throttled or transient answers; the first real answer wins.

    ``read`` gives an answer's status, headers and body; ``may_resend(status, headers, body, delay)``
    may refuse a resend (a budget, a create that may have billed). ``tally`` counts the outcome.
    """
    resends: list[str] = []
    attempt = 0
    if tally is not None:
        max_resends = tally.resends_left(max_resends)
    while True:
        if pacer is not None:
            pacer.wait()
        response = send()
        status, headers, content = read(response)
        kind = classify(status, headers, content)
        if pacer is not None:
            pacer.learn(kind)
        if kind in (Kind.VERDICT, Kind.GUARD) or attempt >= max_resends:
            return _settle(Sent(response, kind, resends), tally)
        delay = resend_delay(headers, attempt)
        if may_resend is not None and not may_resend(status, headers, content, delay):
            return _settle(Sent(response, kind, resends, held_back=True), tally)
        resends.append(f"{status}, waited {delay:g} s")
        if tally is not None:
            tally.resend(status)
        sleep(delay)
        attempt += 1


def _settle(sent: Sent, tally: Tally | None) -> Sent:
    if tally is not None:
        tally.persisted(sent.kind in (Kind.THROTTLED, Kind.TRANSIENT) and not sent.held_back)
        if sent.judged:
            tally.verdict()
        else:
            tally.unjudged("guard" if sent.kind is Kind.GUARD else "throttled")
    return sent


class ResendingTransport:
    """A schemathesis transport that sends each request until it is judged (:func:`send_until_judged`).

    Raises :class:`NotJudged` for a request throttled on every resend or answered by a guard, so no
    check ever judges such an answer (schemathesis' built-ins included).
    """

    def __init__(self, inner: Any, tally: Tally, pacer: Pacer) -> None:
        self.inner = inner
        self.tally = tally
        self.pacer = pacer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, case: Any, **kwargs: Any) -> Any:
        sent = send_until_judged(
            lambda: self.inner.send(case, **kwargs),
            lambda response: (response.status_code, response.headers, response.content or b""),
            pacer=self.pacer,
            tally=self.tally,
        )
        if not sent.judged:
            raise NotJudged(sent.kind, sent.response.status_code)
        return sent.response


def install(schema: Any, tally: Tally, pacer: Pacer) -> None:
    """Make every request of ``schema`` (a loaded schemathesis schema) go through a :class:`ResendingTransport`.

    Cases, and the probes of checks such as ``ignored_auth``, all send through ``schema.transport``.
    """
    from schemathesis import transport

    base = type(schema)
    base = getattr(base, "_sora_base", base)

    def resending(self: Any) -> Any:
        return ResendingTransport(transport.get(self.app), tally, pacer)

    schema.__class__ = type(
        f"Resending{base.__name__}", (base,), {"transport": property(resending), "_sora_base": base}
    )
