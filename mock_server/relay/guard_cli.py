"""The ``sora-mock guard`` command: serve :func:`mock_server.relay.guard.create_guard_app` with gunicorn."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask

from ..serving.server import serve_factory
from ..store import StoreUnavailable, open_store, prepare_state_url
from .guard import (
    DEFAULT_UPSTREAM,
    GuardConfig,
    GuardState,
    create_guard_app,
    guard_report,
    public_url,
    summary_line,
    write_report,
)

__all__ = ["guard", "serve_guard"]

DEFAULT_THREADS = 8
"""Threads per worker: each forwarded create waits on the upstream."""


def serve_guard(config: GuardConfig, *, host: str, port: int, workers: int = 1, threads: int = DEFAULT_THREADS) -> None:
    """Serve the guard until SIGINT/SIGTERM; then print the one-line summary and write the report.

    Each worker builds its own app (and HTTP client) from ``config``. With the in-process
    ``memory`` store there must be one worker, which reports as it stops; with a shared store
    the master reports once every worker has stopped.
    """
    if config.state_url == "memory" and workers > 1:
        raise ValueError("the memory state cannot be shared by several workers")
    built: list[Flask] = []

    def factory() -> Flask:
        built.append(create_guard_app(config))
        return built[-1]

    def finish(report: dict[str, object]) -> None:
        if config.report_path:
            write_report(report, config.report_path)
        click.echo(summary_line(report), err=True)

    def worker_exit() -> None:
        for app in built:
            state: GuardState = app.extensions["sora_guard"]
            if config.state_url == "memory":
                finish(state.report())
            state.close()

    def on_exit() -> None:
        if config.state_url != "memory":
            store = open_store(config.state_url, prefix=config.state_prefix, max_items=config.max_findings)
            try:
                finish(guard_report(store, config))
            finally:
                store.close()

    serve_factory(
        factory,
        host=host,
        port=port,
        threads=threads,
        workers=workers,
        proc_name="sora-mock-guard",
        worker_exit=worker_exit,
        on_exit=on_exit,
    )


def _check_upstream(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"must be an absolute http(s) URL, got {parts.scheme or 'no scheme'}://…")
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
    help="Billable creates (upstream 200s) allowed; then conforming creates get a local 429 budget_exhausted "
    "until POST /__guard/reset.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds to wait for the upstream; then 504 (the create still counts: it may have been billed).",
)
@click.option(
    "--pass-through",
    is_flag=True,
    help="Forward requests to other paths unchecked (default: a local 404).",
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
    help="Store for the budget and findings: memory (one worker), or a URL every worker opens "
    "(sqlite:///PATH, redis://HOST:PORT/DB).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; more than one needs a shared --state so they spend one budget.",
)
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker (each forwarded create waits on the upstream).",
)
def guard(
    upstream: str,
    host: str,
    port: int,
    max_creates: int,
    timeout: float,
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
    400/401/413/422 locally; a conforming one is forwarded with the client's Authorization, and
    its answer comes back unchanged apart from the X-Sora-Guard header (blocked, forwarded,
    budget, upstream-error). Answers that break the contract become findings.

    GET /__guard/report shows forwarded, blocked, creates (billable 200s), budget_left and the
    findings; POST /__guard/reset starts a new budget. /__guard/ takes no token: keep the guard
    on 127.0.0.1. On Ctrl-C or SIGTERM the guard prints a one-line summary (and writes --report).
    The token is never stored, logged or reported.
    """
    with prepare_state_url(state_url, workers) as url:
        if url == "memory" and workers > 1:
            raise click.UsageError(
                "--workers above 1 needs a shared --state (sqlite:///PATH or redis://HOST:PORT/DB): "
                "with the in-process store each worker would spend its own budget"
            )
        config = GuardConfig(
            upstream=upstream,
            max_creates=max_creates,
            timeout=timeout,
            pass_through=pass_through,
            record_dir=str(record_dir) if record_dir else None,
            report_path=str(report_path) if report_path else None,
            state_url=url,
        )
        try:
            store = open_store(url, prefix=config.state_prefix)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--state") from None
        try:
            store.ping()
        except StoreUnavailable as exc:
            raise click.ClickException(f"the --state store cannot be used: {exc}") from None
        finally:
            store.close()
        click.echo(
            f"sora-mock guard: guarding {public_url(upstream)} with a budget of {max_creates} create(s) on http://{host}:{port}",
            err=True,
        )
        serve_guard(config, host=host, port=port, workers=workers, threads=threads)
