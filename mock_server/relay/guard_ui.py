"""``GET /__guard/ui``: the guard's page in a browser (budget, counts, findings, latest requests, reset).

The page is static, like the mock's (:mod:`mock_server.mock.ui`: same files directory, same
Content-Security-Policy), and reads the guard's report (``GET /__guard/report``) and the latest
requests with the guard's verdict (``GET /__guard/requests``) from the same origin. Its budget
reset is ``POST /__guard/reset`` with a JSON body from the guard's own origin, which the guard
accepts from a page (it refuses the same call from any other site).

``GET /__guard/requests`` answers ``{"in_flight": N, "requests": [...]}``: the endpoint creates
being handled at this moment (across every worker sharing the state) and, oldest first, the
requests the guard answered (``?after=SEQ&limit=N`` pages, as the mock's journal does), each with
``seq``, ``time``, ``method``, ``path``, ``status``, the guard's ``verdict`` (its ``X-Sora-Guard``
header: ``forwarded``, ``blocked``, ``budget``, ``upstream-error``, ``passed``, ``error``) and, for
an error answer in the envelope, its ``error`` (``code``, ``message``, ``param``). They live in the
guard's state store as one bounded log (the newest ``max_findings`` kept). The guard's own calls
(the report, a reset, this page) are not listed. The bearer token is never kept; a message that
echoes it reads ``[redacted]``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, request

from ..contract.http import bearer_token
from ..mock.journal import REDACTED
from ..mock.ui import asset_response
from ..serving.glue import DEFERRED
from ..store import Store, StoreUnavailable
from ..web import error_response
from .config import GUARD_HEADER, GUARD_PREFIX, SETTLING
from .exchange import tag

__all__ = ["GUARD_UI_PATH", "IN_FLIGHT", "RECENT", "register_guard_ui"]

GUARD_UI_PATH = f"{GUARD_PREFIX}/ui"
RECENT = "ui:recent"
"""The store log of the latest requests and their verdicts."""
IN_FLIGHT = "ui:in_flight"
"""The store counter of endpoint creates being handled now."""

_ASSETS = {
    GUARD_UI_PATH: "guard.html",
    f"{GUARD_UI_PATH}/guard.js": "guard.js",
    f"{GUARD_UI_PATH}/common.js": "common.js",
    f"{GUARD_UI_PATH}/ui.css": "ui.css",
    f"{GUARD_UI_PATH}/icon.svg": "icon.svg",
}
_MAX_PATH = 300
_MAX_MESSAGE = 600
_MAX_BODY = 64 * 1024
_MAX_PAGE = 1000
_COUNTED = "sora_guard.in_flight"
"""Environ key: this request is counted in :data:`IN_FLIGHT` until it lands."""


def _told(response: Response, token: str) -> dict[str, object] | None:
    """``code``, ``message`` and ``param`` of an error answer in the envelope (the token redacted), or ``None``."""
    if response.status_code < 400 or response.is_streamed or "json" not in (response.mimetype or ""):
        return None
    raw = response.get_data()
    if len(raw) > _MAX_BODY:
        return None
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    told: dict[str, object] = {}
    for key in ("code", "message", "param"):
        value = error.get(key)
        if value is not None and not isinstance(value, str):
            value = json.dumps(value)
        if isinstance(value, str):
            value = value[:_MAX_MESSAGE]
            if token:
                value = value.replace(token, REDACTED)
        told[key] = value
    return told


def _entry(response: Response, verdict: str) -> bytes:
    token = bearer_token(request.headers.get("Authorization")) or ""
    entry: dict[str, object] = {
        "time": time.time(),
        "method": request.method[:20],
        "path": request.path[:_MAX_PATH],
        "status": response.status_code,
        "verdict": verdict,
    }
    told = _told(response, token)
    if told is not None:
        entry["error"] = told
    path = str(entry["path"])
    if token and token in path:
        entry["path"] = path.replace(token, REDACTED)
    return json.dumps(entry, ensure_ascii=True).encode()


def _page_arg(name: str, high: int) -> int | None:
    text = request.args.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or int(text) > high:
        raise ValueError(f"{name} must be a whole number between 0 and {high}; got {json.dumps(text[:40])}.")
    return int(text)


def register_guard_ui(app: Flask, store: Store, is_endpoint: Callable[[str], bool]) -> None:
    """Serve the guard's page and ``GET /__guard/requests`` from ``app``, and log each answer's verdict in ``store``.

    ``is_endpoint(path)`` says whether a path reaches the endpoint upstream (the guard's own reading).
    A forwarded create is answered twice inside the guard: a placeholder while the exchange waits on
    the serving loop, then the final answer (:data:`~mock_server.relay.config.SETTLING`); only the
    final one is logged and lands the create.
    """
    bp = Blueprint("sora_guard_ui", __name__)

    @bp.before_app_request
    def page_file() -> Response | None:
        name = _ASSETS.get(request.path)
        if name is not None and request.method in ("GET", "HEAD"):
            return asset_response(name)
        if request.method == "POST" and is_endpoint(request.path):
            with contextlib.suppress(StoreUnavailable):  # the guard itself says what an unreachable store means
                store.incr(IN_FLIGHT)
                request.environ[_COUNTED] = True
        return None

    def placeholder() -> bool:
        """Whether this context answers a forwarded create whose exchange is still to come."""
        environ = request.environ
        return environ.get(DEFERRED) is not None and not environ.get(SETTLING)

    @bp.after_app_request
    def remember(response: Response) -> Response:
        verdict = response.headers.get(GUARD_HEADER)
        if verdict is not None and verdict != "local" and not placeholder():
            with contextlib.suppress(StoreUnavailable):
                store.append(RECENT, _entry(response, verdict))
        return response

    @bp.teardown_app_request
    def landed(exc: BaseException | None) -> None:
        if not placeholder() and request.environ.pop(_COUNTED, False):
            with contextlib.suppress(StoreUnavailable):
                store.incr(IN_FLIGHT, -1)

    @bp.get(f"{GUARD_PREFIX}/requests")
    def recent() -> Response:
        try:
            after = _page_arg("after", 2**62) or 0
            limit = _page_arg("limit", _MAX_PAGE)
        except ValueError as exc:
            name = str(exc).split(" ", 1)[0]
            return error_response(400, str(exc), code="invalid_parameter", param=name)
        items = [b'{"seq":%d,%s' % (seq, item[1:]) for seq, item in store.read(RECENT, after, limit or _MAX_PAGE)]
        body = b'{"in_flight":%d,"requests":[%s]}' % (max(0, store.get(IN_FLIGHT)), b",".join(items))
        return tag(Response(body, mimetype="application/json"), "local")

    app.register_blueprint(bp)
