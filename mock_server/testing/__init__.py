"""Test helpers for client projects: the HTTP mock server, the respx router and the pytest plugin.

Names are imported on first use, so loading the pytest plugin (:mod:`mock_server.testing.plugin`)
in every pytest run of an environment that has the kit stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .respx_router import RELAY_BASE_URL, SoraRouter, default_base_urls, wsgi_answer
    from .server import DEFAULT_TOKEN, MockHandle, SoraServer, build_config

_HOMES = {
    "DEFAULT_TOKEN": "server",
    "MockHandle": "server",
    "SoraServer": "server",
    "build_config": "server",
    "RELAY_BASE_URL": "respx_router",
    "SoraRouter": "respx_router",
    "default_base_urls": "respx_router",
    "wsgi_answer": "respx_router",
}

__all__ = [
    "DEFAULT_TOKEN",
    "RELAY_BASE_URL",
    "MockHandle",
    "SoraRouter",
    "SoraServer",
    "build_config",
    "default_base_urls",
    "wsgi_answer",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
