"""The refined spec generates a typed client with openapi-python-client, and that client talks to the mock.

openapi-python-client (a dev dependency, installed by ``make install``) is a generator nobody here
wrote: it typed the request body as ``Any`` while the spec had a top-level ``oneOf``. Here it must
generate, without a warning, a request model with ``url``, ``timestamps`` and ``from_task``, and the
generated client, called on the in-process mock, must parse a 200 into the character model and an
error into the error model.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from mock_server import MockConfig, create_app, refined_spec_path

PACKAGE = "sora_characters_client"
TOKEN = "sk-generated-client"
VIDEO = "https://example.com/clip.mp4"
TASK = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from ``openapi/characters.yaml``, imported."""
    bin_dir = Path(sys.executable).parent
    generator = bin_dir / "openapi-python-client"
    assert generator.is_file(), "openapi-python-client is missing: run `make install` (it is a dev dependency)"
    folder = tmp_path_factory.mktemp("generated")
    done = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(refined_spec_path()),
            "--output-path",
            str(folder / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},  # its ruff post-hook
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _part(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _client(generated: ModuleType, token: str | None = TOKEN) -> Any:
    transport = httpx.WSGITransport(app=create_app(MockConfig(token=TOKEN, seed=5)))
    if token is None:
        return generated.Client(base_url="http://mock.invalid", httpx_args={"transport": transport})
    return generated.AuthenticatedClient(
        base_url="http://mock.invalid", token=token, httpx_args={"transport": transport}
    )


def test_the_request_body_is_a_typed_model_with_every_field(generated: ModuleType) -> None:
    models = _part("models")
    request = models.CreateCharacterRequest
    assert {"url", "timestamps", "from_task"} <= {field.name for field in request.__attrs_attrs__}
    create = _part("api.characters.create_character")
    body = inspect.signature(create.sync_detailed).parameters["body"]
    assert body.annotation in ("CreateCharacterRequest", request)
    assert request(timestamps="1,3", url=VIDEO).to_dict() == {"timestamps": "1,3", "url": VIDEO}


@pytest.mark.parametrize("source", ["url", "from_task"])
def test_a_200_parses_into_the_character_model(generated: ModuleType, source: str) -> None:
    models = _part("models")
    create = _part("api.characters.create_character")
    value = VIDEO if source == "url" else TASK
    body = models.CreateCharacterRequest(timestamps="1,3", **{source: value})
    with _client(generated) as client:
        answer = create.sync_detailed(client=client, body=body)
    assert answer.status_code == 200, answer.content
    character = answer.parsed
    assert isinstance(character, models.Character)
    assert character.id.startswith("ch_") and len(character.id) == 35
    assert character.permalink == f"https://sora.chatgpt.com/profile/{character.username}"
    assert character.profile_picture_url.startswith("https://")


@pytest.mark.parametrize(
    ("body", "token", "status", "code", "param"),
    [
        ({"timestamps": "1,5", "url": VIDEO}, TOKEN, 422, "invalid_timestamps_span", "timestamps"),
        ({"timestamps": "1,3", "url": VIDEO, "from_task": TASK}, TOKEN, 422, "conflicting_sources", "url"),
        ({"timestamps": "1,3"}, TOKEN, 422, "missing_source", "url"),
        ({"timestamps": "1,3", "url": VIDEO}, "sk-not-the-token", 401, "invalid_api_key", None),
        ({"timestamps": "1,3", "url": VIDEO}, None, 401, "missing_api_key", None),
    ],
)
def test_an_error_parses_into_the_error_model(
    generated: ModuleType, body: dict[str, str], token: str | None, status: int, code: str, param: str | None
) -> None:
    models = _part("models")
    create = _part("api.characters.create_character")
    with _client(generated, token) as client:
        answer = create.sync_detailed(client=client, body=models.CreateCharacterRequest.from_dict(body))
    assert answer.status_code == status
    error = answer.parsed
    assert isinstance(error, models.Error)
    assert error.error.code == code and error.error.param == param
    assert error.error.type_ in ("invalid_request_error", "authentication_error") and error.error.message
