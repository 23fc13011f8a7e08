"""One create through the guard, in named phases: check → reserve → forward → judge → record.

:meth:`CreateFlow.run` is the whole path, as Flask's ``full_dispatch_request`` is for a request:

- :meth:`~CreateFlow.check`: the mock's auth check and rules; a request that breaks one is answered
  here (``blocked``) and never reaches the relay.
- :meth:`~CreateFlow.reserve`: one create of the budget (a local 429 once it is spent; a store that
  lost the budget's state refuses).
- :meth:`~CreateFlow.forward`: the request goes upstream byte for byte; until the answer is settled
  the reservation stands, so an interrupt or a lost answer never gives it back.
- :meth:`~CreateFlow.judge`: count the answer (only a clear non-2xx answer read and decoded in full
  gives the reservation back) and judge it against the contract; what breaks it is a finding.
- :meth:`~CreateFlow.record`: keep the answer as a corpus fixture, when the guard records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from flask import Response, request

from ..contract.http import bearer_token, check_bearer
from ..contract.rules import Contract, RuleError, check_request, decode_body
from ..web import error_response, violation_response
from .config import RESET_PATH, GuardConfig
from .exchange import Forwarder, Outcome, read_body, tag
from .judge import judge_answer, request_summary
from .ledger import BLOCKED, FORWARDED, OVER_BUDGET, Ledger
from .recorder import AnswerRecorder, Forwarded
from .upstream import Upstream, _Answer, _NoAnswer, _TooLarge, _Unreadable, decode_answer

__all__ = ["CreateFlow", "GuardParts"]


@dataclass(frozen=True)
class GuardParts:
    """What one guard app works with, built once by :func:`~mock_server.relay.app.create_guard_app`."""

    config: GuardConfig
    contract: Contract
    ledger: Ledger
    upstream: Upstream
    forwarder: Forwarder
    recorder: AnswerRecorder | None
    logger: logging.Logger

    def blocked(self, response: Response) -> Response:
        """A refusal of the guard's own: counted, and marked ``blocked``."""
        self.ledger.tally(BLOCKED)
        return tag(response, "blocked")

    def record(self, answer: _Answer, raw: bytes, token: str, content: bytes | None) -> None:
        """Keep ``answer`` as a fixture when the guard records; a failure to write it is logged, never raised."""
        if self.recorder is None:
            return
        headers = request.headers
        try:
            self.recorder.save(
                Forwarded(
                    request.method,
                    request.path,
                    "Authorization" in headers,
                    headers.get("Content-Type"),
                    raw,
                    token,
                    answer.status,
                    answer.headers,
                    content,
                    answer.elapsed,
                )
            )
        except Exception as exc:  # the answer may have been billed: the client still gets it
            self.logger.warning("could not record an answer: %s", type(exc).__name__)


