"""Serve the mock through gunicorn, never Flask's development server.

The app is built once in the gunicorn master, then ``workers`` processes are forked, each with
``threads`` threads (gthread worker). The master picks the state URL (:func:`prepare_state_url`:
with several workers and no ``--state``, a temporary SQLite file removed on exit); every worker's
app opens that store, connecting on first use in its own process, so the admin API sees one
journal, one list of characters and one fault queue whatever process answers. gunicorn reads
each request body lazily, so an oversized body is refused with 413 before it is read, and
``drop`` faults can shut the socket.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from ..app import create_app
from ..config import MockConfig
from ..middleware import CorkMiddleware
from ..store import prepare_state_url

__all__ = ["DEFAULT_THREADS", "DEFAULT_WORKERS", "serve", "serve_factory"]

DEFAULT_WORKERS = 2
"""Worker processes: one per core of a 2-core CI machine."""
DEFAULT_THREADS = 4
"""Threads per worker, so slow answers (latency, delay faults) do not block a whole process."""


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask | Callable[[], Flask], options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app if isinstance(self._app, Flask) else self._app()


def _announce(arbiter: Any) -> None:
    """Print the address actually bound (useful with ``--port 0``) once the server is ready."""
    for listener in arbiter.LISTENERS:
        host, port = listener.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"sora-mock: listening on http://{shown}:{port}", file=sys.stderr, flush=True)


def build_app(config: MockConfig) -> Flask:
    """The app to serve (``config.state`` must be a URL every worker can open)."""
    app = create_app(config)
    app.wsgi_app = CorkMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def serve(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = DEFAULT_THREADS,
    workers: int = DEFAULT_WORKERS,
    state: str | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly (exit status 0).

    ``state`` is the state URL the user gave (``None``: in-process with one worker, a temporary
    SQLite file with several).
    """
    with prepare_state_url(state, workers) as url:
        _serve(dataclasses.replace(config, state=url), host, port, threads, workers)


def _serve(config: MockConfig, host: str, port: int, threads: int, workers: int) -> None:
    app = build_app(config)
    master = os.getpid()
    gc.freeze()  # what the master built is shared, unscanned, by the forked workers (less copy-on-write)

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": True,
        "accesslog": None,  # the app writes its own access log when config.access_log is set
        "errorlog": "-",
        "loglevel": "warning",
        "graceful_timeout": 5,
        "keepalive": 5,
        "proc_name": "sora-mock",
        "when_ready": _announce,
    }
    try:
        _Gunicorn(app, options).run()
    finally:
        if os.getpid() == master:  # forked workers unwind through here too; only the master cleans up
            app.extensions["sora_mock"]["state"].close()


def serve_factory(
    factory: Callable[[], Flask],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = DEFAULT_THREADS,
    workers: int = 1,
    proc_name: str = "sora-mock",
    worker_exit: Callable[[], None] | None = None,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Serve the app ``factory`` builds in each worker process, with the same gunicorn settings as :func:`serve`.

    Nothing is built before forking, so each worker has its own connections. ``worker_exit`` runs
    in each worker as it stops, ``on_exit`` in the master once every worker has stopped.
    """
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": False,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "graceful_timeout": 5,
        "keepalive": 5,
        "proc_name": proc_name,
        "when_ready": _announce,
        "worker_exit": lambda arbiter, worker: worker_exit() if worker_exit else None,
        "on_exit": lambda arbiter: on_exit() if on_exit else None,
    }
    _Gunicorn(factory, options).run()
