"""``sora-mock guard``: a checking, budgeted proxy in front of the paid relay.

A client points its base URL at the guard instead of the relay. Each ``POST /sora/v1/characters``
is judged with the same rules and auth check as the mock: a request that breaks a rule gets the
mock's 400/401/413/422 locally and never reaches the relay. A conforming request reserves one
create of the budget, then goes upstream byte for byte with the client's ``Authorization``; once
``max_creates`` creates were billed (upstream 200s), further ones get a local 429
``budget_exhausted``. Every upstream answer is passed back unchanged (apart from the
``X-Sora-Guard`` header and the hop-by-hop headers) and judged against the contract: what breaks
it becomes a finding in ``GET /__guard/report``.

Counters and findings live in a :class:`mock_server.store.Store`, so every worker process that
opens the same state URL shares one budget. The bearer token is never stored, logged or reported.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ..app import authorize, error_response, http_error_response, read_capped, violation_response
from ..config import MAX_BODY_BYTES
from ..contract.rules import Contract, RuleError, check_character, check_error_body, check_request, decode_body
from ..contract.spec import ENDPOINT_PATH, load_contract
from ..fixtures import TOKEN_PLACEHOLDER, kept_headers
from ..store import Store, open_store
from .recorder import scrub

__all__ = [
    "CONFORMING_STATUSES",
    "DECLARED_STATUSES",
    "DEFAULT_UPSTREAM",
    "GUARD_HEADER",
    "GUARD_PREFIX",
    "GuardConfig",
    "GuardState",
    "create_guard_app",
    "guard_report",
    "judge_answer",
    "public_url",
    "summary_line",
    "write_report",
]

DEFAULT_UPSTREAM = "https://api.jxincm.cn"
"""The paid relay's base URL."""
GUARD_PREFIX = "/__guard"
GUARD_HEADER = "X-Sora-Guard"
DECLARED_STATUSES = frozenset({200, 400, 401, 404, 405, 413, 422, 429, 500, 503})
"""Statuses the contract declares for the endpoint."""
CONFORMING_STATUSES = frozenset({200, 401, 429, 500, 503})
"""What a conforming relay may answer to a request that obeys every rule (401: the token is the relay's to judge)."""

_RESERVED = "creates_reserved"
_CREATES = "creates"
_FORWARDED = "forwarded"
_BLOCKED = "blocked"
_OVER_BUDGET = "over_budget"
_PASSED = "passed"
_EPOCH = "budget_epoch"  # never reset: a forward started before a reset gives nothing back to the new budget
_COUNTERS = (_RESERVED, _CREATES, _FORWARDED, _BLOCKED, _OVER_BUDGET, _PASSED)
_FINDINGS = "findings"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Hop-by-hop headers (RFC 9110 7.6.1) plus what the HTTP client or the server writes itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",  # the guard has read the whole body already
    }
)
_SERVER_WRITTEN = frozenset({"date", "server"})  # the guard's own server writes these on every answer
_CLIENT_DEFAULTS = ("Accept", "Accept-Encoding", "User-Agent")  # httpx adds these unless the client sent them
_SUMMARY_FIELDS = ("url", "from_task", "timestamps", "model")


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment (safe to show in logs and reports)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class GuardConfig:
    """Settings of one guard. ``repr`` never shows credentials of the upstream or state URLs."""

    upstream: str = DEFAULT_UPSTREAM
    """Base URL requests are forwarded to (a path prefix is kept)."""
    max_creates: int = 10
    """Upstream 200 answers (billable creates) allowed until ``POST /__guard/reset``."""
    timeout: float = 60.0
    """Seconds to wait for the upstream (connect, send, each read)."""
    pass_through: bool = False
    """Forward paths other than the endpoint unchecked; otherwise they get a local 404."""
    record_dir: str | None = None
    """Save each forwarded answer here as a corpus-format fixture (token and ``sig=`` scrubbed)."""
    report_path: str | None = None
    """Where the stopping server writes the report as JSON."""
    state_url: str = "memory"
    """Store holding the budget and findings; every worker opening the same URL shares them."""
    state_prefix: str = "sora-guard:"
    max_body_bytes: int = MAX_BODY_BYTES
    max_findings: int = 1000
    """Findings kept (the oldest are dropped)."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an absolute http(s) URL, got {public_url(self.upstream)!r}")
        if self.max_creates < 0:
            raise ValueError("max_creates must be zero or more")
        if not self.timeout > 0:
            raise ValueError("timeout must be more than zero seconds")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if self.max_findings < 1:
            raise ValueError("max_findings must be at least 1")

    def __repr__(self) -> str:
        shown: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["upstream"] = public_url(self.upstream)
        if "@" in self.state_url:  # redis://user:password@host
            scheme, _, rest = self.state_url.partition("://")
            shown["state_url"] = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return "GuardConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


@dataclass
class GuardState:
    """What one guard app holds: its settings, the shared store, the contract and its HTTP client."""

    config: GuardConfig
    store: Store
    contract: Contract
    client: httpx.Client = field(repr=False)

    def report(self) -> dict[str, Any]:
        return guard_report(self.store, self.config)

    def close(self) -> None:
        """Close the HTTP client's connections and the store."""
        self.client.close()
        self.store.close()


