"""RSGI glue: the endpoint core called straight from granian, and buffered WSGI for the rest.

granian reads request headers on its own event loop (a slow header sender costs no thread); this
glue does the same for the body: it refuses an announced ``Content-Length`` over the limit before
reading, reads a body of unknown length (chunked) up to the limit, and gives up when the body does
not arrive within the read timeout. Then:

* a request for the endpoint path goes to the :class:`~mock_server.mock.core.Endpoint` as a core
  :class:`~mock_server.mock.core.Request` (no WSGI environ); the transport's verdict (413, 408, a
  broken body) travels in it, so the core answers and journals it like any other refusal. The
  answer's ``delay`` is awaited on the event loop (a sleeping request holds no thread, the admin
  API answers meanwhile) and a ``drop`` shuts the client's socket;
* every other request (the admin API, unknown paths) reaches the WSGI app with the buffered body.

Apps that block on the network themselves (a proxy view calling an upstream) run in a thread pool
instead of on the event loop: pass ``threads`` > 0. Such an app can also hand its wait to the event
loop: the environ says it may (:data:`DEFERRABLE`), and the app leaves a coroutine function under
:data:`DEFERRED`, whose ``(status, headers, body)`` is then awaited and sent instead of the app's
own answer. The pool's threads are then free for the answers the app gives at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..contract.http import envelope, incomplete_body, timed_out, too_large
from ..contract.rules import Violation
from ..mock.core import Answer, Endpoint, Request
from ..mock.faults import DroppedConnection
from ..mock.middleware import access_line

__all__ = ["DEFERRABLE", "DEFERRED", "MAX_HEADER_BYTES", "MAX_TARGET_BYTES", "BufferedWSGI", "shut_client_socket"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

_log = logging.getLogger("sora_mock.serving")
_JSON = ("content-type", "application/json")
MAX_TARGET_BYTES = 8 * 1024
"""The longest request target (path and query string) served; past it, 414 in the envelope."""
MAX_HEADER_BYTES = 64 * 1024
"""The largest header section served (names, values and separators); past it, 431 in the envelope."""
DEFERRABLE = "sora_mock.deferrable"
"""Environ key: true when the app may leave a coroutine function under :data:`DEFERRED`."""
DEFERRED = "sora_mock.deferred"
"""Environ key: a coroutine function the glue awaits on its event loop; its ``(status, headers, body)``
replaces the app's answer (so a wait on an upstream holds no thread of the pool)."""
_WATCH_INTERVAL = 0.25
"""Seconds between two checks of the body reads' deadlines (a read may take this much longer)."""


