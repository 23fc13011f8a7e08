"""``GET /__mock/coverage`` through the Flask test client: the report, and reset zeroes it."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from mock_server.mock.compose import composition_of
from mock_server.mock.coverage import OUTCOMES
from mock_server.mock.state import MockState


def test_get_coverage_answers_the_report_and_reset_zeroes_it(client: FlaskClient, app: Flask) -> None:
    state: MockState = composition_of(app).state
    state.count_outcome("invalid_timestamps_span")
    report = client.get("/__mock/coverage").get_json()
    assert report["met"] == 1 and report["total"] == len(OUTCOMES)
    assert {"outcome": "invalid_timestamps_span", "status": 422, "seen": 1} in report["outcomes"]
    client.post("/__mock/reset")
    assert client.get("/__mock/coverage").get_json()["met"] == 0
