"""``GET /__mock/ui``: the mock's page in a browser (journal, coverage, faults, stubs, reset).

The page is static: an HTML file, a script and a style sheet shipped in the wheel under
``mock_server/mock/ui/`` and served as they are, with a strict ``Content-Security-Policy`` (no
inline script or style, nothing from another origin, no framing). Everything it shows it reads
through the admin API (``/__mock/...``) from the same origin and writes as text, never as markup;
every change it makes goes through the same API with the same protections. So the page's files
themselves hold nothing secret and are served without the admin token: with ``--admin-token``
the page asks for the token (kept in the tab's ``sessionStorage``, sent as a bearer header) and
shows nothing until the API accepts it.

:func:`asset_response` and :data:`CSP` serve the guard's page too (:mod:`mock_server.relay.guard_ui`).
"""

from __future__ import annotations

import functools
from importlib import resources

from flask import Blueprint, Flask, Response, request

from .admin import ADMIN_PREFIX

__all__ = ["CSP", "UI_PATH", "asset_response", "register_ui"]

UI_PATH = f"{ADMIN_PREFIX}/ui"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The pages' Content-Security-Policy: their own script and style sheet only, no inline code, no framing."""

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_MOCK_ASSETS = {
    UI_PATH: "mock.html",
    f"{UI_PATH}/mock.js": "mock.js",
    f"{UI_PATH}/common.js": "common.js",
    f"{UI_PATH}/ui.css": "ui.css",
    f"{UI_PATH}/icon.svg": "icon.svg",
}


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("mock_server.mock").joinpath("ui", name).read_bytes()


def asset_response(name: str) -> Response:
    """The page file ``name`` (of ``mock_server/mock/ui/``) with the pages' security headers."""
    suffix = name[name.rindex(".") :]
    response = Response(_asset(name), status=200, content_type=_TYPES[suffix])
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


def register_ui(app: Flask) -> None:
    """Serve the mock's page from ``app``; call it before the admin API is registered.

    The page's files are answered ahead of the admin API's token check (they hold no data; the
    data they show comes from the API, which asks for the token). Only ``GET`` and ``HEAD`` of the
    exact file paths are answered here; anything else under ``/__mock/ui`` is the admin API's to refuse.
    """
    bp = Blueprint("sora_mock_ui", __name__)

    @bp.before_app_request
    def page_file() -> Response | None:
        name = _MOCK_ASSETS.get(request.path)
        if name is None or request.method not in ("GET", "HEAD"):
            return None
        return asset_response(name)

    app.register_blueprint(bp)
