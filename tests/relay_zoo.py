"""The zoo: healthy relay stand-ins that differ where the contract is open or infrastructure interferes.

Each member is the mock (``create_app``, optionally with defects) wrapped in small WSGI layers, served
by werkzeug's threaded server on a free 127.0.0.1 port (:func:`tests.helpers.serve_wsgi`). The layers:

- readings of the open source fields: :func:`python_lenient` (``null``, ``""``, blank, ``{}``, ``[]``
  are "not given", values trimmed, ``timestamps`` numbers read like ``float``) and :func:`js_lenient`
  (JavaScript's falsy ``null``, ``false``, ``0``, ``""`` are "not given"; ``{}`` and ``[]`` are given);
- :func:`strict_422`: every rejection is a 422;
- :func:`limiter`: a token bucket answering 429, before or after auth, with ``Retry-After`` in seconds,
  as an HTTP date, or none;
- :func:`gateway`: every n-th request gets a gateway's HTML or plain-text 502/503 (with or without
  ``Retry-After``) instead of reaching the relay: the same request succeeds when sent again;
- :func:`slow_creates`: a 200 takes a while;
- :func:`guard_like`: answers rule-breaking requests itself, marked ``X-Sora-Guard: local``.

:data:`ZOO` names the healthy members; :func:`relay` builds one (with defects for the kill matrix).
Everything counts the creates the relay answered 200 (:attr:`Relay.creates`).
"""

from __future__ import annotations

import email.utils
import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mock_server import MockConfig, create_app

__all__ = [
    "QUIRKS",
    "TOKEN",
    "ZOO",
    "Relay",
    "gateway",
    "guard_like",
    "js_lenient",
    "limiter",
    "python_lenient",
    "relay",
    "slow_creates",
    "strict_422",
]

TOKEN = "zoo-relay-token"
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_SOURCES = ("url", "from_task")


def _read(environ: dict[str, Any]) -> bytes:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    raw: bytes = environ["wsgi.input"].read(size) if size else b""
    return raw


def _with_body(environ: dict[str, Any], raw: bytes) -> dict[str, Any]:
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    return environ


def _answer(
    start_response: Callable[..., Any], status: str, body: bytes, kind: str, *extra: tuple[str, str]
) -> list[bytes]:
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body))), *extra])
    return [body]


def _rewrite(app: Wsgi, fix: Callable[[dict[str, Any]], dict[str, Any]]) -> Wsgi:
    """A relay that reads a JSON object body its own way (``fix``) before the mock judges it."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw = _read(environ)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw = json.dumps(fix(body)).encode()
        return app(_with_body(environ, raw), start_response)

    return wsgi


def _python_absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ({}, [])


def python_lenient(app: Wsgi) -> Wsgi:
    """Python's reading: empty or blank source fields are absent, values trimmed, ``float`` timestamps."""

    def fix(body: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in body.items() if not (k in _SOURCES and _python_absent(v))}
        body = {k: v.strip() if isinstance(v, str) and k in _SOURCES else v for k, v in body.items()}
        window = body.get("timestamps")
        if isinstance(window, str) and window.count(",") == 1:
            try:
                numbers = [float(part) for part in window.split(",")]
            except ValueError:
                return body
            if all(n == n and abs(n) != float("inf") for n in numbers):
                body["timestamps"] = ",".join(f"{n:g}" for n in numbers)
        return body

    return _rewrite(app, fix)


def _js_falsy(value: object) -> bool:
    return value is None or value is False or value == "" or (type(value) in (int, float) and value == 0)


def js_lenient(app: Wsgi) -> Wsgi:
    """JavaScript's reading: ``if (!body.from_task)``: ``null``, ``false``, ``0`` and ``""`` are not given."""
    return _rewrite(app, lambda body: {k: v for k, v in body.items() if not (k in _SOURCES and _js_falsy(v))})


