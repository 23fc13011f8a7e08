"""The ``sora-mock guard`` command: serve :func:`mock_server.relay.app.create_guard_app` like the mock."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask

from ..serving.server import DEFAULT_READ_TIMEOUT, PortBusyError, seal_state, serve_app
from ..store import StoreUnavailable, is_memory_url, open_store, prepare_state_url
from .app import create_guard_app
from .config import DEFAULT_MAX_ANSWER_BYTES, DEFAULT_UPSTREAM, GuardConfig, public_url, upstream_problem
from .guard_ui import GUARD_UI_PATH
from .ledger import guard_report, summary_line, write_report

__all__ = ["guard", "guard_app", "serve_guard"]

DEFAULT_THREADS = 8
"""Threads per worker for the guard's local work (checks, the store); a forwarded request waits for the
upstream on the worker's event loop, holding none of them."""


def guard_app(config: Mapping[str, Any]) -> Flask:
    """Factory run in each serving worker: the guard app for the config the master passed down."""
    return create_guard_app(GuardConfig(**config))


def serve_guard(config: GuardConfig, *, host: str, port: int, workers: int = 1, threads: int = DEFAULT_THREADS) -> None:
    """Serve the guard until SIGINT/SIGTERM; then print the one-line summary and write the report.

    Each worker process builds its own app (and HTTP client) from ``config``, on the same serving
    stack as ``sora-mock serve``, with ``threads`` threads each because a forwarded create waits on
    the upstream. ``config.state_url`` must name a store every process can open (not ``memory``):
    the budget and findings are shared by the workers, and read back here once they have stopped.
    """
    if is_memory_url(config.state_url):
        raise ValueError("the guard's state must be a store every worker can open (sqlite:///PATH or redis://…)")
    serve_app(
        "mock_server.relay.guard_cli:guard_app",
        dataclasses.asdict(config),
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        read_timeout=DEFAULT_READ_TIMEOUT,
        max_body_bytes=config.max_body_bytes,
        name="sora-mock guard",
        page=GUARD_UI_PATH,
        state_identity=seal_state(config.state_url, config.state_prefix),  # workers never budget on a lost state
    )
    _report_on_stop(config)  # only once serving ended (a busy port raised before anything was served)


def _report_on_stop(config: GuardConfig) -> None:
    store = open_store(config.state_url, prefix=config.state_prefix, max_items=config.max_findings)
    try:
        report = guard_report(store, config)
    except StoreUnavailable as exc:
        click.echo(f"sora-mock guard: the report cannot be read: {exc}", err=True)
    else:
        if config.report_path:
            write_report(report, config.report_path)
        click.echo(summary_line(report), err=True)
    finally:
        store.close()


def _check_state(config: GuardConfig) -> None:
    """Refuse to start on a ``--state`` store that cannot be opened or reached."""
    try:
        store = open_store(config.state_url, prefix=config.state_prefix)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    try:
        store.ping()
    except StoreUnavailable as exc:
        raise click.ClickException(f"the --state store cannot be used: {exc}") from None
    finally:
        store.close()


def _check_upstream(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = upstream_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


@click.command()
@click.option(
    "--upstream",
    default=DEFAULT_UPSTREAM,
    show_default=True,
    callback=_check_upstream,
    help="Base URL of the server to guard (the paid relay by default); conforming creates go there.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option(
    "--port",
    default=8001,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on (0: any free).",
)
@click.option(
    "--max-creates",
    default=10,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Creates allowed: each forwarded create is reserved, and only a clear non-2xx answer gives it back; "
    "then conforming creates get a local 429 budget_exhausted until POST /__guard/reset.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds the whole exchange with the upstream may take (connect, send, the answer's last byte); "
    "then 504, and the create stays counted: it may have been billed.",
)
@click.option(
    "--max-answer-bytes",
    default=DEFAULT_MAX_ANSWER_BYTES,
    show_default=True,
    type=click.IntRange(1024, 1 << 30),
    help="Bytes of an upstream answer the guard reads, as received and decoded; a longer one is a 502 "
    "(the create stays counted).",
)
@click.option(
    "--pass-through",
    is_flag=True,
    help="Forward requests to other paths unchecked (default: a local 404). A path the upstream could read "
    "as the endpoint (/sora/v1/./characters, /SORA/v1/characters/) is always the endpoint.",
)
@click.option(
    "--record",
    "record_dir",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=None,
    help="Save each forwarded answer in this folder as a fixture (corpus format; token and sig= values scrubbed).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the report (GET /__guard/report) to this JSON file when the guard stops.",
)
@click.option(
    "--state",
    "state_url",
    default=None,
    help="Store for the budget and findings, shared by every worker: sqlite:///PATH or redis://HOST:PORT/DB "
    "(default: a temporary SQLite file removed on exit).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; they all spend one budget through the --state store.",
)
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker for local work (a forwarded request waits for the upstream on the event loop).",
)
def guard(
    upstream: str,
    host: str,
    port: int,
    max_creates: int,
    timeout: float,
    max_answer_bytes: int,
    pass_through: bool,
    record_dir: Path | None,
    report_path: Path | None,
    state_url: str | None,
    workers: int,
    threads: int,
) -> None:
    """Guard the paid relay: check each create locally, forward only conforming ones, cap the spend.

    Point a client's base URL at http://HOST:PORT instead of the relay and change nothing else.
    POST /sora/v1/characters that breaks a rule (or has no bearer token) gets the mock's
    400/401/413/422 locally, another method a 405; a conforming one is forwarded with the
    client's Authorization, and its answer comes back unchanged apart from the X-Sora-Guard
    header (blocked, forwarded, budget, upstream-error, passed, local). Answers that break the
    contract become findings.

    GET /__guard/report shows forwarded, blocked, passed (--pass-through), creates (billed 200s),
    uncertain (timeouts, drops, unreadable answers: they keep their reservation), budget_left,
    over_budget and the findings. POST /__guard/reset with Content-Type: application/json starts
    a new budget and keeps those counts. /__guard/ takes no token: keep the guard on 127.0.0.1.
    On Ctrl-C or SIGTERM the guard prints a one-line summary (and writes --report). The token is
    never stored, logged or reported.
    """
    if state_url is not None and is_memory_url(state_url):
        raise click.BadParameter(
            "the guard keeps its budget where every worker and the stopping server can read it: "
            "use sqlite:///PATH or redis://HOST:PORT/DB, or leave --state out",
            param_hint="--state",
        )
    # Even one worker is a process of its own, so the default is a temporary SQLite file.
    with prepare_state_url(state_url, max(workers, 2)) as url:
        config = GuardConfig(
            upstream=upstream,
            max_creates=max_creates,
            timeout=timeout,
            max_answer_bytes=max_answer_bytes,
            pass_through=pass_through,
            record_dir=str(record_dir) if record_dir else None,
            report_path=str(report_path) if report_path else None,
            state_url=url,
        )
        _check_state(config)
        click.echo(
            f"sora-mock guard: guarding {public_url(upstream)} with a budget of {max_creates} create(s) on http://{host}:{port}",
            err=True,
        )
        try:
            serve_guard(config, host=host, port=port, workers=workers, threads=threads)
        except PortBusyError as exc:
            click.echo(f"sora-mock guard: error: {exc.strerror}", err=True)
            sys.exit(1)
