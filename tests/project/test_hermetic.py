"""``make test`` gives the same result whatever ``SORA_*`` variables the user has exported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..helpers import ROOT

USER_SHELL = {
    "SORA_MOCK_TOKEN": "secret-from-the-shell",
    "SORA_MOCK_SEED": "5",
    "SORA_API_KEY": "sk-user-key",
    "SORA_BASE_URL": "http://127.0.0.1:9/relay",
    "SORA_CONTRACT_TARGET": "http://127.0.0.1:9",
    "SORA_CONTRACT_STRICT": "1",
}


def test_no_sora_variable_reaches_the_tests() -> None:
    assert [name for name in os.environ if name.startswith("SORA_")] == []


@pytest.mark.slow
def test_tests_that_read_the_environment_pass_with_a_user_shell_exported() -> None:
    """The plugin, respx, live-run and suite tests read exactly these variables."""
    env = {**os.environ, **USER_SHELL}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "tests/client/test_plugin.py",
            "tests/adapters/test_respx.py",
            "tests/suites/test_live_runner.py",
            "tests/project/test_hermetic.py::test_no_sora_variable_reaches_the_tests",
            "tests/suites/test_contract_suite.py::test_from_env_knows_the_token_only_when_sora_api_key_is_set",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "secret-from-the-shell" not in done.stdout + done.stderr
