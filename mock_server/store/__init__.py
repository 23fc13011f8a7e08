"""Where a server's state lives: one :class:`Store` interface, backends chosen by a URL.

``memory`` keeps the state in the process (what :func:`mock_server.mock.app.create_app`, the pytest
fixtures and the respx router use); ``sqlite:///PATH`` is the embedded default of a
multi-worker ``sora-mock serve``; ``redis://HOST:PORT/DB`` (or ``unix://PATH``) lets several
servers, on one machine or many, share one state. Every process that opens the same URL (and
prefix) sees the same logs, counters and counted tables (see :mod:`mock_server.store.base`).
"""

from __future__ import annotations

from .base import (
    IDENTITY,
    StateLost,
    Store,
    StoreUnavailable,
    check_prefix,
    check_shareable,
    expect_identity,
    is_memory_url,
    prepare_state_url,
    safe_url,
)
from .factory import open_store

__all__ = [
    "IDENTITY",
    "StateLost",
    "Store",
    "StoreUnavailable",
    "check_prefix",
    "check_shareable",
    "expect_identity",
    "is_memory_url",
    "open_store",
    "prepare_state_url",
    "safe_url",
]
