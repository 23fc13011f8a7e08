"""The kit's exceptions: one root, :class:`SoraKitError`, and a family for each kind of trouble.

Every exception the kit raises for its callers derives from :class:`SoraKitError`, so
``except SoraKitError`` catches them all; a family narrows it (as httpx's ``HTTPError`` does). The
classes keep their older bases too (``StubError`` is still a ``ValueError``), so code catching by
those keeps working.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ContractError", "ServingError", "SoraKitError", "StoreError"]


class SoraKitError(Exception):
    """The root of every exception the kit raises."""


class ContractError(SoraKitError):
    """A request or an answer breaks the endpoint's contract (:class:`~mock_server.contract.rules.RuleError`)."""


class ConfigError(SoraKitError):
    """A setting or a description the kit refuses: a fault, a stub, the live run's settings."""


class StoreError(SoraKitError):
    """The state store: unreachable, or a bound reached (the fault queue, the stubs)."""


class ServingError(SoraKitError):
    """Serving and connections: a port in use, a server that did not start, a dropped connection."""
