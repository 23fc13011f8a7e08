"""The URL → backend factory: the one place that knows every backend (so :mod:`.base` knows none)."""

from __future__ import annotations

from ..extras import require
from .base import Store, check_prefix, expected_identity, is_memory_url, safe_url

__all__ = ["open_store"]


def open_store(url: str = "memory", *, prefix: str = "sora-mock:", max_items: int = 1000, max_bytes: int = 0) -> Store:
    """Open the store a URL names: ``memory``, ``sqlite:///PATH``, ``redis://HOST:PORT/DB`` or ``unix://PATH``.

    ``sqlite:///state.db`` is relative to the working folder, ``sqlite:////tmp/state.db`` absolute.
    ``max_bytes`` 0 means no byte bound. Opening connects to nothing: each process connects on
    first use, so a store opened before ``fork()`` works in every child. An unknown scheme, or an
    empty ``prefix`` (a reset would then delete keys of other applications sharing the store), is
    a ``ValueError`` naming the problem.
    """
    check_prefix(prefix)
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    if max_bytes < 0:
        raise ValueError("max_bytes must be zero (no bound) or more")
    store: Store
    if is_memory_url(url):
        from .memory import MemoryStore

        return MemoryStore(prefix=prefix, max_items=max_items, max_bytes=max_bytes)
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        store = SQLiteStore(url, prefix=prefix, max_items=max_items, max_bytes=max_bytes)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        require("redis", "redis", "a redis:// (or unix://) state")
        from .redis import RedisStore

        store = RedisStore(url, prefix=prefix, max_items=max_items, max_bytes=max_bytes)
    else:
        raise ValueError(
            f"unknown state URL {safe_url(url)!r}; use memory, sqlite:///PATH, redis://HOST:PORT/DB or unix://PATH"
        )
    store.identity = expected_identity(url, prefix)
    return store
