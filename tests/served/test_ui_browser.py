"""The pages in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) via selenium.

Each test reads the page as a user does (its visible text), against ``sora-mock serve`` and
``sora-mock guard`` processes on 127.0.0.1. One browser serves the whole module.

Without Chromium or its driver these tests fail when ``CI=true`` (``.ci/run`` installs both and sets it),
as the Redis tests do;
on a developer machine without them they are skipped, and the skip says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ..helpers import VIDEO, GuardProcess, MockProcess, headless_chromium

PATH = "/sora/v1/characters"
TOKEN = "ui-endpoint-token-5c1d"
ADMIN = "ui-admin-token-92be4f"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    with MockProcess(["--workers", "1", "--token", TOKEN]) as server:
        yield server


@pytest.fixture
def page(browser: Any, mock: MockProcess) -> Any:
    """The mock's page, freshly loaded on a freshly reset mock, its log emptied."""
    httpx.post(mock.url("/__mock/reset"), json={}, timeout=10)
    browser.get(mock.url("/__mock/ui"))
    wait_for(lambda: "outcomes met" in text(browser))
    browser.get_log("browser")
    return browser


def text(driver: Any, selector: str = "body") -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def click(driver: Any, selector: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, selector).click()


def wait_for(check: Callable[[], object], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` is true; fails the test past ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"the page did not show what was expected within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def script_errors(driver: Any) -> list[dict[str, Any]]:
    """SEVERE browser log entries other than HTTP error statuses the page asked for on purpose."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and entry["source"] != "network"]


def create(server: MockProcess, body: object, **headers: str) -> httpx.Response:
    sent = {"Authorization": f"Bearer {TOKEN}", **headers}
    return httpx.post(server.url(PATH), json=body, headers=sent, timeout=10)


def test_the_page_loads_with_no_console_error(browser: Any, mock: MockProcess) -> None:
    httpx.post(mock.url("/__mock/reset"), json={}, timeout=10)
    browser.get_log("browser")
    browser.get(mock.url("/__mock/ui"))
    wait_for(lambda: "0 of 24 outcomes met" in text(browser) and "live" in text(browser, "#status"))
    time.sleep(1.2)  # a few polls
    assert [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")] == []
    shown = text(browser)
    for heading in ("Journal", "Contract coverage", "Faults", "Stubs", "Reset the mock"):
        assert heading in shown
    assert "No request yet" in shown and "Nothing queued" in shown


def test_a_create_appears_within_two_seconds_and_a_refusal_shows_its_rule(page: Any, mock: MockProcess) -> None:
    assert create(mock, {"url": VIDEO, "timestamps": "2,4"}).status_code == 200
    waited = wait_for(lambda: "character created" in text(page, "#journal"), timeout=2.0)
    print(f"created row shown {waited:.2f} s after the answer")
    assert create(mock, {"url": VIDEO, "timestamps": "1,7"}).status_code == 422
    wait_for(lambda: '"1,7" spans 6 seconds' in text(page, "#journal"), timeout=2.0)
    journal = text(page, "#journal")
    assert "refused: timestamps — timestamps must be" in journal
    assert "invalid_timestamps_span" in journal and "422" in journal
    assert journal.index('"1,7" spans 6') < journal.index("character created")  # newest first
    wait_for(lambda: "2 of 24 outcomes met" in text(page, "#coverage-section"))
    assert create(mock, {"url": VIDEO, "timestamps": "1,3"}, Authorization="Basic abc").status_code == 401
    wait_for(lambda: "invalid_authorization_scheme" in text(page, "#journal"))
    assert script_errors(page) == []


def test_the_journal_keeps_at_most_300_rows_and_goes_on_updating_past_them(page: Any, mock: MockProcess) -> None:
    with httpx.Client(timeout=10) as session:
        for n in range(305):  # refusals: journaled like any create, cheap
            session.post(
                mock.url(PATH),
                json={"url": VIDEO, "timestamps": f"{n},{n + 9}"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
    wait_for(lambda: "(300 shown" in text(page, "#journal-count"), timeout=5.0)
    assert create(mock, {"url": VIDEO, "timestamps": "1,3"}).status_code == 200
    wait_for(lambda: "character created" in text(page, "#journal"), timeout=3.0)
    assert "live" in text(page, "#status") and "(300 shown" in text(page, "#journal-count")
    rows = page.find_elements("css selector", "#journal .row")
    assert len(rows) == 300
    assert script_errors(page) == []


def test_a_row_opens_to_the_request_and_answer_with_credentials_redacted(page: Any, mock: MockProcess) -> None:
    create(mock, {"from_task": "video_not-a-task", "timestamps": "1,3"}, **{"X-Trace": "trace-7781"})
    wait_for(lambda: "invalid_task_id" in text(page, "#journal"))
    click(page, "#journal details.row summary")
    opened = text(page, "#journal details.row")
    assert "trace-7781" in opened and "video_not-a-task" in opened and "[redacted]" in opened
    assert TOKEN not in opened and '"param": "from_task"' in opened


def test_queuing_a_429_from_the_page_makes_the_next_create_a_429(page: Any, mock: MockProcess) -> None:
    retry = page.find_element("css selector", "#fault-retry")
    retry.clear()
    retry.send_keys("7")
    click(page, "#fault-429")
    wait_for(lambda: "next: 429 rate_limit_exceeded, Retry-After 7 s" in text(page, "#faults"))
    answer = create(mock, {"url": VIDEO, "timestamps": "1,3"})
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    wait_for(lambda: "fault: 429 rate_limit_exceeded" in text(page, "#journal"), timeout=2.0)
    wait_for(lambda: "Nothing queued" in text(page, "#faults"))
    click(page, "#fault-drop")
    wait_for(lambda: "next: dropped connection" in text(page, "#faults"))
    with pytest.raises(httpx.TransportError):
        create(mock, {"url": VIDEO, "timestamps": "1,3"})
    wait_for(lambda: "fault: connection dropped" in text(page, "#journal"), timeout=2.0)
    assert script_errors(page) == []


def _edit_stub(driver: Any, stub: str) -> None:
    editor = driver.find_element("css selector", "#stub-editor")
    driver.execute_script("arguments[0].value = arguments[1];", editor, stub)
    click(driver, "#stub-add")


def test_stubs_are_added_listed_and_deleted_and_an_off_contract_one_shows_its_refusal(
    page: Any, mock: MockProcess
) -> None:
    _edit_stub(page, '{"response": {"status": 200, "json": {"id": "ch_1"}}}')
    wait_for(lambda: "refused: response.json — Stub refused by the contract" in text(page, "#stub-message"))
    assert "stub_off_contract" in text(page, "#stub-message")
    assert "No stub" in text(page, "#stubs")
    assert httpx.get(mock.url("/__mock/stubs"), timeout=10).json() == []
    click(page, "#stub-add")  # the example stub the editor started with is lost: put a valid one
    _edit_stub(
        page,
        '{"response": {"status": 404, "json": {"error": {"message": "Task not found.", '
        '"type": "invalid_request_error", "param": "from_task", "code": "task_not_found"}}}, "times": 2}',
    )
    wait_for(lambda: "404 task_not_found" in text(page, "#stubs"))
    assert create(mock, {"url": VIDEO, "timestamps": "1,3"}).status_code == 404
    wait_for(lambda: "stubbed answer" in text(page, "#journal") and "1 hit(s), 1 left" in text(page, "#stubs"))
    page.find_element("css selector", "#stubs button").click()
    wait_for(lambda: "No stub" in text(page, "#stubs"))
    assert httpx.get(mock.url("/__mock/stubs"), timeout=10).json() == []
    assert create(mock, {"url": VIDEO, "timestamps": "1,3"}).status_code == 200


def test_hostile_text_is_shown_as_text_and_runs_nothing(page: Any, mock: MockProcess) -> None:
    script = "<script>window.__pwned = 'script'</script>"
    image = "<img src=x onerror=window.__pwned='img'>"
    create(mock, {"url": image, "timestamps": script}, **{"X-Note": image})
    wait_for(lambda: "invalid_timestamps" in text(page, "#journal"))
    click(page, "#journal details.row summary")
    shown = text(page, "#journal")
    assert script in shown and image in shown  # the text, literally
    assert page.execute_script("return window.__pwned === undefined && document.images.length === 0")
    assert script_errors(page) == []


def test_reset_asks_first(page: Any, mock: MockProcess) -> None:
    create(mock, {"url": VIDEO, "timestamps": "1,3"})
    wait_for(lambda: "character created" in text(page, "#journal"))
    click(page, "#reset")
    assert "Clear the journal, characters, faults, stubs and coverage?" in text(page, "header")
    assert len(httpx.get(mock.url("/__mock/requests"), timeout=10).json()) == 1  # nothing yet
    page.find_element("xpath", "//button[text()='Yes, reset the mock']").click()
    wait_for(lambda: "No request yet" in text(page, "#journal") and "The mock was reset." in text(page))
    assert httpx.get(mock.url("/__mock/requests"), timeout=10).json() == []
    assert "0 of 24 outcomes met" in text(page, "#coverage-section")


def test_the_page_follows_a_reset_made_elsewhere(page: Any, mock: MockProcess) -> None:
    create(mock, {"url": VIDEO, "timestamps": "1,3"})
    wait_for(lambda: "character created" in text(page, "#journal"))
    httpx.post(mock.url("/__mock/reset"), json={}, timeout=10)
    wait_for(lambda: "No request yet" in text(page, "#journal"), timeout=2.0)


def test_the_token_gate(browser: Any) -> None:
    with MockProcess(["--workers", "1"], env={"SORA_MOCK_ADMIN_TOKEN": ADMIN}) as server:
        httpx.post(server.url(PATH), json={"url": VIDEO, "timestamps": "1,8"}, headers={"Authorization": "Bearer x"})
        browser.get(server.url("/__mock/ui"))
        wait_for(lambda: "Admin token needed" in text(browser))
        locked = text(browser)
        assert "spans 7 seconds" not in locked and "Contract coverage" not in locked and "Reset the mock" not in locked
        field = browser.find_element("css selector", "#token-input")
        field.send_keys("not-the-token")
        click(browser, "#token-submit")
        wait_for(lambda: "That token was refused" in text(browser))
        assert "spans 7 seconds" not in text(browser)
        field.send_keys(ADMIN)
        click(browser, "#token-submit")
        wait_for(lambda: '"1,8" spans 7 seconds' in text(browser, "#journal"))
        assert ADMIN not in browser.current_url
        browser.refresh()  # kept for this tab
        wait_for(lambda: '"1,8" spans 7 seconds' in text(browser, "#journal"))
        click(browser, "#forget-token")
        wait_for(lambda: "Admin token needed" in text(browser) and "spans 7 seconds" not in text(browser))
        assert browser.execute_script("return sessionStorage.length") == 0
        assert ADMIN not in "".join(server.stderr)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_two_workers_show_one_journal_and_one_fault_queue(
    browser: Any, store: str, request: pytest.FixtureRequest
) -> None:
    state = ["--state", request.getfixturevalue("redis_url")] if store == "redis" else []
    with MockProcess(["--workers", "2", *state]) as server:
        server.await_processes(3)
        browser.get(server.url("/__mock/ui"))
        wait_for(lambda: "outcomes met" in text(browser))
        for second in range(4):
            body = {"url": VIDEO, "timestamps": f"{second},{second + 1}"}
            httpx.post(server.url(PATH), json=body, headers={"Authorization": "Bearer x"}, timeout=10)
        wait_for(lambda: text(browser, "#journal").count("character created") == 4, timeout=2.0)
        click(browser, "#fault-503")
        wait_for(lambda: "next: 503 server_error" in text(browser, "#faults"))
        answer = httpx.post(
            server.url(PATH), json={"url": VIDEO, "timestamps": "1,3"}, headers={"Authorization": "Bearer x"}
        )
        assert answer.status_code == 503
        wait_for(lambda: "fault: 503 server_error" in text(browser, "#journal"), timeout=2.0)
        assert store in httpx.get(server.url("/__mock/health"), timeout=10).text


def test_the_guard_page_shows_the_budget_after_a_billed_and_a_refused_create(browser: Any) -> None:
    with (
        MockProcess(["--workers", "1", "--token", TOKEN]) as upstream,
        GuardProcess(["--upstream", upstream.url(""), "--max-creates", "3", "--workers", "1"]) as guard,
    ):
        line = next(line for line in guard.stderr if "listening on" in line)
        assert f"in a browser: http://127.0.0.1:{guard.port}/__guard/ui" in line
        browser.get_log("browser")
        browser.get(guard.url("/__guard/ui"))
        wait_for(lambda: "3 of 3 create(s) left" in text(browser))
        billed = create(guard, {"url": VIDEO, "timestamps": "1,3"})
        refused = create(guard, {"url": VIDEO, "timestamps": "<img src=x onerror=window.__pwned=1>"})
        assert (billed.status_code, refused.status_code) == (200, 422)
        wait_for(lambda: "2 of 3 create(s) left" in text(browser) and "refused: timestamps" in text(browser))
        cards = text(browser, "#budget-section")
        assert "1\nbilled" in cards and "0\nuncertain" in cards and "0\nin flight" in cards and "2\nleft of 3" in cards
        assert "1\nforwarded" in cards and "1\nblocked" in cards
        latest = text(browser, "#requests")
        assert "forwarded; billed create" in latest and "<img src=x onerror=window.__pwned=1>" in latest
        assert latest.index("refused: timestamps") < latest.index("forwarded; billed create")
        assert TOKEN not in latest
        click(browser, "#reset")
        browser.find_element("xpath", "//button[text()='Yes, reset the budget']").click()
        wait_for(lambda: "A new budget started: 3 create(s) left." in text(browser))
        wait_for(lambda: "3 of 3 create(s) left" in text(browser))
        assert browser.execute_script("return window.__pwned === undefined")
        assert script_errors(browser) == []
