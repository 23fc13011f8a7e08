"""schemathesis CLI hooks: the kit's checks and prose-rule generation for ``schemathesis run``.

From the checkout, with the server's bearer token in ``SORA_API_KEY``::

    SCHEMATHESIS_HOOKS=contract_tests.hooks schemathesis run openapi/characters.yaml --url URL

Importing this module registers the custom checks of :mod:`contract_tests.checks` (one definition,
shared with the pytest suites), globally its ``flatmap_body`` generation hook, and its boundary
cases as explicit examples; the schema the
CLI loads is then judged as a target with ``SORA_API_KEY`` as its token, in the lenient profile
(``SORA_CONTRACT_STRICT=1``: the strict one). ``schemathesis.toml`` beside it sends the token and
picks the checks that cannot false-alarm. Every request the CLI sends goes through the resending
transport of :mod:`contract_tests.verdicts` (429s and gateway hiccups waited out and resent; a
request throttled throughout, or answered by a guard, is an error, never a pass).
Never import it into a process that builds suites with
:func:`contract_tests.suite.build_schema`: that one already installs the hook on its own schemas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import schemathesis

from .suite import BOUNDARY_CASES, DEFAULT_TOKEN, Target, flatmap_body, make_case, parse_rate, register, skip_reason

__all__ = ["after_load_schema", "before_add_examples", "flatmap_body", "target_from_env"]


def target_from_env(env: Mapping[str, str] | None = None) -> Target:
    """The target the CLI checks: token from ``SORA_API_KEY``, profile from ``SORA_CONTRACT_STRICT``,
    pace from ``SORA_CONTRACT_RATE``."""
    env = os.environ if env is None else env
    key = env.get("SORA_API_KEY", "").strip()
    strict = env.get("SORA_CONTRACT_STRICT", "").strip().lower() in ("1", "true", "yes")
    rate = parse_rate(env.get("SORA_CONTRACT_RATE", ""))
    return Target(token=key or DEFAULT_TOKEN, strict=strict, token_known=bool(key), rate=rate)


@schemathesis.hook
def after_load_schema(context: schemathesis.HookContext, schema: Any) -> None:
    """Let the kit's checks judge the schema the CLI loaded, every request through the resending transport."""
    register(schema, target_from_env())


@schemathesis.hook
def before_add_examples(context: schemathesis.HookContext, examples: list[Any]) -> None:
    """Send the suite's hand-picked boundary cases as explicit examples: every rule, every run."""
    operation = getattr(context, "operation", None)
    if operation is None or operation.method.upper() != "POST":
        return
    target = target_from_env()
    examples.extend(
        make_case(operation, boundary, target) for boundary in BOUNDARY_CASES if skip_reason(boundary, target) is None
    )


schemathesis.hook(flatmap_body)
