"""Contract coverage: which of the endpoint's outcomes a client's tests have met.

An **outcome** is one kind of answer ``POST /sora/v1/characters`` can give, named by the ``code``
of its error envelope (``invalid_timestamps_span``, ``missing_api_key``, ``rate_limit_exceeded``…),
``created`` for a 200, or ``dropped`` for a connection closed unanswered (its ``status`` is
``None``). The catalogue, :data:`OUTCOMES`, is read from the places that answer:

- the request rules: every code of :data:`mock_server.contract.rules.RULE_OUTCOMES`;
- auth: ``missing_api_key``, ``invalid_authorization_scheme``, ``invalid_api_key`` (401);
- the size limit: ``request_too_large`` (413);
- the body's transport (``sora-mock serve``): ``request_timeout`` (408), ``incomplete_body`` and
  ``malformed_body`` (400);
- the fault kinds: ``rate_limit_exceeded`` (429), ``server_error`` (500; every injected 5xx, and
  the answer to an unexpected failure), ``dropped``;
- the state store: ``state_unavailable`` (503).

Routing errors (``not_found``, ``method_not_allowed``) are not outcomes: they answer requests
that never reached the endpoint (another path, another method), so no client call of the
endpoint can meet them and a requirement of ``all`` could never be met.

A server counts each answer under its outcome (a counter ``outcome:<id>`` in the state store,
see :meth:`mock_server.mock.state.MockState.count_outcome`); a stub's answer counts under the outcome
of :attr:`mock_server.mock.stubs.Stub.outcome`, which may be a code outside the catalogue: such
counts are reported apart, under ``"stubbed"``, and never change ``met`` or ``total``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..contract.rules import RULE_OUTCOMES

__all__ = [
    "COUNTER_PREFIX",
    "OUTCOMES",
    "Outcome",
    "counter_name",
    "coverage_report",
    "is_outcome",
    "merge",
    "missing",
    "outcome_ids",
    "outcome_of",
    "parse_required",
]

COUNTER_PREFIX = "outcome:"
"""Store counters of outcomes are named ``outcome:<id>``."""


@dataclass(frozen=True)
class Outcome:
    """One kind of answer of the endpoint: its id and its HTTP status (``None``: no answer at all)."""

    id: str
    status: int | None


_AUTH = (("missing_api_key", 401), ("invalid_authorization_scheme", 401), ("invalid_api_key", 401))
_SIZE = (("request_too_large", 413),)
_TRANSPORT = (("request_timeout", 408), ("incomplete_body", 400), ("malformed_body", 400))
_FAULTS: tuple[tuple[str, int | None], ...] = (("rate_limit_exceeded", 429), ("server_error", 500), ("dropped", None))
_STATE = (("state_unavailable", 503),)


def _catalogue() -> tuple[Outcome, ...]:
    pairs: list[tuple[str, int | None]] = [
        ("created", 200),
        *_AUTH,
        *_SIZE,
        *_TRANSPORT,
        *RULE_OUTCOMES.items(),
        *_FAULTS,
        *_STATE,
    ]
    seen: dict[str, Outcome] = {}
    for outcome_id, status in pairs:
        seen.setdefault(outcome_id, Outcome(outcome_id, status))
    return tuple(seen.values())


OUTCOMES: tuple[Outcome, ...] = _catalogue()
"""Every outcome of the endpoint, in a stable order: ``created``, auth, size, transport, the rules,
faults, the state store."""

_BY_ID = {outcome.id: outcome for outcome in OUTCOMES}


def outcome_ids() -> tuple[str, ...]:
    """The ids of :data:`OUTCOMES`, in order."""
    return tuple(_BY_ID)


def is_outcome(outcome_id: str) -> bool:
    """Whether ``outcome_id`` is in the catalogue."""
    return outcome_id in _BY_ID


def outcome_of(status: int | None, code: str | None = None) -> str:
    """The outcome id of one answer: ``dropped`` when none was given, ``created`` for a 200, else the
    envelope's ``code`` (``server_error`` when an error answer has none)."""
    if status is None:
        return "dropped"
    if status == 200:
        return "created"
    return code or "server_error"


def counter_name(outcome_id: str) -> str:
    """The store counter that counts ``outcome_id``."""
    return COUNTER_PREFIX + outcome_id


def coverage_report(counts: Mapping[str, int], stubbed: Mapping[str, int | None] | None = None) -> dict[str, Any]:
    """``{"outcomes": [{"outcome", "status", "seen"}...], "met": K, "total": N}`` for ``counts`` (id → times).

    Every catalogue outcome is listed, ``seen: 0`` when never met. Counts of ids outside the
    catalogue (stubbed codes; ``stubbed`` gives their status) are listed under ``"stubbed"``
    when there are any; they are not part of ``met`` and ``total``.
    """
    rows = [{"outcome": o.id, "status": o.status, "seen": int(counts.get(o.id, 0))} for o in OUTCOMES]
    report: dict[str, Any] = {
        "outcomes": rows,
        "met": sum(1 for row in rows if row["seen"]),
        "total": len(rows),
    }
    statuses = dict(stubbed or {})
    extra = sorted((set(statuses) | {k for k, v in counts.items() if v}) - set(_BY_ID))
    if extra:
        report["stubbed"] = [
            {"outcome": name, "status": statuses.get(name), "seen": int(counts.get(name, 0))} for name in extra
        ]
    return report


def merge(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One report summing the ``seen`` of several (the outcomes of every fixture of a session)."""
    counts: dict[str, int] = {}
    statuses: dict[str, int | None] = {}
    for report in reports:
        for row in report.get("outcomes", ()):
            counts[row["outcome"]] = counts.get(row["outcome"], 0) + int(row["seen"])
        for row in report.get("stubbed", ()):
            counts[row["outcome"]] = counts.get(row["outcome"], 0) + int(row["seen"])
            statuses.setdefault(row["outcome"], row.get("status"))
    return coverage_report(counts, statuses)


def missing(report: Mapping[str, Any], required: Iterable[str]) -> list[str]:
    """The ids of ``required`` that ``report`` never saw, in catalogue order."""
    seen = {row["outcome"] for row in report.get("outcomes", ()) if row["seen"]}
    wanted = set(required)
    return [o.id for o in OUTCOMES if o.id in wanted and o.id not in seen]


def parse_required(text: str) -> tuple[str, ...]:
    """The outcomes a comma-separated list names (``all``: every one), in catalogue order.

    An unknown name is a ``ValueError`` naming it and the known ones; an empty list is one too.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError("name at least one outcome (or all)")
    if "all" in names:
        return outcome_ids()
    unknown = [name for name in names if name not in _BY_ID]
    if unknown:
        raise ValueError(f"unknown outcome {', '.join(map(repr, unknown))}; known: all, {', '.join(outcome_ids())}")
    wanted = set(names)
    return tuple(o.id for o in OUTCOMES if o.id in wanted)
