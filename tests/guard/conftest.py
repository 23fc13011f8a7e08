"""Fixtures of the guard's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server.relay.guard import GuardConfig, create_guard_app, guard_state_of


@pytest.fixture
def guard_client() -> Iterator[Callable[..., FlaskClient]]:
    """Build a guard app and return its test client; keyword arguments are :class:`GuardConfig` fields.

    Every app built is closed (its store) when the test ends.
    """
    apps: list[Flask] = []

    def build(**fields: Any) -> FlaskClient:
        app = create_guard_app(GuardConfig(**fields))
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        guard_state_of(app).close()
