"""``sora-mock record`` against the mock on 127.0.0.1: budget, token and ``sig=`` scrubbing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mock_server import check_character, load_contract
from mock_server.mock import fixtures as corpus
from mock_server.relay.recorder import MIN_SECRET_LENGTH, REDACTED, Budget, is_billable, scrub, scrub_bytes
from mock_server.serving.cli import main
from mock_server.testing import SoraServer


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("SORA_API_KEY", "SORA_BASE_URL", "SORA_LIVE_MAX_CREATES", "SORA_LIVE_MAX_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_records_one_create_by_default(sora_server: SoraServer, runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "recorded.json"
    result = runner.invoke(
        main,
        ["record", "--base-url", sora_server.url, "--out", str(out)],
        env={"SORA_API_KEY": sora_server.token},
    )
    assert result.exit_code == 0, result.output
    assert "url-form: 200" in result.output
    text = out.read_text()
    assert sora_server.token not in text and sora_server.token not in result.output
    (created,) = sora_server.characters
    signature = re.search(r"[?&]sig=([^&]+)", created["profile_picture_url"])
    assert signature is not None and signature.group(1) not in text
    assert re.findall(r"[?&]sig=([^&\"]+)", text) == [REDACTED]
    document = json.loads(text)
    (case,) = corpus.cases_from(document)
    assert case.name == "url-form" and case.status == 200
    assert case.headers("T")["Authorization"] == "Bearer T"
    assert case.body["id"] == created["id"]
    assert check_character(case.body, load_contract()) == []
    assert document["recorded_from"] == sora_server.url
    assert len(sora_server.requests) == 1


def test_recorded_rejections_match_the_corpus(sora_server: SoraServer, runner: CliRunner, tmp_path: Path) -> None:
    names = ["span-too-wide", "both-sources", "body-not-json", "auth-missing", "method-not-allowed"]
    out = tmp_path / "rejections.json"
    args = ["record", "--base-url", sora_server.url + "/", "--out", str(out)]
    for name in names:
        args += ["--case", name]
    result = runner.invoke(main, args, env={"SORA_API_KEY": sora_server.token})
    assert result.exit_code == 0, result.output
    recorded = corpus.cases_from(json.loads(out.read_text()))
    assert [case.name for case in recorded] == names
    for case in recorded:
        assert dict(case.response, elapsed_ms=None) == dict(corpus.case(case.name).response, elapsed_ms=None)
    assert sora_server.characters == []


def test_no_token_sends_nothing(sora_server: SoraServer, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main, ["record", "--base-url", sora_server.url, "--out", str(tmp_path / "x.json")], env={"SORA_API_KEY": " "}
    )
    assert result.exit_code == 2
    assert "SORA_API_KEY is not set" in result.output and "nothing was sent" in result.output
    assert sora_server.requests == [] and not (tmp_path / "x.json").exists()


def test_budget_is_checked_before_sending(sora_server: SoraServer, runner: CliRunner, tmp_path: Path) -> None:
    args = ["record", "--base-url", sora_server.url, "--out", str(tmp_path / "x.json")]
    two = [*args, "--case", "url-form", "--case", "task-form"]
    result = runner.invoke(main, two, env={"SORA_API_KEY": sora_server.token})
    assert result.exit_code == 2 and "SORA_LIVE_MAX_CREATES=1" in result.output
    assert sora_server.requests == []
    zero = runner.invoke(main, args, env={"SORA_API_KEY": sora_server.token, "SORA_LIVE_MAX_CREATES": "0"})
    assert zero.exit_code == 2 and sora_server.requests == []
    many = [*args, "--case", "span-zero", "--case", "span-reversed"]
    capped = runner.invoke(main, many, env={"SORA_API_KEY": sora_server.token, "SORA_LIVE_MAX_REQUESTS": "1"})
    assert capped.exit_code == 2 and "SORA_LIVE_MAX_REQUESTS=1" in capped.output
    assert sora_server.requests == []
    allowed = runner.invoke(main, two, env={"SORA_API_KEY": sora_server.token, "SORA_LIVE_MAX_CREATES": "2"})
    assert allowed.exit_code == 0, allowed.output
    assert len(sora_server.characters) == 2


def test_bad_selection_and_url(sora_server: SoraServer, runner: CliRunner) -> None:
    env = {"SORA_API_KEY": sora_server.token}
    unknown = runner.invoke(main, ["record", "--base-url", sora_server.url, "--case", "nope"], env=env)
    assert unknown.exit_code == 2 and "no corpus case 'nope'" in unknown.output
    fault = runner.invoke(main, ["record", "--base-url", sora_server.url, "--case", "rate-limited"], env=env)
    assert fault.exit_code == 2 and "injected fault" in fault.output
    relative = runner.invoke(main, ["record", "--base-url", "127.0.0.1:1"], env=env)
    assert relative.exit_code == 2 and "http(s) URL" in relative.output
    missing = runner.invoke(main, ["record"], env=env)
    assert missing.exit_code == 2 and "--base-url" in missing.output
    assert sora_server.requests == []


@pytest.mark.sora(token="recorder-token")  # pinned, so the recorder's "k" is refused
def test_default_output_path(
    sora_server: SoraServer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        main, ["record", "--case", "span-zero"], env={"SORA_API_KEY": "k", "SORA_BASE_URL": sora_server.url}
    )
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "fixtures" / "recorded").glob("127.0.0.1-*.json")
    assert corpus.cases_from(json.loads(written.read_text()))[0].status == 401  # "k" is not the server's token


def test_dropped_connection_is_recorded(sora_server: SoraServer, runner: CliRunner, tmp_path: Path) -> None:
    sora_server.drop_next()
    out = tmp_path / "drop.json"
    result = runner.invoke(
        main, ["record", "--base-url", sora_server.url, "--out", str(out)], env={"SORA_API_KEY": sora_server.token}
    )
    assert result.exit_code == 0, result.output
    (case,) = json.loads(out.read_text())["cases"]
    assert case["response"]["status"] is None
    assert case["response"]["transport_error"] == "RemoteProtocolError"


def test_scrub_and_billing_helpers() -> None:
    url = "https://videos.openai.com/az/files/x%2Fraw?se=1&sig=AbC%2B/d%3D&ac=z"
    assert scrub({"u": url, "n": [f"token s3cret-key in {url}"]}, "s3cret-key") == {
        "u": "https://videos.openai.com/az/files/x%2Fraw?se=1&sig=[redacted]&ac=z",
        "n": ["token [redacted] in https://videos.openai.com/az/files/x%2Fraw?se=1&sig=[redacted]&ac=z"],
    }
    # A token shorter than a secret can be (as in the mock's journal) is not hunted down in text.
    assert len("mp4") < MIN_SECRET_LENGTH == 8
    assert scrub({"url": "https://example.com/v.mp4"}, "mp4") == {"url": "https://example.com/v.mp4"}
    binary = b"\xff\xfe token s3cret-key and " + "s3cret-key".encode("utf-16-le") + b" ?sig=abc&"
    assert scrub_bytes(binary, "s3cret-key") == b"\xff\xfe token [redacted] and [redacted] ?sig=[redacted]&"
    assert scrub_bytes(b"\xff mp4", "mp4") == b"\xff mp4"
    assert scrub("a?sig%3Dxyz&b", "") == "a?sig%3D[redacted]&b"
    assert is_billable(corpus.case("url-form")) and is_billable(corpus.case("with-model"))
    assert not any(is_billable(case) for case in corpus.iter_cases("invalid"))
    assert not any(is_billable(case) for case in corpus.iter_cases("errors") if case.fault is None)
    assert Budget.from_env({}) == Budget(1, 40)
    assert Budget.from_env({"SORA_LIVE_MAX_CREATES": "3", "SORA_LIVE_MAX_REQUESTS": "9"}) == Budget(3, 9)


def test_a_refused_base_url_is_shown_without_credentials_and_ipv6_hosts_stay_bracketed(runner: CliRunner) -> None:
    env = {"SORA_API_KEY": "recorder-token"}
    refused = runner.invoke(main, ["record", "--base-url", "ftp://user:s3cret@[::1]:8021/relay?q=1"], env=env)
    assert refused.exit_code == 2
    assert "'ftp://[::1]:8021/relay'" in refused.output  # a host and port that still read as one
    assert "s3cret" not in refused.output and "q=1" not in refused.output
