"""One corpus, every adapter: the served RSGI app, the Flask test client and the respx router agree.

Each adapter is a thin translation over the one endpoint core, so the same request must get the
same status, the same body shape and the same journal entry from each of them — healthy, and
with a defect on that leaves that request alone (so the defect policy's hooks change nothing
they should not).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mock_server import create_app, load_contract
from mock_server.contract.rules import check_character, check_error_body
from mock_server.mock.compose import composition_of
from mock_server.mock.fixtures import Case, iter_cases
from mock_server.testing.respx_router import SoraRouter

from ..helpers import MockProcess

pytestmark = pytest.mark.slow

TOKEN = "differential-token-0123456789"
SEED = 7
SENT_HEADERS = ("Authorization", "Content-Type", "X-Trace")
"""The request headers every adapter sends as given; the others (Host, User-Agent…) are each client's own."""


@dataclass(frozen=True)
class Probe:
    """One request of the differential corpus, and the fault queued before it (if any)."""

    name: str
    method: str
    path: str
    headers: dict[str, str]
    content: bytes
    fault: dict[str, Any] | None = None


def _probes() -> list[Probe]:
    probes = []
    for case in iter_cases():
        if case.name == "too-large":  # the server may close while a 1 MiB body is still being sent (test_load)
            continue
        headers = {**case.headers(TOKEN), "X-Trace": case.name}
        probes.append(Probe(case.name, case.method, case.path, headers, case.content(), case.fault))
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    valid = json.dumps({"url": "https://example.com/v.mp4", "timestamps": "1,3"}).encode()
    extra = [
        Probe("drop", "POST", "/sora/v1/characters", auth, valid, {"drop": True}),
        Probe("delay", "POST", "/sora/v1/characters", auth, valid, {"delay_ms": 20}),
        Probe("fault-waits-for-a-valid-request", "POST", "/sora/v1/characters", auth, b"{", {"status": 503}),
        Probe("fault-hits-this-create", "POST", "/sora/v1/characters", auth, valid),
        Probe("duplicate-key", "POST", "/sora/v1/characters", auth, b'{"timestamps":"1,3","timestamps":"1,2"}'),
        Probe("token-in-body", "POST", "/sora/v1/characters", auth, json.dumps({"note": TOKEN}).encode()),
        Probe("options", "OPTIONS", "/sora/v1/characters", {"X-Trace": "options"}, b""),
        Probe("delete", "DELETE", "/sora/v1/characters", auth, b""),
        Probe("doubled-slash", "POST", "/sora//v1/characters", auth, valid),
        Probe("trailing-slash", "POST", "/sora/v1/characters/", auth, valid),
    ]
    return probes + [
        Probe(p.name, p.method, p.path, {**p.headers, "X-Trace": p.name}, p.content, p.fault) for p in extra
    ]


def _routed_by_respx(probe: Probe) -> bool:
    """The router answers the endpoint path only; anything else is unmocked (and raises) by design."""
    return probe.path.replace("//", "/") == "/sora/v1/characters"


PROBES = _probes()
DEFECTS = ((), ("span_too_wide",), ("any_token",))
"""A healthy mock, and defects that leave every probe but the ones :func:`_touched` names alone."""


def _touched(defects: tuple[str, ...], probe: Probe) -> bool:
    if "span_too_wide" in defects:
        return probe.name == "span-too-wide"
    if "any_token" in defects:
        return probe.name == "auth-wrong-token"
    return False


@dataclass(frozen=True)
class Seen:
    """What an adapter gave: the status (``None``: dropped), the body's shape, the journal entry."""

    status: int | None
    shape: Any
    entry: dict[str, Any] | None


def _shape(status: int | None, content: bytes, content_type: str) -> Any:
    """What must agree between adapters: the envelope's code and param, or a character that conforms."""
    if status is None or not content:
        return None
    body = json.loads(content) if "json" in content_type else content.decode()
    if status == 200:
        assert check_character(body, load_contract()) == []
        return sorted(body)
    assert check_error_body(body) == []
    return (body["error"]["code"], body["error"]["param"], body["error"]["type"])


def _entry(entries: list[dict[str, Any]], before: int) -> dict[str, Any] | None:
    new = entries[before:]
    assert len(new) <= 1
    if not new:
        return None
    entry = dict(new[0])
    for key in ("seq", "time"):
        entry.pop(key)
    entry["headers"] = {name: value for name, value in entry["headers"].items() if name in SENT_HEADERS}
    return entry


