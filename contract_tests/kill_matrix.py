"""Kill matrix: run the live smoke suite and the in-process suite against the mock with each defect.

Every defect must be caught (some check fails) and the healthy mock must pass both suites.
``python -m contract_tests.kill_matrix`` (``make kill-matrix``) serves ``sora-mock serve --token T
--defect X`` on a free loopback port for each defect and always stops it again.

``run_matrix(serve=...)`` runs the same matrix against servers of the caller's making (the kit's
tests put each defective mock behind a limiter or a flaky gateway): the live run and the URL suite
(lenient profile, as ``make contract`` runs it) must then still catch every defect.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mock_server.errors import ServingError
from mock_server.mock.defects import DEFECTS

from .live import LiveReport, LiveSettings
from .live import run as run_live
from .suite import SuiteResult, Target, run_suite

__all__ = ["MatrixRow", "Serve", "format_matrix", "main", "run_matrix", "serve_mock"]

Serve = Callable[[str, tuple[str, ...]], AbstractContextManager[str]]
"""``serve(token, defects)``: a context manager serving the mock with ``defects``, yielding its base URL."""

_TOKEN = "kill-matrix-token"
_READY_TIMEOUT = 30.0


class MockStartError(ServingError, RuntimeError):
    """The mock process did not start listening in time."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_mock(token: str, defects: Sequence[str] = (), timeout: float = _READY_TIMEOUT) -> Iterator[str]:
    """Run ``sora-mock serve`` on a free 127.0.0.1 port; yield its base URL; always stop it."""
    port = _free_port()
    command = [sys.executable, "-c", "from mock_server.serving.cli import main; main()", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--threads", "2"]
    for name in defects:
        command += ["--defect", name]
    env = {**os.environ, "SORA_MOCK_TOKEN": token}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise MockStartError(f"sora-mock exited with {process.returncode}: {error[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise MockStartError(f"sora-mock did not listen on port {port} within {timeout:g} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


@dataclass
class MatrixRow:
    """The outcome for one mock variant (``healthy`` or one defect)."""

    defect: str
    live: LiveReport
    suite: SuiteResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def live_caught(self) -> list[str]:
        return self.live.failed_checks()

    @property
    def suite_caught(self) -> list[str]:
        return self.suite.caught_by() if self.suite is not None else []

    @property
    def passed(self) -> bool:
        """Healthy: both suites green. Defect: caught by the live suite and (when run) the in-process suite."""
        if self.defect == "healthy":
            return self.live.ok and (self.suite is None or self.suite.green)
        return bool(self.live_caught) and (self.suite is None or bool(self.suite_caught))


def _live_settings(base_url: str, token: str) -> LiveSettings:
    return LiveSettings(api_key=token, base_url=base_url, timeout=10.0, max_wait=30.0)


def run_one(
    defect: str | None,
    *,
    sockets: bool,
    max_examples: int,
    token: str = _TOKEN,
    client_token: str | None = None,
    serve: Serve | None = None,
) -> MatrixRow:
    """Live suite (socket or WSGI) plus, when ``max_examples >= 0``, the in-process suite, for one variant.

    With ``serve``: both the live run and the URL suite (lenient) against the server it serves.
    """
    defects = (defect,) if defect else ()
    sent_token = client_token or token
    quiet: Callable[[str], None] = lambda line: None  # noqa: E731
    if serve is not None:
        with serve(token, defects) as base_url:
            live = run_live(_live_settings(base_url, sent_token), echo=quiet)
            suite = None
            if max_examples >= 0:
                target = Target(token=sent_token, base_url=base_url, strict=False)
                suite = run_suite(target, max_examples=max_examples)
        return MatrixRow(defect or "healthy", live, suite)
    if sockets:
        with serve_mock(token, defects) as base_url:
            live = run_live(_live_settings(base_url, sent_token), echo=quiet)
    else:
        target = Target.in_process(defects, token=token)
        transport = httpx.WSGITransport(app=target.app)
        live = run_live(_live_settings("http://mock.invalid", sent_token), transport=transport, echo=quiet)
    suite = None
    if max_examples >= 0:
        suite = run_suite(Target.in_process(defects, token=token), max_examples=max_examples)
    return MatrixRow(defect or "healthy", live, suite)


def run_matrix(
    defects: Sequence[str] | None = None,
    *,
    sockets: bool = True,
    max_examples: int = 10,
    echo: Callable[[str], None] | None = None,
    serve: Serve | None = None,
    token: str = _TOKEN,
) -> list[MatrixRow]:
    """The healthy mock then each defect (all of :data:`DEFECTS` by default); ``serve``: see :func:`run_one`."""
    rows = []
    for defect in [None, *(sorted(DEFECTS) if defects is None else defects)]:
        row = run_one(defect, sockets=sockets, max_examples=max_examples, serve=serve, token=token)
        rows.append(row)
        if echo is not None:
            echo(f"{row.defect:<20} {'ok' if row.passed else 'NOT OK'}")
    return rows


def _cell(names: list[str], limit: int = 3) -> str:
    if not names:
        return "-"
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit})" if len(names) > limit else "")


def format_matrix(rows: Sequence[MatrixRow]) -> str:
    """Table: defect, caught by (live), caught by (in-process), creates spent, requests, verdict."""
    header = ("defect", "caught by (live)", "caught by (in-process suite)", "creates spent", "requests", "verdict")
    body = []
    for row in rows:
        verdict = ("passes" if row.passed else "FAILS") if row.defect == "healthy" else "caught"
        if row.defect != "healthy" and not row.passed:
            verdict = "NOT CAUGHT"
        body.append(
            (
                row.defect,
                _cell(row.live_caught),
                _cell(row.suite_caught) if row.suite is not None else "(not run)",
                str(row.live.created),
                str(row.live.requests_sent),
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the kill matrix; exit 0 when every defect is caught and the healthy mock passes."""
    parser = argparse.ArgumentParser(prog="python -m contract_tests.kill_matrix", description=__doc__)
    parser.add_argument("--wsgi", action="store_true", help="run the live suite in-process instead of over sockets")
    parser.add_argument(
        "--max-examples", type=int, default=10, help="generated cases per mode for the in-process suite (-1: skip it)"
    )
    parser.add_argument("--defect", action="append", choices=sorted(DEFECTS), help="only these defects (repeatable)")
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = run_matrix(args.defect, sockets=not args.wsgi, max_examples=args.max_examples, echo=print)
    table = format_matrix(rows)
    print("\n" + table)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n", encoding="utf-8")
    ok = all(row.passed for row in rows)
    print("\nkill matrix: " + ("every defect caught, healthy mock passes" if ok else "INCOMPLETE"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
