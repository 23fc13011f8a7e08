"""The pure rules module: every rule at its edges."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server import (
    Contract,
    RuleError,
    check_character,
    check_error_body,
    check_request,
    conforms,
    decode_body,
    parse_timestamps,
)

from ..helpers import TASK, VIDEO


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"url": VIDEO, "timestamps": "1,3"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize(
    "window",
    ["0,1", "1,2", "1,4", "0,3", "2.5,3.5", "1.1,2.1", "0.001,1.001", " 1 , 3 ", "10,12.999", "7,10.000"],
)
def test_spans_from_one_to_three_seconds_conform(contract: Contract, window: str) -> None:
    assert check_request(body(timestamps=window), contract) is None
    assert conforms(body(url=..., from_task=TASK, timestamps=window), contract)


@pytest.mark.parametrize(
    ("window", "code"),
    [
        ("1,1", "invalid_timestamps_span"),  # zero span
        ("1,1.999", "invalid_timestamps_span"),  # just under 1
        ("0.5,1.4999", "invalid_timestamps_span"),
        ("1,4.001", "invalid_timestamps_span"),  # just over 3
        ("0,3.0000001", "invalid_timestamps_span"),
        ("1,6", "invalid_timestamps_span"),  # 5 s
        ("0,100", "invalid_timestamps_span"),
        ("3,1", "invalid_timestamps_order"),  # reversed
        ("-1,1", "invalid_timestamps"),  # negative
        ("1,-2", "invalid_timestamps"),
        ("1", "invalid_timestamps"),
        ("1,2,3", "invalid_timestamps"),
        ("1;3", "invalid_timestamps"),
        ("a,b", "invalid_timestamps"),
        ("1e0,3", "invalid_timestamps"),
        ("", "invalid_timestamps"),
        (".5,2", "invalid_timestamps"),
        ("１,３", "invalid_timestamps"),  # full-width digits are not seconds
        ("1,\t3", "invalid_timestamps"),
        ("0," + "9" * 70, "invalid_timestamps"),
    ],
)
def test_broken_windows_name_timestamps(contract: Contract, window: str, code: str) -> None:
    violation = check_request(body(timestamps=window), contract)
    assert violation is not None
    assert (violation.status, violation.param, violation.code) == (422, "timestamps", code)
    assert "at least 1 and at most 3 seconds" in violation.message


def test_span_is_exact_decimal_arithmetic(contract: Contract) -> None:
    window = parse_timestamps("1.1,2.1", contract)  # 0.9999999999999998 in floats
    assert window.span == Decimal("1.0")
    with pytest.raises(RuleError) as caught:
        parse_timestamps("0,3.0000000000000001", contract)
    assert caught.value.violation.code == "invalid_timestamps_span"


@pytest.mark.parametrize(
    ("request_body", "param", "code"),
    [
        (body(from_task=TASK), "url", "conflicting_sources"),
        (body(url=...), "url", "missing_source"),
        (body(timestamps=...), "timestamps", "missing_required_parameter"),
        (body(timestamps=13), "timestamps", "invalid_type"),
        (body(timestamps=None), "timestamps", "invalid_type"),
        (body(url=["x"]), "url", "invalid_type"),
        (body(url=..., from_task={"id": 1}), "from_task", "invalid_type"),
        (body(url="ftp://example.com/v.mp4"), "url", "invalid_url"),
        (body(url="/relative/v.mp4"), "url", "invalid_url"),
        (body(url=""), "url", "invalid_url"),
        (body(url="https://exa mple.com/v.mp4"), "url", "invalid_url"),
        (body(url="https://e.com/" + "a" * 2100), "url", "invalid_url"),
        (body(url=..., from_task="task_123"), "from_task", "invalid_task_id"),
        (body(url=..., from_task="video_E50C76CA-21D4-40E9-8485-E4EAD2D37133"), "from_task", "invalid_task_id"),
        (body(url=..., from_task=""), "from_task", "invalid_task_id"),
    ],
)
def test_field_rules_name_the_field(contract: Contract, request_body: Any, param: str, code: str) -> None:
    violation = check_request(request_body, contract)
    assert violation is not None
    assert (violation.status, violation.param, violation.code) == (422, param, code)
    assert param in violation.message


@pytest.mark.parametrize("top", [[], "x", 3, None, True])
def test_non_objects_are_400(contract: Contract, top: object) -> None:
    violation = check_request(top, contract)
    assert violation is not None and violation.status == 400 and violation.param is None


@pytest.mark.parametrize(
    "url",
    ["https://a.example", "http://localhost:8080/v.mp4", "https://a.example?sig=1", "HTTPS://A.EXAMPLE/V.MP4", VIDEO],
)
def test_absolute_http_urls_are_accepted(contract: Contract, url: str) -> None:
    assert conforms(body(url=url), contract)


@pytest.mark.parametrize(
    "url", ["https://a.example/v.mp4\n", "https:///v.mp4", "https://user@a.example/v.mp4", "file:///v.mp4"]
)
def test_other_urls_are_refused(contract: Contract, url: str) -> None:
    violation = check_request(body(url=url), contract)
    assert violation is not None and violation.code == "invalid_url"


def test_unknown_fields_are_accepted(contract: Contract) -> None:
    assert conforms(body(display_name="x", extra={"a": 1}), contract)


@pytest.mark.parametrize("model", ["sora-2-character", "sora-2-pro-character", "sora-1", "", None, 2, ["x"], {}])
def test_model_is_an_unknown_field_like_any_other(contract: Contract, model: object) -> None:
    """The seed defines no ``model``: no value of it makes a request break a rule, nor mends a broken one."""
    assert conforms(body(model=model), contract)
    broken = check_request(body(model=model, timestamps="1,5"), contract)
    assert broken is not None and broken.code == "invalid_timestamps_span"


def test_an_over_long_window_is_told_the_length_limit(contract: Contract) -> None:
    window = "0," + "9" * 70
    violation = check_request(body(timestamps=window), contract)
    assert violation is not None and violation.code == "invalid_timestamps"
    assert f"at most {contract.timestamps_max_length} characters" in violation.message
    assert f"got {len(window)} characters" in violation.message
    short = check_request(body(timestamps="1-3"), contract)
    assert short is not None and "characters" not in short.message


@pytest.mark.parametrize(
    ("raw", "where", "marker"),
    [
        # The seed's own request example, verbatim: a commented-out url line.
        (
            b'{\r\n  // "url": "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4",\r\n'
            b'    "timestamps": "1,3",\r\n    "from_task":"video_e50c76ca-21d4-40e9-8485-e4ead2d37133"\r\n}',
            "line 2 column 3",
            "//",
        ),
        (b'{"url": "https://e.com/v.mp4", /* the clip */ "timestamps": "1,3"}', "line 1 column 32", "/*"),
        (b'{"timestamps": "1,3"} // trailing', "line 1 column 23", "//"),
    ],
)
def test_a_json_comment_is_named_as_such(raw: bytes, where: str, marker: str) -> None:
    with pytest.raises(RuleError) as caught:
        decode_body(raw)
    message = caught.value.violation.message
    assert caught.value.violation.status == 400 and caught.value.violation.code == "invalid_json"
    assert "JSON has no comments" in message and where in message and f"remove the {marker} comment" in message


def test_a_slash_inside_a_string_is_not_taken_for_a_comment() -> None:
    with pytest.raises(RuleError) as caught:
        decode_body(b'{"url": "https://e.com//v.mp4" "timestamps": "1,3"}')
    assert "comment" not in caught.value.violation.message


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"{", b"{'a': 1}", b"\xff\xfe{}", b"[1,]", b"NaN", b'{"a": Infinity}', b"[" * 5000 + b"]" * 5000],
)
def test_unreadable_bodies_raise_400(raw: bytes) -> None:
    with pytest.raises(RuleError) as caught:
        decode_body(raw)
    assert caught.value.violation.status == 400
    assert caught.value.violation.code == "invalid_json"


def test_decode_body_reads_utf8_json() -> None:
    assert decode_body('{"url": "https://例え.jp/v.mp4"}'.encode()) == {"url": "https://例え.jp/v.mp4"}


@given(
    st.decimals(min_value=0, max_value=10_000, places=3),
    st.decimals(min_value=-5, max_value=5, places=3),
)
def test_span_rule_matches_its_definition(contract: Contract, start: Decimal, span: Decimal) -> None:
    end = start + span
    window = f"{start},{end}"
    ok = end >= 0 and 1 <= span <= 3
    assert conforms(body(timestamps=window), contract) is ok


SEED_CHARACTER = {
    "id": "ch_6918d62178e48191a0b1ae49be428a13",
    "username": "hfspncadz.mooflapand",
    "permalink": "https://sora.chatgpt.com/profile/hfspncadz.mooflapand",
    "profile_picture_url": "https://videos.openai.com/az/files/x%2Fraw?se=2025&sig=abc%3D",
}


def test_seed_character_conforms_and_extra_fields_are_fine(contract: Contract) -> None:
    assert check_character(SEED_CHARACTER, contract) == []
    assert check_character({**SEED_CHARACTER, "display_name": "Hi", "created_at": 1}, contract) == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"id": "ch_6918D62178E48191A0B1AE49BE428A13"}, "id"),
        ({"id": 12345}, "id"),
        ({"id": "6918d62178e48191a0b1ae49be428a13"}, "id"),
        ({"username": "Hfspncadz"}, "username"),
        ({"permalink": "https://sora.chatgpt.com/profile/someone.else"}, "permalink"),
        ({"profile_picture_url": "http://videos.openai.com/x.png"}, "profile_picture_url"),
        ({"profile_picture_url": "/x.png"}, "profile_picture_url"),
        ({"error": {"message": "x"}}, "error"),
    ],
)
def test_bad_characters_are_named(contract: Contract, change: dict[str, Any], needle: str) -> None:
    problems = check_character({**SEED_CHARACTER, **change}, contract)
    assert problems and any(needle in p for p in problems)


def test_missing_character_field_is_named(contract: Contract) -> None:
    for field in SEED_CHARACTER:
        partial = {k: v for k, v in SEED_CHARACTER.items() if k != field}
        assert any(field in p for p in check_character(partial, contract))


def test_error_envelope_check() -> None:
    good = {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}}
    assert check_error_body(good) == []
    assert check_error_body({"detail": "x"})
    assert check_error_body({"error": {"message": "m"}}) == [
        "error.type is missing",
        "error.param is missing",
        "error.code is missing",
    ]
