"""The guard as a Flask app: routing on what a path means to the upstream, the guard's own calls, errors.

:class:`GuardApp` dispatches each request: the endpoint (``POST`` runs :class:`~.create.CreateFlow`,
anything else is a local 405), the guard's report and reset, a path forwarded unchecked with
``pass_through``, or a local 404. Every answer carries the guard's verdict in ``X-Sora-Guard``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from ..contract.http import bearer_token, cross_origin, envelope, is_json_type
from ..contract.rules import Violation
from ..contract.spec import ENDPOINT_PATH, load_contract
from ..store import StateLost, Store, StoreUnavailable, open_store
from ..web import add_serving_headers, error_response, http_error_response
from .config import GUARD_HEADER, GUARD_PREFIX, METHOD_OVERRIDE_HEADERS, REPORT_PATH, RESET_PATH, GuardConfig
from .create import CreateFlow, GuardParts
from .exchange import Forwarder, Outcome, read_body, tag, unexpected_failure
from .files import json_bytes
from .guard_ui import register_guard_ui
from .ledger import PASSED, GuardState, Ledger
from .paths import forwarded_path, is_under, resolve_path
from .recorder import AnswerRecorder
from .upstream import Upstream, _NoAnswer, _TooLarge, _Unreadable, decode_answer

__all__ = ["GuardApp", "create_guard_app", "guard_state_of"]

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_EXTENSION = "sora_guard"
_NAME = "mock_server.relay.guard"
"""The app's import name, so its logger: the guard logs under the name it always had."""


def create_guard_app(config: GuardConfig | None = None, *, store: Store | None = None) -> Flask:
    """Build the guard as a Flask app (one store; each forwarded request opens its own upstream connection).

    ``store`` defaults to ``open_store(config.state_url, prefix=config.state_prefix)``. Close
    ``guard_state_of(app)`` (a :class:`GuardState`) when done with the app.
    """
    cfg = config or GuardConfig()
    app = Flask(_NAME)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.url_map.merge_slashes = False  # the guard decides what a path means; werkzeug never redirects
    if store is None:
        store = open_store(cfg.state_url, prefix=cfg.state_prefix, max_items=cfg.max_findings)
    with contextlib.suppress(StoreUnavailable):  # down now (or lost): each create asks again, refused meanwhile
        store.seal()  # the identity of the state this guard budgets on: a loss of it is noticed, never taken as new
    state = GuardState(cfg, store, load_contract(), httpx.create_ssl_context())
    app.extensions[_EXTENSION] = state
    add_serving_headers(app, [(GUARD_HEADER, "blocked")])  # the serving glue's own 413, 408, 414, 431
    upstream = Upstream(cfg, state.verify)
    recorder = AnswerRecorder(Path(cfg.record_dir), upstream.name) if cfg.record_dir else None
    ledger = Ledger(store, cfg.max_creates, app.logger)
    parts = GuardParts(cfg, state.contract, ledger, upstream, Forwarder(app, upstream), recorder, app.logger)
    register_guard_ui(app, store, upstream.is_endpoint)  # GET /__guard/ui, GET /__guard/requests, each verdict logged
    GuardApp(app, state, parts).install()
    app.wsgi_app = _always_tagged(app.wsgi_app)  # type: ignore[method-assign]
    return app


def guard_state_of(app: object) -> GuardState:
    """The :class:`GuardState` of a guard app made by :func:`create_guard_app`; ``TypeError`` for any other app."""
    extensions = getattr(app, "extensions", None)
    found = extensions.get(_EXTENSION) if isinstance(extensions, dict) else None
    if not isinstance(found, GuardState):
        raise TypeError(f"{app!r} is not a guard app made by mock_server.relay.guard.create_guard_app")
    return found


