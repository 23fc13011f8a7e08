"""The ``sora-mock`` command line."""

from __future__ import annotations

import click

from .config import MockConfig
from .defects import DEFECTS
from .server import DEFAULT_THREADS
from .server import serve as serve_forever

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sora-characters-kit", prog_name="sora-mock")
def main() -> None:
    """Mock server and tools for POST /sora/v1/characters."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port to listen on.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible usernames, ids and signatures.")
@click.option(
    "--token",
    envvar="SORA_MOCK_TOKEN",
    default=None,
    help="Accept only this bearer token (env SORA_MOCK_TOKEN). Without it any non-empty token is accepted.",
)
@click.option(
    "--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256), help="Worker threads."
)
@click.option("--access-log", is_flag=True, help="Print one line per request: method, path, status, ms.")
@click.option(
    "--defect",
    "defects",
    multiple=True,
    type=click.Choice(sorted(DEFECTS)),
    help="Break the contract on purpose in this named way (repeatable); see `sora-mock defects`.",
)
def serve(
    host: str, port: int, seed: int | None, token: str | None, threads: int, access_log: bool, defects: tuple[str, ...]
) -> None:
    """Serve the mock on HOST:PORT until Ctrl-C or SIGTERM."""
    if token is not None and not token.strip():
        raise click.BadParameter("must not be empty", param_hint="--token")
    config = MockConfig(token=token, seed=seed, access_log=access_log, defects=defects)
    click.echo(f"sora-mock: serving POST http://{host}:{port}/sora/v1/characters", err=True)
    serve_forever(config, host=host, port=port, threads=threads)
