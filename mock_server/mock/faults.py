"""Injected faults: answers that fail the way the relay does under load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, ServingError

__all__ = ["MAX_RETRY_AFTER", "DroppedConnection", "Fault", "FaultError"]

MAX_RETRY_AFTER = 86_400
"""Largest ``retry_after`` (seconds, one day): a ``Retry-After`` a client can act on."""
_KEYS = {"status", "retry_after", "delay_ms", "drop", "times"}


class FaultError(ConfigError, ValueError):
    """A fault description that cannot be applied; the message names the field."""


class DroppedConnection(ServingError):
    """Raised inside a request to make the serving layer close the connection unanswered."""


@dataclass(frozen=True)
class Fault:
    """What to do to one endpoint request: fail with ``status``, answer late, or drop it."""

    status: int | None = None
    retry_after: int | None = None
    delay_ms: int = 0
    drop: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not 400 <= self.status <= 599:
            raise FaultError("status must be an HTTP error status between 400 and 599")
        if self.retry_after is not None and not 0 <= self.retry_after <= MAX_RETRY_AFTER:
            raise FaultError(f"retry_after must be between 0 and {MAX_RETRY_AFTER} seconds")
        if not 0 <= self.delay_ms <= 60_000:
            raise FaultError("delay_ms must be between 0 and 60000")
        if self.status is None and not self.drop and not self.delay_ms:
            raise FaultError("give at least one of status, delay_ms or drop")
        if self.drop and self.status is not None:
            raise FaultError("drop closes the connection unanswered; it cannot also set status")

    @classmethod
    def from_json(cls, data: object) -> tuple[Fault, int]:
        """Parse an admin/fixture description; returns the fault and how many requests it hits."""
        if not isinstance(data, Mapping):
            raise FaultError("a fault must be a JSON object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")

        def integer(name: str, default: Any) -> Any:
            value = data.get(name, default)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise FaultError(f"{name} must be an integer")
            return value

        drop = data.get("drop", False)
        if not isinstance(drop, bool):
            raise FaultError("drop must be true or false")
        times = integer("times", 1)
        if not 1 <= times <= 100_000:
            raise FaultError("times must be between 1 and 100000")
        fault = cls(
            status=integer("status", None),
            retry_after=integer("retry_after", None),
            delay_ms=integer("delay_ms", 0),
            drop=drop,
        )
        return fault, times
