"""WSGI-level helpers: closing a connection unanswered for ``drop`` faults."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterable
from typing import Any

from .faults import DroppedConnection

__all__ = ["DROP_FLAG", "DropMiddleware"]

DROP_FLAG = "sora_mock.drop"
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket", "sora_mock.socket")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DropMiddleware:
    """When a view sets ``environ[DROP_FLAG]``, shut the client socket and send nothing.

    Servers that expose the socket in the environ get it shut down at once; the
    :class:`DroppedConnection` raised afterwards stops the server from writing an answer
    (in-process callers, such as a respx route, see the exception itself).
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        held: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            held.append((status, headers, exc_info))
            return lambda data: None

        result = self.app(environ, hold)
        if not environ.get(DROP_FLAG):
            start_response(*held[0])
            return result
        if hasattr(result, "close"):
            result.close()
        for key in _SOCKET_KEYS:
            sock = environ.get(key)
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                break
        raise DroppedConnection("connection dropped by an injected fault")
