"""Shared fixtures for the kit's own tests.

``make test`` is hermetic: the ``SORA_*`` (and ``SCHEMATHESIS_HOOKS``) variables a user has exported
for the mock, the suites or the live run are dropped before any test module is imported, so every
test, and every subprocess it starts, sees the same environment. A test that needs one sets it
with ``monkeypatch``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server import Contract, MockConfig, create_app, load_contract

from .helpers import TOKEN
from .redis_server import RedisServer

HERMETIC_DROPPED = tuple(name for name in os.environ if name.startswith("SORA_") or name == "SCHEMATHESIS_HOOKS")
for _name in HERMETIC_DROPPED:
    del os.environ[_name]


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract()


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build a mock app; keyword arguments are :class:`MockConfig` fields."""

    def build(**overrides: Any) -> Flask:
        overrides.setdefault("token", TOKEN)
        overrides.setdefault("seed", 7)
        return create_app(MockConfig(**overrides))

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real ``redis-server`` on a Unix socket for the session (skipped with a hint when missing)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty Redis database."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def redis_alone(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (so it can be stopped and started)."""
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
