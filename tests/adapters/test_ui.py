"""The pages ``GET /__mock/ui`` and ``GET /__guard/ui`` without a browser: what the server sends.

The pages are static files served with a strict Content-Security-Policy; what they show comes
from the admin API, which keeps its token. The journal keeps what a refusal said (the envelope's
``message`` and ``param``) so the page can show the rule a request broke. The browser side is in
``tests/served/test_ui_browser.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_server.mock.ui import CSP, UI_PATH
from mock_server.relay.guard import GuardConfig, create_guard_app, guard_state_of
from mock_server.relay.guard_ui import GUARD_UI_PATH

from ..helpers import AUTH, ROOT, TOKEN, VIDEO, MockProcess

ASSETS = ROOT / "mock_server" / "mock" / "ui"
PATH = "/sora/v1/characters"


class _Page(HTMLParser):
    """The scripts, style sheets and icons a page loads, and what it holds inline."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.handlers += [name for name, _ in attrs if name.startswith("on") or name == "style"]
        if tag == "script":
            if found.get("src"):
                self.loads.append(str(found["src"]))
            else:
                self.inline_scripts += 1
        if tag == "link" and found.get("href"):
            self.loads.append(str(found["href"]))
        if tag == "style":
            self.inline_scripts += 1


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("admin_token", [None, "ui-admin-secret-7f"])
def test_the_page_and_its_files_are_served_with_a_strict_policy(
    make_app: Callable[..., Flask], admin_token: str | None
) -> None:
    client = make_app(admin_token=admin_token).test_client()
    page = client.get(UI_PATH)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    parsed = _parse(page.get_data(as_text=True))
    assert parsed.inline_scripts == 0 and parsed.handlers == []
    assert {"/__mock/ui/common.js", "/__mock/ui/mock.js", "/__mock/ui/ui.css"} <= set(parsed.loads)
    for path in parsed.loads:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["Content-Security-Policy"] == CSP
        expected = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[path.rsplit(".", 1)[1]]
        assert answer.mimetype == expected, path
    assert client.head(UI_PATH).status_code == 200


