"""schemathesis CLI hooks: the kit's checks and prose-rule generation for ``schemathesis run``.

From the checkout, with the server's bearer token in ``SORA_API_KEY``::

    SCHEMATHESIS_HOOKS=contract_tests.hooks schemathesis run openapi/characters.yaml --url URL

Importing this module registers the custom checks of :mod:`contract_tests.suite` (one definition,
shared with the pytest suites) and, globally, its ``flatmap_body`` generation hook; the schema the
CLI loads is then judged as a target with ``SORA_API_KEY`` as its token, in the lenient profile
(``SORA_CONTRACT_STRICT=1``: the strict one). ``schemathesis.toml`` beside it sends the token and
picks the checks that cannot false-alarm. Never import it into a process that builds suites with
:func:`contract_tests.suite.build_schema`: that one already installs the hook on its own schemas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import schemathesis

from .suite import DEFAULT_TOKEN, Target, flatmap_body, register

__all__ = ["after_load_schema", "flatmap_body", "target_from_env"]


def target_from_env(env: Mapping[str, str] | None = None) -> Target:
    """The target the CLI checks: token from ``SORA_API_KEY``, profile from ``SORA_CONTRACT_STRICT``."""
    env = os.environ if env is None else env
    key = env.get("SORA_API_KEY", "").strip()
    strict = env.get("SORA_CONTRACT_STRICT", "").strip().lower() in ("1", "true", "yes")
    return Target(token=key or DEFAULT_TOKEN, strict=strict, token_known=bool(key))


@schemathesis.hook
def after_load_schema(context: schemathesis.HookContext, schema: Any) -> None:
    """Let the kit's checks judge the schema the CLI loaded."""
    register(schema, target_from_env())


schemathesis.hook(flatmap_body)
