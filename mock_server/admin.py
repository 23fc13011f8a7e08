"""The ``/__mock/`` admin API: readiness, request journal, created characters, reset, faults.

Without ``admin_token`` in the config it takes no bearer token: it is meant for a mock bound to
127.0.0.1 (the default). With ``admin_token`` set, every request under ``/__mock`` requires
``Authorization: Bearer <admin_token>`` (the endpoint's own token does not open it) before
anything else is said about it: an unknown admin path or a wrong method gets the 401 first, and
its 404 or 405 only with the token.

``GET /__mock/requests`` and ``/__mock/characters`` stream one JSON array, fetched from the store
in small batches, so a read neither builds the whole journal in memory nor holds up creates;
``?limit=N&after=SEQ`` pages through it (each entry carries its ``seq``).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict

from flask import Blueprint, Response, current_app, request

from .contract.rules import RuleError, decode_body
from .faults import Fault, FaultError
from .state import MockState
from .store import StoreUnavailable

__all__ = ["ADMIN_PREFIX", "admin_blueprint"]

ADMIN_PREFIX = "/__mock"
MAX_PAGE = 1_000_000
_FAULT_FIELDS = ("status", "retry_after", "delay_ms", "drop", "times")
_UNKNOWN = "unknown fault field(s): "


def _state() -> MockState:
    state: MockState = current_app.extensions["sora_mock"]["state"]
    return state


def _json(body: object, status: int = 200) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, mimetype="application/json")


def _bad_fault(message: str, param: str | None) -> Response:
    return _json(
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": "invalid_fault"}},
        400,
    )


def _param_of(message: str) -> str | None:
    """The fault field a :class:`FaultError` message is about (its first word), if it names one."""
    if message.startswith(_UNKNOWN):
        return message[len(_UNKNOWN) :].split(";", 1)[0].split(",", 1)[0].strip() or None
    first = message.split(" ", 1)[0]
    return first if first in _FAULT_FIELDS else None


def _bad_parameter(name: str, message: str) -> Response:
    return _json(
        {"error": {"message": message, "type": "invalid_request_error", "param": name, "code": "invalid_parameter"}},
        400,
    )


def _int_arg(name: str, low: int, high: int) -> int | None:
    """The integer query parameter ``name`` (``None`` when absent); ``ValueError`` naming it otherwise."""
    text = request.args.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number between {low} and {high}; got {json.dumps(text[:40])}.")
    return int(text)


def _stream(read: Callable[[int, int | None], Iterator[bytes]]) -> Response:
    """A streamed JSON array of what ``read(after, limit)`` yields; 400 for bad paging parameters."""
    try:
        limit = _int_arg("limit", 0, MAX_PAGE)
        after = _int_arg("after", 0, 2**62) or 0
    except ValueError as exc:
        return _bad_parameter(str(exc).split(" ", 1)[0], str(exc))
    items = read(after, limit)
    first = next(items, None)  # a store that cannot be read fails here, before the 200 is sent

    def body() -> Iterator[bytes]:
        if first is None:
            yield b"[]"
            return
        yield b"[" + first
        try:
            for item in items:
                yield b"," + item
        except StoreUnavailable:  # too late for a 503: end the body short (invalid JSON says so)
            return
        yield b"]"

    return Response(body(), status=200, mimetype="application/json")


def _is_admin_path(path: str) -> bool:
    """Whether ``path`` is under :data:`ADMIN_PREFIX` (a route of the admin API or not; ``//`` counts as ``/``)."""
    path = re.sub("/{2,}", "/", path)
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def admin_blueprint() -> Blueprint:
    """A fresh blueprint (one per app) serving the admin API under :data:`ADMIN_PREFIX`."""
    bp = Blueprint("sora_mock_admin", __name__, url_prefix=ADMIN_PREFIX)

    @bp.before_app_request  # every request of the app: unknown admin paths and wrong methods too
    def require_admin_token() -> Response | None:
        expected = current_app.extensions["sora_mock"]["config"].admin_token
        if expected is None or not _is_admin_path(request.path):
            return None
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
            return None
        return _json(
            {
                "error": {
                    "message": 'The admin API requires its own token: send "Authorization: Bearer <admin token>".',
                    "type": "authentication_error",
                    "param": None,
                    "code": "invalid_admin_token",
                }
            },
            401,
        )

    @bp.get("/health")
    def health() -> Response:
        state = _state()
        try:
            state.ping()
        except StoreUnavailable as exc:
            return _json({"status": "unavailable", "state": state.store.backend, "reason": str(exc)}, 503)
        return _json({"status": "ok", "state": state.store.backend})

    @bp.get("/requests")
    def requests() -> Response:
        return _stream(_state().iter_requests)

    @bp.get("/characters")
    def characters() -> Response:
        state = _state()
        return _stream(lambda after, limit: state.iter_characters(after, limit, seq=True))

    @bp.post("/reset")
    def reset() -> Response:
        _state().reset()
        return _json({"status": "reset"})

    @bp.get("/faults")
    def pending() -> Response:
        return _json(_state().pending_faults())

    @bp.post("/faults")
    def add_fault() -> Response:
        try:
            data = decode_body(request.get_data(cache=False))
        except RuleError as exc:
            return _bad_fault(f"Invalid fault body: {exc}", None)
        try:
            fault, times = Fault.from_json(data)
        except FaultError as exc:
            return _bad_fault(f"Invalid fault: {exc}.", _param_of(str(exc)))
        state = _state()
        try:
            state.push_fault(fault, times)
        except FaultError as exc:
            return _bad_fault(f"Cannot queue the fault: {exc}.", _param_of(str(exc)))
        return _json({"queued": {"fault": asdict(fault), "times": times}, "pending": state.pending_faults()}, 201)

    return bp
