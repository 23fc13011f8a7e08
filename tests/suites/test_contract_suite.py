"""The schemathesis contract suite in-process: green on the healthy mock, biting on every defect."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from contract_tests.preflight import (
    EXIT_FAILED,
    EXIT_SETUP,
    EXIT_UNREACHABLE,
    base_url_hint,
    check_target,
    contract_seed,
    describe,
    reachable,
)
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
from mock_server.mock.defects import DEFECTS
from mock_server.testing import SoraServer

from ..helpers import free_port

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
    assert EXPECTED[defect] in result.caught_by() or "sora_ignored_auth" in result.caught_by()


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
    assert f"contract: testing POST {base_url}/sora/v1/characters, lenient profile" in outputs[secret][1]
    code, text = outputs[secret + "-expired"]
    assert code == EXIT_SETUP and text.count("the server refused SORA_API_KEY (HTTP 401)") == 1
    assert "FAILED" not in text and "no tests ran" in text
    assert secret not in text


def _liberal_relay(app: Any) -> Callable[..., Iterable[bytes]]:
    """A relay that reads the open parts of the contract liberally: null, empty or empty-container
    optional source fields are absent, values are trimmed, timestamps numbers are parsed with
    ``float``; then the mock judges."""
    import io

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw, body = _read_json(environ)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if not (k in ("url", "from_task") and v in (None, "", {}, []))}
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
    """A healthy relay that differs where the seed is silent: it answers methods it does not know
    (``TRACE``…) with a 501 page."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            start_response("501 Not Implemented", [("Content-Type", "text/html")])
            return [b"<html><body>501 Not Implemented</body></html>"]
        return app(environ, start_response)  # type: ignore[no-any-return]

    return wsgi


def _model_refusing_relay(app: Any) -> Callable[..., Iterable[bytes]]:
    """A relay like the one the seed describes by some accounts: a 404 to any request naming a ``model``."""
    import io

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw, body = _read_json(environ)
        if isinstance(body, dict) and "model" in body:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"message": "model not found"}']
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
        return app(environ, start_response)  # type: ignore[no-any-return]

    return wsgi


def test_lenient_profile_leaves_undefined_methods_to_the_relay() -> None:
    relay = _open_relay(create_app(MockConfig(token="relay-token")))
    lenient = run_suite(Target(token="relay-token", app=relay, strict=False), max_examples=25)
    assert lenient.ok, lenient.failures


def test_model_is_an_unknown_field_in_both_profiles() -> None:
    """The mock ignores ``model`` whatever its value, so the strict profile wants 200 for it; the lenient one
    lets a relay refuse it with a 4xx, as it may any conforming request it cannot serve."""
    model_cases = [b for b in BOUNDARY_CASES if isinstance(b.body, dict) and "model" in b.body]
    assert {b.body["model"] for b in model_cases if isinstance(b.body, dict)} >= {  # type: ignore[index]
        "sora-2-character",
        "sora-2-pro-character",
        None,
        2,
    }
    contract = load_contract()
    assert all(conforms(b.body, contract) for b in model_cases)
    assert run_suite(Target.in_process(), max_examples=0).ok
    refusing = _model_refusing_relay(create_app(MockConfig(token="relay-token")))
    lenient = run_suite(Target(token="relay-token", app=refusing, strict=False), max_examples=15)
    assert lenient.ok, lenient.failures
    strict = run_suite(Target(token="relay-token", app=refusing, strict=True), max_examples=0)
    assert "sora_accepts_conforming" in strict.caught_by()


@pytest.mark.parametrize("empty", [None, "", {}, []])
def test_an_empty_optional_source_is_open_in_the_lenient_profile(empty: object) -> None:
    """``{"url": ..., "from_task": {}}`` read as url-only (200) or refused (4xx): both fine, lenient only."""
    from contract_tests.suite import relaxed

    contract = load_contract()
    body = {"url": "https://example.com/v.mp4", "timestamps": "1,3", "from_task": empty}
    assert not conforms(body, contract)
    assert conforms(relaxed(body), contract)
    assert not conforms(relaxed({**body, "timestamps": "1,5"}), contract)  # the other rules still hold
    assert not conforms(relaxed({"url": empty, "timestamps": "1,3"}), contract)  # and no source is still none


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
        start_response("500 Internal Server Error", [("Content-Type", "application/json")])
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
    assert f"contract: testing POST {base_url}/sora/v1/characters" in output
    assert f"contract: tested {base_url}" in output


# --- the preflight: one clear stop instead of a cascade ---


def test_preflight_passes_a_right_setup_and_stops_each_wrong_one_with_its_fix() -> None:
    with SoraServer() as any_token, SoraServer({"token": "pinned-token"}) as pinned:
        assert check_target(Target(token="whatever", base_url=any_token.url, strict=False, token_known=False)) is None
        assert check_target(Target(token="pinned-token", base_url=pinned.url, strict=False)) is None
        assert len(pinned.requests) == 2  # the create, then a random token (refused)

        exported = check_target(Target(token="sk-exported", base_url=any_token.url, strict=False))
        assert exported is not None and exported.exit_code == EXIT_FAILED
        assert "accepted a random bearer token" in exported.message
        assert "SORA_MOCK_TOKEN" in exported.message and "unset SORA_API_KEY" in exported.message
        assert "sk-exported" not in exported.message

        placeholder = check_target(Target(token="x", base_url=pinned.url, strict=False, token_known=False))
        assert placeholder is not None and placeholder.exit_code == EXIT_SETUP
        assert "Export that token as SORA_API_KEY" in placeholder.message

        wrong = check_target(Target(token="sk-not-it", base_url=pinned.url, strict=False))
        assert wrong is not None and wrong.exit_code == EXIT_SETUP
        assert "refused SORA_API_KEY (HTTP 401)" in wrong.message and "sk-not-it" not in wrong.message
        assert "pinned-token" not in placeholder.message + wrong.message

        prefixed = check_target(Target(token="x", base_url=any_token.url + "/api", strict=False, token_known=False))
        assert prefixed is not None and prefixed.exit_code == EXIT_SETUP and "answered 404" in prefixed.message
    assert check_target(Target.in_process()) is None


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8000/sora/v1", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/sora/v1/", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/sora/v1/characters", "http://127.0.0.1:8000"),
        ("https://relay.example/api/sora/v1/characters", "https://relay.example/api"),
    ],
)
def test_a_target_with_the_endpoint_path_gets_the_base_url_hint(url: str, base: str) -> None:
    hint = base_url_hint(url)
    assert hint is not None and hint.endswith(f"use TARGET={base}")
    problem = check_target(Target(token="x", base_url=url, strict=False, token_known=False))
    assert problem is not None and problem.exit_code == EXIT_SETUP and problem.message == hint


