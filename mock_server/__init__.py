"""Mock server and rules for ``POST /sora/v1/characters``.

Public names are imported on first use, so loading the package (the pytest plugin does it in
every test run of an environment that has the kit) costs nothing until a name is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports, typed_homes

# The one list of public names: type checkers read these imports, and the lazy-import table and
# ``__all__`` are derived from them.
if TYPE_CHECKING:
    from .contract.rules import Contract as Contract
    from .contract.rules import RuleError as RuleError
    from .contract.rules import Timestamps as Timestamps
    from .contract.rules import Violation as Violation
    from .contract.rules import check_character as check_character
    from .contract.rules import check_error_body as check_error_body
    from .contract.rules import check_request as check_request
    from .contract.rules import conforms as conforms
    from .contract.rules import decode_body as decode_body
    from .contract.rules import parse_timestamps as parse_timestamps
    from .contract.spec import ENDPOINT_PATH as ENDPOINT_PATH
    from .contract.spec import load_contract as load_contract
    from .contract.spec import load_spec as load_spec
    from .contract.spec import refined_spec_path as refined_spec_path
    from .contract.spec import vendored_spec_path as vendored_spec_path
    from .errors import ConfigError as ConfigError
    from .errors import ContractError as ContractError
    from .errors import ServingError as ServingError
    from .errors import SoraKitError as SoraKitError
    from .errors import StoreError as StoreError
    from .mock.app import create_app as create_app
    from .mock.app import error_response as error_response
    from .mock.config import MockConfig as MockConfig
    from .mock.coverage import OUTCOMES as OUTCOMES
    from .mock.coverage import Outcome as Outcome
    from .mock.coverage import coverage_report as coverage_report
    from .mock.faker_provider import CharacterProvider as CharacterProvider
    from .mock.faker_provider import make_faker as make_faker
    from .mock.faults import DroppedConnection as DroppedConnection
    from .mock.faults import Fault as Fault
    from .mock.faults import FaultError as FaultError
    from .mock.state import MockState as MockState
    from .mock.stubs import Stub as Stub
    from .mock.stubs import StubError as StubError
    from .mock.stubs import parse_stub as parse_stub
    from .mock.stubs import stub_from_recording as stub_from_recording
    from .testing.sora_server import MockHandle as MockHandle
    from .testing.sora_server import SoraServer as SoraServer

_HOMES = typed_homes(__file__)
__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)
