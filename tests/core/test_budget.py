"""The create budget shared by the live run and the recorder."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from contract_tests.live import LiveSettings, SettingsError
from mock_server.relay.budget import Budget, BudgetError
from mock_server.serving.cli import main


def test_defaults_and_values() -> None:
    assert Budget.from_env({}) == Budget(max_creates=1, max_requests=40)
    env = {"SORA_LIVE_MAX_CREATES": " 0 ", "SORA_LIVE_MAX_REQUESTS": "7"}
    assert Budget.from_env(env) == Budget(max_creates=0, max_requests=7)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SORA_LIVE_MAX_CREATES": "one"}, "SORA_LIVE_MAX_CREATES must be a whole number"),
        ({"SORA_LIVE_MAX_CREATES": "-1"}, "SORA_LIVE_MAX_CREATES must be at least 0"),
        ({"SORA_LIVE_MAX_REQUESTS": "0"}, "SORA_LIVE_MAX_REQUESTS must be at least 1"),
    ],
)
def test_bad_values_name_the_variable_in_both_tools(env: dict[str, str], needle: str) -> None:
    with pytest.raises(BudgetError, match=needle):
        Budget.from_env(env)
    with pytest.raises(SettingsError, match=needle):
        LiveSettings.from_env({"SORA_API_KEY": "k", **env})
    result = CliRunner().invoke(main, ["record", "--base-url", "http://127.0.0.1:9"], env={"SORA_API_KEY": "k", **env})
    assert result.exit_code == 2
    assert needle in result.output and "nothing was sent" in result.output
