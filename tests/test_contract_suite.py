"""The schemathesis contract suite in-process: green on the healthy mock, biting on every defect."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from contract_tests.pytest_suite import make_tests
from contract_tests.suite import (
    BOUNDARY_CASES,
    SuiteResult,
    Target,
    build_schema,
    iter_fuzz_cases,
    run_suite,
    send,
)
from mock_server import MockConfig, create_app, load_contract
from mock_server.contract.rules import conforms
from mock_server.defects import DEFECTS

# The full in-process suite (boundary cases + property-based fuzzing, fixed seed, no database).
test_boundary, test_fuzz = make_tests(Target.in_process(), max_examples=40)

# Which check must fire for each defect (at least this one; others may fire too).
EXPECTED: dict[str, str] = {
    "span_too_wide": "sora_rejects_broken_rules",
    "span_too_short": "sora_rejects_broken_rules",
    "reversed_window": "sora_rejects_broken_rules",
    "missing_timestamps": "sora_rejects_broken_rules",
    "both_sources": "sora_rejects_broken_rules",
    "no_source": "sora_rejects_broken_rules",
    "skip_auth": "sora_auth_enforced",
    "any_token": "sora_auth_enforced",
    "drop_picture": "sora_character_shape",
    "foreign_permalink": "sora_character_shape",
    "numeric_id": "sora_character_shape",
    "crash_on_non_json": "not_a_server_error",
    "error_as_200": "sora_rejects_broken_rules",
    "plain_text_errors": "sora_errors_are_json",
}


def test_every_defect_has_an_expected_check() -> None:
    assert set(EXPECTED) == set(DEFECTS)


def test_healthy_mock_passes_the_collecting_runner() -> None:
    result = run_suite(Target.in_process(), max_examples=15)
    assert result.ok, result.failures
    assert result.requests >= len(BOUNDARY_CASES) + 15


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_is_caught_by_its_check(defect: str) -> None:
    result = run_suite(Target.in_process((defect,)), max_examples=3)
    assert EXPECTED[defect] in result.caught_by(), result.caught_by()


@pytest.mark.parametrize("defect", ["span_too_wide", "both_sources", "no_source", "drop_picture", "skip_auth"])
def test_fuzzing_alone_catches_rule_and_answer_defects(defect: str) -> None:
    """Without the boundary cases, the generation hooks still reach the prose rules."""
    from contract_tests.suite import run_fuzz

    target = Target.in_process((defect,))
    result = SuiteResult(target=target.label)
    run_fuzz(build_schema(target), target, result, max_examples=120)
    assert EXPECTED[defect] in result.caught_by() or "ignored_auth" in result.caught_by()


def test_generation_reaches_both_and_no_source_and_span_rules() -> None:
    contract = load_contract()
    bodies = [case.body for case in iter_fuzz_cases(build_schema(Target.in_process()), 40)]
    dicts = [body for body in bodies if isinstance(body, dict)]
    assert any("url" in b and "from_task" in b and isinstance(b.get("timestamps"), str) for b in dicts)
    assert any("url" not in b and "from_task" not in b and "timestamps" in b for b in dicts)
    assert sum(1 for b in dicts if conforms(b, contract)) >= 5
    assert sum(1 for b in dicts if not conforms(b, contract)) >= 5


def test_wrong_token_fails_loudly() -> None:
    app = create_app(MockConfig(token="server-token"))
    target = Target(token="client-token", app=app, strict=False)
    result = run_suite(target, max_examples=0)
    assert "sora_token_accepted" in result.caught_by()
    assert all("client-token" not in failure.message for failure in result.failures)


def _read_json(environ: dict[str, Any]) -> tuple[bytes, Any]:
    """The request body of a fake relay, raw and decoded (``None`` when it is not JSON)."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(size) if size else b""
    try:
        return raw, json.loads(raw)
    except ValueError:
        return raw, None


