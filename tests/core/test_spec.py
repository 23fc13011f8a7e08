"""The vendored seed stays verbatim, and the refined contract stays compatible with it."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from mock_server import Contract, load_spec, refined_spec_path, vendored_spec_path
from mock_server.contract.spec import openapi_dir

from ..helpers import ROOT

SEED = ROOT.parent / "shared" / "seed" / "create-character.openapi.md"


@pytest.fixture(scope="module")
def refined() -> dict[str, Any]:
    return load_spec()


@pytest.fixture(scope="module")
def vendored() -> dict[str, Any]:
    return load_spec(vendored_spec_path())


def test_vendored_spec_is_the_recorded_bytes() -> None:
    recorded = re.search(r"SHA-256 of .*`([0-9a-f]{64})`", (openapi_dir() / "vendor" / "SOURCE.md").read_text())
    assert recorded is not None
    assert hashlib.sha256(vendored_spec_path().read_bytes()).hexdigest() == recorded.group(1)


@pytest.mark.skipif(not SEED.is_file(), reason="the seed document is not beside this checkout")
def test_vendored_spec_is_the_seed_yaml_verbatim() -> None:
    seed = SEED.read_text(encoding="utf-8")
    block = seed.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert vendored_spec_path().read_text(encoding="utf-8") == block


def test_both_specs_are_valid_openapi(refined: dict[str, Any], vendored: dict[str, Any]) -> None:
    validate(refined)
    validate(vendored)


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in spec["paths"].items() for method, op in item.items()}


def _schemas(spec: dict[str, Any], op: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    request = _resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
    response = _resolve(spec, op["responses"]["200"]["content"]["application/json"]["schema"])
    return request, response


def test_refined_keeps_every_vendored_path_property_type_and_requirement(
    refined: dict[str, Any], vendored: dict[str, Any]
) -> None:
    ours = _operations(refined)
    assert refined["servers"][0]["url"] == vendored["servers"][0]["url"]
    assert refined["components"]["securitySchemes"]["bearer"] == vendored["components"]["securitySchemes"]["bearer"]
    for key, op in _operations(vendored).items():
        assert key in ours, f"{key} is missing from the refined spec"
        assert ours[key]["security"] == op["security"]
        for theirs, mine in zip(_schemas(vendored, op), _schemas(refined, ours[key]), strict=True):
            assert mine["type"] == theirs["type"]
            assert set(theirs.get("required", [])) <= set(mine.get("required", []))
            for name, prop in theirs["properties"].items():
                assert name in mine["properties"], f"property {name} was dropped"
                assert mine["properties"][name]["type"] == prop["type"]


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> OAS30Validator:
    return OAS30Validator({**schema, "components": spec.get("components", {})})


def _examples(refined: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    op = refined["paths"]["/sora/v1/characters"]["post"]
    requests = [ex["value"] for ex in op["requestBody"]["content"]["application/json"]["examples"].values()]
    responses = [op["responses"]["200"]["content"]["application/json"]["example"]]
    return requests, responses


def test_every_example_validates_against_both_specs(
    refined: dict[str, Any], vendored: dict[str, Any], contract: Contract
) -> None:
    from mock_server import check_character, conforms

    requests, responses = _examples(refined)
    assert {"url", "from_task"} <= {key for ex in requests for key in ex}
    for spec in (refined, vendored):
        op = _operations(spec)[("/sora/v1/characters", "post")]
        request_schema, response_schema = _schemas(spec, op)
        for example in requests:
            _validator(spec, request_schema).validate(example)
        for example in responses:
            _validator(spec, response_schema).validate(example)
    assert all(conforms(example, contract) for example in requests)
    assert all(check_character(example, contract) == [] for example in responses)


def test_refined_request_schema_rejects_both_and_neither_sources(refined: dict[str, Any]) -> None:
    op = _operations(refined)[("/sora/v1/characters", "post")]
    validator = _validator(refined, _schemas(refined, op)[0])
    assert validator.is_valid({"url": "https://a.example/v.mp4", "timestamps": "1,3"})
    task = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"
    assert not validator.is_valid({"url": "https://a.example/v.mp4", "from_task": task, "timestamps": "1,3"})
    assert not validator.is_valid({"timestamps": "1,3"})
    assert not validator.is_valid({"url": "https://a.example/v.mp4"})


def test_contract_is_read_from_the_refined_spec(refined: dict[str, Any], contract: Contract) -> None:
    props = refined["components"]["schemas"]["CreateCharacterRequest"]["properties"]
    assert (contract.span_min, contract.span_max) == (1, 3)
    assert props["timestamps"]["x-timestamps-span"] == {"min": 1, "max": 3}
    assert contract.timestamps_pattern.pattern == props["timestamps"]["pattern"]
    assert contract.sources == ("url", "from_task")
    assert not hasattr(contract, "models")


def test_the_request_schema_has_no_model_rule_and_no_top_level_union(refined: dict[str, Any]) -> None:
    """``model`` is an unknown field like any other (the seed has none); code generators need one object type."""
    request = refined["components"]["schemas"]["CreateCharacterRequest"]
    assert "model" not in request["properties"]
    assert not {"oneOf", "anyOf", "allOf"} & set(request)
    assert request["x-exactly-one-of"] == ["url", "from_task"]
    validator = _validator(refined, request)
    for model in ("sora-2-character", "sora-2-pro-character", "anything", 3):
        assert validator.is_valid({"url": "https://a.example/v.mp4", "timestamps": "1,3", "model": model})


def test_a_401_states_the_bearer_challenge(refined: dict[str, Any]) -> None:
    unauthorized = _resolve(refined, refined["paths"]["/sora/v1/characters"]["post"]["responses"]["401"])
    header = unauthorized["headers"]["WWW-Authenticate"]["schema"]
    assert re.fullmatch(header["pattern"], "Bearer")
    assert re.fullmatch(header["pattern"], 'Bearer realm="sora"')
    assert not re.fullmatch(header["pattern"], "Basic")


def test_error_statuses_are_documented_with_the_envelope(refined: dict[str, Any]) -> None:
    responses = refined["paths"]["/sora/v1/characters"]["post"]["responses"]
    for status in ("400", "401", "404", "405", "413", "422", "429", "500"):
        content = _resolve(refined, responses[status])["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in _resolve(refined, responses["429"])["headers"]


def test_specs_ship_inside_the_wheel(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), ROOT],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mock_server/openapi/characters.yaml" in names
    assert "mock_server/openapi/vendor/create-character.openapi.yaml" in names
    assert "mock_server/py.typed" in names
    assert refined_spec_path().is_file()
