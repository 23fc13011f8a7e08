"""Serve the mock through gunicorn (threaded worker), never Flask's development server."""

from __future__ import annotations

import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from .app import create_app
from .config import MockConfig

__all__ = ["DEFAULT_THREADS", "serve"]

DEFAULT_THREADS = 8


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: MockConfig, options: dict[str, Any]) -> None:
        self._config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self._config)


def _announce(arbiter: Any) -> None:
    """Print the address actually bound (useful with ``--port 0``) once the server is ready."""
    for listener in arbiter.LISTENERS:
        host, port = listener.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"sora-mock: listening on http://{shown}:{port}", file=sys.stderr, flush=True)


def serve(config: MockConfig, host: str = "127.0.0.1", port: int = 8000, threads: int = DEFAULT_THREADS) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly. One process keeps one state."""
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": 1,
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
    _Gunicorn(config, options).run()
