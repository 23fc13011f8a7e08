"""Mock server and rules for ``POST /sora/v1/characters``.

Public names are imported on first use, so loading the package (the pytest plugin does it in
every test run of an environment that has the kit) costs nothing until a name is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .contract.rules import (
        Contract,
        RuleError,
        Timestamps,
        Violation,
        check_character,
        check_error_body,
        check_request,
        conforms,
        decode_body,
        parse_timestamps,
    )
    from .contract.spec import ENDPOINT_PATH, load_contract, load_spec, refined_spec_path, vendored_spec_path
    from .errors import ConfigError, ContractError, ServingError, SoraKitError, StoreError
    from .mock.app import create_app, error_response
    from .mock.config import MockConfig
    from .mock.coverage import OUTCOMES, Outcome, coverage_report
    from .mock.faker_provider import CharacterProvider, make_faker
    from .mock.faults import DroppedConnection, Fault, FaultError
    from .mock.state import MockState
    from .mock.stubs import Stub, StubError, parse_stub, stub_from_recording
    from .testing.server import MockHandle, SoraServer

_HOMES: dict[str, str] = {
    "CharacterProvider": "mock.faker_provider",
    "check_character": "contract.rules",
    "check_error_body": "contract.rules",
    "check_request": "contract.rules",
    "conforms": "contract.rules",
    "Contract": "contract.rules",
    "ConfigError": "errors",
    "ContractError": "errors",
    "create_app": "mock.app",
    "decode_body": "contract.rules",
    "DroppedConnection": "mock.faults",
    "ENDPOINT_PATH": "contract.spec",
    "error_response": "mock.app",
    "Fault": "mock.faults",
    "FaultError": "mock.faults",
    "load_contract": "contract.spec",
    "load_spec": "contract.spec",
    "make_faker": "mock.faker_provider",
    "MockConfig": "mock.config",
    "MockHandle": "testing.server",
    "MockState": "mock.state",
    "Outcome": "mock.coverage",
    "OUTCOMES": "mock.coverage",
    "coverage_report": "mock.coverage",
    "parse_stub": "mock.stubs",
    "Stub": "mock.stubs",
    "StubError": "mock.stubs",
    "stub_from_recording": "mock.stubs",
    "parse_timestamps": "contract.rules",
    "refined_spec_path": "contract.spec",
    "RuleError": "contract.rules",
    "ServingError": "errors",
    "SoraKitError": "errors",
    "SoraServer": "testing.server",
    "StoreError": "errors",
    "Timestamps": "contract.rules",
    "vendored_spec_path": "contract.spec",
    "Violation": "contract.rules",
}

__all__ = [
    "ENDPOINT_PATH",
    "OUTCOMES",
    "CharacterProvider",
    "ConfigError",
    "Contract",
    "ContractError",
    "DroppedConnection",
    "Fault",
    "FaultError",
    "MockConfig",
    "MockHandle",
    "MockState",
    "Outcome",
    "RuleError",
    "ServingError",
    "SoraKitError",
    "SoraServer",
    "StoreError",
    "Stub",
    "StubError",
    "Timestamps",
    "Violation",
    "check_character",
    "check_error_body",
    "check_request",
    "conforms",
    "coverage_report",
    "create_app",
    "decode_body",
    "error_response",
    "load_contract",
    "load_spec",
    "make_faker",
    "parse_stub",
    "parse_timestamps",
    "refined_spec_path",
    "stub_from_recording",
    "vendored_spec_path",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)
