"""The ``/__mock/`` admin API: readiness, request journal, created characters, reset, faults.

Without ``admin_token`` in the config it takes no bearer token: it is meant for a mock bound to
127.0.0.1 (the default). With ``admin_token`` set, every admin route requires
``Authorization: Bearer <admin_token>`` (the endpoint's own token does not open it).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict

from flask import Blueprint, Response, current_app, request

from .contract.rules import RuleError, decode_body
from .faults import Fault, FaultError
from .state import MockState

__all__ = ["ADMIN_PREFIX", "admin_blueprint"]

ADMIN_PREFIX = "/__mock"
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


def admin_blueprint() -> Blueprint:
    """A fresh blueprint (one per app) serving the admin API under :data:`ADMIN_PREFIX`."""
    bp = Blueprint("sora_mock_admin", __name__, url_prefix=ADMIN_PREFIX)

    @bp.before_request
    def require_admin_token() -> Response | None:
        expected = current_app.extensions["sora_mock"]["config"].admin_token
        if expected is None:
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
        return _json({"status": "ok"})

    @bp.get("/requests")
    def requests() -> Response:
        return _json(_state().requests())

    @bp.get("/characters")
    def characters() -> Response:
        return _json(_state().characters())

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
