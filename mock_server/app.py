"""Flask application factory: a thin HTTP layer around the rules, the provider and the state."""

from __future__ import annotations

import hmac
import json
import random
import time
from collections.abc import Mapping
from typing import IO, Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import defects, journal
from .admin import admin_blueprint
from .config import MockConfig
from .contract.rules import RuleError, Violation, decode_body, error_body
from .contract.spec import ENDPOINT_PATH, load_contract
from .faults import Fault
from .middleware import DEFER_DELAY, DROP_FLAG, AccessLogMiddleware, DropMiddleware
from .provider import id_key, seeded_character
from .state import MockState
from .store import StoreUnavailable

__all__ = [
    "authorize",
    "create_app",
    "error_response",
    "http_error_response",
    "read_capped",
    "state_unavailable_response",
    "violation_response",
]

_DRAWS = "fault-draws"
_MIN_PRESENTED_SECRET = 8  # a presented bearer token this long or longer is redacted wherever it appears


def error_response(
    status: int,
    message: str,
    *,
    code: str,
    param: str | None = None,
    error_type: str = "invalid_request_error",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON answer carrying the OpenAI-style error envelope."""
    body = error_body(Violation(status, param, code, message), error_type)
    response = Response(_dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def authorize(header: str | None, token: str | None) -> Response | None:
    """The 401 answer for an ``Authorization`` header that is not a usable bearer token, else ``None``.

    ``token`` is the one token to accept; ``None`` accepts any non-empty bearer token.
    """
    scheme, _, given = (header or "").strip().partition(" ")
    if not header:
        return error_response(
            401,
            'Missing bearer token: send "Authorization: Bearer <token>".',
            code="missing_api_key",
            error_type="authentication_error",
        )
    if scheme.lower() != "bearer" or not given.strip():
        return error_response(
            401,
            'Unsupported Authorization header: send "Authorization: Bearer <token>".',
            code="invalid_authorization_scheme",
            error_type="authentication_error",
        )
    if token is not None and not hmac.compare_digest(given.strip().encode(), token.encode()):
        return error_response(
            401, "Incorrect API key provided.", code="invalid_api_key", error_type="authentication_error"
        )
    return None


def http_error_response(exc: HTTPException, max_body_bytes: int) -> Response:
    """The enveloped answer for a routing or size error raised by Flask/werkzeug (404, 405, 413, ...)."""
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        response = error_response(
            413,
            f"The request body is larger than the limit of {max_body_bytes} bytes.",
            code="request_too_large",
        )
        response.headers["Connection"] = "close"
        return response
    if status == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or ["POST"]))
        return error_response(
            405,
            f"Method {request.method} is not allowed on {request.path}; allowed: {allowed}.",
            code="method_not_allowed",
            headers={"Allow": allowed},
        )
    if status == 404:
        return error_response(
            404,
            f"No route for {request.method} {request.path}; the endpoint is POST {ENDPOINT_PATH}.",
            code="not_found",
        )
    return error_response(status, exc.description or exc.name, code=exc.name.lower().replace(" ", "_"))


def _dumps(body: object) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def state_unavailable_response(exc: StoreUnavailable) -> Response:
    """503 in the error envelope: the state store cannot be reached (the reason, never a traceback)."""
    return error_response(
        503,
        f"The mock's state store is unavailable: {exc}. Retry shortly.",
        code="state_unavailable",
        error_type="server_error",
        headers={"Retry-After": "1"},
    )


def _fault_response(fault: Fault) -> Response:
    assert fault.status is not None
    headers = {}
    if fault.status == 429 or fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after if fault.retry_after is not None else 1)
    kinds = {429: ("rate_limit_exceeded", "Too many requests; retry after the Retry-After delay.")}
    code, message = kinds.get(fault.status, ("server_error", f"Injected failure (HTTP {fault.status})."))
    error_type = "rate_limit_error" if fault.status == 429 else "server_error"
    if fault.status < 500 and fault.status != 429:
        error_type = "invalid_request_error"
    return error_response(fault.status, message, code=code, error_type=error_type, headers=headers)


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
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    contract = load_contract()
    state = MockState.open(
        cfg.state, prefix=cfg.state_prefix, journal_size=cfg.journal_size, journal_bytes=cfg.journal_bytes
    )
    # Characters and random faults depend on (seed, serial) only, so every process sharing the
    # state gives the Nth character of a run the same body. Unseeded: a fresh seed per app.
    seed = cfg.seed if cfg.seed is not None else random.SystemRandom().getrandbits(64)
    key = id_key(seed)
    secrets = (cfg.token,) if cfg.token else ()
    app.extensions["sora_mock"] = {"config": cfg, "state": state, "contract": contract, "seed": seed}

    def read_body() -> object:
        if request.content_length is None and request.environ.get("wsgi.input_terminated"):
            raw = read_capped(request.environ["wsgi.input"], cfg.max_body_bytes)  # chunked upload
        else:
            raw = request.get_data(cache=False)  # 413 from Content-Length, before reading anything
        g.raw_body = raw
        try:
            body = decode_body(raw, reject_duplicates=True)
        except RuleError as exc:
            deep = "nested too deeply" in exc.violation.message
            g.body_issue = "too_deep" if deep else exc.violation.code
            raise
        g.journal_body = body
        return body

    @app.route(ENDPOINT_PATH, methods=["OPTIONS"])
    def endpoint_options() -> Response:
        """204 naming the methods, instead of Flask's automatic empty text/html 200."""
        response = Response(status=204, headers={"Allow": "OPTIONS, POST"})
        del response.headers["Content-Type"]  # no body, so no (text/html) type either
        return response

    def fault_drawn() -> bool:
        draw = state.store.incr(_DRAWS)
        return random.Random(((seed & 0xFFFFFFFFFFFFFFFF) << 64) | draw).random() < cfg.fault_rate

    def journal_entry(status: int | None) -> bytes:
        presented = request.headers.get("Authorization", "").strip().partition(" ")[2].strip()
        hidden = (*secrets, presented) if len(presented) >= _MIN_PRESENTED_SECRET else secrets
        body = journal.encode_body(g.get("raw_body"), g.get("journal_body", journal.NoBody), g.get("body_issue"))
        return journal.encode_entry(
            time=time.time(),
            method=request.method,
            path=request.path,
            status=status,
            headers=journal.redact_headers(request.headers.items(), hidden),
            body=body,
        )

    @app.post(ENDPOINT_PATH, provide_automatic_options=False)
    def create_character() -> Response:
        g.journaled = True
        if cfg.latency_ms:
            _pause(cfg.latency_ms / 1000)
        fault = state.take_fault()
        if fault is None and cfg.fault_rate and fault_drawn():
            fault = Fault(status=cfg.fault_status)
        if fault is not None:
            if fault.delay_ms:
                _pause(fault.delay_ms / 1000)
            if fault.drop:
                g.journaled = False
                state.record(journal_entry(None))
                request.environ[DROP_FLAG] = True
                return Response(b"", status=500)
            if fault.status is not None:
                return _fault_response(fault)
        denied = defects.overrule_denial(authorize(request.headers.get("Authorization"), cfg.token), cfg.defects)
        if denied is not None:
            return denied
        try:
            body = read_body()
        except RuleError as exc:
            return violation_response(exc.violation)
        violation = defects.check_request(body, contract, cfg.defects)
        if violation is not None:
            return violation_response(violation)
        now = cfg.clock()
        entry = None
        if not cfg.defects:  # the answer is final: journal it with the character, in one store call
            entry = journal_entry(200)
            g.journaled = False
        character = state.new_character(
            lambda serial: journal.dumps(seeded_character(seed, serial, now, key=key)), entry
        )
        return Response(character, status=200, mimetype="application/json")

    @app.after_request
    def journal_request(response: Response) -> Response:
        if g.get("journaled"):
            g.journaled = False
            try:
                state.record(journal_entry(response.status_code))
            except StoreUnavailable as exc:
                return state_unavailable_response(exc)
        return response

    app.after_request(defects.response_hook(defects.validate(cfg.defects)))  # runs before the journal

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        g.journaled = False  # nowhere to journal it
        return state_unavailable_response(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return http_error_response(exc, cfg.max_body_bytes)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return error_response(500, "The mock failed unexpectedly.", code="server_error", error_type="server_error")

    if cfg.admin:
        app.register_blueprint(admin_blueprint())
    app.wsgi_app = DropMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    if cfg.access_log:
        app.wsgi_app = AccessLogMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def read_capped(stream: IO[bytes], limit: int) -> bytes:
    """Read a body of unknown length (a chunked upload), refusing it (413) as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(65536, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _pause(seconds: float) -> None:
    """Wait ``seconds``: through the serving layer's deferral hook when it has one, else here."""
    defer = request.environ.get(DEFER_DELAY)
    if defer is None:
        time.sleep(seconds)
    else:
        defer(seconds)


def violation_response(violation: Violation) -> Response:
    """The error answer for a broken request rule (400, 413 or 422), ``param`` naming the field."""
    return error_response(violation.status, violation.message, code=violation.code, param=violation.param)
