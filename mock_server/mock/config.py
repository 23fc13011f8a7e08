"""The mock server's settings, one frozen dataclass passed to :func:`create_app`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .cors import check_origin

__all__ = ["DEFAULT_JOURNAL_BYTES", "MAX_BODY_BYTES", "MockConfig", "parse_hosts"]

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_JOURNAL_BYTES = 16 * 1024 * 1024
"""Bytes the journal keeps by default (the characters log has the same bound)."""
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?")


def parse_hosts(names: str | Iterable[str]) -> tuple[str, ...]:
    """Host names (a comma-separated string or an iterable), lower case; ``ValueError`` naming a bad one.

    ``*`` trusts every name (see :attr:`MockConfig.allowed_hosts`).
    """
    parts = names.split(",") if isinstance(names, str) else list(names)
    found: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise ValueError("allowed_hosts must hold host names (strings)")
        name = part.strip().lower().rstrip(".")
        if not name and isinstance(names, str):
            continue
        if name != "*" and not _HOST_NAME.fullmatch(name):
            raise ValueError(
                f"allowed host {part.strip()[:80]!r} is not a host name such as mock.internal "
                "(no scheme, no port), or *"
            )
        found.append(name)
    return tuple(found)


@dataclass(frozen=True)
class MockConfig:
    """Settings of one mock app. Every field has a default that serves a careful relay."""

    token: str | None = None
    """Accept only this bearer token; ``None`` accepts any non-empty token."""
    seed: int | None = None
    """Seed for usernames, id keys, signatures and random faults (reproducible runs)."""
    max_body_bytes: int = MAX_BODY_BYTES
    journal_size: int = 1000
    """How many endpoint requests (and characters) the journal keeps; oldest dropped."""
    journal_bytes: int = DEFAULT_JOURNAL_BYTES
    """How many bytes of entries the journal (and the characters log) keeps; oldest dropped."""
    state: str = "memory"
    """Where the state lives: ``memory``, ``sqlite:///PATH``, ``redis://HOST:PORT/DB`` or ``unix://PATH``.
    Every app opened with the same URL and prefix shares one journal, fault queue and serial counter."""
    state_prefix: str = "sora-mock:"
    """Key prefix inside the store, so several mocks can share one database."""
    latency_ms: int = 0
    """Extra delay before every endpoint answer."""
    fault_rate: float = 0.0
    """Probability (0..1) that an endpoint request gets ``fault_status`` instead of its answer."""
    fault_status: int = 500
    admin: bool = True
    """Serve the ``/__mock/`` admin API."""
    admin_token: str | None = None
    """When set, every ``/__mock/`` route requires ``Authorization: Bearer <admin_token>``."""
    access_log: bool = False
    """Print one line per request (method, path, status, ms); never headers or bodies."""
    defects: tuple[str, ...] = ()
    """Named ways of breaking the contract on purpose (see :mod:`mock_server.mock.defects`)."""
    cors: tuple[str, ...] = ()
    """Origins (``scheme://host[:port]``, or ``*`` for any) whose browser requests get CORS headers
    (see :mod:`mock_server.mock.cors`); empty: no CORS header at all."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names besides IP addresses and ``localhost`` the admin API may be addressed by (``Host``);
    ``*`` allows any. A name not listed is refused (403 ``untrusted_host``): a web page could point
    it at the mock (DNS rebinding) and drive the admin API."""
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ValueError("token must be a non-empty string or None")
        if self.admin_token is not None and not self.admin_token.strip():
            raise ValueError("admin_token must be a non-empty string or None")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if self.journal_size < 1:
            raise ValueError("journal_size must be at least 1")
        if self.journal_bytes < 1024:
            raise ValueError("journal_bytes must be at least 1024")
        if not self.state.strip():
            raise ValueError("state must be a state URL such as memory, sqlite:///PATH or redis://HOST:PORT/DB")
        if not self.state_prefix.strip():
            raise ValueError("state_prefix must not be empty: it keeps this mock's keys apart from others in the store")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be zero or more")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        if not 400 <= self.fault_status <= 599:
            raise ValueError("fault_status must be an HTTP error status (400-599)")
        if isinstance(self.cors, str) or not all(isinstance(origin, str) for origin in self.cors):
            raise ValueError("cors must be a tuple of origins, e.g. ('http://localhost:5173',) or ('*',)")
        object.__setattr__(self, "cors", tuple(check_origin(origin) for origin in self.cors))
        object.__setattr__(self, "allowed_hosts", parse_hosts(self.allowed_hosts))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MockConfig:
        """Build from a mapping of field names; unknown names are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown mock config keys: {', '.join(unknown)}")
        data = dict(values)
        if "defects" in data:
            data["defects"] = tuple(data["defects"])
        if isinstance(data.get("cors"), str):  # "http://a,http://b", as on the command line
            data["cors"] = tuple(part for part in data["cors"].split(",") if part.strip())
        elif "cors" in data:
            data["cors"] = tuple(data["cors"])
        return cls(**data)

    def __repr__(self) -> str:  # the token never shows up in logs or tracebacks
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        for secret in ("token", "admin_token"):
            if shown.get(secret) is not None:
                shown[secret] = "***"
        if "state" in shown:
            from ..store import safe_url

            shown["state"] = safe_url(shown["state"])
        return "MockConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
