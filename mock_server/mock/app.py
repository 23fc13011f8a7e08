"""The Flask application factory: the endpoint core behind a Flask route, and the admin API.

``create_app(config)`` builds the state, the :class:`~mock_server.mock.core.Endpoint` and a Flask
app whose endpoint route only translates: the WSGI request becomes a core
:class:`~mock_server.mock.core.Request`, the core's :class:`~mock_server.mock.core.Answer` becomes
a Flask response (sleeping its delay, dropping the connection when it says so). ``sora-mock
serve`` calls the same endpoint straight from RSGI (:mod:`mock_server.serving.glue`), so both
give the same answers and the same journal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import IO, Any

from flask import Flask, Response, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_content_length

from ..contract.http import body_size_verdict
from ..contract.spec import ENDPOINT_PATH
from ..store import StoreUnavailable
from ..web import error_response, http_error_response, read_upto
from .admin import admin_blueprint
from .compose import build, composition_of
from .config import MockConfig
from .core import Answer, Endpoint, Request, unavailable_message
from .middleware import DROP_FLAG, AccessLogMiddleware, DropMiddleware
from .ui import register_ui

__all__ = ["create_app", "endpoint_of", "error_response", "request_from_environ"]

_ROUTED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
_log = logging.getLogger("sora_mock.app")


def create_app(config: MockConfig | Mapping[str, Any] | None = None) -> Flask:
    """Build a mock of ``POST /sora/v1/characters`` with its own state.

    ``config`` is a :class:`MockConfig` or a mapping of its field names.
    """
    if config is None:
        config = MockConfig()
    elif not isinstance(config, MockConfig):
        config = MockConfig.from_mapping(config)
    cfg: MockConfig = config

    app = Flask(__name__)
    app.url_map.merge_slashes = False  # the endpoint core decides about doubled slashes: never a redirect
    composition = build(cfg)
    composition.install(app)
    endpoint = composition.endpoint

    def answer_endpoint() -> Response:
        return flask_response(endpoint.handle(request_from_environ(request.environ, cfg.max_body_bytes)))

    app.add_url_rule(
        ENDPOINT_PATH, "characters", answer_endpoint, methods=_ROUTED_METHODS, provide_automatic_options=False
    )

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        return error_response(503, unavailable_message(exc), code="state_unavailable", headers={"Retry-After": "1"})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if endpoint.owns(request.environ.get("PATH_INFO", "")):  # an unrouted method, merged slashes
            return answer_endpoint()
        return http_error_response(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        _log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return error_response(500, "The mock failed unexpectedly.", code="server_error")

    if cfg.admin:
        register_ui(app)  # first: the page's files are answered before the admin token is asked for
        app.register_blueprint(admin_blueprint())
    app.wsgi_app = DropMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    if cfg.access_log:
        app.wsgi_app = AccessLogMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def endpoint_of(app: Flask) -> Endpoint:
    """The endpoint core that ``app`` (made by :func:`create_app`) answers with."""
    return composition_of(app).endpoint


def request_from_environ(environ: dict[str, Any], max_body_bytes: int) -> Request:
    """The core's view of a WSGI request: the body read up to ``max_body_bytes`` (413 past it, unread)."""
    headers = tuple(EnvironHeaders(environ).items())
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "surrogateescape")
    peer = environ.get("REMOTE_ADDR", "")
    if method != "POST":
        return Request(method, path, headers, b"", peer)
    length = get_content_length(environ)
    refusal = body_size_verdict(length, 0, max_body_bytes)  # an announced body over the limit stays unread
    if refusal is not None:
        return Request(method, path, headers, None, peer, refusal)
    body = _read_body(environ, length, max_body_bytes)
    refusal = body_size_verdict(None, len(body), max_body_bytes)  # a chunked body read past the limit
    return Request(method, path, headers, None if refusal else body, peer, refusal)


def _read_body(environ: dict[str, Any], length: int | None, limit: int) -> bytes:
    """The body as announced; a chunked one (no length) until it ends or passes ``limit`` bytes."""
    stream: IO[bytes] = environ["wsgi.input"]
    if length is None and environ.get("wsgi.input_terminated"):
        return read_upto(stream, limit)
    return stream.read(length) if length else b""


def flask_response(answer: Answer) -> Response:
    """The Flask response for a core answer; sleeps its delay, marks a dropped connection."""
    if answer.delay:
        time.sleep(answer.delay)
    if answer.drop:
        request.environ[DROP_FLAG] = True
        return Response(b"", status=500)
    response = Response(answer.body, status=answer.status, headers=answer.headers)
    if not answer.body and not answer.is_json:
        del response.headers["Content-Type"]  # no body, so no (text/html) type either
    return response
