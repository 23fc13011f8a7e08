"""The server under test (:class:`Target`), the suite's constants, and the registry that ties a schema to its target."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from schemathesis import Case, Response

from mock_server.contract.rules import EXAMPLE_TASK_ID, EXAMPLE_VIDEO_URL
from mock_server.contract.spec import load_contract

from .verdicts import Kind, Pacer, Tally, classify, install, parse_rate

__all__ = [
    "CONTRACT",
    "DEFAULT_SEED",
    "DEFAULT_TOKEN",
    "TASK",
    "TASK_FIELD",
    "UNKNOWN_TOKEN_NOTE",
    "URL_FIELD",
    "VIDEO",
    "AnyCase",
    "Target",
    "register",
    "schema_target",
    "tally_of",
]

DEFAULT_TOKEN = "contract-suite-token"
UNKNOWN_TOKEN_NOTE = (
    "SORA_API_KEY is not set, so the suite cannot know which tokens the server refuses: "
    "wrong-token checks skipped (export SORA_API_KEY to enforce them)"
)
DEFAULT_SEED = 20251125
VIDEO = EXAMPLE_VIDEO_URL
TASK = EXAMPLE_TASK_ID
CONTRACT = load_contract()
AnyCase: TypeAlias = "Case[Any]"
URL_FIELD, TASK_FIELD = CONTRACT.sources


@dataclass(frozen=True)
class Target:
    """The server under test: a WSGI app in-process, or a base URL."""

    token: str = field(default=DEFAULT_TOKEN, repr=False)
    base_url: str | None = None
    app: Any = field(default=None, repr=False, compare=False)
    strict: bool = True
    token_known: bool = True
    """Whether ``token`` is the one the server expects (so any other bearer token must be refused)."""
    rate: float | None = None
    """Requests per second to send at most, set up front (``RATE=N/s``); ``None``: as fast as answered."""

    @classmethod
    def in_process(cls, defects: tuple[str, ...] = (), token: str = DEFAULT_TOKEN) -> Target:
        """The mock app (with optional defects) as the target; strict profile."""
        from mock_server.mock.app import create_app
        from mock_server.mock.config import MockConfig

        return cls(token=token, app=create_app(MockConfig(token=token, defects=defects)), strict=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Target:
        """``SORA_CONTRACT_TARGET`` (URL; unset = in-process mock), ``SORA_API_KEY``, ``SORA_CONTRACT_STRICT``,
        ``SORA_CONTRACT_RATE`` (``N/s``, ``N/m``, or a number per second)."""
        env = os.environ if env is None else env
        url = env.get("SORA_CONTRACT_TARGET", "").strip().rstrip("/")
        key = env.get("SORA_API_KEY", "").strip()
        token = key or DEFAULT_TOKEN
        strict_raw = env.get("SORA_CONTRACT_STRICT", "").strip().lower()
        rate = parse_rate(env.get("SORA_CONTRACT_RATE", ""))
        if not url:
            target = cls.in_process(token=token)
            strict = target.strict if not strict_raw else strict_raw in ("1", "true", "yes")
            return cls(token, None, target.app, strict, rate=rate)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"SORA_CONTRACT_TARGET must be an http(s) URL, got {url!r}")
        strict = strict_raw in ("1", "true", "yes")
        return cls(token=token, base_url=url, strict=strict, token_known=bool(key), rate=rate)

    @property
    def label(self) -> str:
        return self.base_url or "in-process mock"

    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_TARGETS: dict[int, tuple[object, Target, Tally]] = {}


def register(schema: Any, target: Target, tally: Tally | None = None) -> Tally:
    """Make the custom checks judge requests of ``schema`` (a loaded schemathesis schema) for ``target``.

    Every request of a URL target then goes through :class:`~contract_tests.verdicts.ResendingTransport`:
    throttled and transient answers are waited out and resent, and ``tally`` (returned) counts the
    requests judged and those that were not.
    """
    tally = tally or Tally()
    _TARGETS[id(schema.raw_schema)] = (schema.raw_schema, target, tally)
    if target.app is None:
        install(schema, tally, Pacer(floor=1 / target.rate if target.rate else 0.0))
    return tally


def tally_of(schema: Any) -> Tally:
    """The tally of a schema passed to :func:`register`."""
    return _TARGETS[id(schema.raw_schema)][2]


def schema_target(case: AnyCase, response: Response | None = None) -> Target | None:
    """The target of ``case``'s schema, or ``None`` (not ours, or an answer that is no verdict)."""
    raw = case.operation.schema.raw_schema
    entry = _TARGETS.get(id(raw))
    if entry is None or entry[0] is not raw:
        return None
    if response is not None and classify(response.status_code, response.headers, response.content or b"") in (
        Kind.THROTTLED,
        Kind.GUARD,
    ):
        return None  # a limiter or a guard answered: not the relay's verdict (normally resent before this)
    return entry[1]
