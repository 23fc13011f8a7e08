"""Serve a WSGI app with granian's worker processes and the body-buffering RSGI glue.

granian (a maintained Rust HTTP server) parses HTTP/1.1 on a Tokio event loop in each worker
process; :class:`~mock_server.serving.glue.BufferedWSGI` reads each body asynchronously under the
read timeout and the body cap, then calls the Flask app. The app is built in every worker by an
importable ``"module:function"`` factory from a JSON-able config that the master passes down in
the environment (never on a command line). :func:`serve` serves the mock; :func:`serve_app` is the
generic entry other servers of the kit (the guard proxy) reuse.

Connection limits (docs/serving.md): each worker holds as many connections as its descriptors
allow (:func:`connection_limit`), the kernel queues :data:`DEFAULT_BACKLOG` more, and a connection
that has not sent a complete request header within the read timeout, idle or kept alive, is closed.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any

from ..errors import ServingError
from ..extras import require
from ..mock.config import MockConfig
from ..mock.ui import UI_PATH
from ..store import StoreUnavailable, expect_identity, is_memory_url, open_store, prepare_state_url
from ..web import serving_headers

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_THREADS",
    "DEFAULT_WORKERS",
    "ENV_SPEC",
    "FD_RESERVE",
    "PortBusyError",
    "connection_limit",
    "is_loopback",
    "mock_app",
    "seal_state",
    "serve",
    "serve_app",
    "worker_app",
]

DEFAULT_WORKERS = 1
"""Worker processes. One by default, measured on 2 cores with the client on the same machine: one
process with the in-process state answers 1.7-1.8x Prism's rate, while two processes sharing a
SQLite state spend ~0.25 ms more CPU per request waiting on each other (docs/performance.md).
``--workers N`` shares one state through SQLite (default) or Redis."""
DEFAULT_THREADS = 0
"""Threads per worker running the app; 0 runs it on the worker's event loop (no blocking I/O in it)."""
DEFAULT_READ_TIMEOUT = 10.0
"""Seconds a client gets to send its request headers, and then its whole body."""
DEFAULT_BACKLOG = 4096
"""Connections the kernel queues before a worker accepts them (it caps this at ``net.core.somaxconn``)."""
FD_RESERVE = 256
"""Descriptors a worker keeps out of the connection limit for its own use (state store, upstream
connections of the guard, log and lock files)."""
_MAX_OPEN_FILES = 1 << 20
ENV_SPEC = "SORA_MOCK_SERVING"
"""Environment variable carrying the worker spec (factory, config, limits) from master to workers."""

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PortBusyError(ServingError, OSError):
    """The address is already in use (or cannot be bound); the message says which."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _reserve(host: str, port: int) -> int:
    """Check that ``host:port`` can be bound now (resolving port 0 to a free port); return the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), port))
            sock.listen(1)  # fails if another server listens here, whatever its socket options
            bound: int = sock.getsockname()[1]
            return bound
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise PortBusyError(exc.errno or 0, f"cannot listen on {host}:{port}: {reason}") from None


def _raise_open_files_limit() -> int:
    """Raise this process's soft limit of open descriptors to its hard limit; return the soft limit.

    Workers inherit it. Each connection costs one descriptor, so this limit, not a number of our
    own, is what bounds the connections a worker can hold. (granian 2.8's native module raises it
    too when imported; doing it here keeps the sizing below right whatever granian does.)
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, _MAX_OPEN_FILES)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return _MAX_OPEN_FILES if soft == resource.RLIM_INFINITY else soft
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def connection_limit(open_files: int) -> int:
    """Connections one worker holds at once, given its limit of open descriptors.

    granian gives each connection a permit for its whole life (an idle keep-alive connection
    included) and accepts no more once they are taken; the next clients wait in the kernel's
    queue. So the limit is as high as the descriptors allow, less :data:`FD_RESERVE`: idle clients
    are then bounded by the machine, and each one is closed after the read timeout.
    """
    return max(open_files // 2, open_files - FD_RESERVE)


def _config_mapping(config: MockConfig) -> dict[str, Any]:
    """The config as JSON-able field values (the clock is process-local and stays default)."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name != "clock"}


def mock_app(config: Mapping[str, Any]) -> WSGIApp:
    """Factory of the mock: ``create_app`` from the config mapping the master passed down."""
    from ..mock.app import create_app

    app = create_app(MockConfig.from_mapping(config))
    wsgi: WSGIApp = app
    return wsgi


def worker_app() -> Any:
    """granian's factory in each worker: the glue around the app named by :data:`ENV_SPEC`."""
    from ..mock.compose import find_composition
    from .glue import BufferedWSGI

    spec = json.loads(os.environ[ENV_SPEC])
    _die_with_parent(spec.get("master"))
    if spec.get("state_identity"):  # the state the master sealed: a worker never takes a lost one for new
        expect_identity(*spec["state_identity"])
    factory: str = spec["factory"]
    module, _, name = factory.partition(":")
    app = getattr(importlib.import_module(module), name)(spec["config"])
    composition = find_composition(app)  # a mock app: its endpoint core is served natively
    return BufferedWSGI(
        app,
        max_body_bytes=spec["max_body_bytes"],
        read_timeout=spec["read_timeout"],
        threads=spec["threads"],
        endpoint=None if composition is None else composition.endpoint,
        access_log=composition is not None and composition.config.access_log,
        own_headers=serving_headers(app),  # the guard's X-Sora-Guard
    )


