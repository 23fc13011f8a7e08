"""``sora-mock guard``: a checking, budgeted proxy in front of the paid relay.

A client points its base URL at the guard instead of the relay. Each request whose path the
upstream could read as ``/sora/v1/characters`` (see :mod:`mock_server.relay.paths`), judged on the
whole path it receives (the upstream URL's own path included), is the endpoint; a path a lenient
upstream could still route there (``/sora/v1/characters.json``) is refused locally. On the
endpoint, ``POST`` is judged with the same rules and auth check as the mock, so a request that
breaks a rule gets the mock's 400/401/413/422 locally and never reaches the relay; any other method
(or a method override header) gets a local 405. A conforming request reserves one create of the
budget, then goes upstream byte for byte with the client's ``Authorization``; once
``max_creates`` creates were reserved, further ones get a local 429 ``budget_exhausted``.

Only a clear non-billable answer gives a reservation back: one read and decoded in full whose
status is not 2xx. No answer within ``timeout`` (the whole exchange), a dropped connection, an
answer over ``max_answer_bytes`` or one the guard cannot decode keep it, become a finding and
reach the client as a 502/504 in the error envelope. Every other upstream answer is passed back
unchanged (apart from the ``X-Sora-Guard`` header, the hop-by-hop headers and a ``Location`` that
would lead the client past the guard) and judged against the contract: what breaks it becomes a
finding in ``GET /__guard/report``.

Counters and findings live in a :class:`mock_server.store.Store`, so every worker process that
opens the same state URL shares one budget. While the store is down, creates get a 503; when it
comes back without the budget's state (its identity marker gone), creates are refused until
``POST /__guard/reset``. The bearer token is never stored, logged or reported.

This module gathers the guard's public names; the guard itself lives in modules by concern:
:mod:`.config` (settings), :mod:`.app` (the Flask app and its routing), :mod:`.create` (one create
in named phases: check, reserve, forward, judge, record), :mod:`.exchange` (forwarding and the
deferred exchange), :mod:`.upstream` (the httpx client and decoding), :mod:`.judge` (the contract
check of an answer), :mod:`.ledger` (budget, counts, findings, the report) and :mod:`.recorder`.
"""

from __future__ import annotations

from .app import create_guard_app, guard_state_of
from .config import (
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_UPSTREAM,
    GUARD_HEADER,
    GUARD_PREFIX,
    METHOD_OVERRIDE_HEADERS,
    SETTLING,
    GuardConfig,
    public_url,
    upstream_problem,
)
from .judge import CONFORMING_STATUSES, DECLARED_STATUSES, judge_answer
from .ledger import GuardState, guard_report, summary_line, write_report

__all__ = [
    "CONFORMING_STATUSES",
    "DECLARED_STATUSES",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_UPSTREAM",
    "GUARD_HEADER",
    "GUARD_PREFIX",
    "METHOD_OVERRIDE_HEADERS",
    "SETTLING",
    "GuardConfig",
    "GuardState",
    "create_guard_app",
    "guard_report",
    "guard_state_of",
    "judge_answer",
    "public_url",
    "summary_line",
    "upstream_problem",
    "write_report",
]
