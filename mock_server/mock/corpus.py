"""Reading the corpus under ``fixtures/`` (the format: :mod:`mock_server.mock.fixtures`).

Only the files and their cases: nothing here needs the mock, so the stubs can turn a case or a
recording into a stub without importing the generator (:mod:`.fixtures`), which asks the mock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..contract.spec import ENDPOINT_PATH

__all__ = ["CORPUS_FILES", "TOKEN_PLACEHOLDER", "Case", "case", "cases_from", "fixtures_dir", "iter_cases", "load"]

CORPUS_FILES = ("valid", "invalid", "errors", "characters")
TOKEN_PLACEHOLDER = "{token}"


def fixtures_dir() -> Path:
    """The corpus folder: inside the installed package, else the checkout's ``fixtures/``."""
    package = Path(__file__).resolve().parent.parent  # mock_server/
    for candidate in (package / "fixtures_data", package.parent / "fixtures"):
        if (candidate / "valid.json").is_file():
            return candidate
    raise FileNotFoundError(f"no fixtures corpus (valid.json) inside or beside {package}")


@dataclass(frozen=True)
class Case:
    """One request of the corpus and the answer the mock gives it."""

    name: str
    kind: str
    description: str
    request: Mapping[str, Any]
    response: Mapping[str, Any]
    fault: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], kind: str) -> Case:
        known = {"name", "description", "request", "response", "fault"}
        return cls(
            name=data["name"],
            kind=kind,
            description=data.get("description", ""),
            request=data["request"],
            response=data["response"],
            fault=data.get("fault"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    @property
    def method(self) -> str:
        return str(self.request.get("method", "POST"))

    @property
    def path(self) -> str:
        return str(self.request.get("path", ENDPOINT_PATH))

    @property
    def status(self) -> int:
        """The status the mock answers."""
        return int(self.response["status"])

    @property
    def body(self) -> Any:
        """The answer's JSON body."""
        return self.response.get("body")

    @property
    def param(self) -> str | None:
        """``error.param`` of an error answer (``None`` for a 200 or when the error names no field)."""
        body = self.body
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            param = body["error"].get("param")
            return None if param is None else str(param)
        return None

    @property
    def code(self) -> str | None:
        """``error.code`` of an error answer."""
        body = self.body
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            return str(body["error"].get("code"))
        return None

    @property
    def json_body(self) -> Any:
        """The request body as JSON data, when the case sends JSON (else ``None``)."""
        return self.request.get("json")

    def headers(self, token: str) -> dict[str, str]:
        """The request headers, ``{token}`` replaced by ``token``."""
        raw: Mapping[str, str] = self.request.get("headers", {})
        return {name: value.replace(TOKEN_PLACEHOLDER, token) for name, value in raw.items()}

    def content(self) -> bytes:
        """The request body as bytes, exactly as the corpus sends it."""
        req = self.request
        if "json" in req:
            return json.dumps(req["json"], ensure_ascii=False).encode("utf-8")
        if "text" in req:
            return str(req["text"]).encode("utf-8")
        if "base64" in req:
            return base64.b64decode(req["base64"])
        if "repeat" in req:
            return str(req["repeat"]["text"]).encode("utf-8") * int(req["repeat"]["times"])
        return b""


def _read(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=16)
def _load_cached(path: str) -> Any:
    return _read(Path(path))


def load(name: str) -> Any:
    """The parsed JSON document ``fixtures/<name>.json`` (e.g. ``"invalid"``, ``"characters"``).

    The result is shared: do not modify it.
    """
    if name not in CORPUS_FILES:
        raise KeyError(f"no fixture named {name!r}; choose one of {', '.join(CORPUS_FILES)}")
    return _load_cached(str(fixtures_dir() / f"{name}.json"))


def cases_from(document: Mapping[str, Any], kind: str = "recorded") -> list[Case]:
    """The cases of a corpus-format document (a corpus file or a recording)."""
    return [Case.from_json(item, kind) for item in document["cases"]]


def iter_cases(kind: str | None = None) -> Iterator[Case]:
    """Every case of the corpus (``kind``: ``"valid"``, ``"invalid"`` or ``"errors"``)."""
    kinds = ("valid", "invalid", "errors") if kind is None else (kind,)
    for name in kinds:
        if name not in ("valid", "invalid", "errors"):
            raise KeyError(f"no case kind {name!r}; choose valid, invalid or errors")
        yield from cases_from(load(name), name)


def case(name: str) -> Case:
    """The corpus case called ``name``."""
    for item in iter_cases():
        if item.name == name:
            return item
    raise KeyError(f"no fixture case named {name!r}")
