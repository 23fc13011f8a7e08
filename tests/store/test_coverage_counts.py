"""Contract coverage counts kept in every state backend, shared by the states on one URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_server import Contract
from mock_server.mock.state import MockState
from mock_server.mock.stubs import parse_stub

# --- the state: counters in the store --------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MockState]:
    url = {"memory": "memory", "sqlite": f"sqlite:///{tmp_path}/state.db"}.get(request.param)
    if url is None:
        url = request.getfixturevalue("redis_url")
    opened = MockState.open(url)
    yield opened
    opened.close()


def test_counts_live_in_the_store_and_reset_zeroes_them(state: MockState, contract: Contract) -> None:
    for outcome in ("created", "created", "rate_limit_exceeded"):
        state.count_outcome(outcome)
    stub = parse_stub(
        {
            "response": {
                "status": 404,
                "json": {"error": {"message": "m", "type": "t", "param": None, "code": "task_not_found"}},
            }
        },
        contract,
        stub_id="s",
    )
    state.add_stub(stub)
    state.count_outcome(stub.outcome)
    report = state.coverage()
    rows = {row["outcome"]: row["seen"] for row in report["outcomes"]}
    assert (rows["created"], rows["rate_limit_exceeded"], report["met"]) == (2, 1, 2)
    assert report["stubbed"] == [{"outcome": "task_not_found", "status": 404, "seen": 1}]
    state.reset()
    after = state.coverage()
    assert after["met"] == 0 and "stubbed" not in after
    state.add_stub(stub)  # the same code again starts from zero
    assert state.coverage()["stubbed"][0]["seen"] == 0


def test_two_states_on_one_url_share_the_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = MockState.open(url), MockState.open(url)
    try:
        first.count_outcome("dropped")
        second.count_outcome("dropped")
        rows = {row["outcome"]: row["seen"] for row in first.coverage()["outcomes"]}
        assert rows["dropped"] == 2
    finally:
        first.close()
        second.close()
