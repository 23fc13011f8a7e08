"""The endpoint core: ``POST /sora/v1/characters`` as a function of (request, state) → answer.

No Flask, no WSGI environ, no socket. An adapter (the RSGI server, the Flask route, the respx
router) turns what it received into a :class:`Request`, calls :meth:`Endpoint.handle` and turns
the :class:`Answer` back into its own kind of response: it applies ``delay`` and ``drop`` and
writes status, headers and body. Everything the endpoint does lives here once:

1. the method (``OPTIONS`` → 204 with ``Allow``, anything but ``POST`` → 405);
2. bearer auth (401 with ``WWW-Authenticate``);
3. the body: the adapter's transport verdict (413, 408, a broken body), then strict JSON;
4. the request rules (400 / 422 naming the field);
5. a pending (or randomly drawn) fault: an error status, a delay, a dropped connection;
6. the created character, remembered with its journal entry in one store call;
7. the journal entry of every ``POST`` (headers redacted, the body kept as RFC 8259 JSON).

Defects are a :class:`~mock_server.mock.core.DefectPolicy` handed to the endpoint; a healthy
endpoint has the no-op policy, so the same code runs with or without defects.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..contract.http import AUTH_CHALLENGE, MIN_SECRET_LENGTH, bearer_token, check_bearer, envelope, malformed_body
from ..contract.rules import Contract, RuleError, Violation, check_request, decode_body
from ..contract.spec import ENDPOINT_PATH
from ..store import StoreUnavailable
from . import journal
from .config import MockConfig
from .cors import answer_headers, preflight_headers
from .faults import Fault
from .provider import id_key, seeded_character_json
from .state import MockState
from .stubs import Stub

__all__ = [
    "ALLOWED_METHODS",
    "HEALTHY",
    "Answer",
    "DefectPolicy",
    "Endpoint",
    "Request",
    "unavailable_message",
]

ALLOWED_METHODS = "OPTIONS, POST"
_JSON = ("Content-Type", "application/json")
_HEADER_CACHE_BYTES = 1 << 20
"""Bytes of journal header encodings (and their keys) kept for reuse; the cache starts over past it."""
_HEADER_CACHE_ITEM = 16 * 1024
"""A header set larger than this is encoded every time, never cached."""

_SLASHES = re.compile("/{2,}")
_PREFLIGHT = "cors_preflight"
"""The outcome of a CORS preflight (its answer already carries the CORS headers; not an endpoint outcome)."""
_log = logging.getLogger("sora_mock.endpoint")


@dataclass(slots=True)
class Request:
    """What an adapter received: method, the raw path, headers as sent, the body and the peer.

    ``body`` is ``None`` when the adapter did not read it; ``refusal`` is then the transport's
    verdict (413 over the size limit, 408 too slow, 400 a broken body) for the endpoint to answer.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = b""
    peer: str = ""
    refusal: Violation | None = None
    unsure_end: bool = False
    """The transport could not tell a chunked body's trailer section from broken framing: a body
    that does not decode is then answered as malformed framing, one that does is judged as usual."""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lowercase), repeated values joined with a comma."""
        values = [value for key, value in self.headers if key.lower() == name]
        return ",".join(values) if values else None


@dataclass(slots=True)
class Answer:
    """What to send: ``status``, ``headers`` and ``body``, after ``delay`` seconds; or nothing (``drop``).

    ``outcome`` names what the request met (``created``, an error code, ``dropped``).
    """

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    outcome: str | None = None
    delay: float = 0.0
    drop: bool = False
    error: Violation | None = None
    """The broken rule or fault an error answer tells of (the journal keeps its message and param)."""

    @property
    def is_json(self) -> bool:
        return any(name.lower() == "content-type" and "json" in value for name, value in self.headers)


class DefectPolicy:
    """Where a defect may bend the endpoint, as named hooks; this base class bends nothing (healthy).

    :class:`mock_server.mock.defects.Defects` overrides them for the named defects.
    """

    def overrule_refusal(self, refusal: Violation | None) -> Violation | None:
        """The auth step's verdict (``None``: authorized); a defect may wave a refused request through."""
        return refusal

    def check_request(self, body: object, contract: Contract) -> Violation | None:
        """The request rules' verdict on a decoded body (:func:`~mock_server.contract.rules.check_request`)."""
        return check_request(body, contract)

    def bend(self, answer: Answer) -> Answer:
        """The answer about to be journaled and sent; a defect may change it."""
        return answer


HEALTHY = DefectPolicy()
"""The policy of a healthy endpoint."""


class _Seen:
    """The request as the journal keeps it: the raw body, what it decoded to, why it did not."""

    __slots__ = ("body", "issue", "raw")

    def __init__(self) -> None:
        self.raw: bytes | None = None
        self.body: object = journal.NoBody
        self.issue: str | None = None


