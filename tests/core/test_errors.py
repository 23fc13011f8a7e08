"""One exception root: every exception class the kit defines derives from SoraKitError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import contract_tests
import mock_server
from mock_server import errors
from mock_server.errors import ConfigError, ContractError, ServingError, SoraKitError, StoreError

OUTSIDE_THE_ROOT = {
    # the guard's internal outcomes of an exchange, turned into answers inside the guard
    "mock_server.relay.upstream._NoAnswer",
    "mock_server.relay.upstream._TooLarge",
    "mock_server.relay.upstream._Unreadable",
    # control flow inside one function's module, never raised to a caller
    "mock_server.serving.glue._BodyError",
    "contract_tests.live._Aborted",
    "contract_tests.live._Budget",
    "contract_tests.live._Unreachable",
}
SKIPPED_MODULES = (
    "contract_tests.conftest",
    "contract_tests.test_",
    "contract_tests.hooks",
    "contract_tests.pytest_suite",
)
"""Modules that register hooks or checks when imported (kept out of this test session)."""


def _kit_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (mock_server, contract_tests):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith(SKIPPED_MODULES) or info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == info.name:
                    found[f"{info.name}.{value.__qualname__}"] = value
    return found


def test_every_exception_the_kit_defines_derives_from_the_root() -> None:
    found = _kit_exceptions()
    assert len(found) >= 12
    outside = {name for name, cls in found.items() if not issubclass(cls, SoraKitError)}
    assert outside == OUTSIDE_THE_ROOT & set(found)


@pytest.mark.parametrize(
    ("name", "family", "older_base"),
    [
        ("RuleError", ContractError, ValueError),
        ("StubError", ConfigError, ValueError),
        ("FaultError", ConfigError, ValueError),
        ("DroppedConnection", ServingError, Exception),
    ],
)
def test_exported_errors_keep_their_family_and_older_base(name: str, family: type, older_base: type) -> None:
    cls = getattr(mock_server, name)
    assert issubclass(cls, family) and issubclass(cls, older_base)


def test_store_errors_are_store_errors() -> None:
    from mock_server.store import StateLost, StoreUnavailable

    assert all(issubclass(cls, StoreError) for cls in (StateLost, StoreUnavailable))
    assert issubclass(StoreUnavailable, RuntimeError)


def test_the_root_is_exported_from_the_package() -> None:
    assert mock_server.SoraKitError is errors.SoraKitError
    assert {"SoraKitError", "ConfigError", "ContractError", "ServingError", "StoreError"} <= set(mock_server.__all__)
