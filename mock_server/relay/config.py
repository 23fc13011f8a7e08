"""The guard's settings (:class:`GuardConfig`), its names on the wire and its public URL helpers."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..contract.spec import RELAY_BASE_URL
from ..mock.config import MAX_BODY_BYTES

__all__ = [
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_UPSTREAM",
    "GUARD_HEADER",
    "GUARD_PREFIX",
    "METHOD_OVERRIDE_HEADERS",
    "REPORT_PATH",
    "RESET_PATH",
    "SETTLING",
    "GuardConfig",
    "public_url",
    "upstream_problem",
]

DEFAULT_UPSTREAM = RELAY_BASE_URL
"""The paid relay's base URL."""
DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024
"""Bytes of one upstream answer the guard reads, as received and once decoded (a character is under 1 KB)."""
GUARD_PREFIX = "/__guard"
GUARD_HEADER = "X-Sora-Guard"
REPORT_PATH = f"{GUARD_PREFIX}/report"
RESET_PATH = f"{GUARD_PREFIX}/reset"
SETTLING = "sora_guard.settling"
"""Environ key: true in the request context that settles a deferred exchange (its answer is the final one)."""
METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
"""Headers some servers read as the request's real method: on the endpoint, anything but POST is a 405."""


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment (safe to show in logs and reports)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def upstream_problem(url: str) -> str | None:
    """Why ``url`` cannot be the upstream (naming what it probably meant), or ``None`` when it can."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"must be an absolute http(s) URL with a numeric port, such as {parts.scheme or 'http'}://HOST:8000"
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    if "://" not in url:
        shown = url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1].lstrip("/")
        if shown and urlsplit(f"http://{shown}").hostname:
            return f"must be an absolute http(s) URL, got {shown!r} with no scheme: did you mean http://{shown}?"
        return "must be an absolute http(s) URL such as http://127.0.0.1:8000"
    return f"must be an absolute http(s) URL, got {parts.scheme or 'no scheme'}://…"


@dataclass(frozen=True)
class GuardConfig:
    """Settings of one guard. ``repr`` never shows credentials of the upstream or state URLs."""

    upstream: str = DEFAULT_UPSTREAM
    """Base URL requests are forwarded to (a path prefix is kept)."""
    max_creates: int = 10
    """Creates reserved (billable or maybe billed) allowed until ``POST /__guard/reset``."""
    timeout: float = 60.0
    """Seconds the whole exchange with the upstream may take: connect, send, the answer's last byte."""
    pass_through: bool = False
    """Forward paths other than the endpoint unchecked; otherwise they get a local 404."""
    record_dir: str | None = None
    """Save each forwarded answer here as a corpus-format fixture (token and ``sig=`` scrubbed)."""
    report_path: str | None = None
    """Where the stopping server writes the report as JSON."""
    state_url: str = "memory"
    """Store holding the budget and findings; every worker opening the same URL shares them."""
    state_prefix: str = "sora-guard:"
    max_body_bytes: int = MAX_BODY_BYTES
    max_findings: int = 1000
    """Findings kept (the oldest are dropped)."""
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    """Bytes of an upstream answer read, as received and decoded; a longer one is a 502."""

    def __post_init__(self) -> None:
        problem = upstream_problem(self.upstream)
        if problem is not None:
            raise ValueError(f"upstream {problem}")
        if self.max_creates < 0:
            raise ValueError("max_creates must be zero or more")
        if not self.timeout > 0:
            raise ValueError("timeout must be more than zero seconds")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if self.max_findings < 1:
            raise ValueError("max_findings must be at least 1")
        if self.max_answer_bytes < 1:
            raise ValueError("max_answer_bytes must be at least 1")

    def __repr__(self) -> str:
        shown: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["upstream"] = public_url(self.upstream)
        if "@" in self.state_url:  # redis://user:password@host
            scheme, _, rest = self.state_url.partition("://")
            shown["state_url"] = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return "GuardConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