def guard_report(store: Store, config: GuardConfig) -> dict[str, Any]:
    """The report ``GET /__guard/report`` answers, read from ``store``."""
    findings = [json.loads(item) for _, item in store.read(_FINDINGS)]
    return {
        "upstream": public_url(config.upstream),
        "max_creates": config.max_creates,
        "forwarded": store.get(_FORWARDED),
        "blocked": store.get(_BLOCKED),
        "creates": store.get(_CREATES),
        "budget_left": max(0, config.max_creates - store.get(_RESERVED)),
        "over_budget": store.get(_OVER_BUDGET),
        "passed": store.get(_PASSED),
        "findings": findings,
    }


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for the terminal when the guard stops."""
    return (
        f"sora-mock guard: {report['forwarded']} forwarded, {report['blocked']} blocked, "
        f"{report['creates']} billed of {report['max_creates']} (budget left {report['budget_left']}), "
        f"{report['over_budget']} over budget, {len(report['findings'])} finding(s)"
    )


def write_report(report: Mapping[str, Any], path: str | Path) -> None:
    """Write ``report`` as JSON to ``path`` (atomically: a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def judge_answer(
    status: int, headers: Mapping[str, str], body: bytes, contract: Contract, *, conforming: bool = True
) -> list[str]:
    """What is wrong with an upstream answer to ``POST /sora/v1/characters`` (empty when it conforms).

    ``headers`` is case-insensitive (an ``httpx.Headers``); ``body`` is decoded (no content
    coding). ``conforming`` says the request obeyed every rule, so only :data:`CONFORMING_STATUSES`
    fit.
    """
    problems: list[str] = []
    if status not in DECLARED_STATUSES:
        problems.append(
            f"status {status} is not one the contract declares ({', '.join(map(str, sorted(DECLARED_STATUSES)))})"
        )
    elif conforming and status not in CONFORMING_STATUSES:
        problems.append(
            f"status {status} to a request that obeys every rule "
            f"(expected {', '.join(map(str, sorted(CONFORMING_STATUSES)))})"
        )
    content_type = headers.get("Content-Type")
    if not _is_json(content_type):
        problems.append(f"Content-Type is {content_type or 'missing'}, not application/json")
    try:
        data: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        problems.append("the body is not JSON")
        return problems
    if status == 200:
        problems.extend(check_character(data, contract))
    elif status >= 400:
        problems.extend(check_error_body(data))
    if status == 429:
        retry_after = headers.get("Retry-After")
        if retry_after is None:
            problems.append("a 429 without Retry-After")
        elif not retry_after.strip().isdigit():
            problems.append(f"Retry-After {retry_after!r} is not a whole number of seconds")
    return problems


def _request_summary(body: object, token: str) -> dict[str, Any]:
    """Method, path and the contract's fields of the body: what a finding shows of a request, never the token."""
    summary: dict[str, Any] = {"method": request.method, "path": request.path}
    if isinstance(body, Mapping):
        summary["body"] = {
            name: (value[:200] if isinstance(value, str) else value)
            for name, value in body.items()
            if name in _SUMMARY_FIELDS
        }
    return dict(scrub(summary, token))


def _bearer(header: str | None) -> str:
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class _Forwarded:
    """An upstream answer: status, headers, the body as sent (``raw``) and decoded (``content``)."""

    def __init__(self, response: httpx.Response, raw: bytes, elapsed: float) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.raw = raw
        self.elapsed = elapsed
        # Undo any content coding for judging; the client gets the bytes exactly as sent.
        self.content = httpx.Response(self.status, headers=self.headers, content=raw).read()

    def to_flask(self) -> Response:
        headers = [
            (name, value)
            for name, value in self.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP and name.lower() not in _SERVER_WRITTEN
        ]
        response = Response(self.raw, status=self.status, headers=headers)
        if "Content-Type" not in self.headers:
            del response.headers["Content-Type"]  # transparent: no type the upstream did not send
        return response


class _NoAnswer(Exception):
    """The upstream gave no answer; ``sent`` tells whether the request may have reached it."""

    def __init__(self, status: int, code: str, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.sent = sent

    def response(self) -> Response:
        return error_response(self.status, self.message, code=self.code, error_type="server_error")


def create_guard_app(config: GuardConfig | None = None, *, store: Store | None = None) -> Flask:
    """Build the guard as a Flask app (one HTTP client with a connection pool, one store).

    ``store`` defaults to ``open_store(config.state_url, prefix=config.state_prefix)``. Close
    ``app.extensions["sora_guard"]`` (a :class:`GuardState`) when done with the app.
    """
    cfg = config or GuardConfig()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    contract = load_contract()
    if store is None:
        store = open_store(cfg.state_url, prefix=cfg.state_prefix, max_items=cfg.max_findings)
    client = httpx.Client(base_url=cfg.upstream, timeout=cfg.timeout, follow_redirects=False)
    state = GuardState(cfg, store, contract, client)
    app.extensions["sora_guard"] = state
    upstream = public_url(cfg.upstream)
    recorder = _Recorder(Path(cfg.record_dir), upstream) if cfg.record_dir else None

    def tag(response: Response, verdict: str) -> Response:
        response.headers[GUARD_HEADER] = verdict
        return response

    def blocked(response: Response) -> Response:
        store.incr(_BLOCKED)
        return tag(response, "blocked")

    def read_raw() -> bytes:
        if request.content_length is None and request.environ.get("wsgi.input_terminated"):
            raw = read_capped(request.environ["wsgi.input"], cfg.max_body_bytes)  # chunked upload
            if raw is None:
                raise RequestEntityTooLarge()
            return raw
        return request.get_data(cache=False)  # 413 from Content-Length, before reading anything

    def target() -> str:
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        if isinstance(raw_uri, str) and raw_uri.startswith("/"):
            return raw_uri
        query = request.query_string.decode("latin-1")
        return quote(request.path) + (f"?{query}" if query else "")

    def forward(raw: bytes) -> _Forwarded:
        listed = {part.strip().lower() for part in request.headers.get("Connection", "").split(",")}
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _HOP_BY_HOP and name.lower() not in listed
        ]
        has_body = bool(raw) or request.method in ("POST", "PUT", "PATCH")
        outgoing = client.build_request(request.method, target(), headers=headers, content=raw if has_body else None)
        for name in _CLIENT_DEFAULTS:
            if name not in request.headers:
                del outgoing.headers[name]
        started = time.perf_counter()
        try:
            answer = client.send(outgoing, stream=True)
        except httpx.ConnectTimeout:
            raise _NoAnswer(
                504, "upstream_timeout", f"The upstream {upstream} did not accept a connection in time.", sent=False
            ) from None
        except (httpx.ConnectError, httpx.PoolTimeout, httpx.UnsupportedProtocol):
            raise _NoAnswer(
                502, "upstream_unreachable", f"The upstream {upstream} cannot be reached.", sent=False
            ) from None
        except httpx.TimeoutException:
            raise _NoAnswer(
                504, "upstream_timeout", f"The upstream {upstream} did not answer within {cfg.timeout:g} s.", sent=True
            ) from None
        except httpx.HTTPError:
            raise _NoAnswer(
                502,
                "upstream_disconnected",
                f"The upstream {upstream} closed the connection without an answer.",
                sent=True,
            ) from None
        try:
            body = b"".join(answer.iter_raw())
        except httpx.TimeoutException:
            raise _NoAnswer(
                504, "upstream_timeout", f"The upstream {upstream} did not finish its answer in time.", sent=True
            ) from None
        except httpx.HTTPError:
            raise _NoAnswer(
                502, "upstream_disconnected", f"The upstream {upstream} broke off its answer.", sent=True
            ) from None
        finally:
            answer.close()
        return _Forwarded(answer, body, time.perf_counter() - started)

    def add_finding(summary: Mapping[str, Any], status: int | None, problems: list[str]) -> None:
        finding = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request": summary,
            "status": status,
            "problems": problems,
        }
        store.append(_FINDINGS, json.dumps(finding, ensure_ascii=False).encode("utf-8"))

    @app.post(ENDPOINT_PATH)
    def create_character() -> Response:
        denied = authorize(request.headers.get("Authorization"), None)
        if denied is not None:
            return blocked(denied)
        raw = read_raw()
        try:
            body = decode_body(raw)
        except RuleError as exc:
            return blocked(violation_response(exc.violation))
        violation = check_request(body, contract)
        if violation is not None:
            return blocked(violation_response(violation))
        epoch = store.get(_EPOCH)
        if not store.reserve(_RESERVED, cfg.max_creates):
            store.incr(_OVER_BUDGET)
            refusal = error_response(
                429,
                f"The guard's budget of {cfg.max_creates} billable create(s) is spent; nothing was sent upstream. "
                f"POST {GUARD_PREFIX}/reset starts a new budget.",
                code="budget_exhausted",
                error_type="insufficient_quota",
            )
            return tag(refusal, "budget")
        token = _bearer(request.headers.get("Authorization"))
        summary = _request_summary(body, token)

        def give_back() -> None:
            if store.get(_EPOCH) == epoch:
                store.incr(_RESERVED, -1)

        try:
            answer = forward(raw)
        except _NoAnswer as exc:
            if exc.sent:  # unknown outcome: the create may have been billed, so the reservation stays
                store.incr(_FORWARDED)
                add_finding(summary, None, [f"no answer from the upstream ({exc.code}); counted as a possible create"])
            else:
                give_back()
            return tag(exc.response(), "upstream-error")
        except BaseException:
            give_back()
            raise
        store.incr(_FORWARDED)
        if answer.status != 200:
            give_back()
        elif store.get(_EPOCH) == epoch:
            store.incr(_CREATES)
        problems = judge_answer(answer.status, answer.headers, answer.content, contract)
        if problems:
            add_finding(summary, answer.status, problems)
        if recorder is not None:
            try:
                recorder.save(answer, raw, token)
            except OSError as exc:  # the answer was billed: the client still gets it
                app.logger.warning("could not record an answer: %s", type(exc).__name__)
        return tag(answer.to_flask(), "forwarded")

    @app.get(f"{GUARD_PREFIX}/report")
    def report() -> Response:
        return Response(json.dumps(state.report(), ensure_ascii=False), mimetype="application/json")

    @app.post(f"{GUARD_PREFIX}/reset")
    def reset() -> Response:
        store.incr(_EPOCH)
        store.reset(counters=_COUNTERS)
        return Response(json.dumps({"status": "reset", "budget_left": cfg.max_creates}), mimetype="application/json")

    @app.route("/", defaults={"path": ""}, methods=_METHODS)
    @app.route("/<path:path>", methods=_METHODS)
    def other(path: str) -> Response:
        if not cfg.pass_through or request.path.startswith(f"{GUARD_PREFIX}/"):
            if request.path == ENDPOINT_PATH:
                raise MethodNotAllowed(valid_methods=["POST"])
            raise NotFound()
        raw = read_raw()
        try:
            answer = forward(raw)
        except _NoAnswer as exc:
            return tag(exc.response(), "upstream-error")
        store.incr(_PASSED)
        if recorder is not None:
            recorder.save(answer, raw, _bearer(request.headers.get("Authorization")))
        return tag(answer.to_flask(), "passed")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return blocked(http_error_response(exc, cfg.max_body_bytes))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        failure = error_response(500, "The guard failed unexpectedly.", code="server_error", error_type="server_error")
        return tag(failure, "error")

    return app


