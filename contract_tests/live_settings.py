"""What one live run may do (:class:`LiveSettings`), read from the environment, and the defaults it starts from."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mock_server.contract.rules import EXAMPLE_TASK_ID, EXAMPLE_VIDEO_URL
from mock_server.contract.spec import ENDPOINT_PATH, RELAY_BASE_URL
from mock_server.errors import ConfigError
from mock_server.relay.budget import Budget, BudgetError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_JUNIT",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_VIDEO_URL",
    "ENV_HELP",
    "EXAMPLE_TASK_ID",
    "LiveSettings",
    "SettingsError",
]

DEFAULT_BASE_URL = RELAY_BASE_URL
DEFAULT_VIDEO_URL = EXAMPLE_VIDEO_URL
DEFAULT_JUNIT = Path("reports/live.xml")
DEFAULT_MAX_WAIT = 120.0

ENV_HELP = """\
environment:
  SORA_BASE_URL           server to check (default https://api.jxincm.cn, the paid relay)
  SORA_API_KEY            bearer token (required; when unset or empty nothing is sent, exit 2)
  SORA_LIVE_MAX_CREATES   at most this many requests a conforming server answers 200, i.e.
                          billable creates (default 1; 0 skips the create checks)
  SORA_LIVE_MAX_REQUESTS  hard cap on requests sent, retries included (default 40)
  SORA_LIVE_VIDEO_URL     video for the create and for every rejection probe
                          (default: the seed's example video)
  SORA_LIVE_TASK_ID       optional task id; when set (and the create budget allows) the
                          from_task form is also created, counted against SORA_LIVE_MAX_CREATES
  SORA_LIVE_TIMEOUT       seconds per request (default 60); a slow create is not a failure

cost: a run sends about 15 requests; only the create (plus the task create, when
SORA_LIVE_TASK_ID is set and SORA_LIVE_MAX_CREATES >= 2) is billable on a conforming server.
resends: a 429, and a gateway's 502/503 (not the relay's JSON error, or with Retry-After), are
waited out (Retry-After, at most 10 s, else 0.25 s doubling; --max-wait in total) and sent again,
at most 5 times. A create is resent only after a 429 or a gateway's 502/503 (it never reached the
relay, so it cannot have been billed); never after a 504 or a timeout (the relay may have created).
exit status: 0 when the contract holds, 1 when a check fails, 2 on a configuration error,
3 when the server cannot be reached (connection refused, DNS or TLS failure): the run stops at
the first such failure, and nothing is said about the contract; 4 when a probe got no verdict
(throttled throughout, answered by a guard, a create not resent): the contract was not checked.
"""


class SettingsError(ConfigError, ValueError):
    """The environment does not describe a run that can start (nothing was sent)."""


@dataclass(frozen=True)
class LiveSettings:
    """What one live run may do; built from the environment by :meth:`from_env`."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    max_creates: int = 1
    max_requests: int = 40
    video_url: str = DEFAULT_VIDEO_URL
    task_id: str | None = None
    timeout: float = 60.0
    max_wait: float = DEFAULT_MAX_WAIT
    rate: float | None = None
    """Probes per second at most, set up front (``--rate-limit``); the run also slows down on 429s."""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, max_wait: float = DEFAULT_MAX_WAIT, rate: float | None = None
    ) -> LiveSettings:
        """Read the ``SORA_*`` variables; :class:`SettingsError` says what is missing or wrong."""
        env = os.environ if env is None else env
        key = env.get("SORA_API_KEY", "").strip()
        if not key:
            raise SettingsError(
                "SORA_API_KEY is not set: export the relay's bearer token as SORA_API_KEY; nothing was sent"
            )
        base_url = env.get("SORA_BASE_URL", "").strip() or DEFAULT_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise SettingsError(f"SORA_BASE_URL must be an http(s) URL, got {base_url!r}")
        if "/sora/v1" in urlsplit(base_url).path:
            base = base_url[: base_url.index("/sora/v1", base_url.index("//") + 2)]
            raise SettingsError(
                f"SORA_BASE_URL is the server's base URL, without the endpoint path: the run adds {ENDPOINT_PATH} "
                f"itself; use SORA_BASE_URL={base}; nothing was sent"
            )
        raw_timeout = env.get("SORA_LIVE_TIMEOUT", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 60.0
        except ValueError:
            raise SettingsError(f"SORA_LIVE_TIMEOUT must be a number of seconds, got {raw_timeout!r}") from None
        if not math.isfinite(timeout) or timeout <= 0:
            raise SettingsError(f"SORA_LIVE_TIMEOUT must be a positive number of seconds, got {raw_timeout!r}")
        try:
            budget = Budget.from_env(env)
        except BudgetError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            api_key=key,
            base_url=base_url.rstrip("/"),
            max_creates=budget.max_creates,
            max_requests=budget.max_requests,
            video_url=env.get("SORA_LIVE_VIDEO_URL", "").strip() or DEFAULT_VIDEO_URL,
            task_id=env.get("SORA_LIVE_TASK_ID", "").strip() or None,
            timeout=timeout,
            max_wait=max_wait,
            rate=rate,
        )
