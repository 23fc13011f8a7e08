"""JSON written by the guard: the report and its recordings, each file replaced atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["json_bytes", "write_atomically"]


def json_bytes(value: object, **options: Any) -> bytes:
    """``value`` as UTF-8 JSON; a string no UTF-8 can hold (a lone surrogate) is written as a ``\\u`` escape."""
    try:
        return json.dumps(value, ensure_ascii=False, **options).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **options).encode("ascii")


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file beside it: a reader never sees half a file."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