def test_no_hint_for_a_base_url() -> None:
    assert base_url_hint("http://127.0.0.1:8000") is None
    assert base_url_hint("https://relay.example/api") is None


def test_an_unreachable_target_is_said_once() -> None:
    port = free_port()
    target = Target(token="x", base_url=f"http://127.0.0.1:{port}", strict=False, token_known=False)
    assert reachable(target.base_url or "") is not None
    problem = check_target(target)
    assert problem is not None and problem.exit_code == EXIT_UNREACHABLE
    assert problem.message.startswith("UNREACHABLE: cannot connect to 127.0.0.1:") and str(port) in problem.message
    with SoraServer() as server:
        assert reachable(server.url) is None


def test_a_target_gone_mid_run_stops_the_run_once() -> None:
    """A connection failure to a target that no longer listens ends the whole run, not one test per case."""
    target = Target(token="x", base_url=f"http://127.0.0.1:{free_port()}", strict=False, token_known=False)
    boundary, _ = make_tests(target, max_examples=1)
    with pytest.raises(pytest.exit.Exception, match="UNREACHABLE during the run") as stopped:
        boundary(BOUNDARY_CASES[0])
    assert stopped.value.returncode == EXIT_UNREACHABLE


def test_every_run_names_its_target() -> None:
    in_process = describe(Target.in_process(), 7, env={})
    assert "the in-process mock" in in_process and "TARGET / SORA_CONTRACT_TARGET is empty" in in_process
    assert "strict profile" in in_process and "fuzz seed 7" in in_process
    url = describe(Target(base_url="http://h:1", strict=False, token_known=False), 9, env={})
    assert "POST http://h:1/sora/v1/characters" in url and "lenient" in url and "wrong-token checks skipped" in url
    assert "token: SORA_API_KEY" in describe(Target(base_url="http://h:1"), 9, env={"SORA_API_KEY": "k"})


def test_the_fuzz_seed_comes_from_the_environment() -> None:
    from contract_tests.suite import DEFAULT_SEED

    assert contract_seed("") == DEFAULT_SEED
    assert contract_seed(" 42 ") == 42
    assert 0 <= contract_seed("random") < 2**32
    with pytest.raises(ValueError, match="FUZZ_SEED"):
        contract_seed("forty-two")


def _run_target(env: dict[str, str], *args: str) -> tuple[int, str]:
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "contract_tests/test_target.py", *args],
        env=clean | {"SORA_CONTRACT_MAX_EXAMPLES": "4"} | env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_make_contract_stops_once_on_a_wrong_setup_or_a_dead_target() -> None:
    with SoraServer() as any_token:
        code, text = _run_target({"SORA_CONTRACT_TARGET": any_token.url, "SORA_API_KEY": "sk-exported"})
        assert code == EXIT_FAILED and text.count("accepted a random bearer token") == 1, text[-2000:]
        assert "FAILED" not in text and "ConnectionError" not in text
        assert len(any_token.requests) == 2  # the preflight only
    code, text = _run_target({"SORA_CONTRACT_TARGET": f"http://127.0.0.1:{free_port()}"})
    assert code == EXIT_UNREACHABLE and text.count("UNREACHABLE") == 1, text[-2000:]
    assert "ConnectionError" not in text and len(text.splitlines()) < 40
    code, text = _run_target({"SORA_CONTRACT_TARGET": "http://127.0.0.1:8000/sora/v1"})
    assert (
        code == EXIT_SETUP and "TARGET is the server's base URL" in text and "use TARGET=http://127.0.0.1:8000" in text
    )


@pytest.mark.slow
def test_a_fuzz_seed_sends_the_same_cases_again_and_a_red_run_prints_it() -> None:
    """``FUZZ_SEED=N`` twice sends the same bodies; another seed other ones; a red run names its seed."""

    def bodies(server: SoraServer, seed: str) -> list[object]:
        server.reset()
        code, text = _run_target({"SORA_CONTRACT_TARGET": server.url, "SORA_CONTRACT_SEED": seed}, "-q")
        assert code == 0, text[-2000:]
        return [entry["body"] for entry in server.requests]

    with SoraServer() as server:
        first, again, other = bodies(server, "1234"), bodies(server, "1234"), bodies(server, "98765")
        assert first == again and first != other
    with SoraServer({"defects": ("span_too_wide",)}) as broken:
        url = broken.url
        code, text = _run_target({"SORA_CONTRACT_TARGET": url, "SORA_CONTRACT_SEED": "555"}, "-q")
    assert code == EXIT_FAILED
    assert f"make contract TARGET={url} FUZZ_SEED=555" in text