class Endpoint:
    """``POST /sora/v1/characters`` over ``state``, configured by ``config``, bent by ``policy``."""

    path = ENDPOINT_PATH

    def __init__(
        self,
        config: MockConfig,
        state: MockState,
        contract: Contract,
        *,
        seed: int,
        policy: DefectPolicy = HEALTHY,
    ) -> None:
        self.config = config
        self.state = state
        self.contract = contract
        self.seed = seed
        self.policy = policy
        self.max_body_bytes = config.max_body_bytes
        self._key = id_key(seed)
        self._secrets = (config.token,) if config.token else ()
        self._latency = config.latency_ms / 1000
        self._cors = config.cors
        self._header_cache: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._header_cache_bytes = 0

    def owns(self, path: str) -> bool:
        """Whether ``path`` (as received) is the endpoint's: exactly it, or it with doubled slashes merged.

        Reverse proxies in front of relays merge repeated slashes (nginx does by default), so
        ``/sora//v1/characters`` is answered like the endpoint and journaled as received.
        """
        return path == self.path or ("//" in path and _SLASHES.sub("/", path) == self.path)

    # the one entry point
    def handle(self, request: Request) -> Answer:
        """Answer one request for the endpoint path (any method)."""
        answer = self._post(request) if request.method == "POST" else self._other_method(request)
        if self._cors and not answer.drop and answer.outcome != _PREFLIGHT:
            carried = [name for name, _ in answer.headers]
            answer.headers += answer_headers(request.header("origin"), self._cors, carried)
        return answer

    def _post(self, request: Request) -> Answer:
        seen = _Seen()
        try:
            answer = self._create(request, seen)
        except StoreUnavailable as exc:
            answer = _unavailable(exc)
            with contextlib.suppress(StoreUnavailable):
                self.state.count_outcome("state_unavailable")
            return answer
        except Exception as exc:
            _log.error("unhandled %s on POST %s", type(exc).__name__, self.path)
            answer = _error(Violation(500, None, "server_error", "The mock failed unexpectedly."))
            try:
                self._finish(request, answer, seen)
            except StoreUnavailable as unavailable:
                return _unavailable(unavailable)
        answer.delay += self._latency
        return answer

    def _other_method(self, request: Request) -> Answer:
        if request.method == "OPTIONS":  # no body, so no content type either
            if self._cors:
                origin, wanted = request.header("origin"), request.header("access-control-request-method")
                asked = request.header("access-control-request-headers")
                preflight = preflight_headers(origin, wanted, self._cors, asked)
                if preflight is not None:
                    return Answer(204, headers=[("Allow", ALLOWED_METHODS), *preflight], outcome=_PREFLIGHT)
            return Answer(204, headers=[("Allow", ALLOWED_METHODS)])
        message = f"Method {request.method} is not allowed on {self.path}; allowed: {ALLOWED_METHODS}."
        return _error(Violation(405, None, "method_not_allowed", message), [("Allow", ALLOWED_METHODS)])

    def _create(self, request: Request, seen: _Seen) -> Answer:
        """The ``POST``, in the order of answers: auth, the body and the rules, a pending fault, a
        matching stub, the created character. The checks come first (no I/O); without a fault
        rate or stubs, a fault or a new character is then one store call."""
        policy = self.policy
        refusal = policy.overrule_refusal(check_bearer(request.header("authorization"), self.config.token))
        if refusal is None:
            refusal = request.refusal
        body: object = None
        if refusal is None:
            body = self._decode(request.body or b"", seen)
            if isinstance(body, Violation) and request.unsure_end:
                body = malformed_body()
            refusal = body if isinstance(body, Violation) else policy.check_request(body, self.contract)
        if refusal is not None:
            headers = [AUTH_CHALLENGE] if refusal.status == 401 else []
            if request.body is None:  # the body was left unread: the connection cannot be reused
                headers.append(("Connection", "close"))
            return self._finish(request, policy.bend(_error(refusal, headers)), seen)
        state = self.state
        stubs = state.stub_entries()  # read once: whether a stub may answer, and which
        if not self.config.fault_rate and not stubs:
            fault, character = state.fault_or_new_character(self._build, self._entry(request, _CREATED, seen))
            if character is not None:
                return self._created(character)
        else:
            fault = state.take_fault() or self._drawn_fault()
        if fault is not None and (fault.status is not None or fault.drop):
            answer = self._finish(request, policy.bend(_fault_answer(fault)), seen)
            answer.delay += fault.delay_ms / 1000
            return answer
        stub = state.take_stub(body, {name.lower(): value for name, value in request.headers}, stubs) if stubs else None
        if stub is not None:
            answer = Answer(stub.status, stub.body, stub.response_headers(), stub.outcome, stub.delay_ms / 1000)
            answer = self._finish(request, policy.bend(answer), seen, stub)
        else:  # the character (answered late when a delay fault is pending)
            answer = self._created(state.new_character(self._build, self._entry(request, _CREATED, seen)))
        if fault is not None:
            answer.delay += fault.delay_ms / 1000
        return answer

    def _finish(self, request: Request, answer: Answer, seen: _Seen, stub: Stub | None = None) -> Answer:
        """Journal and count an answer that is not a created character (those go with the character)."""
        self.state.record(self._entry(request, answer, seen, stub))
        self.state.count_outcome(answer.outcome or "server_error")
        return answer

    def _created(self, character: bytes) -> Answer:
        return self.policy.bend(Answer(200, character, [_JSON], "created"))

    def _decode(self, raw: bytes, seen: _Seen) -> object:
        seen.raw = raw
        try:
            body = decode_body(raw, reject_duplicates=True)
        except RuleError as exc:
            seen.issue = "too_deep" if "nested too deeply" in exc.violation.message else exc.violation.code
            return exc.violation
        seen.body = body
        return body

    def _build(self, serial: int) -> bytes:
        return seeded_character_json(self.seed, serial, self.config.clock(), key=self._key)

    def _drawn_fault(self) -> Fault | None:
        draw = self.state.next_draw()
        if random.Random(((self.seed & 0xFFFFFFFFFFFFFFFF) << 64) | draw).random() < self.config.fault_rate:
            return Fault(status=self.config.fault_status)
        return None

    # the journal
    def _entry(self, request: Request, answer: Answer, seen: _Seen, stub: Stub | None = None) -> bytes:
        hidden = self._hidden(request)
        return journal.encode_entry_bytes(
            time=time.time(),
            method=request.method,
            path=request.path,
            status=None if answer.drop else answer.status,
            outcome=answer.outcome,
            headers=self._headers(request, hidden),
            body=journal.encode_body(seen.raw, seen.body, seen.issue, hidden),
            stub=None if stub is None else stub.id,
            off_contract=stub is not None and stub.off_contract,
            error=None if answer.error is None else _told(answer.error, hidden),
        )

    def _hidden(self, request: Request) -> tuple[str, ...]:
        presented = bearer_token(request.header("authorization")) or ""
        return (*self._secrets, presented) if len(presented) >= MIN_SECRET_LENGTH else self._secrets

    def _headers(self, request: Request, hidden: tuple[str, ...]) -> bytes:
        """The redacted headers' JSON; clients resend the same set, so each is encoded once (bounded in bytes)."""
        key = request.headers
        encoded = self._header_cache.get(key)
        if encoded is None:
            encoded = journal.dumps(journal.redact_headers(journal.titled(key), hidden))
            size = len(encoded) + sum(len(name) + len(value) for name, value in key)
            if size <= _HEADER_CACHE_ITEM:
                if self._header_cache_bytes + size > _HEADER_CACHE_BYTES:
                    self._header_cache.clear()
                    self._header_cache_bytes = 0
                self._header_cache[key] = encoded
                self._header_cache_bytes += size
        return encoded


