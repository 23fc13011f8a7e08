"""The contract: the endpoint's rules (pure functions) and the OpenAPI documents they are read from.

Everything else in the kit (the mock, the suites, the relay tools) judges with these; nothing
here depends on the rest of the kit.
"""

from __future__ import annotations

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
    error_body,
    parse_timestamps,
)
from .spec import ENDPOINT_PATH, load_contract, load_spec, openapi_dir, refined_spec_path, vendored_spec_path

__all__ = [
    "ENDPOINT_PATH",
    "Contract",
    "RuleError",
    "Timestamps",
    "Violation",
    "check_character",
    "check_error_body",
    "check_request",
    "conforms",
    "decode_body",
    "error_body",
    "load_contract",
    "load_spec",
    "openapi_dir",
    "parse_timestamps",
    "refined_spec_path",
    "vendored_spec_path",
]
