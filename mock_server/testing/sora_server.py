"""Test helpers for client projects: the mock as a real HTTP server on 127.0.0.1.

Everything here answers through :func:`mock_server.mock.app.create_app`, so a test sees exactly what
``sora-mock serve`` answers. The pytest fixtures in :mod:`mock_server.testing.plugin` are thin
wrappers around :class:`SoraServer`; the classes work without pytest too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ..mock.app import create_app
from ..mock.compose import composition_of
from ..mock.config import MockConfig
from ..mock.faults import DroppedConnection, Fault
from ..mock.state import MockState

__all__ = ["DEFAULT_TOKEN", "MockHandle", "SoraServer", "build_config"]

DEFAULT_TOKEN = "sora-test-token"
"""What ``.token`` gives when the mock accepts any non-empty bearer token (the default)."""


def build_config(base: MockConfig | Mapping[str, Any] | None = None, **overrides: Any) -> MockConfig:
    """A :class:`MockConfig` from ``base`` (config or mapping) with ``overrides`` applied.

    Unknown names are an error naming them, so a typo in a marker fails loudly.
    """
    if isinstance(base, MockConfig):
        values: dict[str, Any] = {name: getattr(base, name) for name in base.__dataclass_fields__}
    else:
        values = dict(base or {})
    values.update(overrides)
    return MockConfig.from_mapping(values)


class MockHandle:
    """What a test can ask of one mock app: its journal, its characters, faults, stubs, coverage, a reset."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    @property
    def app(self) -> Flask:
        """The Flask app answering right now."""
        return self._app

    @property
    def config(self) -> MockConfig:
        """The settings of the app answering right now."""
        return composition_of(self._app).config

    @property
    def state(self) -> MockState:
        """The state (journal, characters, pending faults) of the app answering right now."""
        return composition_of(self._app).state

    @property
    def token(self) -> str:
        """A bearer token the mock accepts: the configured one, else :data:`DEFAULT_TOKEN` (any would do)."""
        return self.config.token or DEFAULT_TOKEN

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Endpoint requests since the last reset, oldest first.

        Each is a dict with ``method``, ``path``, ``status``, ``body`` (decoded JSON or ``None``),
        ``headers`` (``Authorization`` redacted) and ``time``.
        """
        return self.state.requests()

    @property
    def characters(self) -> list[dict[str, Any]]:
        """The characters created since the last reset, oldest first."""
        return self.state.characters()

    def reset(self) -> None:
        """Forget the journal, the characters, pending faults, stubs and coverage counts."""
        self.state.reset()

    def stub(
        self,
        match: Mapping[str, Any] | None = None,
        response: Mapping[str, Any] | None = None,
        times: int | None = None,
        off_contract: bool = False,
    ) -> dict[str, Any]:
        """Answer the endpoint requests ``match`` selects with ``response``; returns the stored stub.

        ``match``: ``{"body": {...top-level fields...}, "headers": {...}}`` (default: every request);
        ``response``: ``{"status": 200 or 400-599, "json": ..., "headers": {...}, "delay_ms": 0}``;
        ``times``: how many requests (default: unlimited). Checked against the contract like
        ``POST /__mock/stubs``: a :class:`~mock_server.mock.stubs.StubError` (a ``ValueError``) names the
        field or the broken rule, unless ``off_contract`` (each answer is then flagged in the journal).
        Auth, the request rules and pending faults still come first; the newest matching stub wins.
        """
        import uuid

        from ..mock.stubs import parse_stub

        data: dict[str, Any] = {"response": response, "off_contract": off_contract}
        if match is not None:
            data["match"] = match
        if times is not None:
            data["times"] = times
        stub = parse_stub(data, composition_of(self._app).contract, stub_id=uuid.uuid4().hex)
        self.state.add_stub(stub)
        return {**stub.to_json(), "hits": 0, "remaining": stub.times}

    def stub_from(
        self, source: Any, *, case: str | None = None, match_body: bool = True, times: int | None = None
    ) -> dict[str, Any]:
        """:meth:`stub` answering like a corpus case, a corpus case's name, or a file ``sora-mock record`` wrote.

        See :func:`mock_server.mock.stubs.stub_from_recording`; ``match_body`` answers only requests with
        the recorded request's top-level body fields.
        """
        from ..mock.stubs import stub_from_recording

        described = stub_from_recording(source, case=case, match_body=match_body, times=times)
        return self.stub(described.get("match"), described["response"], described.get("times"))

    @property
    def stubs(self) -> list[dict[str, Any]]:
        """The stubs, newest first, each with its ``hits`` and ``remaining`` times (``None``: unlimited)."""
        return self.state.list_stubs()

    def clear_stubs(self) -> None:
        """Remove every stub."""
        self.state.clear_stubs()

    @property
    def coverage(self) -> dict[str, Any]:
        """Which outcomes of the endpoint this mock gave since the last reset (``GET /__mock/coverage``)."""
        return self.state.coverage()

    def fail_next(self, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` endpoint requests with ``status`` (and ``Retry-After``).

        A 429 always carries ``Retry-After`` (``retry_after`` seconds, 1 when not given).
        """
        self.state.push_fault(Fault(status=status, retry_after=retry_after), times)

    def drop_next(self, times: int = 1) -> None:
        """Close the connection of the next ``times`` endpoint requests without an answer."""
        self.state.push_fault(Fault(drop=True), times)

    def delay_next(self, delay_ms: int, times: int = 1) -> None:
        """Answer the next ``times`` endpoint requests normally, ``delay_ms`` late."""
        self.state.push_fault(Fault(delay_ms=delay_ms), times)


class _QuietHandler(WSGIRequestHandler):
    """Keep-alive capable, and silent: no per-request lines on stderr."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log(self, type: str, message: str, *args: Any) -> None:
        return None


class SoraServer(MockHandle):
    """The mock served over real HTTP on a free port, in a background thread.

    The server answers through whichever app is current; :meth:`use` swaps in another app
    (a different seed or token) for a while. Start with :meth:`start` or ``with``. Without a
    ``token`` setting it accepts any non-empty bearer token, like ``sora-mock serve``.
    """

    def __init__(
        self,
        config: MockConfig | Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(create_app(build_config(config)))
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"SoraServer({where})"

    @property
    def url(self) -> str:
        """Base URL of the server, without a trailing slash (e.g. ``http://127.0.0.1:54321``)."""
        if self._server is None:
            raise RuntimeError("the server is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            result: Iterable[bytes] = self._app.wsgi_app(environ, start_response)
        except DroppedConnection as exc:  # the socket is already shut; tell werkzeug quietly
            raise ConnectionAbortedError(str(exc)) from None
        return result

    def start(self) -> SoraServer:
        """Bind and serve in a daemon thread; returns once the socket accepts connections."""
        if self._server is not None:
            return self
        server = make_server(self.host, self.port, self._dispatch, threaded=True, request_handler=_QuietHandler)
        server.daemon_threads = True  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sora-mock:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> SoraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def use(self, app: Flask) -> Iterator[Flask]:
        """Serve ``app`` instead of the current one inside the ``with`` block."""
        previous, self._app = self._app, app
        try:
            yield app
        finally:
            self._app = previous

    def configured(self, **overrides: Any) -> contextlib.AbstractContextManager[Flask]:
        """Serve a fresh app built from the current settings with ``overrides`` (seed, token…)."""
        return self.use(create_app(build_config(self.config, **overrides)))
