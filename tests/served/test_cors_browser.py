"""CORS as a browser uses it: a page in headless Chromium, served from another 127.0.0.1 port (another
origin), calls ``sora-mock serve --cors`` with a custom header and reads ``Retry-After`` from a 429.

Without selenium or Debian's chromium / chromium-driver: a failure in CI, a skip saying why elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from ..helpers import MockProcess, headless_chromium, serve_wsgi

PAGE = b"<!doctype html><title>sora client</title><p>a browser client of the mock</p>"

# fetch() as a front-end would call the endpoint; the page reports what it could read.
FETCH = """
const [url, requestId, done] = arguments;
fetch(url, {
  method: "POST",
  headers: {"Authorization": "Bearer sk-browser-test", "Content-Type": "application/json", "X-Request-Id": requestId},
  body: JSON.stringify({url: "https://example.com/clip.mp4", timestamps: "1,3"}),
}).then(
  async (answer) => done({
    status: answer.status,
    retryAfter: answer.headers.get("Retry-After"),
    code: (await answer.json()).error?.code ?? null,
  }),
  (error) => done({failed: String(error)}),
);
"""

pytestmark = pytest.mark.slow


def _page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


@pytest.fixture
def page_origin() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server holding the client's page, on another port than the mock."""
    with serve_wsgi(_page) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def test_a_page_on_another_origin_reads_retry_after_and_sends_a_custom_header(page_origin: str, browser: Any) -> None:
    with MockProcess(["--cors", page_origin]) as mock:
        queued = requests.post(mock.url("/__mock/faults"), json={"status": 429, "retry_after": 4}, timeout=10)
        assert queued.status_code == 201
        browser.get(page_origin + "/")
        endpoint = mock.url("/sora/v1/characters")
        limited = browser.execute_async_script(FETCH, endpoint, "req-1")
        created = browser.execute_async_script(FETCH, endpoint, "req-2")
        journal = requests.get(mock.url("/__mock/requests"), timeout=10).json()
    assert limited == {"status": 429, "retryAfter": "4", "code": "rate_limit_exceeded"}
    assert created == {"status": 200, "retryAfter": None, "code": None}
    sent = [{k.lower(): v for k, v in entry["headers"].items()} for entry in journal]
    assert [(entry["x-request-id"], entry["origin"]) for entry in sent] == [
        ("req-1", page_origin),
        ("req-2", page_origin),
    ]


def test_a_page_on_an_origin_not_allowed_is_refused(page_origin: str, browser: Any) -> None:
    with MockProcess(["--cors", "http://127.0.0.1:1"]) as mock:
        browser.get(page_origin + "/")
        refused = browser.execute_async_script(FETCH, mock.url("/sora/v1/characters"), "req-1")
    assert set(refused) == {"failed"} and "Failed to fetch" in refused["failed"]
