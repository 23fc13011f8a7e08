"""Test helpers for client projects: the HTTP mock server, the respx router and the pytest plugin.

Names are imported on first use, so loading the pytest plugin (:mod:`mock_server.testing.plugin`)
in every pytest run of an environment that has the kit stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports, typed_homes

# The one list of public names: type checkers read these imports, and the lazy-import table and
# ``__all__`` are derived from them.
if TYPE_CHECKING:
    from .respx_router import RELAY_BASE_URL as RELAY_BASE_URL
    from .respx_router import SoraRouter as SoraRouter
    from .respx_router import default_base_urls as default_base_urls
    from .sora_server import DEFAULT_TOKEN as DEFAULT_TOKEN
    from .sora_server import MockHandle as MockHandle
    from .sora_server import SoraServer as SoraServer
    from .sora_server import build_config as build_config

_HOMES = typed_homes(__file__)
__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)
