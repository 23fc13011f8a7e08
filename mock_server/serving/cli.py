"""The ``sora-mock`` command line."""

from __future__ import annotations

import click

from ..config import DEFAULT_JOURNAL_BYTES, MockConfig
from ..defects import DEFECTS
from ..journal import BODY_CAP
from ..relay.guard_cli import guard
from ..relay.recorder import record
from ..store import open_store
from .server import DEFAULT_THREADS, DEFAULT_WORKERS
from .server import serve as serve_forever

__all__ = ["main"]


def _check_state(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        open_store(value.strip()).close()  # parses the URL; connects to nothing
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value.strip()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sora-characters-kit", prog_name="sora-mock")
def main() -> None:
    """Mock server and tools for POST /sora/v1/characters."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on (0: any free).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed for reproducible usernames, ids, signatures and random faults: the Nth character of a run is "
    "the same with any number of workers or replicas sharing one state.",
)
@click.option(
    "--token",
    envvar="SORA_MOCK_TOKEN",
    default=None,
    help="Accept only this bearer token (env SORA_MOCK_TOKEN). Without it any non-empty token is accepted.",
)
@click.option(
    "--workers",
    default=DEFAULT_WORKERS,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (one per core is a good start); the admin API shows one state across all of them.",
)
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker process, so slow answers (latency, delay faults) do not block it.",
)
@click.option(
    "--latency-ms",
    default=0,
    show_default=True,
    type=click.IntRange(0, 60_000),
    help="Delay every endpoint answer by this many milliseconds.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Probability (0..1) that an endpoint request fails with --fault-status; reproducible with --seed.",
)
@click.option(
    "--fault-status",
    default=500,
    show_default=True,
    type=click.IntRange(400, 599),
    help="Status of the random faults of --fault-rate (429 adds Retry-After).",
)
@click.option(
    "--journal-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Endpoint requests (and created characters) kept for /__mock/; the oldest are dropped.",
)
@click.option(
    "--journal-bytes",
    default=DEFAULT_JOURNAL_BYTES,
    show_default=True,
    type=click.IntRange(1024, 1 << 40),
    help="Bytes of entries the journal (and the characters list) keeps; the oldest are dropped. "
    f"A body over {BODY_CAP} bytes is journaled truncated, flagged.",
)
@click.option(
    "--state",
    "state",
    default=None,
    envvar="SORA_MOCK_STATE",
    callback=_check_state,
    help="Where the journal, characters, faults and serials live: memory (one worker), sqlite:///PATH "
    "(default with several workers: a temporary file), redis://HOST:PORT/DB or unix://PATH (share one "
    "state between several servers). Env SORA_MOCK_STATE.",
)
@click.option(
    "--state-prefix",
    default="sora-mock:",
    show_default=True,
    help="Key prefix in the state store, so several mocks can share one Redis or SQLite file.",
)
@click.option(
    "--no-admin",
    is_flag=True,
    help="Do not serve the /__mock/ admin API (it takes no token; use this when binding beyond 127.0.0.1).",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Print one line per request to stderr: method, path, status, ms (never the token).",
)
@click.option(
    "--defect",
    "defects",
    multiple=True,
    type=click.Choice(sorted(DEFECTS)),
    help="Break the contract on purpose in this named way (repeatable); see `sora-mock defects`.",
)
def serve(
    host: str,
    port: int,
    seed: int | None,
    token: str | None,
    workers: int,
    threads: int,
    latency_ms: int,
    fault_rate: float,
    fault_status: int,
    journal_size: int,
    journal_bytes: int,
    state: str | None,
    state_prefix: str,
    no_admin: bool,
    access_log: bool,
    defects: tuple[str, ...],
) -> None:
    """Serve the mock on HOST:PORT until Ctrl-C or SIGTERM.

    The admin API lives under /__mock/ (health, requests, characters, reset, faults) unless
    --no-admin is given.
    """
    if token is not None and not token.strip():
        raise click.BadParameter("must not be empty", param_hint="--token")
    config = MockConfig(
        token=token,
        seed=seed,
        journal_size=journal_size,
        journal_bytes=journal_bytes,
        state_prefix=state_prefix,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        fault_status=fault_status,
        admin=not no_admin,
        access_log=access_log,
        defects=defects,
    )
    if state is not None and state in ("memory", "memory://") and workers > 1:
        raise click.BadParameter(
            f"memory keeps the state inside one process; with {workers} workers use sqlite:///PATH, "
            "redis://HOST:PORT/DB or leave --state out",
            param_hint="--state",
        )
    click.echo(f"sora-mock: serving POST http://{host}:{port}/sora/v1/characters", err=True)
    serve_forever(config, host=host, port=port, threads=threads, workers=workers, state=state)


main.add_command(record)
main.add_command(guard)


@main.command("defects")
def list_defects() -> None:
    """List the named defects that `serve --defect NAME` can switch on."""
    width = max(len(name) for name in DEFECTS)
    for name, description in sorted(DEFECTS.items()):
        click.echo(f"{name:<{width}}  {description}")
