"""Stubs hold a bounded number of bytes, decoded once, and a reset or a delete frees what they held.

No timings: the tests look at what the state's stub cache holds and how often a stub is decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from mock_server import Contract
from mock_server.mock import stubs
from mock_server.mock.compose import composition_of
from mock_server.mock.state import STUBS, MockState
from mock_server.mock.stubs import MAX_STUB_BYTES, MAX_STUBS_BYTES, StubError, parse_stub

from ..helpers import AUTH

BIG = MAX_STUB_BYTES - 4096  # a message this long keeps a stub just under the one-stub limit
CREATE = {"url": "https://example.com/v.mp4", "timestamps": "1,3"}


def _big(number: int, size: int = BIG) -> dict[str, Any]:
    error = {"message": "m" * size, "type": "invalid_request_error", "param": None, "code": "task_not_found"}
    return {
        "match": {"body": {"url": f"https://example.com/{number}.mp4"}},
        "response": {"status": 404, "json": {"error": error}},
    }


def test_the_stubs_together_hold_at_most_max_stubs_bytes(client: FlaskClient) -> None:
    fitting = MAX_STUBS_BYTES // MAX_STUB_BYTES
    for number in range(fitting):
        assert client.post("/__mock/stubs", json=_big(number)).status_code == 201
    refused = client.post("/__mock/stubs", json=_big(fitting))
    error = refused.get_json()["error"]
    assert refused.status_code == 400 and error["code"] == "stub_limit"
    assert str(MAX_STUBS_BYTES) in error["message"] and "DELETE /__mock/stubs" in error["message"]
    small = client.post("/__mock/stubs", json=_big(fitting, size=100))
    assert small.status_code == 201  # what is left still takes a small stub
    assert client.delete("/__mock/stubs").status_code == 200
    assert client.post("/__mock/stubs", json=_big(fitting)).status_code == 201  # cleared: room again


def test_reset_and_delete_free_the_decoded_stubs(contract: Contract) -> None:
    state = MockState()
    for number in range(4):
        state.add_stub(parse_stub(_big(number, 1000), contract, stub_id=f"s{number}"))
    assert state.take_stub(CREATE, {}) is None  # every stub looked at, none matches
    assert len(state.stub_cache) == 4 and state.stub_cache.item_bytes > 4000
    assert state.delete_stub("s0")
    assert len(state.stub_cache) == 3
    state.reset()
    assert len(state.stub_cache) == 0 and state.stub_cache.item_bytes == 0
    assert state.take_stub(CREATE, {}) is None and len(state.stub_cache) == 0


def test_a_stub_added_here_is_never_decoded_again(contract: Contract, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    real = stubs.decode_stub
    monkeypatch.setattr(stubs, "decode_stub", lambda item: decoded.append(item) or real(item))
    state = MockState()
    for number in range(3):
        state.add_stub(parse_stub(_big(number, 1000), contract, stub_id=f"s{number}"))
    for _ in range(3):
        assert state.take_stub(CREATE, {}) is None
    assert state.list_stubs() and decoded == []


def test_another_process_frees_its_decoded_stubs_once_the_store_forgets_them(
    tmp_path: Path, contract: Contract
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    writer, reader = MockState.open(url), MockState.open(url)
    try:
        for number in range(3):
            writer.add_stub(parse_stub(_big(number, 1000), contract, stub_id=f"s{number}"))
        assert reader.take_stub(CREATE, {}) is None and len(reader.stub_cache) == 3
        writer.delete_stub("s1")
        assert reader.list_stubs() and len(reader.stub_cache) == 2
        writer.reset()
        assert not reader.has_stubs() and len(reader.stub_cache) == 0
    finally:
        writer.close()
        reader.close()


def test_the_byte_limit_holds_through_the_state_api(contract: Contract) -> None:
    state = MockState()
    fitting = MAX_STUBS_BYTES // MAX_STUB_BYTES
    for number in range(fitting):
        state.add_stub(parse_stub(_big(number), contract, stub_id=f"s{number}"))
    with pytest.raises(StubError) as refused:
        state.add_stub(parse_stub(_big(fitting), contract, stub_id="one-more"))
    assert refused.value.status == 400 and refused.value.code == "stub_limit"
    state.add_stub(parse_stub(_big(0, 10), contract, stub_id="s0"))  # replacing a stub frees its bytes
    state.add_stub(parse_stub(_big(fitting), contract, stub_id="one-more"))


def test_a_dense_answer_is_held_encoded_not_decoded(contract: Contract) -> None:
    """An answer of 200,000 empty arrays is 600 KB of JSON but ~11 MB of Python lists: only the JSON is kept."""
    import gc
    import tracemalloc

    description = {"response": {"status": 404, "json": [[] for _ in range(200_000)]}, "off_contract": True}
    stubs_ = [parse_stub(description, contract, stub_id=f"s{number}") for number in range(3)]
    del description
    gc.collect()
    tracemalloc.start()
    try:
        state = MockState()
        for stub in stubs_:
            state.add_stub(stub)
        del stubs_, stub
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        assert state.take_stub(CREATE, {}) is not None and len(state.list_stubs()) == 3
        state.stub_cache.clear()
        assert state.take_stub(CREATE, {}) is not None  # decoded again from the store
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 3 * 2 * 600_000, grown  # the encoded answers, not 3 x ~11 MB of lists


def test_match_body_holds_a_bounded_number_of_values(client: FlaskClient) -> None:
    from mock_server.mock.stubs import MAX_MATCH_NODES

    many = {
        "response": {"status": 404, "json": {}},
        "off_contract": True,
        "match": {"body": {"x": [{}] * MAX_MATCH_NODES}},
    }
    answer = client.post("/__mock/stubs", json=many)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == "match.body"
    few = {**many, "match": {"body": {"x": [1] * (MAX_MATCH_NODES - 2)}}}
    assert client.post("/__mock/stubs", json=few).status_code == 201


def test_listing_stubs_over_http_matches_the_state_and_decodes_none(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(3):
        client.post("/__mock/stubs", json={**_big(number, 50), "times": 2})
    client.post("/sora/v1/characters", json={"url": "https://example.com/2.mp4", "timestamps": "1,3"}, headers=AUTH)
    state = composition_of(client.application).state
    state.stub_cache.clear()
    monkeypatch.setattr(stubs, "decode_stub", lambda item: pytest.fail("a stub was decoded to be listed"))
    listed = client.get("/__mock/stubs").get_json()
    monkeypatch.undo()
    assert listed == state.list_stubs()
    assert [(s["hits"], s["remaining"]) for s in listed] == [(1, 1), (0, 2), (0, 2)]


def test_concurrent_adds_stay_within_the_byte_bound(contract: Contract) -> None:
    import contextlib
    import threading

    state = MockState()
    ready = [[parse_stub(_big(n), contract, stub_id=f"t{t}-{n}") for n in range(4)] for t in range(6)]
    start = threading.Barrier(len(ready))

    def add(batch: list[Any]) -> None:
        start.wait()
        for stub in batch:
            with contextlib.suppress(StubError):
                state.add_stub(stub)

    threads = [threading.Thread(target=add, args=(batch,)) for batch in ready]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    held = sum(len(item) for _, item, _, _ in state.store.entries(STUBS))
    assert MAX_STUBS_BYTES - MAX_STUB_BYTES < held <= MAX_STUBS_BYTES
