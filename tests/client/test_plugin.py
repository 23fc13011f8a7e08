"""The pytest plugin: ``sora_server`` over real HTTP, the ``sora`` marker, isolation between tests."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
import requests

from mock_server import SoraServer, check_character, check_error_body, load_contract
from mock_server.testing import DEFAULT_TOKEN

pytest_plugins = ["pytester"]

STRICT = ("-W", "error", "--strict-markers", "-p", "no:cacheprovider")
VIDEO = "https://example.com/clip.mp4"
TASK = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"


def post(server: SoraServer, body: Any, token: str | None = None, session: Any = requests) -> requests.Response:
    response: requests.Response = session.post(
        server.url + "/sora/v1/characters",
        json=body,
        headers={"Authorization": f"Bearer {token or server.token}"},
        timeout=10,
    )
    return response


def test_server_basics(sora_server: SoraServer) -> None:
    assert sora_server.url.startswith("http://127.0.0.1:")
    assert not sora_server.url.endswith("/")
    assert sora_server.token == DEFAULT_TOKEN
    assert sora_server.requests == [] and sora_server.characters == []
    answer = post(sora_server, {"url": VIDEO, "timestamps": "1,3"})
    assert answer.status_code == 200, answer.text
    assert check_character(answer.json(), load_contract()) == []
    assert sora_server.characters == [answer.json()]
    (entry,) = sora_server.requests
    assert entry["method"] == "POST" and entry["path"] == "/sora/v1/characters" and entry["status"] == 200
    assert entry["body"] == {"url": VIDEO, "timestamps": "1,3"}
    assert entry["headers"]["Authorization"] == "[redacted]"
    assert sora_server.token not in repr(sora_server.requests)


def test_any_bearer_token_is_accepted_by_default_like_sora_mock_serve(sora_server: SoraServer) -> None:
    """Client code sends the key from its own configuration; the default mock takes it."""
    assert sora_server.config.token is None
    assert post(sora_server, {"url": VIDEO, "timestamps": "1,3"}, token="sk-from-the-client-config").status_code == 200
    body = {"url": VIDEO, "timestamps": "1,3"}
    missing = requests.post(sora_server.url + "/sora/v1/characters", json=body, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"


@pytest.mark.sora(token="pinned-token")
def test_wrong_token_is_refused_once_a_token_is_pinned(sora_server: SoraServer) -> None:
    answer = post(sora_server, {"url": VIDEO, "timestamps": "1,3"}, token="not-" + sora_server.token)
    assert answer.status_code == 401
    assert check_error_body(answer.json()) == []
    assert sora_server.characters == []


def test_fail_next_429_then_normal_service(sora_server: SoraServer) -> None:
    sora_server.fail_next(429, retry_after=2)
    limited = post(sora_server, {"from_task": TASK, "timestamps": "1,3"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    normal = post(sora_server, {"from_task": TASK, "timestamps": "1,3"})
    assert normal.status_code == 200
    assert [entry["status"] for entry in sora_server.requests] == [429, 200]


def test_fail_next_times_and_5xx(sora_server: SoraServer) -> None:
    sora_server.fail_next(503, times=2)
    statuses = [post(sora_server, {"url": VIDEO, "timestamps": "1,3"}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_drop_next_closes_the_connection(sora_server: SoraServer) -> None:
    sora_server.drop_next()
    with pytest.raises(requests.ConnectionError):
        post(sora_server, {"url": VIDEO, "timestamps": "1,3"})
    assert post(sora_server, {"url": VIDEO, "timestamps": "1,3"}).status_code == 200


def test_reset_forgets_requests_characters_and_faults(sora_server: SoraServer) -> None:
    post(sora_server, {"url": VIDEO, "timestamps": "1,3"})
    sora_server.fail_next(500)
    sora_server.reset()
    assert sora_server.requests == [] and sora_server.characters == []
    assert post(sora_server, {"url": VIDEO, "timestamps": "1,3"}).status_code == 200


def test_eight_threads_get_distinct_ids(sora_server: SoraServer) -> None:
    per_thread = 25
    ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        with requests.Session() as session:
            start.wait(timeout=10)
            for _ in range(per_thread):
                answer = post(sora_server, {"url": VIDEO, "timestamps": "1,3"}, session=session)
                with lock:
                    if answer.status_code == 200:
                        ids.append(answer.json()["id"])
                    else:
                        failures.append(answer.text)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(ids) == 8 * per_thread
    assert len(set(ids)) == len(ids)
    assert sorted(c["id"] for c in sora_server.characters) == sorted(ids)


@pytest.mark.sora(token="marker-token", seed=3)
def test_marker_configures_this_test(sora_server: SoraServer) -> None:
    assert sora_server.token == "marker-token"
    assert sora_server.config.seed == 3
    assert post(sora_server, {"url": VIDEO, "timestamps": "1,3"}, token=DEFAULT_TOKEN).status_code == 401
    assert post(sora_server, {"url": VIDEO, "timestamps": "1,3"}).status_code == 200


def test_marker_app_is_gone_after_its_test(sora_server: SoraServer) -> None:
    assert sora_server.token == DEFAULT_TOKEN
    assert sora_server.config.seed is None


def test_seeded_marker_reproduces_characters() -> None:
    with SoraServer({"token": "t", "seed": 11}) as first, SoraServer({"token": "t", "seed": 11}) as second:
        names = [
            [post(server, {"url": VIDEO, "timestamps": "1,3"}).json()["username"] for _ in range(3)]
            for server in (first, second)
        ]
    assert names[0] == names[1]
    assert len(set(names[0])) == 3


def test_server_stops_and_releases_its_port() -> None:
    server = SoraServer().start()
    url = server.url
    assert server.is_running
    assert requests.post(url + "/sora/v1/characters", json={}, timeout=5).status_code == 401
    server.stop()
    assert not server.is_running
    with socket.socket() as probe:  # the port is free again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url


# --- as client projects see it: a separate pytest run with the plugin auto-loaded ---------------


def test_state_does_not_leak_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_order="""
        import requests

        BODY = {"url": "https://example.com/a.mp4", "timestamps": "1,3"}

        def send(server):
            return requests.post(server.url + "/sora/v1/characters", json=BODY,
                                 headers={"Authorization": "Bearer " + server.token}, timeout=10)

        def test_first_leaves_a_mess(sora_server):
            assert send(sora_server).status_code == 200
            sora_server.fail_next(500, times=5)
            assert send(sora_server).status_code == 500
            assert len(sora_server.characters) == 1

        def test_second_starts_clean(sora_server):
            assert sora_server.requests == []
            assert sora_server.characters == []
            assert send(sora_server).status_code == 200
            assert len(sora_server.requests) == 1

        def test_respx_first(sora_respx):
            sora_respx.fail_next(503, times=3)
            import httpx
            answer = httpx.post("https://api.jxincm.cn/sora/v1/characters", json=BODY,
                                headers={"Authorization": "Bearer " + sora_respx.token})
            assert answer.status_code == 503

        def test_respx_second(sora_respx):
            import httpx
            answer = httpx.post("https://api.jxincm.cn/sora/v1/characters", json=BODY,
                                headers={"Authorization": "Bearer " + sora_respx.token})
            assert answer.status_code == 200
            assert len(sora_respx.requests) == 1
        """
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=4)


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sora(seed=5)
        def test_marked(sora_server):
            assert sora_server.config.seed == 5
        """
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=1)
    help_text = pytester.runpytest("--markers", *STRICT)
    help_text.stdout.fnmatch_lines(["*@pytest.mark.sora(**settings)*"])