class _Recorder:
    """Writes each forwarded answer as a one-case corpus document (see :mod:`mock_server.fixtures`)."""

    def __init__(self, directory: Path, upstream: str) -> None:
        self.directory = directory
        self.upstream = upstream

    def save(self, answer: _Forwarded, raw: bytes, token: str) -> None:
        req_headers = {}
        if "Authorization" in request.headers:
            req_headers["Authorization"] = f"Bearer {TOKEN_PLACEHOLDER}" if token else "[redacted]"
        if "Content-Type" in request.headers:
            req_headers["Content-Type"] = request.headers["Content-Type"]
        sent: dict[str, Any] = {"method": request.method, "path": request.path, "headers": req_headers}
        if raw:
            try:
                sent["json"] = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                sent["base64"] = base64.b64encode(raw).decode("ascii")
            except ValueError:
                sent["text"] = raw.decode("utf-8")
        try:
            body: Any = json.loads(answer.content) if answer.content else None
        except (UnicodeDecodeError, ValueError):
            body = {"text": answer.content.decode("utf-8", "replace")[:2000]}
        response = {"status": answer.status, "headers": kept_headers(answer.headers), "body": body}
        stamp = datetime.now(UTC)
        item = {
            "name": f"guard-{stamp.strftime('%H%M%S')}-{uuid.uuid4().hex[:8]}",
            "description": f"{request.method} {request.path} forwarded by sora-mock guard",
            "fault": None,
            "request": scrub(sent, token),
            "response": {**scrub(response, token), "elapsed_ms": round(answer.elapsed * 1000)},
        }
        document = {
            "description": f"an answer forwarded by sora-mock guard from {self.upstream}; token, sig= scrubbed",
            "recorded_from": self.upstream,
            "recorded_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cases": [item],
        }
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if token and token in text:  # belt and braces: never write the token
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{item['name']}.json"
        partial = path.with_name(f".{path.name}.tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