class _BodyError(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


class BufferedWSGI:
    """An RSGI application (``__rsgi__``): ``endpoint`` for its path, the WSGI ``app`` for the rest.

    ``max_body_bytes`` caps every body (413 beyond it); ``read_timeout`` bounds the time to
    receive a whole body (408 beyond it); ``threads`` > 0 runs the WSGI app in a pool of that many
    threads, 0 runs it on the event loop (right for an app that never waits on I/O);
    ``access_log`` writes one line per endpoint request (the WSGI app logs its own);
    ``own_headers`` are added to the answers this glue writes itself (413, 408, 414, 431, 500), so
    an app that marks each of its answers (the guard's ``X-Sora-Guard``) marks these too.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_body_bytes: int,
        read_timeout: float,
        threads: int = 0,
        endpoint: Endpoint | None = None,
        access_log: bool = False,
        own_headers: Headers | None = None,
    ) -> None:
        self.app = app
        self.own_headers: Headers = list(own_headers or [])
        self.endpoint = endpoint
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.access_log = access_log
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="sora-mock-app") if threads > 0 else None
        self._reading: dict[asyncio.Task[Any], float] = {}  # body reads in progress, and their deadlines
        self._expired: set[asyncio.Task[Any]] = set()  # reads the watchdog cancelled

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the read-timeout watchdog on the worker's event loop."""
        self._watch(loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every quarter second, cancel the body reads that passed their deadline.

        One periodic check instead of a timer per request: a timer per read costs the event loop
        a heap entry for every request (most of them cancelled), which shows at thousands of
        requests a second.
        """
        now = loop.time()
        for task, deadline in list(self._reading.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        loop.call_later(_WATCH_INTERVAL, self._watch, loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":  # websockets are not served
            return
        refusal = _head_refusal(scope)
        if refusal is not None:
            headers = [_JSON, ("connection", "close"), *self.own_headers]
            protocol.response_bytes(refusal.status, headers, envelope(refusal))
            return
        # Asked before the body is read, this is resolved by the time the body arrives if the client
        # shut its write side (granian then closes the connection unanswered); asked later, it is not.
        gone = protocol.client_disconnect() if scope.method == "POST" else _STAYING
        try:
            if self.endpoint is not None and self.endpoint.owns(scope.path):
                await self._answer_endpoint(scope, protocol, gone)
            else:
                await self._answer_wsgi(scope, protocol, gone)
        finally:
            gone.cancel()

    async def _answer_wsgi(self, scope: Any, protocol: Any, gone: Any) -> None:
        """Every other path: the WSGI app with the buffered body."""
        try:
            body, _ = await self._read_body(scope, protocol)
        except _BodyError as exc:
            violation = exc.violation
            headers = [_JSON, ("connection", "close"), *self.own_headers]
            protocol.response_bytes(violation.status, headers, envelope(violation))
            return
        if gone.done():  # the client left (or shut its side): nothing is handed on
            return
        environ = self._environ(scope, body)
        try:
            if self.pool is None:
                status, headers, payload = _call(self.app, environ)
            else:
                loop = asyncio.get_running_loop()
                status, headers, payload = await loop.run_in_executor(self.pool, _call, self.app, environ)
            deferred = environ.get(DEFERRED)
            if deferred is not None:
                status, headers, payload = await deferred()
        except DroppedConnection:
            shut_client_socket(scope.client, scope.server)
            protocol.response_empty(500, [("connection", "close")])
            return
        except Exception:
            _log.exception("unhandled error in the app on %s %s", scope.method, scope.path)
            status, headers = 500, [_JSON, *self.own_headers]
            payload = envelope(Violation(500, None, "server_error", "The server failed unexpectedly."))
        protocol.response_bytes(status, headers, payload)

    async def _answer_endpoint(self, scope: Any, protocol: Any, gone: Any) -> None:
        """The endpoint core, called with the request as received; its answer sent as it says."""
        assert self.endpoint is not None
        started = time.perf_counter()
        body: bytes | None = b""
        refusal = None
        unsure = False
        if scope.method == "POST":
            try:
                body, unsure = await self._read_body(scope, protocol)
            except _BodyError as exc:
                body, refusal = None, exc.violation
            if gone.done():  # a half-closed client gets no answer from granian: create nothing, journal nothing
                return
        request = Request(scope.method, scope.path, tuple(scope.headers.items()), body, scope.client, refusal, unsure)
        answer: Answer = self.endpoint.handle(request)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.drop:
            shut_client_socket(scope.client, scope.server)
            protocol.response_empty(500, [("connection", "close")])
        else:
            protocol.response_bytes(answer.status, answer.headers, answer.body)
        if self.access_log:
            access_line(scope.method, scope.path, "-" if answer.drop else str(answer.status), started)

    async def _read_body(self, scope: Any, protocol: Any) -> tuple[bytes, bool]:
        """The whole body, and whether a chunked body ended irregularly (trailers, or broken framing)."""
        length_header = scope.headers.get("content-length")
        length: int | None = None
        if length_header is not None:  # the HTTP layer already rejects a malformed Content-Length
            length = int(length_header)
            if length > self.max_body_bytes:
                raise _BodyError(too_large(self.max_body_bytes))
            if length == 0:
                return b"", False
        elif scope.method in ("GET", "HEAD", "DELETE", "OPTIONS") and "transfer-encoding" not in scope.headers:
            return b"", False
        task = asyncio.current_task()
        if task is None:  # not run as a task: nothing the watchdog could cancel
            async with asyncio.timeout(self.read_timeout):
                return await self._receive(protocol, length)
        self._reading[task] = asyncio.get_running_loop().time() + self.read_timeout
        try:
            return await self._receive(protocol, length)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            task.uncancel()
            raise _BodyError(timed_out(self.read_timeout)) from None
        finally:
            del self._reading[task]
            self._expired.discard(task)

    async def _receive(self, protocol: Any, length: int | None) -> tuple[bytes, bool]:
        if length is not None:  # bounded by the check above; the HTTP layer stops at Content-Length
            try:
                data: bytes = await protocol()
            except Exception:  # the client hung up or stalled mid-body
                raise _BodyError(incomplete_body()) from None
            if len(data) != length:
                raise _BodyError(incomplete_body())
            return data, False
        chunks: list[bytes] = []
        size = 0
        empty = 0
        async for chunk in protocol:
            # granian yields an empty chunk at the end of a body, and one more for a trailer
            # section or broken framing (it does not tell which): the body's decoder judges it then.
            if not chunk:
                empty += 1
                continue
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyError(too_large(self.max_body_bytes))
            chunks.append(chunk)
        return b"".join(chunks), empty > 1

    def _environ(self, scope: Any, body: bytes) -> dict[str, Any]:
        server_host, _, server_port = scope.server.rpartition(":")
        client_host, _, client_port = scope.client.rpartition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            # WSGI strings carry bytes as Latin-1: the query's UTF-8 bytes, as PATH_INFO's (a raw ２ is not Latin-1)
            "QUERY_STRING": scope.query_string.encode("utf-8", "surrogateescape").decode("latin-1"),
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
            DEFERRABLE: True,
        }
        for name, value in scope.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):  # the body is buffered and de-chunked
                continue
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


class _Staying:
    """The disconnect watch of a request that changes nothing (not a POST): never resolved."""

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        return None


_STAYING = _Staying()


def _head_refusal(scope: Any) -> Violation | None:
    """414 or 431 in the envelope for a request line or header section over the kit's own limits.

    They are below granian's (which answers with an empty body), so a too-long request gets a
    JSON error naming the limit.
    """
    target = len(scope.path) + len(scope.query_string)
    if target > MAX_TARGET_BYTES:
        message = f"The request target (path and query) is {target} bytes; the limit is {MAX_TARGET_BYTES}."
        return Violation(414, None, "uri_too_long", message)
    size = 0
    for name, value in scope.headers.items():
        size += len(name) + len(value) + 4
    if size > MAX_HEADER_BYTES:
        message = f"The request headers are {size} bytes; the limit is {MAX_HEADER_BYTES}."
        return Violation(431, None, "headers_too_large", message)
    return None


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