def test_seed_marker_gives_each_test_the_same_sequence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, requests

        SEEN = []

        def create(server):
            answer = requests.post(server.url + "/sora/v1/characters",
                                   json={"url": "https://example.com/a.mp4", "timestamps": "1,3"},
                                   headers={"Authorization": "Bearer " + server.token}, timeout=10)
            return answer.json()["username"]

        @pytest.mark.sora(seed=42)
        def test_one(sora_server):
            SEEN.append(create(sora_server))

        @pytest.mark.sora(seed=42)
        def test_two(sora_server):
            SEEN.append(create(sora_server))
            assert SEEN[0] == SEEN[1]

        @pytest.mark.sora(seed=43)
        def test_other_seed(sora_server):
            assert create(sora_server) != SEEN[0]
        """
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=3)


def test_bad_marker_settings_fail_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sora(sead=5)
        def test_typo(sora_server):
            pass
        """
    )
    result = pytester.runpytest(*STRICT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.lines
    assert "unknown @pytest.mark.sora setting 'sead'" in errors[0] and "known: " in errors[0]
    assert "seed" in errors[0].split("known: ")[1] and "token" in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sora(5)
        def test_positional(sora_respx):
            pass
        """
    )
    result = pytester.runpytest(*STRICT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *keyword arguments only*"])


def test_conftest_overrides_config_and_address(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def sora_server_config():
            return {"token": "from-conftest", "seed": 9}

        @pytest.fixture
        def sora_respx_base_urls():
            return ("http://relay.internal:8080/api",)
        """
    )
    pytester.makepyfile(
        """
        import httpx, pytest

        def test_server(sora_server):
            assert sora_server.token == "from-conftest"
            assert sora_server.config.seed == 9

        def test_respx(sora_respx):
            answer = httpx.post("http://relay.internal:8080/api/sora/v1/characters",
                                json={"url": "https://example.com/a.mp4", "timestamps": "1,3"},
                                headers={"Authorization": "Bearer from-conftest"})
            assert answer.status_code == 200
            assert sora_respx.requests[0]["path"] == "/sora/v1/characters"
            with pytest.raises(AssertionError, match="not mocked"):
                httpx.post("https://api.jxincm.cn/sora/v1/characters", json={})
        """
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=2)