class CreateFlow:
    """One ``POST`` to the endpoint, forwarded to ``target`` (the path the upstream gets) if it passes."""

    def __init__(self, parts: GuardParts, target: str) -> None:
        self.parts = parts
        self.target = target
        self.raw = b""
        self.body: Any = None
        self.token = ""
        self.summary: dict[str, Any] = {}
        self.reserved = ""
        self.url: httpx.URL = parts.upstream.base  # the URL the create goes to, once checked

    def run(self) -> Response:
        refusal = self.check() or self.reserve()
        if refusal is not None:
            return refusal
        return self.forward()

    def check(self) -> Response | None:
        """The mock's auth check and rules: a refusal (``blocked``) for a request that breaks one."""
        parts = self.parts
        denied = check_bearer(request.headers.get("Authorization"), None)
        if denied is not None:
            return parts.blocked(violation_response(denied))
        self.raw = read_body(parts.config.max_body_bytes)
        try:
            self.body = decode_body(self.raw, reject_duplicates=True)  # the mock's rules: a repeated key is a 400
        except RuleError as exc:
            return parts.blocked(violation_response(exc.violation))
        violation = check_request(self.body, parts.contract)
        if violation is not None:
            return parts.blocked(violation_response(violation))
        self.url = parts.upstream.url(self.target, request.query_string)
        return None

    def reserve(self) -> Response | None:
        """One create of the budget; a 429 ``budget_exhausted`` (verdict ``budget``) once it is spent."""
        parts = self.parts
        reserved = parts.ledger.reserve()  # StateLost when the store lost the budget's state: never a new budget
        if reserved is not None:
            self.reserved = reserved
            return None
        parts.ledger.tally(OVER_BUDGET)
        refusal = error_response(
            429,
            f"The guard's budget of {parts.config.max_creates} billable create(s) is spent; nothing was sent upstream. "
            f"POST {RESET_PATH} starts a new budget.",
            code="budget_exhausted",
            error_type="insufficient_quota",
        )
        return tag(refusal, "budget")

    def forward(self) -> Response:
        """Send the create upstream; :meth:`settle` gives the client's answer once the upstream's is in."""
        parts = self.parts
        self.token = bearer_token(request.headers.get("Authorization")) or ""
        self.summary = request_summary(request.method, request.path, self.body, self.token)
        return parts.forwarder.relay(self.raw, self.url, endpoint=True, settle=self.settle)

    def settle(self, outcome: Outcome) -> Response:
        """Count, judge and record a forwarded create's answer; the client's answer."""
        if isinstance(outcome, _NoAnswer):
            return self.no_answer(outcome)
        self.parts.ledger.tally(FORWARDED)
        try:
            content = decode_answer(outcome.raw, outcome.headers, self.parts.config.max_answer_bytes)
        except (_Unreadable, _TooLarge) as exc:
            return self.unreadable(outcome, exc)
        self.judge(outcome, content)
        self.parts.record(outcome, self.raw, self.token, content)
        return tag(self.parts.forwarder.to_flask(outcome), "forwarded")

    def judge(self, answer: _Answer, content: bytes) -> None:
        """Keep the reservation for a 2xx (billed), give it back otherwise; what breaks the contract is a finding."""
        ledger = self.parts.ledger
        if 200 <= answer.status < 300:
            ledger.keep(answer.status)
        else:
            ledger.release(self.reserved)  # a clear answer that bills nothing
        try:
            problems = judge_answer(answer.status, answer.headers, content, self.parts.contract)
        except Exception as exc:  # never a 500 for an answer that came back
            problems = [f"the guard could not judge the answer ({type(exc).__name__})"]
        if problems:
            ledger.add_finding(self.summary, answer.status, problems)

    def no_answer(self, exc: _NoAnswer) -> Response:
        """No usable answer: the reservation is given back only when nothing left the guard."""
        ledger = self.parts.ledger
        if not exc.sent:
            ledger.release(self.reserved)  # nothing left the guard: nothing was billed
            return tag(exc.response(), "upstream-error")
        ledger.tally(FORWARDED)
        ledger.keep(exc.upstream_status)
        problem = f"no whole answer from the upstream ({exc.code}); kept as a possible create"
        ledger.add_finding(self.summary, exc.upstream_status, [problem])
        return tag(exc.response(), "upstream-error")

    def unreadable(self, answer: _Answer, exc: _Unreadable | _TooLarge) -> Response:
        """An answer the guard cannot decode (or over its limit once decoded): kept as a possible create, a 502."""
        limit = self.parts.config.max_answer_bytes
        self.parts.ledger.keep(answer.status)
        if isinstance(exc, _TooLarge):
            problem = f"the decoded body is over the guard's limit of {limit} bytes"
            code, why = "upstream_answer_too_large", f"decodes to more than {limit} bytes"
        else:
            problem, code, why = str(exc), "upstream_answer_unreadable", f"cannot be read: {exc}"
        self.parts.ledger.add_finding(self.summary, answer.status, [f"{problem}; kept as a possible create"])
        failure = error_response(
            502,
            f"The answer of the upstream {self.parts.upstream.name} (HTTP {answer.status}) {why}. "
            "The create stays counted: it may have been billed.",
            code=code,
            error_type="server_error",
        )
        return tag(failure, "upstream-error")
