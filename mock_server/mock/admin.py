"""The ``/__mock/`` admin API: readiness, request journal, created characters, reset, faults, stubs, coverage.

Without ``admin_token`` in the config it takes no bearer token: it is meant for a mock bound to
127.0.0.1 (the default). With ``admin_token`` set, every request under ``/__mock`` requires
``Authorization: Bearer <admin_token>`` (the endpoint's own token does not open it) before
anything else is said about it: an unknown admin path or a wrong method gets the 401 first, and
its 404 or 405 only with the token. Token or not, it obeys no web page (see
:func:`mock_server.serving.flask_glue.refuse_web_pages`): a ``Host`` naming neither an IP address,
``localhost`` nor one of ``allowed_hosts`` is a 403, so is a page of another origin, and a write
declaring a type other than JSON is a 415.

``GET /__mock/requests`` and ``/__mock/characters`` stream one JSON array, fetched from the store
in small batches, so a read neither builds the whole journal in memory nor holds up creates;
``?limit=N&after=SEQ`` pages through it (each entry carries its ``seq``). The journal also takes
``?status=N`` and ``?code=OUTCOME`` (the entry's ``outcome``), combinable with each other and with
paging: ``limit`` counts the entries that pass the filters.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict

from flask import Blueprint, Response, current_app, request

from ..contract.http import bearer_token, same_secret
from ..contract.rules import RuleError, decode_body
from ..store import StateLost, StoreUnavailable
from ..web import QueryError, error_response, query_arg, refuse_web_pages
from .compose import composition_of
from .faults import Fault, FaultError
from .state import MockState
from .stubs import MAX_STUB_BYTES, StubError, decode_description, parse_stub

__all__ = ["ADMIN_PREFIX", "admin_blueprint"]

ADMIN_PREFIX = "/__mock"
MAX_PAGE = 1_000_000
_FAULT_FIELDS = ("status", "retry_after", "delay_ms", "drop", "times")
_UNKNOWN = "unknown fault field(s): "
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _state() -> MockState:
    state: MockState = composition_of(current_app).state
    return state


def _json(body: object, status: int = 200) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, mimetype="application/json")


def _bad_fault(message: str, param: str | None) -> Response:
    return error_response(400, message, code="invalid_fault", param=param)


def _param_of(message: str) -> str | None:
    """The fault field a :class:`FaultError` message is about (its first word), if it names one."""
    if message.startswith(_UNKNOWN):
        return message[len(_UNKNOWN) :].split(";", 1)[0].split(",", 1)[0].strip() or None
    first = message.split(" ", 1)[0]
    return first if first in _FAULT_FIELDS else None


def _int_arg(name: str, low: int, high: int) -> int | None:
    """The integer query parameter ``name`` (``None`` when absent); :class:`QueryError` naming it otherwise."""
    text = query_arg(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise QueryError(name, f"{name} must be a whole number between {low} and {high}; got {json.dumps(text[:40])}.")
    return int(text)


def _stream(read: Callable[[int, int | None], Iterator[bytes]]) -> Response:
    """A streamed JSON array of what ``read(after, limit)`` yields; 400 for bad paging parameters."""
    try:
        limit = _int_arg("limit", 0, MAX_PAGE)
        after = _int_arg("after", 0, 2**62) or 0
    except QueryError as exc:
        return exc.response()
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
    _add_gates(bp)
    _add_state_routes(bp)
    _add_fault_routes(bp)
    _add_stub_routes(bp)
    return bp


def _add_gates(bp: Blueprint) -> None:
    """The checks every request of the app passes before an admin route: the token, then the page origin."""

    @bp.before_app_request  # every request of the app: unknown admin paths and wrong methods too
    def require_admin_token() -> Response | None:
        expected = composition_of(current_app).config.admin_token
        if expected is None or not _is_admin_path(request.path):
            return None
        given = bearer_token(request.headers.get("Authorization"))
        if given is not None and same_secret(given, expected):
            return None
        message = 'The admin API requires its own token: send "Authorization: Bearer <admin token>".'
        return error_response(401, message, code="invalid_admin_token")

    @bp.before_app_request  # after the token: a web page of another origin (or DNS name) drives nothing
    def refuse_foreign_pages() -> Response | None:
        if not _is_admin_path(request.path) or request.path == ADMIN_PREFIX + "/health":  # readiness tells nothing
            return None
        return refuse_web_pages("The admin API", composition_of(current_app).config.allowed_hosts)


def _add_state_routes(bp: Blueprint) -> None:
    """Health, the journal, the characters, the coverage and the reset."""

    @bp.get("/health")
    def health() -> Response:
        state = _state()
        try:
            state.ping()
        except StateLost as exc:  # it answers, but the state this mock kept there is gone (emptied, replaced)
            return _json({"status": "lost", "state": state.store.backend, "reason": str(exc)}, 503)
        except StoreUnavailable as exc:
            return _json({"status": "unavailable", "state": state.store.backend, "reason": str(exc)}, 503)
        return _json({"status": "ok", "state": state.store.backend})

    @bp.get("/requests")
    def requests() -> Response:
        try:
            wanted = _journal_filter()
        except QueryError as exc:
            return exc.response()
        if wanted is None:
            return _stream(_state().iter_requests)
        state = _state()
        return _stream(lambda after, limit: _filtered(state, wanted, after, limit))

    @bp.get("/characters")
    def characters() -> Response:
        state = _state()
        return _stream(lambda after, limit: state.iter_characters(after, limit, seq=True))

    @bp.get("/coverage")
    def coverage() -> Response:
        return _json(_state().coverage())

    @bp.post("/reset")
    def reset() -> Response:
        _state().reset()
        return _json({"status": "reset"})


def _add_fault_routes(bp: Blueprint) -> None:
    """List and queue faults."""

    @bp.get("/faults")
    def pending() -> Response:
        return _json(_state().pending_faults())

    @bp.post("/faults")
    def add_fault() -> Response:
        try:
            data = decode_body(request.get_data(cache=False), reject_duplicates=True)
        except RuleError as exc:
            return _bad_fault(f"Invalid fault body: {exc}", exc.violation.param)
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


def _add_stub_routes(bp: Blueprint) -> None:
    """Add, list, delete and clear stubs."""

    @bp.post("/stubs")
    def add_stub() -> Response:
        try:
            data = decode_description(_read_stub_body())
            stub = parse_stub(data, composition_of(current_app).contract, stub_id=uuid.uuid4().hex)
            _state().add_stub(stub)
        except StubError as exc:
            return _bad_stub(exc)
        return _json({**stub.to_json(), "hits": 0, "remaining": stub.times}, 201)

    @bp.get("/stubs")
    def list_stubs() -> Response:
        items = _state().iter_stubs()  # each stored stub is already its JSON: none is decoded to list it
        return Response(b"[" + b",".join(items) + b"]", status=200, mimetype="application/json")

    @bp.delete("/stubs/<stub_id>")
    def delete_stub(stub_id: str) -> Response:
        if not _state().delete_stub(stub_id):
            message = f"No stub with id {json.dumps(stub_id[:80])}; GET /__mock/stubs lists them."
            return error_response(404, message, code="stub_not_found", param="id")
        return _json({"status": "deleted", "id": stub_id})

    @bp.delete("/stubs")
    def clear_stubs() -> Response:
        _state().clear_stubs()
        return _json({"status": "cleared"})


def _read_stub_body() -> bytes:
    """The stub description's bytes; :class:`StubError` naming the body when it is over its own bound."""
    cap = 2 * MAX_STUB_BYTES  # room for indented JSON; the stored description is held to MAX_STUB_BYTES
    raw = b""
    too_big = (request.content_length or 0) > cap
    if not too_big:
        request.max_content_length = cap + 1  # its own bound: a 400 naming it, not the endpoint's 413
        raw = _read_at_most(cap + 1)
        too_big = len(raw) > cap
    if too_big:
        raise StubError(f"a stub may hold at most {MAX_STUB_BYTES} bytes of JSON", "body")
    return raw


