"""The composition root: one function builds the endpoint core and what the admin API works on.

:func:`build` turns a :class:`MockConfig` into a :class:`Composition` — the opened state, the
contract, the seed and the :class:`~mock_server.mock.core.Endpoint` over them. Every way of serving
takes its parts from it: :func:`~mock_server.mock.app.create_app` (the Flask route and the admin
API), ``sora-mock serve``'s RSGI glue (which serves the app's endpoint natively) and the respx
router. A Flask app made by ``create_app`` carries its composition; :func:`composition_of` reads it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..contract.rules import Contract
from ..contract.spec import load_contract
from . import defects
from .config import MockConfig
from .core import Endpoint
from .state import MockState

__all__ = ["Composition", "build", "composition_of", "find_composition"]

_EXTENSION = "sora_mock"
"""The Flask extension slot holding an app's :class:`Composition` (read it with :func:`composition_of`)."""


@dataclass(frozen=True)
class Composition:
    """One mock: its settings, the state it keeps, the contract, the seed and the endpoint core."""

    config: MockConfig
    state: MockState
    contract: Contract
    seed: int
    endpoint: Endpoint

    def install(self, app: Any) -> None:
        """Attach to a Flask ``app`` (its adapters and admin API find it with :func:`composition_of`)."""
        app.extensions[_EXTENSION] = self


def build(config: MockConfig) -> Composition:
    """Open the state ``config`` names and build the endpoint core over it."""
    state = MockState.open(
        config.state, prefix=config.state_prefix, journal_size=config.journal_size, journal_bytes=config.journal_bytes
    )
    # Characters and random faults depend on (seed, serial) only, so every process sharing the
    # state gives the Nth character of a run the same body. Unseeded: a fresh seed per mock.
    seed = config.seed if config.seed is not None else random.SystemRandom().getrandbits(64)
    contract = load_contract()
    endpoint = Endpoint(config, state, contract, seed=seed, policy=defects.policy(config.defects))
    return Composition(config, state, contract, seed, endpoint)


def find_composition(app: object) -> Composition | None:
    """The composition of ``app`` when it is a mock app made by ``create_app``; ``None`` for any other app."""
    extensions = getattr(app, "extensions", None)
    found = extensions.get(_EXTENSION) if isinstance(extensions, dict) else None
    return found if isinstance(found, Composition) else None


def composition_of(app: object) -> Composition:
    """The composition of a mock app made by ``create_app``; ``TypeError`` for any other app."""
    found = find_composition(app)
    if found is None:
        raise TypeError(f"{app!r} is not a mock app made by mock_server.create_app")
    return found
