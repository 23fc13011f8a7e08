"""The mock's defect catalogue: each defect is one specific bug, and the healthy mock has none."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from mock_server import MockConfig, create_app
from mock_server.mock.defects import DEFECTS
from mock_server.serving.cli import main

TOKEN = "defect-token"
VIDEO = "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4"
TASK = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# name -> (request kwargs for the test client, status the healthy mock gives, status with the defect)
PROBES: dict[str, tuple[dict[str, Any], int, int]] = {
    "span_too_wide": ({"json": {"url": VIDEO, "timestamps": "0,5"}, "headers": AUTH}, 422, 200),
    "span_too_short": ({"json": {"url": VIDEO, "timestamps": "2,2"}, "headers": AUTH}, 422, 200),
    "reversed_window": ({"json": {"url": VIDEO, "timestamps": "3,1"}, "headers": AUTH}, 422, 200),
    "missing_timestamps": ({"json": {"url": VIDEO}, "headers": AUTH}, 422, 200),
    "both_sources": ({"json": {"url": VIDEO, "from_task": TASK, "timestamps": "1,3"}, "headers": AUTH}, 422, 200),
    "no_source": ({"json": {"timestamps": "1,3"}, "headers": AUTH}, 422, 200),
    "skip_auth": ({"json": {"url": VIDEO, "timestamps": "1,3"}}, 401, 200),
    "any_token": ({"json": {"url": VIDEO, "timestamps": "1,3"}, "headers": {"Authorization": "Bearer nope"}}, 401, 200),
    "crash_on_non_json": ({"data": b"not json", "headers": AUTH}, 400, 500),
    "error_as_200": ({"json": {"url": VIDEO, "timestamps": "0,9"}, "headers": AUTH}, 422, 200),
}


def _post(defects: tuple[str, ...], **kwargs: Any) -> Any:
    client = create_app(MockConfig(token=TOKEN, seed=1, defects=defects)).test_client()
    return client.post("/sora/v1/characters", **kwargs)


def test_catalogue_has_at_least_ten_described_defects() -> None:
    assert len(DEFECTS) >= 10
    assert all(name.isidentifier() and description for name, description in DEFECTS.items())


@pytest.mark.parametrize("name", sorted(PROBES))
def test_request_defect_changes_only_its_answer(name: str) -> None:
    kwargs, healthy, broken = PROBES[name]
    assert _post((), **kwargs).status_code == healthy
    assert _post((name,), **kwargs).status_code == broken
    # the defect does not break a conforming request
    ok = _post((name,), json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    assert ok.status_code == 200 and ok.is_json


def test_answer_defects_bend_the_character() -> None:
    good = {"url": VIDEO, "timestamps": "1,3"}
    assert "profile_picture_url" not in _post(("drop_picture",), json=good, headers=AUTH).get_json()
    foreign = _post(("foreign_permalink",), json=good, headers=AUTH).get_json()
    assert not foreign["permalink"].endswith("/" + foreign["username"])
    assert isinstance(_post(("numeric_id",), json=good, headers=AUTH).get_json()["id"], int)
    plain = _post(("plain_text_errors",), json={"url": VIDEO}, headers=AUTH)
    assert plain.status_code == 422 and plain.mimetype == "text/plain"


def test_unknown_defect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        create_app(MockConfig(token=TOKEN, defects=("no_such_bug",)))


def test_cli_offers_every_defect() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    bad = CliRunner().invoke(main, ["serve", "--defect", "no_such_bug"])
    assert bad.exit_code == 2
    for name in DEFECTS:
        assert name in bad.output


def test_defects_command_lists_the_catalogue() -> None:
    result = CliRunner().invoke(main, ["defects"])
    assert result.exit_code == 0
    assert result.output.count("\n") == len(DEFECTS)
    for name, description in DEFECTS.items():
        assert name in result.output and description in result.output