_CREATED = Answer(200, outcome="created")
"""The journal's view of a created character (the entry is written with the character itself)."""


def _error(violation: Violation, headers: Sequence[tuple[str, str]] = ()) -> Answer:
    return Answer(violation.status, envelope(violation), [_JSON, *headers], violation.code, error=violation)


def _told(violation: Violation, hidden: tuple[str, ...]) -> tuple[str, str | None]:
    """The journal's ``(message, param)`` of an error answer; a secret the message echoes reads ``[redacted]``."""
    message = violation.message
    for secret in hidden:
        message = message.replace(secret, journal.REDACTED)
    return message, violation.param


def unavailable_message(exc: StoreUnavailable) -> str:
    """The 503 message when the state store cannot be reached: its reason, never a traceback."""
    return f"The mock's state store is unavailable: {str(exc).rstrip('. ')}. Retry shortly."


def _unavailable(exc: StoreUnavailable) -> Answer:
    """503: the state store cannot be reached; nothing is journaled."""
    return _error(Violation(503, None, "state_unavailable", unavailable_message(exc)), [("Retry-After", "1")])


def _fault_answer(fault: Fault) -> Answer:
    """The answer of a fault that fails the request: no answer at all (``drop``), or its error status."""
    if fault.drop or fault.status is None:
        return Answer(500, outcome="dropped", drop=True)
    headers: list[tuple[str, str]] = []
    if fault.status == 429 or fault.retry_after is not None:
        headers.append(("Retry-After", str(fault.retry_after if fault.retry_after is not None else 1)))
    if fault.status == 429:
        violation = Violation(429, None, "rate_limit_exceeded", "Too many requests; retry after the Retry-After delay.")
    else:
        violation = Violation(fault.status, None, "server_error", f"Injected failure (HTTP {fault.status}).")
    return _error(violation, headers)
