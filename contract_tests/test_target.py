"""The contract suite against the target named by the environment (``make contract``).

``SORA_CONTRACT_TARGET`` — base URL of a running server (unset: the mock, in-process);
``SORA_API_KEY`` — bearer token to send (default: any token);
``SORA_CONTRACT_STRICT`` — 1 for the strict profile (default for in-process), 0 for lenient (default for a URL);
``SORA_CONTRACT_MAX_EXAMPLES`` — generated cases per mode (default 200);
``SORA_CONTRACT_SEED`` — the fuzz seed (``make contract FUZZ_SEED=N``; ``random`` for a new one, printed).
``SORA_CONTRACT_RATE`` — the pace set up front (``make contract RATE=2/s``; unset: as fast as answered,
slowing down by itself on 429s).

The last test, ``test_enough_was_judged``, fails with one line when more than 5 % of the requests got
no verdict (throttled throughout, answered by a guard); the run then exits 4.

Before any test, :mod:`contract_tests.conftest` prints what is tested and stops the run once on an
unreachable target or a wrong token setup (see :mod:`contract_tests.preflight`).
"""

from __future__ import annotations

import os

from .preflight import contract_seed
from .pytest_suite import RUN_TALLY, judged_test, make_tests
from .suite import Target

__all__ = ["test_boundary", "test_enough_was_judged", "test_fuzz"]

test_boundary, test_fuzz = make_tests(
    Target.from_env(),
    max_examples=int(os.environ.get("SORA_CONTRACT_MAX_EXAMPLES", "") or 200),
    seed=contract_seed(),
    tally=RUN_TALLY,
)
test_enough_was_judged = judged_test(RUN_TALLY)
