"""Mock server and rules for ``POST /sora/v1/characters``."""

from __future__ import annotations

from .app import create_app, error_response
from .config import MockConfig
from .faults import DroppedConnection, Fault, FaultError
from .provider import CharacterProvider, make_faker
from .rules import (
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
from .spec import ENDPOINT_PATH, load_contract, load_spec, refined_spec_path, vendored_spec_path
from .state import MockState
from .testing import MockHandle, SoraServer

__all__ = [
    "ENDPOINT_PATH",
    "CharacterProvider",
    "Contract",
    "DroppedConnection",
    "Fault",
    "FaultError",
    "MockConfig",
    "MockHandle",
    "MockState",
    "RuleError",
    "SoraServer",
    "Timestamps",
    "Violation",
    "check_character",
    "check_error_body",
    "check_request",
    "conforms",
    "create_app",
    "decode_body",
    "error_response",
    "load_contract",
    "load_spec",
    "make_faker",
    "parse_timestamps",
    "refined_spec_path",
    "vendored_spec_path",
]
