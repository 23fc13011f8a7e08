"""What the guard keeps in its store: the create budget, the counts and the findings; the report on them.

Every worker that opens the same state URL shares one :class:`Ledger`'s counters, so they share one
budget. A reset starts a new budget counter (``creates_reserved:EPOCH``); the other counts and the
findings stay.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..contract.rules import Contract
from ..store import StateLost, Store, StoreUnavailable
from .config import RESET_PATH, GuardConfig, public_url
from .files import json_bytes, write_atomically

__all__ = [
    "BLOCKED",
    "CREATES",
    "FORWARDED",
    "OVER_BUDGET",
    "PASSED",
    "UNCERTAIN",
    "GuardState",
    "Ledger",
    "guard_report",
    "summary_line",
    "write_report",
]

CREATES = "creates"
FORWARDED = "forwarded"
BLOCKED = "blocked"
OVER_BUDGET = "over_budget"
PASSED = "passed"
UNCERTAIN = "uncertain"
_RESERVED = "creates_reserved"  # one counter per budget: f"{_RESERVED}:{epoch}"
_EPOCH = "budget_epoch"  # the number of resets: a reset starts the counter of a new budget
_FINDINGS = "findings"


def _reserved(epoch: int) -> str:
    return f"{_RESERVED}:{epoch}"


@dataclass
class GuardState:
    """What one guard app holds: its settings, the shared store, the contract and the upstream's TLS settings."""

    config: GuardConfig
    store: Store
    contract: Contract
    verify: ssl.SSLContext = field(repr=False)
    """Shared by the HTTP client of every exchange (each exchange opens its own connection)."""

    def report(self) -> dict[str, Any]:
        return guard_report(self.store, self.config)

    def close(self) -> None:
        """Close the store."""
        self.store.close()


class Ledger:
    """The guard's counts, budget and findings in ``store``; a count or finding the store fails to keep is logged."""

    def __init__(self, store: Store, max_creates: int, logger: logging.Logger) -> None:
        self.store = store
        self.max_creates = max_creates
        self.logger = logger

    def tally(self, name: str, delta: int = 1) -> None:
        """Count in the store; an answer already decided (or billed) is still given when the store fails."""
        try:
            self.store.incr(name, delta)
        except StoreUnavailable as exc:
            self.logger.warning("the guard could not count %s: %s", name, exc)

    def reserve(self) -> str | None:
        """The budget counter holding one more create's reservation, or ``None`` when the budget is spent.

        The store must still hold the budget's state (:class:`~mock_server.store.StateLost` otherwise):
        a lost state is never taken for a fresh budget.
        """
        store = self.store
        store.verify()
        key = _reserved(store.get(_EPOCH))
        if not store.reserve(key, self.max_creates):
            return None
        current = _reserved(store.get(_EPOCH))
        if current != key:  # a reset came in between: this create counts against the new budget
            store.incr(key, -1)
            if not store.reserve(current, self.max_creates):
                return None
            key = current
        return key

    def release(self, reserved: str) -> None:
        """Give a reservation back (nothing was billed)."""
        self.tally(reserved, -1)

    def keep(self, status: int | None) -> None:
        """A create stays reserved: billed (a 200) or maybe billed (anything unclear)."""
        self.tally(CREATES if status == 200 else UNCERTAIN)

    def add_finding(self, summary: Mapping[str, Any], status: int | None, problems: list[str]) -> None:
        finding = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request": summary,
            "status": status,
            "problems": problems,
        }
        try:
            self.store.append(_FINDINGS, json_bytes(finding))
        except StoreUnavailable as exc:
            self.logger.warning("the guard could not keep a finding: %s", exc)

    def reset(self) -> None:
        """Start a new budget; a state that was lost is the guard's again. Counts and findings stay."""
        self.store.reseal()
        self.store.incr(_EPOCH)


def guard_report(store: Store, config: GuardConfig) -> dict[str, Any]:
    """The report ``GET /__guard/report`` answers, read from ``store``."""
    findings = [json.loads(item) for _, item in store.read(_FINDINGS)]
    epoch = store.get(_EPOCH)
    problem = _state_problem(store)
    return {
        "upstream": public_url(config.upstream),
        "max_creates": config.max_creates,
        "forwarded": store.get(FORWARDED),
        "blocked": store.get(BLOCKED),
        "creates": store.get(CREATES),
        "uncertain": store.get(UNCERTAIN),
        "budget_left": 0 if problem else max(0, config.max_creates - store.get(_reserved(epoch))),
        "over_budget": store.get(OVER_BUDGET),
        "passed": store.get(PASSED),
        "resets": epoch,
        "findings": findings,
        "state": problem or "ok",
    }


def _state_problem(store: Store) -> str | None:
    """Why the store no longer holds the state the guard budgets on (creates are refused), or ``None``."""
    try:
        store.verify()
    except StateLost as exc:
        return f"lost: {exc}; creates are refused until POST {RESET_PATH}"
    return None


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for the terminal when the guard stops."""
    resets = report.get("resets", 0)
    budget = f"budget {report['max_creates']}" + (f" (reset {resets} time(s))" if resets else "")
    return (
        f"sora-mock guard: {report['forwarded']} forwarded, {report['blocked']} blocked, {report['passed']} passed; "
        f"{report['creates']} billed, {report['uncertain']} uncertain "
        "(timeouts, drops and unreadable answers kept their reservation); "
        f"{budget}, {report['budget_left']} left, {report['over_budget']} over budget; "
        f"{len(report['findings'])} finding(s)"
    )


def write_report(report: Mapping[str, Any], path: str | Path) -> None:
    """Write ``report`` as JSON to ``path`` (atomically: a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, json_bytes(report, indent=2) + b"\n")
