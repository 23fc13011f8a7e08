"""RSGI glue: read each request body asynchronously, then hand the buffered request to a WSGI app.

granian reads request headers on its own event loop (a slow header sender costs no thread); this
glue does the same for the body: it refuses an announced ``Content-Length`` over the limit with
413 before reading, reads a body of unknown length (chunked) up to the limit, and gives up with
408 when the body does not arrive within the read timeout. Only a complete body reaches the WSGI
app, which then runs without waiting on the network.

Two signals travel from the app back through the environ:

* :data:`~mock_server.middleware.DEFER_DELAY` — a callable the app uses instead of ``time.sleep``
  for deliberate delays (latency, delay faults). The glue awaits the total before answering, so a
  sleeping request holds no thread and other routes (the admin API) answer meanwhile.
* a :class:`~mock_server.faults.DroppedConnection` raised by the app — the glue shuts the client
  connection's socket, so the client gets no answer at all.

Apps that block on the network themselves (a proxy view calling an upstream) run in a thread pool
instead of on the event loop: pass ``threads`` > 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..contract.rules import Violation, error_body
from ..faults import DroppedConnection
from ..middleware import DEFER_DELAY

__all__ = ["BufferedWSGI", "envelope", "shut_client_socket"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

_log = logging.getLogger("sora_mock.serving")
_JSON = ("content-type", "application/json")


def envelope(status: int, message: str, code: str, param: str | None = None) -> bytes:
    """The JSON error envelope the app uses, for answers the glue gives itself."""
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    body = error_body(Violation(status, param, code, message), error_type)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class _BodyError(Exception):
    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


class BufferedWSGI:
    """An RSGI application (``__rsgi__``) serving the WSGI ``app`` with buffered request bodies.

    ``max_body_bytes`` caps every body (413 beyond it); ``read_timeout`` bounds the time to
    receive a whole body (408 beyond it); ``threads`` > 0 runs the app in a pool of that many
    threads, 0 runs it on the event loop (right for an app that never waits on I/O).
    """

    def __init__(self, app: WSGIApp, *, max_body_bytes: int, read_timeout: float, threads: int = 0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="sora-mock-app") if threads > 0 else None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to prepare: the app was built by the factory."""

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":  # websockets are not served
            return
        try:
            body = await self._read_body(scope, protocol)
        except _BodyError as exc:
            headers = [_JSON, ("connection", "close")]
            protocol.response_bytes(exc.status, headers, envelope(exc.status, exc.message, exc.code, exc.param))
            return
        delays: list[float] = []
        environ = self._environ(scope, body, delays)
        try:
            if self.pool is None:
                status, headers, payload = _call(self.app, environ)
            else:
                loop = asyncio.get_running_loop()
                status, headers, payload = await loop.run_in_executor(self.pool, _call, self.app, environ)
        except DroppedConnection:
            if delays:
                await asyncio.sleep(sum(delays))
            shut_client_socket(scope.client, scope.server)
            protocol.response_empty(500, [("connection", "close")])
            return
        except Exception:
            _log.exception("unhandled error in the app on %s %s", scope.method, scope.path)
            status, headers = 500, [_JSON]
            payload = envelope(500, "The server failed unexpectedly.", "server_error")
        if delays:
            await asyncio.sleep(sum(delays))
        protocol.response_bytes(status, headers, payload)

    async def _read_body(self, scope: Any, protocol: Any) -> bytes:
        length_header = scope.headers.get("content-length")
        length: int | None = None
        if length_header is not None:  # the HTTP layer already rejects a malformed Content-Length
            length = int(length_header)
            if length > self.max_body_bytes:
                raise _BodyError(413, self._too_large(), "request_too_large")
            if length == 0:
                return b""
        elif scope.method in ("GET", "HEAD", "DELETE", "OPTIONS") and "transfer-encoding" not in scope.headers:
            return b""
        try:
            async with asyncio.timeout(self.read_timeout):
                return await self._receive(protocol, length)
        except TimeoutError:
            raise _BodyError(
                408, f"The request body did not arrive within {self.read_timeout:g} seconds.", "request_timeout"
            ) from None

    async def _receive(self, protocol: Any, length: int | None) -> bytes:
        if length is not None:  # bounded by the check above; the HTTP layer stops at Content-Length
            try:
                data: bytes = await protocol()
            except Exception:  # the client hung up or stalled mid-body
                raise _BodyError(400, "The request body ended before its Content-Length.", "incomplete_body") from None
            if len(data) != length:
                raise _BodyError(400, "The request body ended before its Content-Length.", "incomplete_body")
            return data
        chunks: list[bytes] = []
        size = 0
        stream = protocol.__aiter__()
        while True:
            try:
                chunk: bytes = await stream.__anext__()
            except StopAsyncIteration:
                return b"".join(chunks)
            if not chunk:
                # granian yields one empty chunk at the end of a body; a second one means the body
                # stream failed (malformed chunked framing, or the client hung up mid-body).
                try:
                    await stream.__anext__()
                except StopAsyncIteration:
                    return b"".join(chunks)
                raise _BodyError(400, "The chunked request body is malformed or incomplete.", "malformed_body")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyError(413, self._too_large(), "request_too_large")
            chunks.append(chunk)

    def _too_large(self) -> str:
        return f"The request body is larger than the limit of {self.max_body_bytes} bytes."

    def _environ(self, scope: Any, body: bytes, delays: list[float]) -> dict[str, Any]:
        server_host, _, server_port = scope.server.rpartition(":")
        client_host, _, client_port = scope.client.rpartition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": server_host.strip("[]"),
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client_host.strip("[]"),
            "REMOTE_PORT": client_port,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": self.pool is not None,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            DEFER_DELAY: delays.append,
        }
        for name, value in scope.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):  # the body is buffered and de-chunked
                continue
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


def _call(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """Run the WSGI app to completion: (status, headers, body)."""
    started: list[Any] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
        started[:] = [status, headers]
        return written.append

    written: list[bytes] = []
    result = app(environ, start_response)
    try:
        written.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(started[0].split(" ", 1)[0]), started[1], b"".join(written)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def shut_client_socket(client: str, server: str) -> bool:
    """Shut down this process's TCP connection from ``client`` to ``server`` (``"host:port"`` each).

    The server does not hand its sockets to the app, so the connection is found among the process's
    open descriptors by its two addresses; shutting down a duplicate descriptor shuts the
    connection itself. Returns whether it was found (Linux only).
    """
    try:
        peer, local = _address(client), _address(server)
        names = os.listdir("/proc/self/fd")
    except (OSError, ValueError):
        return False
    for name in names:
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with sock:
            try:
                if sock.type != socket.SOCK_STREAM or sock.getpeername()[:2] != peer:
                    continue
                if sock.getsockname()[1] != local[1]:
                    continue
            except OSError:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return True
    return False
