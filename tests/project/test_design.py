"""The shape of the code itself: no dead code, one definition of each shared constant."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.contract.spec import RELAY_BASE_URL
from mock_server.mock.core import unavailable_message
from mock_server.store import StoreUnavailable

from ..helpers import ROOT

SOURCES = sorted([*(ROOT / "mock_server").rglob("*.py"), *(ROOT / "contract_tests").rglob("*.py")])


def _defined_in(text: str) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in SOURCES if text in path.read_text(encoding="utf-8")]


def test_vulture_finds_no_dead_code() -> None:
    done = subprocess.run([sys.executable, "-m", "vulture"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_relay_url_is_written_once_outside_the_relay_package() -> None:
    found = [path for path in _defined_in(f'"{RELAY_BASE_URL}"') if not path.startswith("mock_server/relay/")]
    assert found == ["mock_server/contract/spec.py"]


def test_the_spec_examples_are_written_once() -> None:
    from mock_server.contract.rules import EXAMPLE_TASK_ID, EXAMPLE_VIDEO_URL

    assert _defined_in(f'"{EXAMPLE_VIDEO_URL}"') == ["mock_server/contract/rules.py"]
    assert _defined_in(f'"{EXAMPLE_TASK_ID}"') == ["mock_server/contract/rules.py"]


def test_every_test_file_lives_in_a_layer_folder() -> None:
    flat = sorted(path.name for path in (ROOT / "tests").glob("test_*.py"))
    assert flat == [], "tests/ is grouped by layer (docs/architecture.md): move these into a folder"
    layers = {path.parent.name for path in (ROOT / "tests").glob("*/test_*.py")}
    assert {"core", "store", "adapters", "served", "client", "guard", "suites", "project"} == layers


def test_the_store_unavailable_message_is_written_once() -> None:
    assert _defined_in("state store is unavailable:") == ["mock_server/mock/core.py"]
    assert unavailable_message(StoreUnavailable("redis is down.")) == (
        "The mock's state store is unavailable: redis is down. Retry shortly."
    )


def test_the_import_layers_hold_and_no_package_has_a_cycle() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_moved_modules_keep_their_old_import_paths() -> None:
    from mock_server import web
    from mock_server.mock import corpus, fixtures
    from mock_server.serving import flask_glue

    assert flask_glue.error_response is web.error_response
    assert flask_glue.read_capped is web.read_capped
    assert fixtures.Case is corpus.Case and fixtures.iter_cases is corpus.iter_cases


def test_the_encoder_bench_compares_equal_json() -> None:
    pytest.importorskip("orjson")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import encoders
    finally:
        sys.path.remove(str(ROOT / "bench"))
    encoders.same_json()
    assert json.loads(encoders.entry_by_hand())["headers"]["Authorization"] == "[redacted]"


MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def _long_functions(path: Path, limit: int) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method in ``path`` longer than ``limit`` lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_is_over_80_lines() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for path in SOURCES
        for name, line, length in _long_functions(path, MAX_FUNCTION_LINES)
    ]
    assert found == []


def test_no_module_is_over_600_lines() -> None:
    lines = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines()) for path in SOURCES}
    assert {path: count for path, count in lines.items() if count > MAX_MODULE_LINES} == {}


def test_the_size_check_sees_a_long_method(tmp_path: Path) -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "long.py"
    source.write_text(
        f"def short() -> None:\n    pass\n\n\nclass C:\n    def long(self) -> None:\n{body}", encoding="utf-8"
    )
    assert _long_functions(source, MAX_FUNCTION_LINES) == [("long", 6, MAX_FUNCTION_LINES + 1)]


@pytest.mark.parametrize(("package", "sample"), [("mock_server", "MockConfig"), ("mock_server.testing", "SoraServer")])
def test_the_public_names_are_listed_once_and_all_importable(package: str, sample: str) -> None:
    module = importlib.import_module(package)
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    assert source.count(f'"{sample}"') == 0 and source.count(f"{sample} as {sample}") == 1
    assert len(module.__all__) == len(set(module.__all__)) >= 7
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))


def test_each_module_sets_all_once() -> None:
    def sets_all(node: ast.stmt) -> bool:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        return any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets)

    counts = {
        str(path.relative_to(ROOT)): sum(sets_all(node) for node in ast.parse(path.read_text(encoding="utf-8")).body)
        for path in SOURCES
    }
    assert {path: count for path, count in counts.items() if count > 1} == {}
