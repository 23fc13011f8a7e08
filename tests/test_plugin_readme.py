"""The README's example test files for client projects run here, so they cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
_SECTION = re.compile(r"<!-- SECTION:client -->(.*?)<!-- /SECTION:client -->", re.S)
_BLOCK = re.compile(r"```python\n(# (test_\w+\.py)\b.*?)```", re.S)
STRICT = ("-W", "error", "--strict-markers", "-p", "no:cacheprovider")


def readme_examples(readme: Path = README) -> dict[str, str]:
    """``{file name: source}`` of every example test file in the README's client section."""
    section = _SECTION.search(readme.read_text(encoding="utf-8"))
    assert section is not None, "README.md has no client section"
    return {name: source for source, name in _BLOCK.findall(section.group(1))}


def test_the_readme_has_an_example_per_fixture_and_client() -> None:
    examples = readme_examples()
    sources = "\n".join(examples.values())
    assert len(examples) >= 3
    assert "sora_server" in sources and "import requests" in sources
    assert "sora_respx" in sources and "httpx.Client(" in sources and "httpx.AsyncClient(" in sources


@pytest.mark.parametrize("name", sorted(readme_examples()))
def test_readme_example_passes(pytester: pytest.Pytester, name: str) -> None:
    source = readme_examples()[name]
    pytester.makepyfile(**{name.removesuffix(".py"): source})
    result = pytester.runpytest(*STRICT)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert set(outcomes) == {"passed"}
    assert outcomes["passed"] >= source.count("\ndef test_")