class Adapter:
    """Sends probes to one mock and reads its journal; ``fault`` queues a fault first."""

    name = ""

    def send(self, probe: Probe) -> Seen:
        before = len(self.journal())
        if probe.fault is not None:
            self.fault(probe.fault)
        status, content, content_type = self.call(probe)
        return Seen(status, _shape(status, content, content_type), _entry(self.journal(), before))

    def call(self, probe: Probe) -> tuple[int | None, bytes, str]:
        raise NotImplementedError

    def journal(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def fault(self, fault: dict[str, Any]) -> None:
        raise NotImplementedError


class Served(Adapter):
    name = "served RSGI"

    def __init__(self, server: MockProcess) -> None:
        self.server = server

    def call(self, probe: Probe) -> tuple[int | None, bytes, str]:
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        try:
            connection.request(probe.method, probe.path, body=probe.content, headers=probe.headers)
            answer = connection.getresponse()
            return answer.status, answer.read(), answer.getheader("Content-Type") or ""
        except (http.client.RemoteDisconnected, ConnectionError):
            return None, b"", ""
        finally:
            connection.close()

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = httpx.get(self.server.url("/__mock/requests"), timeout=10).json()
        return entries

    def fault(self, fault: dict[str, Any]) -> None:
        assert httpx.post(self.server.url("/__mock/faults"), json=fault, timeout=10).status_code == 201


class InProcess(Adapter):
    """Shared by the Flask test client and the respx router: both hold the app's state."""

    def __init__(self, defects: tuple[str, ...]) -> None:
        self.app = create_app({"token": TOKEN, "seed": SEED, "defects": defects})
        self.state = composition_of(self.app).state

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.state.requests()
        return entries

    def fault(self, fault: dict[str, Any]) -> None:
        from mock_server.mock.faults import Fault

        parsed, times = Fault.from_json(fault)
        self.state.push_fault(parsed, times)


class FlaskClient(InProcess):
    name = "Flask test client"

    def call(self, probe: Probe) -> tuple[int | None, bytes, str]:
        from mock_server.mock.faults import DroppedConnection

        client = self.app.test_client()
        try:
            answer = client.open(probe.path, method=probe.method, data=probe.content, headers=probe.headers)
        except DroppedConnection:
            return None, b"", ""
        return answer.status_code, answer.get_data(), answer.content_type or ""


class Respx(InProcess):
    name = "respx router"

    def call(self, probe: Probe) -> tuple[int | None, bytes, str]:
        with SoraRouter(app=self.app, base_urls=["http://relay.test"]):
            try:
                answer = httpx.request(
                    probe.method, "http://relay.test" + probe.path, content=probe.content, headers=probe.headers
                )
            except httpx.RemoteProtocolError:
                return None, b"", ""
        return answer.status_code, answer.content, answer.headers.get("content-type", "")


@pytest.fixture(scope="module", params=DEFECTS, ids=lambda d: "+".join(d) or "healthy")
def served(request: pytest.FixtureRequest) -> Iterator[tuple[tuple[str, ...], MockProcess]]:
    defects: tuple[str, ...] = request.param
    args = ["--seed", str(SEED)] + [arg for name in defects for arg in ("--defect", name)]
    with MockProcess(args, env={"SORA_MOCK_TOKEN": TOKEN}) as server:
        yield defects, server


def _run(adapter: Adapter, probes: list[Probe]) -> dict[str, Seen]:
    return {probe.name: adapter.send(probe) for probe in probes}


def test_every_adapter_gives_the_same_status_body_shape_and_journal_entry(
    served: tuple[tuple[str, ...], MockProcess],
) -> None:
    defects, server = served
    probes = [probe for probe in PROBES if not _touched(defects, probe)]
    reference = _run(Served(server), probes)
    for adapter, sent in ((FlaskClient(defects), probes), (Respx(defects), [p for p in probes if _routed_by_respx(p)])):
        seen = _run(adapter, sent)
        for probe in sent:
            assert seen[probe.name] == reference[probe.name], (adapter.name, probe.name)
    # The corpus means something: each kind of answer is among those compared.
    statuses = {seen.status for seen in reference.values()}
    assert {200, 204, 400, 401, 404, 405, 422, 429, 500, 503, None} <= statuses
    assert reference["drop"].entry is not None and reference["drop"].entry["outcome"] == "dropped"
    assert reference["fault-waits-for-a-valid-request"].status == 400  # the 503 waits for the next valid create
    assert reference["fault-hits-this-create"].status == 503
    assert TOKEN not in json.dumps([seen.entry for seen in reference.values()])
    doubled = reference["doubled-slash"]  # merged, as the proxies in front of relays do; journaled as received
    assert doubled.status == 200 and doubled.entry is not None and doubled.entry["path"] == "/sora//v1/characters"
    assert reference["trailing-slash"].status == 404 and reference["trailing-slash"].entry is None


def test_a_defect_changes_exactly_the_probe_it_is_about(served: tuple[tuple[str, ...], MockProcess]) -> None:
    defects, server = served
    touched = [probe for probe in PROBES if _touched(defects, probe)]
    if not defects:
        assert touched == []
        return
    assert len(touched) == 1
    healthy = FlaskClient(()).send(touched[0])
    assert Served(server).send(touched[0]).status == 200 != healthy.status


def test_case_helpers_cover_the_whole_corpus() -> None:
    names = {probe.name for probe in PROBES}
    corpus = {case.name for case in iter_cases()}
    assert corpus - {"too-large"} <= names
    assert isinstance(next(iter_cases()), Case)


def test_the_in_process_adapters_agree_on_the_size_limit() -> None:
    """At the limit a create is served; one byte past it, 413 with the body unread and journaled as such."""
    limit = 256
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    short = json.dumps(
        {"url": "https://example.com/v.mp4", "timestamps": "1,3", "pad": ""}, separators=(",", ":")
    ).encode()
    fits = short.replace(b'"pad":""', b'"pad":"' + b"x" * (limit - len(short)) + b'"')
    over = fits.replace(b'"pad":"', b'"pad":"x')
    assert (len(fits), len(over)) == (limit, limit + 1)
    for content, status in ((fits, 200), (over, 413)):
        probe = Probe(f"size-{len(content)}", "POST", "/sora/v1/characters", auth, content)
        flask_seen, respx_seen = (_limited(kind, limit).send(probe) for kind in (FlaskClient, Respx))
        assert flask_seen == respx_seen, probe.name
        assert flask_seen.status == status and flask_seen.entry is not None
        if status == 413:
            assert flask_seen.shape[0] == "request_too_large" and flask_seen.entry["body"] is None


def _limited(kind: type[InProcess], limit: int) -> InProcess:
    adapter = kind(())
    adapter.app = create_app({"token": TOKEN, "seed": SEED, "max_body_bytes": limit})
    adapter.state = composition_of(adapter.app).state
    return adapter
