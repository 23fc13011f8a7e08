"""WSGI-level helpers: closing a connection unanswered for ``drop`` faults, and the access log."""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any
from urllib.parse import quote

from .faults import DroppedConnection

__all__ = ["DROP_FLAG", "AccessLogMiddleware", "DropMiddleware", "SocketDropped", "access_line"]

DROP_FLAG = "sora_mock.drop"
_DROPPED = "connection dropped by an injected fault"
_SOCKET_KEYS = ("werkzeug.socket", "sora_mock.socket")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DropMiddleware:
    """When a view sets ``environ[DROP_FLAG]``, shut the client socket and send nothing.

    Servers that expose the socket in the environ get it shut down at once, then a
    :class:`SocketDropped` (a :class:`DroppedConnection` that is also a ``BrokenPipeError``, so
    werkzeug closes the connection without logging an error); in-process callers,
    such as a respx route, see a plain :class:`DroppedConnection`.
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
                raise SocketDropped(errno.EPIPE, _DROPPED)
        raise DroppedConnection(_DROPPED)


class SocketDropped(DroppedConnection, BrokenPipeError):
    """The client socket was shut on purpose: servers see a broken pipe and close it quietly."""


class AccessLogMiddleware:
    """Write ``METHOD PATH STATUS MSms`` for every request to ``stream`` (stderr by default).

    Only the method, the path (no query string), the status and the duration are written:
    never headers, bodies or the bearer token. A dropped connection is logged with status ``-``.
    """

    def __init__(self, app: WSGIApp, stream: IO[str] | None = None) -> None:
        self.app = app
        self.stream = stream

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["-"]

        def recording(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            status[0] = code.split(" ", 1)[0]
            writer: Callable[[bytes], Any] = start_response(code, headers, exc_info)
            return writer

        try:
            result = self.app(environ, recording)
        except BaseException:
            self._log(environ, status[0], started)
            raise
        return self._logged(result, environ, status, started)

    def _logged(
        self, result: Iterable[bytes], environ: dict[str, Any], status: list[str], started: float
    ) -> Iterator[bytes]:
        try:
            yield from result
        finally:
            if hasattr(result, "close"):
                result.close()
            self._log(environ, status[0], started)

    def _log(self, environ: dict[str, Any], status: str, started: float) -> None:
        path = str(environ.get("PATH_INFO", "")).encode("latin-1", "replace").decode("utf-8", "replace")
        access_line(environ.get("REQUEST_METHOD", "-"), path, status, started, self.stream)


def access_line(method: str, path: str, status: str, started: float, stream: IO[str] | None = None) -> None:
    """Write ``METHOD PATH STATUS MSms`` (``started`` from ``time.perf_counter``) to ``stream`` (stderr)."""
    elapsed = (time.perf_counter() - started) * 1000
    shown = quote((path or "/").encode("utf-8", "surrogateescape"), safe="/:@!$&'()*+,;=-._~%")
    with contextlib.suppress(OSError, ValueError):
        out = stream or sys.stderr
        out.write(f"{method} {shown} {status} {elapsed:.1f}ms\n")
        out.flush()
