"""Locate and load the OpenAPI documents, and read the endpoint rules out of the refined one.

The `openapi/` folder sits beside this package in a checkout and inside it in a wheel
(``mock_server/openapi``); :func:`openapi_dir` finds it either way.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .rules import Contract

__all__ = [
    "ENDPOINT_PATH",
    "RELAY_BASE_URL",
    "load_contract",
    "load_spec",
    "openapi_dir",
    "refined_spec_path",
    "vendored_spec_path",
]

ENDPOINT_PATH = "/sora/v1/characters"
RELAY_BASE_URL = "https://api.jxincm.cn"
"""Where the real (paid) relay lives: the live run's default target; the respx router catches calls to it."""
_REFINED = "characters.yaml"
_VENDORED = "vendor/create-character.openapi.yaml"


def openapi_dir() -> Path:
    """The folder holding the specs: inside the installed package, else the checkout's."""
    here = Path(__file__).resolve().parent.parent  # the mock_server package
    for candidate in (here / "openapi", here.parent / "openapi"):
        if (candidate / _REFINED).is_file():
            return candidate
    raise FileNotFoundError(f"no openapi/{_REFINED} inside or beside {here}")


def refined_spec_path() -> Path:
    """Path of the refined contract, ``openapi/characters.yaml``."""
    return openapi_dir() / _REFINED


def vendored_spec_path() -> Path:
    """Path of the seed spec kept verbatim under ``openapi/vendor/``."""
    return openapi_dir() / _VENDORED


def load_spec(path: str | Path | None = None) -> dict[str, Any]:
    """Parse an OpenAPI YAML document (the refined one by default)."""
    with open(path or refined_spec_path(), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return data


def load_contract(path: str | Path | None = None) -> Contract:
    """Build the :class:`Contract` from the refined spec's schemas and ``x-`` extensions."""
    return _contract_from(str(path or refined_spec_path()))


@lru_cache(maxsize=8)
def _contract_from(path: str) -> Contract:
    schemas = load_spec(path)["components"]["schemas"]
    request = schemas["CreateCharacterRequest"]
    props = request["properties"]
    character = schemas["Character"]["properties"]
    span = props["timestamps"]["x-timestamps-span"]
    sources = request["x-exactly-one-of"]
    return Contract(
        timestamps_pattern=re.compile(props["timestamps"]["pattern"]),
        timestamps_max_length=int(props["timestamps"]["maxLength"]),
        span_min=Decimal(str(span["min"])),
        span_max=Decimal(str(span["max"])),
        sources=(sources[0], sources[1]),
        url_pattern=re.compile(props["url"]["pattern"]),
        url_max_length=int(props["url"]["maxLength"]),
        from_task_pattern=re.compile(props["from_task"]["pattern"]),
        required=tuple(request["required"]),
        id_pattern=re.compile(character["id"]["pattern"]),
        username_pattern=re.compile(character["username"]["pattern"]),
        permalink_template=character["permalink"]["x-permalink-template"],
        picture_url_pattern=re.compile(character["profile_picture_url"]["pattern"]),
    )
