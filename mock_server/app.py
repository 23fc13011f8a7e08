"""Flask application factory: a thin HTTP layer around the rules, the provider and the state."""

from __future__ import annotations

import hmac
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from flask import Flask, Response, g, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length, get_input_stream

from . import defects, journal
from .admin import admin_blueprint
from .config import MockConfig
from .contract.rules import RuleError, Violation, check_request, decode_body, error_body
from .contract.spec import ENDPOINT_PATH, load_contract
from .faults import Fault
from .middleware import DEFER_DELAY, DROP_FLAG, AccessLogMiddleware, DropMiddleware
from .provider import id_key, seeded_character_json
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
_HEADER_KEYS = ("HTTP_", "CONTENT_")  # the environ keys that hold request headers
_HEADER_CACHE = 256  # distinct header sets whose journal encoding is kept
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

    final = not cfg.defects  # no defect may bend the answer after the view: journal it in the view
    header_cache: dict[tuple[tuple[str, Any], ...], bytes] = {}

    def journal_entry(environ: dict[str, Any], status: int | None, seen: _Seen) -> bytes:
        # Clients resend the same headers: redact and encode each set once (keyed by the environ's headers).
        seen_headers = tuple([item for item in environ.items() if item[0].startswith(_HEADER_KEYS)])
        headers = header_cache.get(seen_headers)
        if headers is None:
            items = list(EnvironHeaders(environ).items())
            presented = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")[2].strip()
            hidden = (*secrets, presented) if len(presented) >= _MIN_PRESENTED_SECRET else secrets
            headers = journal.dumps(journal.redact_headers(items, hidden))
            if len(header_cache) >= _HEADER_CACHE:
                header_cache.clear()
            header_cache[seen_headers] = headers
        return journal.encode_entry_bytes(
            time=time.time(),
            method=environ["REQUEST_METHOD"],
            path=ENDPOINT_PATH,
            status=status,
            headers=headers,
            body=journal.encode_body(seen.raw, seen.body, seen.issue),
        )

    def read_body(environ: dict[str, Any], seen: _Seen) -> object:
        if get_content_length(environ) is None and environ.get("wsgi.input_terminated"):
            raw = read_capped(environ["wsgi.input"], cfg.max_body_bytes)  # chunked upload
        else:  # 413 from Content-Length, before reading anything
            raw = get_input_stream(environ, max_content_length=cfg.max_body_bytes).read()
        seen.raw = raw
        try:
            body = decode_body(raw, reject_duplicates=True)
        except RuleError as exc:
            deep = "nested too deeply" in exc.violation.message
            seen.issue = "too_deep" if deep else exc.violation.code
            raise
        seen.body = body
        return body

    def fault_drawn() -> bool:
        draw = state.store.incr(_DRAWS)
        return random.Random(((seed & 0xFFFFFFFFFFFFFFFF) << 64) | draw).random() < cfg.fault_rate

    def build(serial: int) -> bytes:
        return seeded_character_json(seed, serial, cfg.clock(), key=key)

    def answer(environ: dict[str, Any], seen: _Seen) -> Response | bytes:
        """The endpoint: a :class:`Response`, or the 200 body (a created character's JSON).

        With ``final`` the answer is journaled here; otherwise ``seen.journal`` is left true and
        the caller journals it once the defects are applied.
        """
        seen.journal = True
        if cfg.latency_ms:
            _pause(environ, cfg.latency_ms / 1000)
        # The request's own checks come first (no I/O), so that a valid create takes the pending
        # fault, if any, and its serial in one store call; a pending fault still overrides whatever
        # the checks found, as if it had been taken first.
        refusal: Response | None = None
        too_large: HTTPException | None = None
        denied = authorize(environ.get("HTTP_AUTHORIZATION"), cfg.token)
        if denied is not None and not final:
            denied = defects.overrule_denial(denied, cfg.defects)
        if denied is not None:
            refusal = denied
        else:
            try:
                body = read_body(environ, seen)
            except RuleError as exc:
                refusal = violation_response(exc.violation)
            except HTTPException as exc:  # 413 from Content-Length or a chunked body
                too_large = exc
            else:
                violation = (
                    check_request(body, contract) if final else defects.check_request(body, contract, cfg.defects)
                )
                if violation is not None:
                    refusal = violation_response(violation)
        valid = refusal is None and too_large is None
        entry = None
        if valid and final:  # the answer is final: journal it with the character, in the same store call
            entry = journal_entry(environ, 200, seen)
        if valid and not cfg.fault_rate:
            fault, character = state.fault_or_new_character(build, entry)
            if character is not None:
                seen.journal = not final
                return character
        else:
            fault = state.take_fault()
            if fault is None and cfg.fault_rate and fault_drawn():
                fault = Fault(status=cfg.fault_status)
        if fault is not None:
            if fault.delay_ms:
                _pause(environ, fault.delay_ms / 1000)
            if fault.drop:
                seen.journal = False
                state.record(journal_entry(environ, None, seen))
                environ[DROP_FLAG] = True
                return Response(b"", status=500)
            if fault.status is not None:
                return _fault_response(fault)
        if too_large is not None:
            raise too_large
        if refusal is not None:
            return refusal
        seen.journal = not final
        return state.new_character(build, entry)

    @app.route(ENDPOINT_PATH, methods=["OPTIONS"])
    def endpoint_options() -> Response:
        """204 naming the methods, instead of Flask's automatic empty text/html 200."""
        response = Response(status=204, headers={"Allow": "OPTIONS, POST"})
        del response.headers["Content-Type"]  # no body, so no (text/html) type either
        return response

    @app.post(ENDPOINT_PATH, provide_automatic_options=False)
    def create_character() -> Response:
        """The endpoint inside Flask's request cycle (with defects on; see ``fast_endpoint``)."""
        g.seen = seen = _Seen()
        result = answer(request.environ, seen)
        return Response(result, status=200, mimetype="application/json") if isinstance(result, bytes) else result

    @app.after_request
    def journal_request(response: Response) -> Response:
        seen: _Seen | None = g.get("seen")
        if seen is not None and seen.journal:
            seen.journal = False
            try:
                state.record(journal_entry(request.environ, response.status_code, seen))
            except StoreUnavailable as exc:
                return state_unavailable_response(exc)
        return response

    if cfg.defects:
        app.after_request(defects.response_hook(defects.validate(cfg.defects)))  # runs before the journal

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        seen: _Seen | None = g.get("seen")
        if seen is not None:
            seen.journal = False  # nowhere to journal it
        return state_unavailable_response(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return http_error_response(exc, cfg.max_body_bytes)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return _unexpected_response()

    if cfg.admin:
        app.register_blueprint(admin_blueprint())

    flask_app = app.wsgi_app

    def fast_endpoint(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """``POST`` on the endpoint without defects: :func:`answer` without Flask's request cycle.

        Same answers, same journal and the same error handling as the Flask route (which serves
        it when defects are on); every other request goes through Flask.
        """
        if environ.get("PATH_INFO") != ENDPOINT_PATH or environ.get("REQUEST_METHOD") != "POST":
            return flask_app(environ, start_response)
        seen = _Seen()
        try:
            try:
                result = answer(environ, seen)
            except HTTPException as exc:  # 413
                result = http_error_response(exc, cfg.max_body_bytes)  # needs no request context for 413
            if seen.journal:
                seen.journal = False
                status = 200 if isinstance(result, bytes) else result.status_code
                state.record(journal_entry(environ, status, seen))
        except StoreUnavailable as exc:
            result = state_unavailable_response(exc)
        except Exception as exc:
            app.logger.error("unhandled %s on %s %s", type(exc).__name__, "POST", ENDPOINT_PATH)
            result = _unexpected_response()
            if seen.journal:
                try:
                    state.record(journal_entry(environ, 500, seen))
                except StoreUnavailable as unavailable:
                    result = state_unavailable_response(unavailable)
        if isinstance(result, bytes):
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(result)))])
            return [result]
        return result(environ, start_response)

    if final:
        app.wsgi_app = fast_endpoint  # type: ignore[method-assign]
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


def _pause(environ: dict[str, Any], seconds: float) -> None:
    """Wait ``seconds``: through the serving layer's deferral hook when it has one, else here."""
    defer = environ.get(DEFER_DELAY)
    if defer is None:
        time.sleep(seconds)
    else:
        defer(seconds)


def _unexpected_response() -> Response:
    return error_response(500, "The mock failed unexpectedly.", code="server_error", error_type="server_error")


class _Seen:
    """What one endpoint request showed so far (for its journal entry), and whether it is still to journal."""

    __slots__ = ("body", "issue", "journal", "raw")

    def __init__(self) -> None:
        self.raw: bytes | None = None
        self.body: object = journal.NoBody
        self.issue: str | None = None
        self.journal = False


def violation_response(violation: Violation) -> Response:
    """The error answer for a broken request rule (400, 413 or 422), ``param`` naming the field."""
    return error_response(violation.status, violation.message, code=violation.code, param=violation.param)
