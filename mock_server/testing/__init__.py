"""Test helpers for client projects: the HTTP mock server, the respx router and the pytest plugin.

Names are imported on first use, so loading the pytest plugin (:mod:`mock_server.testing.plugin`)
in every pytest run of an environment that has the kit stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .respx_router import RELAY_BASE_URL, SoraRouter, default_base_urls
    from .server import DEFAULT_TOKEN, MockHandle, SoraServer, build_config

_HOMES = {
    "DEFAULT_TOKEN": "server",
    "MockHandle": "server",
    "SoraServer": "server",
    "build_config": "server",
    "RELAY_BASE_URL": "respx_router",
    "SoraRouter": "respx_router",
    "default_base_urls": "respx_router",
}

__all__ = [
    "DEFAULT_TOKEN",
    "RELAY_BASE_URL",
    "MockHandle",
    "SoraRouter",
    "SoraServer",
    "build_config",
    "default_base_urls",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)
