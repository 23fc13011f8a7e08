"""The create budget of any run against a real server: the live smoke run and the recorder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Budget", "BudgetError", "int_env"]

MAX_CREATES_VAR = "SORA_LIVE_MAX_CREATES"
MAX_REQUESTS_VAR = "SORA_LIVE_MAX_REQUESTS"


class BudgetError(ConfigError, ValueError):
    """A budget variable that cannot be read; the message names it. Nothing was sent."""


def int_env(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """Read a whole number of at least ``minimum`` from ``env[name]`` (``default`` when unset or empty)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BudgetError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise BudgetError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Budget:
    """At most ``max_creates`` requests a conforming server bills, ``max_requests`` in all."""

    max_creates: int = 1
    max_requests: int = 40

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Budget:
        """Read ``SORA_LIVE_MAX_CREATES`` (default 1) and ``SORA_LIVE_MAX_REQUESTS`` (default 40)."""
        env = os.environ if env is None else env
        return cls(int_env(env, MAX_CREATES_VAR, 1, 0), int_env(env, MAX_REQUESTS_VAR, 40, 1))
