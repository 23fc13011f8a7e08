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

from ..contract.http import (
    MAX_HEADER_BYTES,
    MAX_TARGET_BYTES,
    body_size_verdict,
    envelope,
    framing_verdict,
    head_verdict,
    time_verdict,
)
from ..contract.rules import Violation
from ..mock.core import Answer, Endpoint, Request
from ..mock.faults import DroppedConnection
from ..mock.middleware import access_line

__all__ = ["DEFERRABLE", "DEFERRED", "MAX_HEADER_BYTES", "MAX_TARGET_BYTES", "BufferedWSGI", "shut_client_socket"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]
Exchange = tuple[int, Headers, bytes]

_log = logging.getLogger("sora_mock.serving")
_JSON = ("content-type", "application/json")
_SERVER_ERROR = Violation(500, None, "server_error", "The server failed unexpectedly.")
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
        self._reading: dict[asyncio.Task[Any], float] = {}  # body reads in progress, and when they began
        self._expired: dict[asyncio.Task[Any], Violation] = {}  # reads the watchdog cancelled, and its verdict

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the read-timeout watchdog on the worker's event loop."""
        self._watch(loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every quarter second, cancel the body reads that :func:`time_verdict` finds overdue.

        One periodic check instead of a timer per request: a timer per read costs the event loop
        a heap entry for every request (most of them cancelled), which shows at thousands of
        requests a second.
        """
        now = loop.time()
        for task, began in list(self._reading.items()):
            verdict = time_verdict(now - began, self.read_timeout)
            if verdict is not None and task not in self._expired:
                self._expired[task] = verdict
                task.cancel()
        loop.call_later(_WATCH_INTERVAL, self._watch, loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":  # websockets are not served
            return
        refusal = head_verdict(len(scope.path) + len(scope.query_string), _header_bytes(scope))
        if refusal is not None:
            self._refuse(protocol, refusal)
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

    def _refuse(self, protocol: Any, violation: Violation) -> None:
        """A transport verdict this glue answers itself (414, 431, and 413/408/400 off the endpoint)."""
        headers = [_JSON, ("connection", "close"), *self.own_headers]
        protocol.response_bytes(violation.status, headers, envelope(violation))

    # the WSGI bridge: read, build the environ, call the app, await a deferred exchange, write
    async def _answer_wsgi(self, scope: Any, protocol: Any, gone: Any) -> None:
        """Every other path: the WSGI app with the buffered body."""
        try:
            body, _ = await self._read_body(scope, protocol)
        except _BodyError as exc:
            self._refuse(protocol, exc.violation)
            return
        if gone.done():  # the client left (or shut its side): nothing is handed on
            return
        try:
            status, headers, payload = await self._exchange(self._environ(scope, body))
        except DroppedConnection:
            _drop(scope, protocol)
            return
        except Exception:
            _log.exception("unhandled error in the app on %s %s", scope.method, scope.path)
            status, headers, payload = 500, [_JSON, *self.own_headers], envelope(_SERVER_ERROR)
        protocol.response_bytes(status, headers, payload)

    async def _exchange(self, environ: dict[str, Any]) -> Exchange:
        """The app's answer; or, when it left one under :data:`DEFERRED`, that coroutine's answer."""
        if self.pool is None:
            exchange = _call(self.app, environ)
        else:
            exchange = await asyncio.get_running_loop().run_in_executor(self.pool, _call, self.app, environ)
        deferred = environ.get(DEFERRED)
        if deferred is not None:
            exchange = await deferred()
        return exchange

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
            _drop(scope, protocol)
        else:
            protocol.response_bytes(answer.status, answer.headers, answer.body)
        if self.access_log:
            access_line(scope.method, scope.path, "-" if answer.drop else str(answer.status), started)

    # reading the body: the facts gathered here, the verdicts given by contract.http
    async def _read_body(self, scope: Any, protocol: Any) -> tuple[bytes, bool]:
        """The whole body, and whether a chunked body ended irregularly (trailers, or broken framing)."""
        length_header = scope.headers.get("content-length")
        length: int | None = None
        if length_header is not None:  # the HTTP layer already rejects a malformed Content-Length
            length = int(length_header)
            _raise(body_size_verdict(length, 0, self.max_body_bytes))
            if length == 0:
                return b"", False
        elif scope.method in ("GET", "HEAD", "DELETE", "OPTIONS") and "transfer-encoding" not in scope.headers:
            return b"", False
        task = asyncio.current_task()
        if task is None:  # not run as a task: nothing the watchdog could cancel
            async with asyncio.timeout(self.read_timeout):
                return await self._receive(protocol, length)
        self._reading[task] = asyncio.get_running_loop().time()
        try:
            return await self._receive(protocol, length)
        except asyncio.CancelledError:
            verdict = self._expired.get(task)
            if verdict is None:
                raise
            task.uncancel()
            raise _BodyError(verdict) from None
        finally:
            del self._reading[task]
            self._expired.pop(task, None)

    async def _receive(self, protocol: Any, length: int | None) -> tuple[bytes, bool]:
        if length is not None:  # bounded by the check above; the HTTP layer stops at Content-Length
            try:
                data: bytes = await protocol()
            except Exception:  # the client hung up or stalled mid-body
                _raise(framing_verdict(length, None))
                raise
            _raise(framing_verdict(length, len(data)))
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
            _raise(body_size_verdict(None, size, self.max_body_bytes))
            chunks.append(chunk)
        return b"".join(chunks), empty > 1

    def _environ(self, scope: Any, body: bytes) -> dict[str, Any]:
        """The WSGI environ of a buffered request (:data:`DEFERRABLE` set)."""
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
        _add_headers(environ, scope.headers.items())
        return environ


def _add_headers(environ: dict[str, Any], headers: Iterable[tuple[str, str]]) -> None:
    """The request headers as ``HTTP_*`` keys (repeated ones joined by commas), minus the framing ones."""
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):  # the body is buffered and de-chunked
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value


def _raise(verdict: Violation | None) -> None:
    if verdict is not None:
        raise _BodyError(verdict)


def _header_bytes(scope: Any) -> int:
    """The size of the header section as :func:`head_verdict` counts it (name, value, ``: `` and CRLF)."""
    return sum(len(name) + len(value) + 4 for name, value in scope.headers.items())


def _drop(scope: Any, protocol: Any) -> None:
    """Answer a drop: shut the client's connection, and give granian an empty 500 it cannot deliver."""
    shut_client_socket(scope.client, scope.server)
    protocol.response_empty(500, [("connection", "close")])


class _Staying:
    """The disconnect watch of a request that changes nothing (not a POST): never resolved."""

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        return None


_STAYING = _Staying()


def _call(app: WSGIApp, environ: dict[str, Any]) -> Exchange:
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

    RSGI gives an HTTP app no way to abort its connection (granian 2.8's ``RSGIHTTPProtocol`` only
    answers, or streams; ``close`` exists for websockets alone), and the server does not hand its
    sockets to the app. So the connection is found among the process's open descriptors by its two
    addresses; shutting down a duplicate descriptor shuts the connection itself. Returns whether it
    was found (Linux only). This is the only place the kit looks for a socket.
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
