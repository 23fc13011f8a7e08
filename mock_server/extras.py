"""Optional extras: what only some users need, and the one line that names a missing one."""

from __future__ import annotations

import importlib

from .errors import ConfigError

__all__ = ["MissingExtra", "extra_hint", "require"]

PROJECT = "sora-characters-kit"


class MissingExtra(ConfigError, ImportError):
    """A feature needs an optional extra that is not installed; the message names it and how to add it."""


def extra_hint(extra: str, needed_by: str) -> str:
    """``<needed_by> needs the '<extra>' extra: pip install 'sora-characters-kit[<extra>]'``."""
    return f"{needed_by} needs the {extra!r} extra: pip install '{PROJECT}[{extra}]'"


def require(module: str, extra: str, needed_by: str) -> None:
    """Import ``module`` or raise :class:`MissingExtra` naming ``extra`` (``needed_by``: what needs it)."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(extra_hint(extra, needed_by)) from None
