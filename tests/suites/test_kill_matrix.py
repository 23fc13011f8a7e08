"""The kill matrix: every defect caught, the healthy mock green and cheap (WSGI and real sockets)."""

from __future__ import annotations

import pytest

from contract_tests.kill_matrix import format_matrix, run_matrix, run_one
from mock_server.mock.defects import DEFECTS


def test_every_defect_is_caught_in_process() -> None:
    rows = run_matrix(sockets=False, max_examples=2)
    assert [row.defect for row in rows] == ["healthy", *sorted(DEFECTS)]
    healthy = rows[0]
    assert healthy.passed and healthy.live.ok and healthy.suite is not None and healthy.suite.ok
    assert healthy.live.created <= 1 and healthy.live.requests_sent <= 40
    not_caught = [row.defect for row in rows[1:] if not (row.live_caught and row.suite_caught)]
    assert not_caught == []
    table = format_matrix(rows)
    assert "NOT CAUGHT" not in table and "FAILS" not in table
    for name in DEFECTS:
        assert name in table


@pytest.mark.slow
def test_real_sockets_healthy_defects_and_wrong_token() -> None:
    healthy = run_one(None, sockets=True, max_examples=-1)
    assert healthy.passed and healthy.live.created == 1 and healthy.live.requests_sent <= 40
    for defect in ("span_too_wide", "skip_auth", "crash_on_non_json"):
        row = run_one(defect, sockets=True, max_examples=-1)
        assert row.live_caught, defect
    wrong = run_one(None, sockets=True, max_examples=-1, client_token="not-the-server-token")
    assert not wrong.live.ok and wrong.live.created == 0
    assert any("refused SORA_API_KEY" in outcome.detail for outcome in wrong.live.outcomes)
