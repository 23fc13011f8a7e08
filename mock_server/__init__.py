"""Mock server and rules for ``POST /sora/v1/characters``.

Public names are imported on first use, so loading the package (the pytest plugin does it in
every test run of an environment that has the kit) costs nothing until a name is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .app import create_app, error_response
    from .config import MockConfig
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
    from .coverage import OUTCOMES, Outcome, coverage_report
    from .faults import DroppedConnection, Fault, FaultError
    from .provider import CharacterProvider, make_faker
    from .state import MockState
    from .stubs import Stub, StubError, parse_stub, stub_from_recording
    from .testing.server import MockHandle, SoraServer

_HOMES: dict[str, str] = {
    "CharacterProvider": "provider",
    "check_character": "contract.rules",
    "check_error_body": "contract.rules",
    "check_request": "contract.rules",
    "conforms": "contract.rules",
    "Contract": "contract.rules",
    "create_app": "app",
    "decode_body": "contract.rules",
    "DroppedConnection": "faults",
    "ENDPOINT_PATH": "contract.spec",
    "error_response": "app",
    "Fault": "faults",
    "FaultError": "faults",
    "load_contract": "contract.spec",
    "load_spec": "contract.spec",
    "make_faker": "provider",
    "MockConfig": "config",
    "MockHandle": "testing.server",
    "MockState": "state",
    "Outcome": "coverage",
    "OUTCOMES": "coverage",
    "coverage_report": "coverage",
    "parse_stub": "stubs",
    "Stub": "stubs",
    "StubError": "stubs",
    "stub_from_recording": "stubs",
    "parse_timestamps": "contract.rules",
    "refined_spec_path": "contract.spec",
    "RuleError": "contract.rules",
    "SoraServer": "testing.server",
    "Timestamps": "contract.rules",
    "vendored_spec_path": "contract.spec",
    "Violation": "contract.rules",
}

__all__ = [
    "ENDPOINT_PATH",
    "OUTCOMES",
    "CharacterProvider",
    "Contract",
    "DroppedConnection",
    "Fault",
    "FaultError",
    "MockConfig",
    "MockHandle",
    "MockState",
    "Outcome",
    "RuleError",
    "SoraServer",
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