def test_client_code_with_its_own_key_passes_with_both_fixtures(pytester: pytest.Pytester) -> None:
    """A client's first test, sending the key from its own settings, passes without knowing the kit's token."""
    pytester.makepyfile(
        """
        import httpx, pytest, requests

        API_KEY = "sk-live-from-settings"

        def test_server(sora_server):
            answer = requests.post(sora_server.url + "/sora/v1/characters",
                                   json={"url": "https://example.com/a.mp4", "timestamps": "1,3"},
                                   headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
            assert answer.status_code == 200

        def test_respx(sora_respx):
            answer = httpx.post("https://api.jxincm.cn/sora/v1/characters",
                                json={"url": "https://example.com/a.mp4", "timestamps": "1,3"},
                                headers={"Authorization": f"Bearer {API_KEY}"})
            assert answer.status_code == 200

        @pytest.mark.sora(token="pinned")
        def test_pinned(sora_respx):
            answer = httpx.post("https://api.jxincm.cn/sora/v1/characters",
                                json={"url": "https://example.com/a.mp4", "timestamps": "1,3"},
                                headers={"Authorization": f"Bearer {API_KEY}"})
            assert answer.status_code == 401 and sora_respx.token == "pinned"
        """
    )
    pytester.runpytest(*STRICT).assert_outcomes(passed=3)


def test_the_servers_token_variable_does_not_pin_the_fixtures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SORA_MOCK_TOKEN`` is the server's: exported for ``make mock``, the README's first test still passes."""
    monkeypatch.setenv("SORA_MOCK_TOKEN", "for-make-mock")
    pytester.makepyfile(
        """
        import requests

        def test_any_token(sora_server, sora_respx):
            assert sora_server.config.token is None and sora_respx.config.token is None
            answer = requests.post(f"{sora_server.url}/sora/v1/characters", timeout=10,
                                   json={"url": "https://example.com/a.mp4", "timestamps": "1,3"},
                                   headers={"Authorization": "Bearer sk-your-key"})
            assert answer.status_code == 200
        """
    )
    pytester.runpytest(*STRICT).assert_outcomes(passed=1)


def test_the_fixtures_own_token_settings(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``sora_token`` ini option pins the token; ``SORA_FIXTURE_TOKEN`` overrides it; a marker wins over both."""
    pytester.makeini("[pytest]\nsora_token = from-ini\n")
    pytester.makepyfile(
        """
        import os
        import pytest

        def test_default(sora_server, sora_respx):
            expected = os.environ.get("SORA_FIXTURE_TOKEN") or "from-ini"
            assert sora_server.token == expected and sora_respx.token == expected

        @pytest.mark.sora(token="from-marker")
        def test_marker(sora_server):
            assert sora_server.token == "from-marker"
        """
    )
    pytester.runpytest(*STRICT).assert_outcomes(passed=2)
    monkeypatch.setenv("SORA_FIXTURE_TOKEN", "from-env")
    pytester.runpytest(*STRICT).assert_outcomes(passed=2)


def test_env_defaults(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_FIXTURE_TOKEN", "env-token")
    monkeypatch.setenv("SORA_MOCK_SEED", "12")
    pytester.makepyfile(
        """
        def test_env(sora_server, sora_respx):
            assert sora_server.token == "env-token"
            assert sora_server.config.seed == 12
            assert sora_respx.token == "env-token"
        """
    )
    pytester.runpytest(*STRICT).assert_outcomes(passed=1)
    monkeypatch.setenv("SORA_MOCK_SEED", "twelve")
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*SORA_MOCK_SEED must be an integer*"])
