"""The oldest and the newest versions a client may have of the libraries it shares with the kit.

A client project brings its own Flask, Werkzeug, click, PyYAML, httpx, respx (the kit's base
dependencies), pytest and requests; the kit's pins (``pyproject.toml``) promise it works with any of
them in range. Both ends are installed here, each in a fresh venv with the built wheel: every lower
bound exactly (``==``), then the newest the index offers within the pins. The README's and docs'
example tests, and a check of what was installed, run in each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from ..helpers import ROOT
from .test_plugin_readme import STRICT, readme_examples

pytestmark = pytest.mark.slow

BROUGHT = ("pytest", "requests")
"""What a client runs the kit's plugin and examples with (pinned in the ``contract`` extra)."""


def pins() -> dict[str, Requirement]:
    """The requirement of each client-facing library, as ``pyproject.toml`` states it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {Requirement(line).name.lower(): Requirement(line) for line in project["dependencies"]}
    contract = {
        Requirement(line).name.lower(): Requirement(line) for line in project["optional-dependencies"]["contract"]
    }
    return base | {name: contract[name] for name in BROUGHT}


def test_every_base_dependency_has_a_lower_and_an_upper_bound() -> None:
    for name, requirement in pins().items():
        operators = sorted(spec.operator for spec in requirement.specifier)
        assert operators == ["<", ">="], f"{name}: {requirement.specifier} (both ends are installed and tested here)"


def lower_bound(requirement: Requirement) -> Version:
    (low,) = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    return low


def run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "SORA_", "VIRTUAL_ENV"))}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)]
    )
    assert built.returncode == 0, built.stderr
    (found,) = dist.glob("*.whl")
    return found


@dataclass(frozen=True)
class End:
    """One end of the pins, installed: the venv's interpreter and the version of each client library."""

    python: Path
    versions: dict[str, Version]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, End]:
    """``{"oldest": End, "newest": End}``, each a fresh venv with the wheel."""
    ends: dict[str, End] = {}
    for end in ("oldest", "newest"):
        python = tmp_path_factory.mktemp(end) / "venv" / "bin" / "python"
        created = run([sys.executable, "-m", "venv", str(python.parent.parent)])
        assert created.returncode == 0, created.stderr
        wanted = [f"{name}=={lower_bound(req)}" if end == "oldest" else str(req) for name, req in pins().items()]
        pip = run([str(python), "-m", "pip", "install", "-q", "--upgrade", str(wheel), *wanted])
        assert pip.returncode == 0, pip.stdout + pip.stderr
        listed = run([str(python), "-m", "pip", "list", "--format", "json"])
        packages = {p["name"].lower(): Version(p["version"]) for p in json.loads(listed.stdout)}
        ends[end] = End(python, {name: packages[name] for name in pins()})
    return ends


def test_the_oldest_venv_has_every_lower_bound_and_the_newest_stays_in_the_pins(installed: dict[str, End]) -> None:
    oldest, newest = installed["oldest"].versions, installed["newest"].versions
    for name, requirement in pins().items():
        assert oldest[name] == lower_bound(requirement), name
        assert newest[name] in requirement.specifier, (name, newest[name])
        assert newest[name] >= oldest[name]
    moved = [name for name in pins() if newest[name] > oldest[name]]
    assert len(moved) >= 3, f"the two ends are nearly the same install: {installed}"  # else nothing was tried


VERSIONS_CHECK = """
from importlib.metadata import version

EXPECTED = {expected!r}


def test_the_client_libraries_are_the_ones_installed_for_this_end():
    assert {{name: version(name) for name in EXPECTED}} == EXPECTED
"""


@pytest.mark.parametrize("end", ["oldest", "newest"])
def test_the_readme_examples_pass_at_each_end_of_the_pins(installed: dict[str, End], end: str, tmp_path: Path) -> None:
    examples = readme_examples()
    for name, source in examples.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    expected = {name: str(v) for name, v in installed[end].versions.items()}
    (tmp_path / "test_versions.py").write_text(VERSIONS_CHECK.format(expected=expected), encoding="utf-8")
    result = run([str(installed[end].python), "-m", "pytest", "-q", *STRICT], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = int(result.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= sum(source.count("\ndef test_") for source in examples.values()) + 1, result.stdout
