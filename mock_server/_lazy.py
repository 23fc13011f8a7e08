"""Lazy package exports: a name is imported from its home module on first use, then kept."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["lazy_exports", "typed_homes"]


def lazy_exports(
    package: str, homes: Mapping[str, str], namespace: MutableMapping[str, Any], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names live in the relative modules ``homes``."""

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{home}", package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(public))

    return getattr_, dir_


def typed_homes(init_file: str) -> dict[str, str]:
    """The public names of a package and their relative home modules, read from the ``if TYPE_CHECKING:``
    imports of its ``__init__.py`` (``init_file``).

    The typed import block is then the one list of public names: type checkers read it, and the
    package derives its lazy-import table and ``__all__`` from it.
    """
    import ast  # pytest has it loaded already; so do the servers, through their frameworks

    with open(init_file, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    homes: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                if isinstance(child, ast.ImportFrom) and child.level == 1 and child.module:
                    homes.update({alias.asname or alias.name: child.module for alias in child.names})
    return homes
