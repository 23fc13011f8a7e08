"""Optional extras: a client project's base install stays light, and a missing extra is one line naming it."""

from __future__ import annotations

import importlib
import sys
import tomllib

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from mock_server.extras import MissingExtra, require
from mock_server.serving.cli import main

from ..helpers import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements: list[str]) -> set[str]:
    return {
        req.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for req in requirements
    }


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable (and forget kit modules that imported them)."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("mock_server.store.redis", "mock_server.mock.faker_provider"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_the_base_install_holds_only_what_the_fixtures_need() -> None:
    base = _names(PROJECT["dependencies"])
    assert base == {"flask", "werkzeug", "click", "pyyaml", "httpx", "respx"}
    extras = PROJECT["optional-dependencies"]
    assert _names(extras["serve"]) == {"granian", "uvloop"}
    assert _names(extras["redis"]) == {"redis"}
    assert _names(extras["faker"]) == {"faker"}
    (itself,) = [Requirement(line) for line in extras["dev"] if Requirement(line).name == PROJECT["name"]]
    assert itself.extras == {"serve", "redis", "faker"}  # a dev install brings every extra, as pinned there


@pytest.mark.parametrize("command", ["serve", "guard"])
def test_serving_without_the_serve_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    _missing(monkeypatch, "granian")
    result = CliRunner().invoke(main, [command, "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: sora-mock {command} needs the 'serve' extra: pip install 'sora-characters-kit[serve]'"
    ]


def test_serve_app_without_granian_raises_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_server.serving.server import serve_app

    _missing(monkeypatch, "granian")
    with pytest.raises(MissingExtra, match=r"needs the 'serve' extra: pip install 'sora-characters-kit\[serve\]'"):
        serve_app("mock_server.mock.app:create_app", {}, host="127.0.0.1", port=0, max_body_bytes=1024)


def test_a_redis_state_without_the_redis_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_server.store import open_store

    _missing(monkeypatch, "redis")
    with pytest.raises(MissingExtra) as raised:
        open_store("redis://127.0.0.1:6379/0")
    assert str(raised.value) == (
        "a redis:// (or unix://) state needs the 'redis' extra: pip install 'sora-characters-kit[redis]'"
    )
    assert isinstance(raised.value, ImportError)
    result = CliRunner().invoke(main, ["serve", "--state", "redis://127.0.0.1:6379/0", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {raised.value}"]
    assert open_store("memory").backend == "memory"  # the other stores need nothing


def test_the_faker_provider_without_faker_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _missing(monkeypatch, "faker")
    with pytest.raises(MissingExtra, match=r"needs the 'faker' extra: pip install 'sora-characters-kit\[faker\]'"):
        importlib.import_module("mock_server.mock.faker_provider")
    from mock_server.mock.provider import seeded_character

    assert seeded_character(1, 1, 1_760_000_000.0)["username"]  # the mock's own characters need no Faker


def test_require_passes_for_an_installed_module() -> None:
    require("json", "none", "nothing")


def test_the_username_words_are_fakers_lorem_list_in_order() -> None:
    from faker.providers.lorem.en_US import Provider

    from mock_server.mock.words import WORDS

    expected = tuple(w for w in (w.lower() for w in Provider.word_list) if w.isascii() and w.isalpha())
    assert expected == WORDS
