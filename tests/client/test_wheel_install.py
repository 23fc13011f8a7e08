"""A project that only installs the built wheel can run the README's and docs' example tests.

Builds the wheel (checking what it holds), then runs the README's quick-start commands in a client
project whose ``dist/`` already holds two older wheels, with a fresh venv first on ``PATH``: they
build the wheel again and install it with its ``[contract]`` extra (pytest, requests…) and none of
the others (no server, no Redis client, no Faker); packages come from the configured index, pip's
cache makes reruns quick. The README examples then run there with that venv's pytest, from a
folder outside the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from ..helpers import ROOT
from .test_plugin_readme import STRICT, readme_examples

_QUICK_START = re.compile(r"## Quick start for client projects\n.*?```sh\n(.*?)```", re.S)


def quick_start_commands() -> str:
    """The shell block of the README's quick start for client projects."""
    match = _QUICK_START.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match is not None, "README.md: the client quick start needs a ```sh block"
    return match[1]


def test_the_quick_start_installs_the_wheel_it_builds() -> None:
    commands = quick_start_commands()
    assert "pip wheel" in commands and "path/to/this/checkout" in commands and "[contract]" in commands
    assert "dist/" not in commands  # a shared dist/ may hold several wheels: the install must name only one


INSTALLED_CHECK = """
import sys
from pathlib import Path

import mock_server
from mock_server.mock import fixtures


def test_the_kit_comes_from_the_wheel(pytestconfig):
    package = Path(mock_server.__file__).resolve().parent
    assert Path(sys.prefix).resolve() in package.parents
    assert "site-packages" in package.parts
    assert fixtures.fixtures_dir() == package / "fixtures_data"
    assert fixtures.case("span-too-wide").status == 422
    assert pytestconfig.pluginmanager.has_plugin("sora_mock")


def test_the_extras_stay_out_of_a_client_install():
    import importlib.util

    assert [name for name in ("granian", "uvloop", "redis", "faker") if importlib.util.find_spec(name)] == []
"""


def run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=240, check=False, cwd=cwd, env=env)


@pytest.mark.slow
def test_readme_examples_pass_with_only_the_wheel_installed(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)]
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert {
        "mock_server/testing/plugin.py",
        "mock_server/contract/rules.py",
        "mock_server/fixtures_data/invalid.json",
    } <= names
    assert "[pytest11]" in entry_points and "sora_mock = mock_server.testing.plugin" in entry_points

    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", str(venv)])
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"

    project = tmp_path / "client-project"
    (project / "dist").mkdir(parents=True)
    for old in ("0.0.8", "0.0.9"):  # what a dist/ collects over time
        (project / "dist" / f"sora_characters_kit-{old}-py3-none-any.whl").write_bytes(wheel.read_bytes())
    commands = quick_start_commands().replace("path/to/this/checkout", str(ROOT))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "SORA_", "VIRTUAL_ENV"))}
    shell_env = clean | {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    installed = run(["bash", "-c", "set -euo pipefail\n" + commands], cwd=project, env=shell_env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shown = run([str(python), "-m", "pip", "show", "-f", "sora-characters-kit"])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert f"Version: {version}" in shown.stdout and "mock_server/testing/plugin.py" in shown.stdout
    examples = readme_examples()
    for name, source in examples.items():
        (project / name).write_text(source, encoding="utf-8")
    (project / "test_installed.py").write_text(INSTALLED_CHECK, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "SORA_", "VIRTUAL_ENV"))}
    result = run([str(python), "-m", "pytest", "-q", *STRICT], cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    minimum = sum(source.count("\ndef test_") for source in examples.values()) + 2
    passed = int(result.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= minimum, result.stdout

    served = run([str(venv / "bin" / "sora-mock"), "serve", "--port", "0"], cwd=project, env=env)
    assert served.returncode == 1
    assert served.stderr.strip().splitlines() == [
        "Error: sora-mock serve needs the 'serve' extra: pip install 'sora-characters-kit[serve]'"
    ]