class GuardApp:
    """The guard's views and error handlers on ``app``."""

    def __init__(self, app: Flask, state: GuardState, parts: GuardParts) -> None:
        self.app = app
        self.state = state
        self.parts = parts
        self.own: dict[str, tuple[tuple[str, ...], Callable[[], Response]]] = {
            REPORT_PATH: (("GET", "HEAD"), self.report),
            RESET_PATH: (("POST",), self.reset),
        }

    def install(self) -> None:
        app = self.app
        options: dict[str, Any] = {"methods": _METHODS, "provide_automatic_options": False}
        app.add_url_rule("/", "dispatch", self.dispatch, defaults={"path": ""}, **options)
        app.add_url_rule("/<path:path>", "dispatch", self.dispatch, **options)
        app.register_error_handler(HTTPException, self.http_error)
        app.register_error_handler(StoreUnavailable, self.store_failed)
        app.register_error_handler(Exception, self.unexpected)

    def dispatch(self, path: str) -> Response:
        """Route on what the path means to the upstream (:func:`resolve_path`), not on its text."""
        parts = self.parts
        target = parts.upstream.endpoint_path(request.path)
        if target is not None:
            return self.endpoint(target)
        if request.path in self.own:
            return self.own_call(*self.own[request.path])
        if is_under(resolve_path(request.path), GUARD_PREFIX) or not parts.config.pass_through:
            raise NotFound()  # the guard's own prefix is never forwarded
        if parts.upstream.near_endpoint(request.path):  # a lenient relay could serve it as the endpoint, unchecked
            refusal = error_response(
                404,
                f"{request.path[:200]} is not the endpoint, but a lenient upstream could read it as "
                f"{ENDPOINT_PATH}; the guard does not forward it. Send POST {ENDPOINT_PATH}.",
                code="near_endpoint",
            )
            return parts.blocked(refusal)
        return self.pass_through()

    def endpoint(self, target: str) -> Response:
        if request.method == "OPTIONS":
            return _options(("POST",))
        if request.method != "POST":
            raise MethodNotAllowed(valid_methods=["OPTIONS", "POST"])
        for name in METHOD_OVERRIDE_HEADERS:
            value = request.headers.get(name)
            if value is not None and value.strip().upper() != "POST":
                refusal = error_response(
                    405,
                    f"{name}: {value.strip()[:20]} asks for another method than POST on {request.path}; "
                    f"the endpoint takes POST only.",
                    code="method_not_allowed",
                    param=name,
                    headers={"Allow": "OPTIONS, POST"},
                )
                return self.parts.blocked(refusal)
        return CreateFlow(self.parts, target).run()

    def own_call(self, methods: tuple[str, ...], view: Callable[[], Response]) -> Response:
        """The guard's own report or reset."""
        if request.method == "OPTIONS":
            return _options(methods)
        if request.method not in methods:
            raise MethodNotAllowed(valid_methods=sorted({"OPTIONS", *methods}))
        return view()

    def report(self) -> Response:
        return tag(Response(json_bytes(self.state.report()), mimetype="application/json"), "local")

    def reset(self) -> Response:
        headers = request.headers
        why = cross_origin(
            origin=headers.get("Origin"),
            fetch_site=headers.get("Sec-Fetch-Site"),
            host=headers.get("Host"),
            scheme=request.scheme,
        )
        if why is not None:
            refusal = error_response(
                403,
                f"POST {RESET_PATH} is refused from a web page ({why}); call it from a script or curl.",
                code="cross_origin",
                param="Origin",
            )
            return self.parts.blocked(refusal)
        if not is_json_type(headers.get("Content-Type")):
            refusal = error_response(
                415,
                f"POST {RESET_PATH} needs Content-Type: application/json "
                f"(got {(headers.get('Content-Type') or 'none')[:60]}).",
                code="unsupported_media_type",
                param="Content-Type",
            )
            return self.parts.blocked(refusal)
        self.parts.ledger.reset()  # a lost state is the guard's again, with a new budget; the counts stay
        max_creates = self.parts.config.max_creates
        answer = Response(json.dumps({"status": "reset", "budget_left": max_creates}), mimetype="application/json")
        return tag(answer, "local")

    def pass_through(self) -> Response:
        """Forward a path other than the endpoint, unchecked (``pass_through``)."""
        parts = self.parts
        url = parts.upstream.url(forwarded_path(request.path), request.query_string)
        raw = read_body(parts.config.max_body_bytes)
        return parts.forwarder.relay(raw, url, endpoint=False, settle=lambda outcome: self.settle_passed(outcome, raw))

    def settle_passed(self, outcome: Outcome, raw: bytes) -> Response:
        parts = self.parts
        if isinstance(outcome, _NoAnswer):
            return tag(outcome.response(), "upstream-error")
        answer = outcome
        parts.ledger.tally(PASSED)
        if parts.recorder is not None:
            try:
                content: bytes | None = decode_answer(answer.raw, answer.headers, parts.config.max_answer_bytes)
            except (_Unreadable, _TooLarge):
                content = None
            parts.record(answer, raw, bearer_token(request.headers.get("Authorization")) or "", content)
        return tag(parts.forwarder.to_flask(answer), "passed")

    def http_error(self, exc: HTTPException) -> Response:
        if isinstance(exc, MethodNotAllowed) and self.parts.upstream.is_endpoint(request.path):
            exc = MethodNotAllowed(valid_methods=["OPTIONS", "POST"])  # a method no route lists (PROPFIND)
        return self.parts.blocked(http_error_response(exc, self.parts.config.max_body_bytes))

    def store_failed(self, exc: StoreUnavailable) -> Response:
        if isinstance(exc, StateLost):
            message = (
                f"The guard refuses creates: {exc}. The budget it kept there is gone, and a fresh one is never "
                f"started unseen; POST {RESET_PATH} starts a new budget."
            )
            failure = error_response(503, message, code="state_lost", error_type="server_error")
        else:
            message = f"The guard's state store cannot be used ({exc}); nothing was sent upstream."
            failure = error_response(503, message, code="state_unavailable", error_type="server_error")
        return tag(failure, "error")

    def unexpected(self, exc: Exception) -> Response:
        self.app.logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return unexpected_failure()


def _options(methods: tuple[str, ...]) -> Response:
    """204 naming the methods (the mock's answer to OPTIONS), instead of Flask's empty text/html 200."""
    response = Response(status=204, headers={"Allow": ", ".join(sorted({"OPTIONS", *methods}))})
    del response.headers["Content-Type"]  # no body, so no type either
    return tag(response, "local")


def _always_tagged(wsgi: Any) -> Any:
    """``wsgi`` that answers a failure before Flask's own handlers run (building the request) in the
    envelope with ``X-Sora-Guard: error`` instead of raising it to the server."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return wsgi(environ, start_response)
        except Exception as exc:
            logging.getLogger(_NAME).error("unhandled %s before routing", type(exc).__name__)
            body = envelope(Violation(500, None, "server_error", "The guard failed unexpectedly."), "server_error")
            headers = [("Content-Type", "application/json"), (GUARD_HEADER, "error")]
            start_response("500 INTERNAL SERVER ERROR", headers, sys.exc_info())
            return [body]

    return app