def _read_at_most(limit: int) -> bytes:
    """The request body, or its first ``limit`` bytes when it is longer."""
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := request.stream.read(min(65536, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _bad_stub(exc: StubError) -> Response:
    lead = "Stub refused by the contract" if exc.status == 422 else "Invalid stub"
    message = f"{lead}: {exc}." if not str(exc).endswith(".") else f"{lead}: {exc}"
    return error_response(exc.status, message, code=exc.code, param=exc.param)


def _journal_filter() -> tuple[int | None, str | None] | None:
    """``(status, code)`` of the journal filters (``None`` when there are none); :class:`QueryError` naming one."""
    status = _int_arg("status", 100, 599)
    code = query_arg("code")
    if code is not None and not _CODE.fullmatch(code):
        raise QueryError(
            "code",
            "code must be an outcome id such as rate_limit_exceeded (letters, digits, _ . : -; "
            f"at most 100); got {json.dumps(code[:40])}.",
        )
    if status is None and code is None:
        return None
    return status, code


def _filtered(
    state: MockState, wanted: tuple[int | None, str | None], after: int, limit: int | None
) -> Iterator[bytes]:
    """Journal entries after ``after`` whose ``status`` and ``outcome`` are the wanted ones, at most ``limit``."""
    status, code = wanted
    if limit == 0:
        return
    needle = b"%d" % status if status is not None else code.encode() if code is not None else b""
    kept = 0
    for item in state.iter_requests(after, None):
        if needle not in item:  # most entries are passed over without decoding them
            continue
        entry = json.loads(item)
        if status is not None and entry.get("status") != status:
            continue
        if code is not None and entry.get("outcome") != code:
            continue
        yield item
        kept += 1
        if limit is not None and kept >= limit:
            return