def _picky_relay(app: Any) -> Callable[..., Iterable[bytes]]:
    """A conforming but different relay: rejects decimals, spaces and task ids it does not know with a
    plain ``{"message": ...}`` 400/404, and adds ``display_name``/``created_at`` to its characters."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw, body = _read_json(environ)
        window = body.get("timestamps") if isinstance(body, dict) else None
        auth_ok = environ.get("HTTP_AUTHORIZATION") == "Bearer relay-token"
        if auth_ok and isinstance(window, str) and ("." in window or " " in window):
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"message": "decimals are not supported"}']
        if auth_ok and isinstance(body, dict) and "from_task" in body and conforms(body, load_contract()):
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"message": "task not found"}']
        import io

        environ["wsgi.input"] = io.BytesIO(raw)
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        payload = b"".join(app(environ, keep))
        if captured["status"].startswith("200"):
            character = json.loads(payload)
            character.update(display_name="Someone", created_at=1764000000)
            payload = json.dumps(character).encode()
            captured["headers"] = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
            captured["headers"].append(("Content-Length", str(len(payload))))
        start_response(captured["status"], captured["headers"])
        return [payload]

    return wsgi


def test_lenient_profile_raises_no_false_alarm_on_a_different_conforming_relay() -> None:
    relay = _picky_relay(create_app(MockConfig(token="relay-token")))
    result = run_suite(Target(token="relay-token", app=relay, strict=False), max_examples=30)
    assert result.ok, result.failures


def test_a_server_that_refuses_everything_fails_even_the_lenient_profile() -> None:
    def refuse(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("422 Unprocessable Entity", [("Content-Type", "application/json")])
        return [b'{"error": {"message": "no", "type": "invalid_request_error", "param": null, "code": null}}']

    result = run_suite(Target(token="t", app=refuse, strict=False), max_examples=0)
    assert result.caught_by() == ["sora_canonical_create"]


@pytest.mark.slow
def test_url_target_through_pytest_entry_point_and_wrong_token(tmp_path: Any) -> None:
    """What ``make contract TARGET=…`` runs: green with the right token, loud and secret-free with a wrong one."""
    import os
    import subprocess
    import sys

    from contract_tests.kill_matrix import serve_mock

    secret = "sk-contract-secret-0451"
    with serve_mock(secret) as base_url:
        outputs = {}
        for key in (secret, secret + "-expired"):
            env = {
                **os.environ,
                "SORA_CONTRACT_TARGET": base_url,
                "SORA_API_KEY": key,
                "SORA_CONTRACT_STRICT": "",
                "SORA_CONTRACT_MAX_EXAMPLES": "8",
            }
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "contract_tests/test_target.py"],
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            outputs[key] = (done.returncode, done.stdout + done.stderr)
    assert outputs[secret][0] == 0, outputs[secret][1][-2000:]
    code, text = outputs[secret + "-expired"]
    assert code == 1 and "sora_token_accepted" in text
    assert secret not in text


def _liberal_relay(app: Any) -> Callable[..., Iterable[bytes]]:
    """A relay that reads the open parts of the contract liberally: null/empty optional fields are
    absent, values are trimmed, timestamps numbers are parsed with ``float``; then the mock judges."""
    import io

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw, body = _read_json(environ)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if not (k in ("url", "from_task", "model") and v in (None, ""))}
            body = {k: v.strip() if isinstance(v, str) and k != "timestamps" else v for k, v in body.items()}
            window = body.get("timestamps")
            if isinstance(window, str):
                try:
                    numbers = [float(part) for part in window.split(",")]
                    if all(n == n and abs(n) != float("inf") for n in numbers):
                        body["timestamps"] = ",".join(f"{n:g}" for n in numbers)
                except ValueError:
                    pass
            raw = json.dumps(body).encode()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
        return app(environ, start_response)  # type: ignore[no-any-return]

    return wsgi


def test_lenient_profile_accepts_liberal_reading_of_open_fields_but_strict_does_not() -> None:
    relay = _liberal_relay(create_app(MockConfig(token="relay-token")))
    lenient = run_suite(Target(token="relay-token", app=relay, strict=False), max_examples=25)
    assert lenient.ok, lenient.failures
    strict = run_suite(Target(token="relay-token", app=relay, strict=True), max_examples=0)  # boundary cases only
    assert "sora_rejects_broken_rules" in strict.caught_by()


def _open_relay(app: Any) -> Callable[..., Iterable[bytes]]:
    """A healthy relay that differs where the seed is silent: it ignores ``model`` whatever its value
    (the seed has no such field), and answers methods it does not know (``TRACE``…) with a 501 page."""
    import io

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            start_response("501 Not Implemented", [("Content-Type", "text/html")])
            return [b"<html><body>501 Not Implemented</body></html>"]
        raw, body = _read_json(environ)
        if isinstance(body, dict) and "model" in body:
            raw = json.dumps({k: v for k, v in body.items() if k != "model"}).encode()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
        return app(environ, start_response)  # type: ignore[no-any-return]

    return wsgi


def test_lenient_profile_leaves_undefined_fields_and_methods_to_the_relay() -> None:
    relay = _open_relay(create_app(MockConfig(token="relay-token")))
    lenient = run_suite(Target(token="relay-token", app=relay, strict=False), max_examples=25)
    assert lenient.ok, lenient.failures
    strict = run_suite(Target(token="relay-token", app=relay, strict=True), max_examples=0)
    assert "sora_rejects_broken_rules" in strict.caught_by()  # the mock's own reading: model must be known


def test_lenient_pytest_entry_point_accepts_a_501_to_trace_but_not_to_the_endpoint_post() -> None:
    """The pytest path (``make contract``) runs schemathesis' coverage phase, which sends TRACE & co."""
    from contract_tests.suite import checks_for, sora_no_server_error

    relay = _open_relay(create_app(MockConfig(token="relay-token")))
    target = Target(token="relay-token", app=relay, strict=False)
    assert sora_no_server_error in checks_for(target)
    schema = build_schema(target)
    operation = schema["/sora/v1/characters"]["POST"]
    trace = operation.Case(method="TRACE", headers=target.auth_header())
    result = SuiteResult(target=target.label)
    send(trace, target, checks_for(target), result, "trace")
    assert result.ok, result.failures

    def crash(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("502 Bad Gateway", [("Content-Type", "application/json")])
        return [b'{"message": "upstream"}']

    crashing = Target(token="relay-token", app=crash, strict=False)
    result = run_suite(crashing, max_examples=0)
    assert "sora_no_server_error" in result.caught_by()


def test_without_a_configured_token_wrong_token_checks_are_skipped_and_said_so() -> None:
    any_token = Target(token="whatever", app=create_app(MockConfig()), strict=False, token_known=False)
    result = run_suite(any_token, max_examples=10)
    assert result.ok, result.failures
    assert result.skipped and "SORA_API_KEY" in result.skipped[0] and "wrong_token" in result.skipped[0]
    # a missing token or another scheme must still be refused
    skipping = Target(token="whatever", app=create_app(MockConfig(defects=("skip_auth",))), strict=False)
    skipping = Target(token="whatever", app=skipping.app, strict=False, token_known=False)
    assert "sora_auth_enforced" in run_suite(skipping, max_examples=0).caught_by()
    # with the token known, the same any-token server fails
    known = Target(token="whatever", app=create_app(MockConfig()), strict=False, token_known=True)
    assert "sora_auth_enforced" in run_suite(known, max_examples=0).caught_by()


def test_from_env_knows_the_token_only_when_sora_api_key_is_set() -> None:
    url = {"SORA_CONTRACT_TARGET": "http://127.0.0.1:9"}
    assert not Target.from_env(url).token_known
    assert Target.from_env(url | {"SORA_API_KEY": "k"}).token_known
    assert Target.from_env({}).token_known  # in-process: the suite configures the mock itself


@pytest.mark.slow
def test_make_contract_passes_out_of_the_box_against_the_default_mock() -> None:
    """``make mock`` (no token: any token accepted) then ``make contract`` without SORA_API_KEY: green,
    with the skipped wrong-token checks named in pytest's summary."""
    import os
    import subprocess
    import sys

    from contract_tests.kill_matrix import serve_mock

    with serve_mock("") as base_url:  # an empty SORA_MOCK_TOKEN is no token, as with `make mock`
        env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
        env |= {"SORA_CONTRACT_TARGET": base_url, "SORA_CONTRACT_MAX_EXAMPLES": "10"}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "contract_tests/test_target.py"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "SKIPPED" in output and "SORA_API_KEY is not set" in output and "wrong-token checks skipped" in output