def strict_422(app: Wsgi) -> Wsgi:
    """Every rejection the mock answers 400 (not JSON, not an object) is a 422 here."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("400"):
                status = "422 Unprocessable Entity"
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return app(environ, start)

    return wsgi


def limiter(app: Wsgi, rate: float, burst: int, retry_after: str | None, *, before_auth: bool = True) -> Wsgi:
    """A token bucket of ``rate`` per second, ``burst`` deep; a 429 when empty.

    ``retry_after``: ``"seconds"`` (1), ``"date"`` (an HTTP date a second ahead) or ``None``. After
    auth (``before_auth=False``), requests without the right token reach the relay unlimited.
    """
    lock = threading.Lock()
    state = {"tokens": float(burst), "at": time.monotonic()}

    def take() -> bool:
        with lock:
            now = time.monotonic()
            state["tokens"] = min(float(burst), state["tokens"] + (now - state["at"]) * rate)
            state["at"] = now
            if state["tokens"] >= 1:
                state["tokens"] -= 1
                return True
            return False

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        authed = environ.get("HTTP_AUTHORIZATION") == f"Bearer {TOKEN}"
        if (before_auth or authed) and not take():
            extra: list[tuple[str, str]] = []
            if retry_after == "seconds":
                extra.append(("Retry-After", "1"))
            elif retry_after == "date":
                extra.append(("Retry-After", email.utils.formatdate(time.time() + 1, usegmt=True)))
            body = b'{"error": {"message": "Too many requests", "type": "rate_limit", "param": null, "code": null}}'
            return _answer(start_response, "429 Too Many Requests", body, "application/json", *extra)
        return app(environ, start_response)

    return wsgi


def gateway(app: Wsgi, every: int, status: int, *, html: bool = True, retry_after: str | None = None) -> Wsgi:
    """Every ``every``-th request gets the gateway's own ``status`` page; the next one goes through."""
    lock = threading.Lock()
    count = [0]
    phrase = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}[status]

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            count[0] += 1
            hiccup = count[0] % every == 0
        if hiccup:
            _read(environ)
            extra = [("Retry-After", retry_after)] if retry_after else []
            if html:
                page = f"<html><head><title>{status} {phrase}</title></head><body><h1>{phrase}</h1></body></html>"
                return _answer(start_response, f"{status} {phrase}", page.encode(), "text/html", *extra)
            return _answer(start_response, f"{status} {phrase}", phrase.encode(), "text/plain", *extra)
        return app(environ, start_response)

    return wsgi


def slow_creates(app: Wsgi, delay: float) -> Wsgi:
    """A create (a 200) takes ``delay`` seconds; everything else is answered at once."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200"):
                time.sleep(delay)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return app(environ, start)

    return wsgi


def guard_like(app: Wsgi) -> Wsgi:
    """A guard in front: rule-breaking requests answered locally (``X-Sora-Guard: local``), the rest forwarded."""
    from mock_server import load_contract
    from mock_server.contract.rules import RuleError, check_request, decode_body, error_body

    contract = load_contract()

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw = _read(environ)
        try:
            violation = check_request(decode_body(raw), contract)
        except RuleError as exc:
            violation = exc.violation
        if violation is not None:
            body = json.dumps(error_body(violation)).encode()
            extra = ("X-Sora-Guard", "local")
            return _answer(start_response, f"{violation.status} Rejected", body, "application/json", extra)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [*headers, ("X-Sora-Guard", "forwarded")]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return app(_with_body(environ, raw), start)

    return wsgi


@dataclass
class Relay:
    """A built zoo member: its WSGI app and the creates (200 answers) its relay gave."""

    name: str
    app: Wsgi
    creates: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Every status the member answered, quirks included (so a test can see the quirk fire)."""


def _recording(app: Wsgi, statuses: list[int]) -> Wsgi:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return app(environ, start)

    return wsgi


def _counting(app: Wsgi, creates: list[int]) -> Wsgi:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200") and environ.get("REQUEST_METHOD") == "POST":
                creates.append(1)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return app(environ, start)

    return wsgi


QUIRKS: dict[str, Callable[[Wsgi], Wsgi]] = {
    "python-lenient": python_lenient,
    "js-lenient": js_lenient,
    "strict-422": strict_422,
    "limiter-before-auth-retry-after": lambda app: limiter(app, 20, 5, "seconds"),
    "limiter-before-auth-no-retry-after": lambda app: limiter(app, 10, 3, None),
    "limiter-after-auth-http-date": lambda app: limiter(app, 10, 4, "date", before_auth=False),
    "gateway-html-503-retry-after": lambda app: gateway(app, 15, 503, retry_after="1"),
    "gateway-html-502": lambda app: gateway(app, 6, 502),
    "gateway-text-503": lambda app: gateway(app, 7, 503, html=False),
    "slow-creates": lambda app: slow_creates(app, 0.5),
}
"""Each healthy quirk: a layer in front of (or a reading inside) the relay."""
ZOO = tuple(QUIRKS)


def relay(quirk: str, defects: tuple[str, ...] = (), *, layer: Callable[[Wsgi], Wsgi] | None = None) -> Relay:
    """The mock (with ``defects``) behind ``quirk`` (or an explicit ``layer``), counting its creates."""
    creates: list[int] = []
    statuses: list[int] = []
    inner = _counting(create_app(MockConfig(token=TOKEN, defects=defects)), creates)
    app = _recording((layer or QUIRKS[quirk])(inner), statuses)
    return Relay(quirk, app, creates, statuses)