def test_with_an_admin_token_the_page_loads_but_its_data_and_writes_need_the_token(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(admin_token="ui-admin-secret-7f").test_client()
    assert client.get(UI_PATH).status_code == 200
    assert b"ui-admin-secret" not in client.get(UI_PATH).data
    assert client.get("/__mock/requests").status_code == 401
    assert client.post(UI_PATH, json={}).status_code == 401  # only GET/HEAD of the files skip the token
    assert client.get(f"{UI_PATH}/other.js").status_code == 401
    assert client.post("/__mock/reset", json={}).status_code == 401
    opened = {"Authorization": "Bearer ui-admin-secret-7f"}
    assert client.get(f"{UI_PATH}/other.js", headers=opened).status_code == 404


def test_without_the_admin_api_there_is_no_page(make_app: Callable[..., Flask]) -> None:
    assert make_app(admin=False).test_client().get(UI_PATH).status_code == 404


def test_the_page_scripts_write_text_never_markup_and_load_nothing_from_outside() -> None:
    scripts = {path.name: path.read_text() for path in ASSETS.glob("*.js")}
    assert {"common.js", "mock.js", "guard.js"} <= set(scripts)
    for name, source in scripts.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{name} uses {sink}"
        assert 'setAttribute("style"' not in source and "localStorage" not in source, name
    for path in ASSETS.iterdir():
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name  # nothing from another origin
        assert "@import" not in text and "url(http" not in text, path.name


def test_the_token_is_sent_as_a_header_and_never_put_in_a_url() -> None:
    common = (ASSETS / "common.js").read_text()
    assert 'headers.Authorization = "Bearer " + token' in common
    assert "sessionStorage" in common
    for path in ASSETS.glob("*.js"):
        assert not re.search(r"[?&](token|access_token)=", path.read_text()), path.name


def test_the_journal_keeps_what_a_refusal_said_and_never_a_secret(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    client.post(PATH, json={"url": VIDEO, "timestamps": "1,5"}, headers=AUTH)
    client.post(PATH, json={"url": VIDEO, "timestamps": TOKEN}, headers=AUTH)  # the message would echo it
    client.post(PATH, json={"url": VIDEO, "timestamps": "1,3"})
    client.post("/__mock/faults", json={"status": 503})
    client.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    client.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    span, echoed, unauthorized, fault, created = client.get("/__mock/requests").get_json()
    assert span["error"]["param"] == "timestamps" and '"1,5" spans 4 seconds' in span["error"]["message"]
    assert echoed["error"]["param"] == "timestamps" and "[redacted]" in echoed["error"]["message"]
    assert TOKEN not in str(echoed)
    assert unauthorized["status"] == 401 and unauthorized["error"] == {
        "message": unauthorized["error"]["message"],
        "param": None,
    }
    assert fault["status"] == 503 and "Injected failure" in fault["error"]["message"]
    assert created["status"] == 200 and "error" not in created


def test_a_stubbed_error_is_journaled_as_stubbed_not_as_a_refusal(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    envelope = {"error": {"message": "Task not found.", "type": "invalid_request_error", "param": "from_task"}}
    envelope["error"]["code"] = "task_not_found"
    assert client.post("/__mock/stubs", json={"response": {"status": 404, "json": envelope}}).status_code == 201
    client.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    (entry,) = client.get("/__mock/requests").get_json()
    assert entry["status"] == 404 and entry["stub"] and "error" not in entry


@pytest.mark.slow
def test_serve_names_the_page_when_it_starts() -> None:
    with MockProcess(["--workers", "1"]) as server:
        line = next(line for line in server.stderr if "listening on" in line)
        assert f"in a browser: http://127.0.0.1:{server.port}/__mock/ui" in line
    with MockProcess(["--workers", "1", "--no-admin"], env={}) as server:
        assert all("/__mock/ui" not in line for line in server.stderr)


@pytest.mark.slow
def test_the_wheel_carries_the_pages(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    built = subprocess.run(
        [*command, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {f"mock_server/mock/ui/{path.name}" for path in ASSETS.iterdir() if path.is_file()}
    assert len(shipped) >= 6 and shipped <= names, sorted(shipped - names)


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockProcess]:
    with MockProcess(["--workers", "1", "--token", TOKEN]) as server:
        yield server


@pytest.fixture
def guard(upstream: MockProcess) -> Iterator[FlaskClient]:
    httpx.post(upstream.url("/__mock/reset"), json={}, timeout=10)
    app = create_guard_app(GuardConfig(upstream=upstream.url(""), max_creates=2))
    yield app.test_client()
    guard_state_of(app).close()


def _latest(client: FlaskClient, after: int = 0) -> dict[str, Any]:
    answer = client.get(f"/__guard/requests?after={after}")
    assert answer.status_code == 200 and answer.headers["X-Sora-Guard"] == "local"
    data: dict[str, Any] = answer.get_json()
    return data


@pytest.mark.slow
def test_the_guard_lists_each_request_with_its_verdict_and_never_the_token(guard: FlaskClient) -> None:
    page = guard.get(GUARD_UI_PATH)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == CSP
    assert {"/__guard/ui/common.js", "/__guard/ui/guard.js"} <= set(_parse(page.get_data(as_text=True)).loads)
    assert guard.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH).status_code == 200
    assert guard.post(PATH, json={"url": VIDEO, "timestamps": TOKEN}, headers=AUTH).status_code == 422
    assert guard.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}).status_code == 401
    guard.get("/__guard/report")  # the guard's own calls are not listed
    guard.post("/__guard/reset", json={})
    guard.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    guard.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    guard.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH)
    guard.get("/elsewhere")
    listed = _latest(guard)
    assert listed["in_flight"] == 0
    verdicts = [(entry["status"], entry["verdict"]) for entry in listed["requests"]]
    assert verdicts == [
        (200, "forwarded"),
        (422, "blocked"),
        (401, "blocked"),
        (200, "forwarded"),
        (200, "forwarded"),
        (429, "budget"),
        (404, "blocked"),
    ]
    refused = listed["requests"][1]
    assert refused["error"]["param"] == "timestamps" and "[redacted]" in refused["error"]["message"]
    assert refused["error"]["code"] == "invalid_timestamps"
    assert TOKEN not in json.dumps(listed)
    assert listed["requests"][5]["error"]["code"] == "budget_exhausted"
    seqs = [entry["seq"] for entry in listed["requests"]]
    assert [entry["seq"] for entry in _latest(guard, seqs[4])["requests"]] == seqs[5:]
    bad = guard.get("/__guard/requests?after=-1")
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "after"


@pytest.mark.slow
def test_a_create_waiting_on_the_upstream_is_in_flight(guard: FlaskClient, upstream: MockProcess) -> None:
    assert httpx.post(upstream.url("/__mock/faults"), json={"delay_ms": 1500}, timeout=10).status_code == 201
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            guard.post(PATH, json={"url": VIDEO, "timestamps": "1,3"}, headers=AUTH).status_code
        )
    )
    sender.start()
    try:
        deadline = time.monotonic() + 5
        while _latest(guard)["in_flight"] != 1:
            assert time.monotonic() < deadline, "the waiting create was never in flight"
            time.sleep(0.05)
    finally:
        sender.join(timeout=20)
    assert answers == [200] and _latest(guard)["in_flight"] == 0


def test_the_docs_show_both_pages() -> None:
    for page, image in (("operating.md", "mock-ui.png"), ("guard.md", "guard-ui.png")):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        assert f"](img/{image})" in text, page
        assert (ROOT / "docs" / "img" / image).read_bytes().startswith(b"\x89PNG"), image
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/operating.md#the-page-__mockui" in readme and "docs/guard.md#the-page-__guardui" in readme
