"""The shell examples of the README and docs/*.md run against a fresh mock, so they cannot rot.

Every ``console`` block is a session: ``$ command`` lines (``\\`` continues a line), each followed by
the answer it prints. ``curl …`` expands to the shorthand the pages define, ``http://127.0.0.1:8000``
becomes the test server's address (a real ``sora-mock serve``, as ``make mock`` runs it), and ``…``
in an answer matches any text. A character answer is compared by its fields (ids and signatures
change from run to run); with ``curl -i`` the status line must be the one sent, each header shown
must be sent as shown, and the body must be the one shown (none when none is shown).

Every page's code fences are balanced, and each opening fence names its language, so a fence left
open (which turns the rest of the page into code) is caught where it happens.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from ..helpers import ROOT, MockProcess

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHORTHAND = "curl -s -w ' %{http_code}\\n' http://127.0.0.1:8000/sora/v1/characters -H 'Authorization: Bearer sk-test'"
_BLOCK = re.compile(r"```console\n(.*?)```", re.S)


@dataclass(frozen=True)
class Step:
    command: str
    expected: str


def sessions(page: Path) -> list[list[Step]]:
    """The console blocks of ``page``, each a list of commands with their expected answers."""
    found = []
    for block in _BLOCK.findall(page.read_text(encoding="utf-8")):
        steps: list[Step] = []
        lines = block.splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if not line.startswith("$ "):
                continue
            command = line[2:]
            while command.endswith("\\") and index < len(lines):
                command = command[:-1] + " " + lines[index].strip()
                index += 1
            answer = []
            while index < len(lines) and lines[index].strip() and not lines[index].startswith("$ "):
                answer.append(lines[index])
                index += 1
            steps.append(Step(command, "\n".join(answer)))
        if steps:
            found.append(steps)
    return found


def _all_sessions() -> Iterator[tuple[str, list[Step]]]:
    for page in PAGES:
        for number, steps in enumerate(sessions(page), 1):
            yield f"{page.relative_to(ROOT)}#{number}", steps


SESSIONS = dict(_all_sessions())


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in expected.split("…")), re.S)


_HEADER = re.compile(r"[A-Za-z0-9-]+: ")


def check_head_and_body(expected: str, actual: str) -> None:
    """``curl -i`` output against what a page shows: the status line, the headers shown, the body."""
    head, _, body = actual.partition("\n\n")
    status, *sent = head.splitlines()
    shown = expected.splitlines()
    assert shown and shown[0] == status, f"status line: the page shows {shown[0]!r}, the server sent {status!r}"
    index = 1
    while index < len(shown) and _HEADER.match(shown[index]):
        line = shown[index]
        assert any(_pattern(line).fullmatch(header) for header in sent), f"header {line!r} is not sent: {sent}"
        index += 1
    shown_body = "\n".join(shown[index:])
    assert _pattern(shown_body).fullmatch(body.strip()), f"body: the page shows {shown_body!r}, got {body!r}"


def check_answer(expected: str, actual: str, command: str) -> None:
    actual = actual.replace("\r\n", "\n").strip()
    if " -i " in f" {command} ":
        check_head_and_body(expected, actual)
        return
    if '"id":"ch_' in expected:
        body, _, status = actual.rpartition(" ") if "%{http_code}" in command else (actual, "", "")
        character = json.loads(body)
        assert set(character) == {"id", "username", "permalink", "profile_picture_url"}, actual
        assert character["id"].startswith("ch_") and status in ("", "200"), actual
        return
    assert _pattern(expected).fullmatch(actual), f"expected:\n{expected}\ngot:\n{actual}"


class _Served:
    """The ``sora-mock serve`` process the examples run against, as ``make mock SEED=1`` serves it."""

    def __init__(self, process: MockProcess) -> None:
        self.process = process
        self.url = process.url("").rstrip("/")

    def reset(self) -> None:
        requests.post(self.url + "/__mock/reset", timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def server() -> Iterator[_Served]:
    with MockProcess(["--seed", "1"]) as running:
        yield _Served(running)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def fence_problems(text: str) -> list[str]:
    """Where the code fences of a Markdown text go wrong: an opening without a language, a fence left open."""
    problems = []
    opened: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = _FENCE.match(line)
        if match is None:
            continue
        marker, info = match.groups()
        if opened is None:
            if not info.strip():
                problems.append(f"line {number}: a fence opens without a language (```text, ```console, …)")
            opened = (number, marker)
        elif marker[0] == opened[1][0] and len(marker) >= len(opened[1]) and not info.strip():
            opened = None
    if opened is not None:
        problems.append(f"line {opened[0]}: the fence opened here is never closed")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_code_fences_are_balanced(page: Path) -> None:
    assert fence_problems(page.read_text(encoding="utf-8")) == []


def test_the_fence_check_catches_an_unclosed_fence_and_a_bare_opening() -> None:
    assert fence_problems("```console\n$ x\n```\n\ntext\n") == []
    assert fence_problems("````md\n```\n````\n") == []
    unclosed = "```console\n$ x\n```\n$ y\n```\n| a | b |\n"
    assert fence_problems(unclosed) == [
        "line 5: a fence opens without a language (```text, ```console, …)",
        "line 5: the fence opened here is never closed",
    ]


def test_the_head_check_compares_what_is_shown() -> None:
    sent = "HTTP/1.1 204 No Content\nallow: OPTIONS, POST\nserver: granian"
    check_head_and_body("HTTP/1.1 204 No Content\nallow: OPTIONS, POST", sent)
    for wrong in (
        "HTTP/1.1 204 NO CONTENT\nallow: OPTIONS, POST",  # another status line
        "HTTP/1.1 204 No Content\nAllow: OPTIONS, POST",  # not as sent
        "HTTP/1.1 204 No Content\nallow: POST",
        "HTTP/1.1 204 No Content\nallow: OPTIONS, POST\n{}",  # a body that is not sent
    ):
        with pytest.raises(AssertionError):
            check_head_and_body(wrong, sent)


def test_the_pages_have_examples() -> None:
    commands = [step.command for steps in SESSIONS.values() for step in steps]
    assert len(commands) >= 15
    assert any("Authorization: Basic" in command and "Bearer" not in command for command in commands)


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_console_example(server: _Served, name: str) -> None:
    server.reset()
    for step in SESSIONS[name]:
        command = step.command.replace("curl … ", SHORTHAND + " ").replace("http://127.0.0.1:8000", server.url)
        assert "…" not in command, command
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (command, done.stderr)
        check_answer(step.expected, done.stdout, command)


def test_the_readme_is_short_and_has_what_a_new_user_needs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    for needed in ("## Prerequisites", "## Troubleshooting", "make install && make mock", "make test", "[contract]"):
        assert needed in text, needed
    for page in ("mock", "suites", "client-kit", "operating", "serving", "state", "performance", "guard"):
        assert f"docs/{page}.md" in text, page
    assert "SCHEMATHESIS_HOOKS=contract_tests.hooks schemathesis run openapi/characters.yaml --url" in text
    for page in ("mock", "suites", "client-kit", "operating"):
        assert (ROOT / "docs" / f"{page}.md").is_file(), page


_DATED = re.compile(r"\b(se|skt|ske)=[^&]*")


def _seeded_parts(answer: dict[str, str]) -> tuple[str, str, str]:
    """What a seed decides in a character: the username, the id after its creation time, the avatar URL's
    random parts (its dates follow the clock)."""
    return answer["username"], answer["id"][11:], _DATED.sub(r"\1=", answer["profile_picture_url"])


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["default", "two-workers"])
def test_make_mock_seed_1_reproduces_the_mock_page_samples(workers: list[str]) -> None:
    """docs/mock.md's characters are what ``make mock SEED=1`` answers, whatever the number of workers."""
    (first, *_) = sessions(ROOT / "docs" / "mock.md")
    samples = [step for step in first if '"id":"ch_' in step.expected]
    assert len(samples) >= 2
    with MockProcess(["--seed", "1", *workers]) as mock:
        for step in samples:
            command = step.command.replace("http://127.0.0.1:8000", mock.url(""))
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True)
            got = _seeded_parts(json.loads(done.stdout))
            if step.expected.rstrip().endswith("}") and "…" not in step.expected:
                assert got == _seeded_parts(json.loads(step.expected)), step.expected
            else:  # an answer shortened with … : its username and id are still exact
                shown = re.search(r'"id":"ch_\w{8}(\w{24})","username":"([a-z.]+)"', step.expected)
                assert shown is not None, step.expected
                tail, username = shown.groups()
                assert got[:2] == (username, tail), step.expected
        assert mock.stop() == 0
