"""The example test files of the README and docs/*.md run here, so they cannot rot.

An example is a ```python block whose first line names a test file (``# test_name.py — …``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..helpers import ROOT

pytest_plugins = ["pytester"]

README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
_BLOCK = re.compile(r"```python\n(# (test_\w+\.py)\b.*?)```", re.S)
STRICT = ("-W", "error", "--strict-markers", "-p", "no:cacheprovider")


def page_examples(page: Path) -> dict[str, str]:
    """``{file name: source}`` of every example test file on ``page``."""
    return {name: source for source, name in _BLOCK.findall(page.read_text(encoding="utf-8"))}


def readme_examples(pages: tuple[Path, ...] = PAGES) -> dict[str, str]:
    """``{file name: source}`` of every example test file in the README and the docs pages."""
    examples: dict[str, str] = {}
    for page in pages:
        for name, source in page_examples(page).items():
            assert name not in examples, f"{name} is defined twice ({page.name})"
            examples[name] = source
    return examples


def test_the_pages_have_an_example_per_fixture_and_client() -> None:
    examples = readme_examples()
    sources = "\n".join(examples.values())
    assert len(examples) >= 4
    assert "sora_server" in sources and "import requests" in sources
    assert "sora_respx" in sources and "httpx.Client(" in sources and "httpx.AsyncClient(" in sources


def test_the_readme_quick_start_has_a_minimal_test() -> None:
    (name,) = page_examples(README)
    assert page_examples(README)[name].count("\n") <= 12


@pytest.mark.parametrize("name", sorted(readme_examples()))
def test_readme_example_passes(pytester: pytest.Pytester, name: str) -> None:
    source = readme_examples()[name]
    pytester.makepyfile(**{name.removesuffix(".py"): source})
    result = pytester.runpytest(*STRICT)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert set(outcomes) == {"passed"}
    assert outcomes["passed"] >= source.count("\ndef test_")