def _master_server_class(base: type[Any]) -> type[Any]:
    """granian's server class, with its stop and reload signals handled off the signal frame.

    granian's handlers call ``threading.Event.set`` in the signal handler itself. When the signal
    lands while the main thread holds that event's lock (re-taking it on the way out of
    ``Event.wait``, e.g. because a worker just exited on the same SIGTERM sent to the process group),
    the handler waits for a lock its own thread holds, and the server never stops. Setting the
    event from a short-lived thread instead lets the interrupted frame release the lock first.
    """

    class MasterServer(base):  # type: ignore[misc]
        def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
            self.interrupt_signal = True
            threading.Thread(target=self.main_loop_interrupt.set, name="sora-mock-stop", daemon=True).start()

        def signal_handler_reload(self, *args: Any, **kwargs: Any) -> None:
            self.reload_signal = True
            threading.Thread(target=self.main_loop_interrupt.set, name="sora-mock-reload", daemon=True).start()

    return MasterServer


def _die_with_parent(master: int | None) -> None:
    """Ask Linux to kill this worker when the master dies, even if the master is killed outright.

    SIGKILL, not SIGTERM: a granian worker whose master is gone can hang in its SIGTERM handler.
    A master that died before this worker asked exits it at once.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if master is not None and os.getppid() != master:
        os._exit(0)


def serve_app(
    factory: str,
    config: Mapping[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_body_bytes: int,
    name: str = "sora-mock",
    page: str | None = None,
    state_identity: tuple[str, str, str] | None = None,
) -> None:
    """Serve the WSGI app built by ``factory(config)`` in each of ``workers`` processes until SIGINT/SIGTERM.

    ``factory`` is an importable ``"module:function"``; ``config`` must be JSON-able (it reaches
    the workers through the environment). ``threads`` > 0 runs the app in that many threads per
    worker (for views that block on the network); 0 runs it on the event loop. Prints one
    ``listening on`` line with the real port; raises :class:`PortBusyError` before starting when
    the address cannot be bound. ``state_identity`` (url, prefix, identity) is the state the master
    sealed (:meth:`mock_server.store.Store.seal`): every worker's store expects it.
    """
    require("granian", "serve", f"{name} (serving over HTTP)")
    port = _reserve(host, port)
    connections = connection_limit(_raise_open_files_limit())
    spec = {
        "factory": factory,
        "config": dict(config),
        "max_body_bytes": max_body_bytes,
        "read_timeout": read_timeout,
        "threads": threads,
        "master": os.getpid(),
        "state_identity": state_identity,
    }
    os.environ[ENV_SPEC] = json.dumps(spec)
    _announce(name, host, port, page)
    server = _granian_server(host, port, workers=workers, read_timeout=read_timeout, connections=connections)
    try:
        server.serve()
    finally:
        os.environ.pop(ENV_SPEC, None)


def _announce(name: str, host: str, port: int, page: str | None) -> None:
    """The one ``listening on`` line, with the real port and, when there is one, the page for a browser."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    # ``page``: the server's page for a browser (GET /__mock/ui, /__guard/ui), named on the same line
    seen = f"; in a browser: http://{shown}:{port}{page}" if page is not None else ""
    print(f"{name}: listening on http://{shown}:{port}{seen}", file=sys.stderr, flush=True)


def _granian_server(host: str, port: int, *, workers: int, read_timeout: float, connections: int) -> Any:
    """The granian master that starts ``workers`` RSGI workers, each building :func:`worker_app`."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    return _master_server_class(Server)(
        "mock_server.serving.server:worker_app",
        address=host.strip("[]"),
        port=port,
        interface=Interfaces.RSGI,
        workers=workers,
        http=HTTPModes.http1,
        websockets=False,
        # hyper's header timer also runs while a kept-alive connection waits for its next request,
        # so an idle connection is closed after read_timeout too.
        http1_settings=HTTP1Settings(header_read_timeout=int(read_timeout * 1000), keep_alive=True),
        backlog=DEFAULT_BACKLOG,
        backpressure=connections,
        log_level=LogLevels.warning,
        log_access=False,
        factory=True,
        workers_kill_timeout=3,
        respawn_failed_workers=True,  # a worker that dies (kill -9, OOM) is replaced; the others keep serving
        respawn_interval=0.5,
    )


def serve(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = DEFAULT_THREADS,
    workers: int = DEFAULT_WORKERS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    state: str | None = None,
) -> None:
    """Serve the mock until SIGINT/SIGTERM, then shut down cleanly (exit status 0)."""
    with prepare_state_url(state, workers) as url:
        serve_app(
            "mock_server.serving.server:mock_app",
            {**_config_mapping(config), "state": url},
            host=host,
            port=port,
            workers=workers,
            threads=threads,
            read_timeout=read_timeout,
            max_body_bytes=config.max_body_bytes,
            page=UI_PATH if config.admin else None,
            state_identity=seal_state(url, config.state_prefix),
        )


def seal_state(url: str, prefix: str) -> tuple[str, str, str] | None:
    """The identity of the state at ``url`` (sealed now if it has none), for every worker to expect;
    ``None`` for the in-process store, or a store that cannot be reached now (each worker seals it then)."""
    if is_memory_url(url):
        return None
    store = open_store(url, prefix=prefix)
    try:
        return url, prefix, store.seal()
    except StoreUnavailable:
        return None
    finally:
        store.close()
