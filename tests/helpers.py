"""Test helpers used by many test files: the ``sora-mock`` process harness, a free port, headless Chromium.

:class:`MockProcess` runs ``sora-mock serve ARGS --port 0`` (or another command) in a subprocess and
knows its port once it answers; :func:`free_port` gives a port nothing listens on right now.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

__all__ = [
    "AUTH",
    "ROOT",
    "TASK",
    "TOKEN",
    "VIDEO",
    "GuardProcess",
    "MockProcess",
    "free_port",
    "headless_chromium",
    "mock_journal",
    "parse_answer",
    "raw_exchange",
    "serve_wsgi",
]

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: README, docs, Makefile, openapi/, fixtures/."""

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIDEO = "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4"
TASK = "video_e50c76ca-21d4-40e9-8485-e4ead2d37133"


def _chromium() -> tuple[str, str]:
    """Debian's browser and its driver (read when used: ``make test`` drops ``SORA_*`` before tests run)."""
    return (
        os.environ.get("SORA_CHROMIUM", "/usr/bin/chromium"),
        os.environ.get("SORA_CHROMEDRIVER", "/usr/bin/chromedriver"),
    )


_LISTENING = re.compile(r"listening on http://(\S+):(\d+)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MockProcess:
    """``sora-mock serve ARGS --port 0`` in a subprocess; knows its port once it is ready.

    Readiness is the "listening on" line plus a first answer, each awaited with a timeout.
    """

    command = "serve"
    """The ``sora-mock`` command to run."""
    ready_path = "/__mock/health"
    """A path that answers once the server is ready."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30.0, cwd: Path | None = None
    ) -> None:
        self.cwd = cwd
        self.args = [*args, "--host", "127.0.0.1", "--port", "0"]
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.pump: threading.Thread | None = None

    def __enter__(self) -> MockProcess:
        command = [sys.executable, "-c", "from mock_server.serving.cli import main; main()", self.command, *self.args]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        deadline = time.monotonic() + self.timeout
        while not self.port:
            line = self.next_line(deadline - time.monotonic())
            if match := _LISTENING.search(line):
                self.host, self.port = match.group(1), int(match.group(2))
        self._await_first_answer(deadline)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def next_line(self, timeout: float) -> str:
        """The next stderr line, failing the test if none comes within ``timeout`` seconds."""
        try:
            return self.lines.get(timeout=max(timeout, 0.01))
        except queue.Empty:
            pytest.fail(f"sora-mock printed nothing expected in time; stderr so far: {''.join(self.stderr)!r}")

    def _await_first_answer(self, deadline: float) -> None:
        while True:
            try:
                requests.get(self.url(self.ready_path), timeout=2)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def pids(self) -> list[int]:
        """The server process and all its descendants."""
        assert self.proc is not None
        found = [self.proc.pid]
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
        for pid in found:
            found.extend(parents.get(pid, []))
        return found

    def await_processes(self, count: int, timeout: float = 20.0) -> list[int]:
        """Wait (bounded) until the server's process tree has ``count`` processes (workers boot in turn)."""
        deadline = time.monotonic() + timeout
        while len(processes := self.pids()) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"only {len(processes)} of {count} server processes started")
            time.sleep(0.05)
        return processes

    def rss_kib(self) -> int:
        """Resident memory of the server's whole process tree, in KiB."""
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(match.group(1)) if match else 0
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait (bounded) for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"sora-mock did not exit within {timeout}s of signal {sig}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:  # SIGTERM first, so the server removes its temporary state
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.pump is not None:
            self.pump.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


class GuardProcess(MockProcess):
    """``sora-mock guard ARGS --port 0`` in a subprocess, ready once ``/__guard/report`` answers."""

    command = "guard"
    ready_path = "/__guard/report"


def mock_journal(server: MockProcess) -> list[dict[str, Any]]:
    """The served mock's journal (``GET /__mock/requests``), oldest first."""
    entries: list[dict[str, Any]] = requests.get(server.url("/__mock/requests"), timeout=10).json()
    return entries


def raw_exchange(address: tuple[str, int], data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` as it is on a new connection; every byte received until the server closes (or resets) it."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """An HTTP/1.1 answer's status, headers (names lower-cased) and body, from its bytes."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        """No line per request."""


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI ``app`` with werkzeug's threaded server on a free 127.0.0.1 port; yield its base URL.

    The server is always stopped, its thread joined."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _browser_missing() -> str | None:
    for path in _chromium():
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: make install (it is in the dev extra)"
    return None


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """Headless Chromium driven by chromedriver, both from Debian's packages, through selenium.

    Without them the test fails when ``CI=true`` (``.ci/run`` installs both and sets it), and is
    skipped elsewhere, saying what is missing.
    """
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(f"browser tests skipped outside CI: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()[0]
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(_chromium()[1]), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
