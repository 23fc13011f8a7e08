"""The ``fixtures/`` corpus: in step with the mock, one case per rule, same answers over HTTP and respx."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from mock_server import check_character, check_error_body, check_request, decode_body, load_contract
from mock_server.contract.rules import RuleError
from mock_server.mock import fixtures as corpus
from mock_server.mock.fixtures import CORPUS_CLOCK, CORPUS_SEED, Case
from mock_server.testing import SoraServer
from mock_server.testing.respx_router import RELAY_BASE_URL, SoraRouter

from ..helpers import ROOT

SEEDED = {"seed": CORPUS_SEED, "clock": lambda: CORPUS_CLOCK}


def answer_of(status: int, headers: Any, content: bytes) -> dict[str, Any]:
    return {
        "status": status,
        "headers": corpus.kept_headers(headers),
        "body": json.loads(content) if content else None,
    }


def over_http(server: SoraServer, case: Case) -> dict[str, Any]:
    if case.fault is not None:
        server.fail_next(case.fault["status"], case.fault.get("retry_after"))
    response = requests.request(
        case.method, server.url + case.path, data=case.content(), headers=case.headers(server.token), timeout=30
    )
    return answer_of(response.status_code, response.headers, response.content)


def over_respx(router: SoraRouter, case: Case, client: httpx.Client) -> dict[str, Any]:
    if case.fault is not None:
        router.fail_next(case.fault["status"], case.fault.get("retry_after"))
    response = client.request(
        case.method, RELAY_BASE_URL + case.path, content=case.content(), headers=case.headers(router.token)
    )
    return answer_of(response.status_code, response.headers, response.content)


def test_committed_corpus_matches_the_mock() -> None:
    assert corpus.fixtures_dir() == ROOT / "fixtures"
    assert corpus.stale_files() == [], "regenerate with: python -m mock_server.mock.fixtures --write"


def test_check_and_write_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert corpus.main(["--write", "--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in corpus.CORPUS_FILES)
    cases = sum(1 for _ in corpus.iter_cases())
    assert f"fixtures: wrote 4 files, {cases} cases and 5 sample characters to {tmp_path}" in capsys.readouterr().out
    assert corpus.main(["--dir", str(tmp_path)]) == 0
    assert (
        capsys.readouterr().out
        == f"fixtures: {tmp_path} is in step with the mock (4 files, {cases} cases and 5 sample characters)\n"
    )
    path = tmp_path / "invalid.json"
    path.write_text(path.read_text().replace('"param": "timestamps"', '"param": "url"', 1))
    assert corpus.main(["--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "invalid.json differs" in captured.err and "in step" not in captured.out


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        corpus.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--write" in text and "Exit status" in text
    assert "``" not in text and ":func:" not in text


def test_model_cases_are_valid_and_answered_200() -> None:
    """The seed defines no ``model``: the corpus shows it ignored, never refused."""
    with_model = [
        case for case in corpus.iter_cases() if isinstance(case.json_body, dict) and "model" in case.json_body
    ]
    assert with_model and "model-unknown" not in {case.name for case in corpus.iter_cases()}
    assert all(case.kind == "valid" and case.status == 200 for case in with_model)
    assert all(case.code != "invalid_model" for case in corpus.iter_cases())


def test_loader() -> None:
    assert set(corpus.load("characters")) == {"description", "characters"}
    kinds = {case.kind for case in corpus.iter_cases()}
    assert kinds == {"valid", "invalid", "errors"}
    wide = corpus.case("span-too-wide")
    assert (wide.status, wide.param, wide.code) == (422, "timestamps", "invalid_timestamps_span")
    assert wide.json_body["timestamps"] == "1,5"
    assert wide.headers("abc")["Authorization"] == "Bearer abc"
    assert corpus.case("too-large").content() == b" " * (1024 * 1024 + 1)
    assert corpus.case("body-not-utf8").content() == b'{"url": "\xff"}'
    with pytest.raises(KeyError, match="no fixture named 'nope'"):
        corpus.load("nope")
    with pytest.raises(KeyError, match="no fixture case"):
        corpus.case("nope")
    with pytest.raises(KeyError, match="no case kind"):
        list(corpus.iter_cases("characters"))


def test_one_invalid_case_per_rule() -> None:
    """Every error code the rules module can return has a case (so a new rule needs one)."""
    rule_codes = set(
        re.findall(r'_invalid\(\s*[^,]+,\s*"(\w+)"', (ROOT / "mock_server" / "contract" / "rules.py").read_text())
    )
    assert len(rule_codes) >= 10
    invalid = list(corpus.iter_cases("invalid"))
    assert rule_codes <= {case.code for case in invalid}
    assert {"missing_api_key", "invalid_authorization_scheme", "invalid_api_key"} <= {case.code for case in invalid}
    assert len({case.name for case in corpus.iter_cases()}) == len(list(corpus.iter_cases()))


def test_cases_agree_with_the_rules_oracle() -> None:
    contract = load_contract()
    for case in corpus.iter_cases("invalid"):
        assert case.status in (400, 401, 422) and check_error_body(case.body) == [], case.name
        if case.status == 401:
            continue
        try:
            violation = check_request(decode_body(case.content(), reject_duplicates=True), contract)
        except RuleError as exc:
            violation = exc.violation
        assert violation is not None, case.name
        assert (violation.status, violation.param, violation.code) == (case.status, case.param, case.code)
    for case in corpus.iter_cases("valid"):
        assert case.status == 200 and check_request(case.json_body, contract) is None
        assert check_character(case.body, contract) == [], case.name
    for case in corpus.iter_cases("errors"):
        assert check_error_body(case.body) == [], case.name
    assert corpus.case("rate-limited").response["headers"]["Retry-After"] == "2"
    characters = corpus.load("characters")["characters"]
    assert len({c["id"] for c in characters}) == len(characters) >= 3
    assert all(check_character(c, contract) == [] for c in characters)


def test_no_token_in_the_corpus() -> None:
    for path in (ROOT / "fixtures").glob("*.json"):
        text = path.read_text()
        assert "corpus-token" not in text
        for auth in re.findall(r'"Authorization": "([^"]*)"', text):
            assert auth in ("Bearer {token}", "Basic dXNlcjpwYXNz", "Bearer not-the-right-token"), path


@pytest.mark.sora(**SEEDED, token="corpus-token")  # pinned: the corpus has a wrong-token case
def test_real_http_answers_match_the_corpus(sora_server: SoraServer) -> None:
    for kind in ("valid", "invalid", "errors"):
        sora_server.reset()
        with sora_server.configured(**SEEDED):  # a fresh seeded app per file, as when generated
            for case in corpus.iter_cases(kind):
                assert over_http(sora_server, case) == dict(case.response), case.name


def test_respx_answers_match_the_corpus() -> None:
    for kind in ("valid", "invalid", "errors"):
        with (
            SoraRouter({**SEEDED, "token": "respx-token"}, base_urls=[RELAY_BASE_URL]) as router,
            httpx.Client() as client,
        ):
            for case in corpus.iter_cases(kind):
                if case.path != "/sora/v1/characters":  # the router answers the endpoint only
                    with pytest.raises(AssertionError, match="not mocked"):
                        over_respx(router, case, client)
                    continue
                assert over_respx(router, case, client) == dict(case.response), case.name


def test_characters_file_is_the_seeded_sequence() -> None:
    expected = corpus.load("characters")["characters"]
    body = corpus.case("url-form")
    with SoraRouter(SEEDED) as router, httpx.Client() as client:
        got = [
            client.post(RELAY_BASE_URL + body.path, content=body.content(), headers=body.headers(router.token)).json()
            for _ in expected
        ]
    assert got == expected
