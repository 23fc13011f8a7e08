"""The ``sora-mock`` command line."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import click

from ..extras import MissingExtra, require
from ..mock.config import DEFAULT_JOURNAL_BYTES, MockConfig
from ..mock.journal import BODY_CAP
from ..store import StoreUnavailable, check_prefix, check_shareable, is_memory_url, open_store
from .server import DEFAULT_READ_TIMEOUT, DEFAULT_THREADS, DEFAULT_WORKERS, PortBusyError, is_loopback
from .server import serve as serve_forever

__all__ = ["main"]


class _LazyGroup(click.Group):
    """Imports the heavy commands (the recorder pulls in httpx) only when they are asked for."""

    _lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "guard": ("mock_server.relay.guard_cli", "guard"),
        "record": ("mock_server.relay.recorder", "record"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            import importlib

            module, name = self._lazy[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


def _check_state(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        open_store(value.strip()).close()  # parses the URL; connects to nothing
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    except MissingExtra as exc:
        raise click.ClickException(str(exc)) from None
    return value.strip()


def _check_prefix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        check_prefix(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_store(url: str | None, prefix: str) -> None:
    """Try the store ``--state`` names before serving.

    A SQLite file that cannot be used (a directory, ``/dev/null``, a missing folder, no write
    access) never recovers: one error line, exit status 1. A store server that does not answer
    may come back, and the mock recovers with it: one warning line, and the mock starts.
    """
    if url is None or is_memory_url(url):
        return
    store = open_store(url, prefix=prefix)
    try:
        store.check()
    except StoreUnavailable as exc:
        if store.backend == "sqlite":
            click.echo(f"sora-mock: error: --state: {exc}", err=True)
            sys.exit(1)
        click.echo(f"sora-mock: warning: --state: {exc}; starting anyway, requests get 503 until it answers", err=True)
    finally:
        store.close()


def _check_cors(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None or not value.strip():
        return ()
    from ..mock.cors import parse_origins

    try:
        return parse_origins(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _bound_name(host: str) -> tuple[str, ...]:
    """The name ``--host`` binds, when it is a name (the admin API may be addressed by it)."""
    from ..contract.http import trusted_host
    from ..mock.config import parse_hosts

    try:
        return () if trusted_host(host) else parse_hosts(host)
    except ValueError:
        return ()


def _check_hosts(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    from ..mock.config import parse_hosts

    try:
        return parse_hosts(value or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


class _DefectName(click.ParamType):  # type: ignore[type-arg]
    """A defect name, checked against the catalogue only when one is given (keeps start-up light)."""

    name = "defect"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..mock.defects import DEFECTS

        if value not in DEFECTS:
            self.fail(f"{value!r} is not one of {', '.join(sorted(DEFECTS))}", param, ctx)
        return str(value)


_SERVING = ("serve", "guard")
"""The commands that serve HTTP with granian (the ``serve`` extra)."""


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sora-characters-kit", prog_name="sora-mock")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Mock server and tools for POST /sora/v1/characters."""
    if ctx.invoked_subcommand in _SERVING:  # one line naming the extra, before any option is read
        try:
            require("granian", "serve", f"sora-mock {ctx.invoked_subcommand}")
        except MissingExtra as exc:
            raise click.ClickException(str(exc)) from None


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
    help="Worker processes. One keeps the state in memory (fastest on a 2-core machine); more share one "
    "state (a temporary SQLite file unless --state says otherwise), so the admin API sees all of them.",
)
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(0, 256),
    help="Threads per worker running the app; 0 runs it on the worker's event loop, where latency and "
    "delay faults are awaited without holding anything (the fastest).",
)
@click.option(
    "--read-timeout",
    default=DEFAULT_READ_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds a client gets to send its headers, then its whole body; a stalled request is cut off (408).",
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
    callback=_check_prefix,
    help="Key prefix in the state store, so several mocks can share one Redis or SQLite file (never empty).",
)
@click.option(
    "--no-admin",
    is_flag=True,
    help="Do not serve the /__mock/ admin API (use this, or --admin-token, when binding beyond 127.0.0.1).",
)
@click.option(
    "--admin-token",
    envvar="SORA_MOCK_ADMIN_TOKEN",
    default=None,
    help="Require this bearer token on every /__mock/ admin route (env SORA_MOCK_ADMIN_TOKEN).",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Print one line per request to stderr: method, path, status, ms (never the token).",
)
@click.option(
    "--cors",
    envvar="SORA_MOCK_CORS",
    default=None,
    callback=_check_cors,
    metavar="ORIGIN[,ORIGIN...]",
    help="Answer browser requests from these origins (scheme://host[:port], or * for any) with CORS headers, "
    "preflights included (env SORA_MOCK_CORS). Without it no CORS header is sent.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    envvar="SORA_MOCK_ALLOWED_HOSTS",
    default=None,
    callback=_check_hosts,
    metavar="NAME[,NAME...]",
    help="Host names (besides IP addresses, localhost and a --host name) the admin API may be addressed by, "
    "e.g. a compose service name; * for any (env SORA_MOCK_ALLOWED_HOSTS). Other names get 403 (DNS rebinding).",
)
@click.option(
    "--defect",
    "defects",
    multiple=True,
    type=_DefectName(),
    help="Break the contract on purpose in this named way (repeatable); see `sora-mock defects`.",
)
def serve(
    host: str,
    port: int,
    seed: int | None,
    token: str | None,
    workers: int,
    threads: int,
    read_timeout: float,
    latency_ms: int,
    fault_rate: float,
    fault_status: int,
    journal_size: int,
    journal_bytes: int,
    state: str | None,
    state_prefix: str,
    no_admin: bool,
    admin_token: str | None,
    access_log: bool,
    cors: tuple[str, ...],
    allowed_hosts: tuple[str, ...],
    defects: tuple[str, ...],
) -> None:
    """Serve the mock on HOST:PORT until Ctrl-C or SIGTERM.

    The admin API lives under /__mock/ (health, requests, characters, reset, faults, stubs,
    coverage) unless --no-admin is given.
    """
    _require_non_empty(token=token, admin_token=admin_token)
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
        admin_token=admin_token,
        access_log=access_log,
        cors=cors,
        allowed_hosts=(*allowed_hosts, *_bound_name(host)),
        defects=defects,
    )
    _check_state_store(state, state_prefix, workers)
    _warn_what_is_exposed(host, admin=not no_admin, admin_token=admin_token, cors=cors)
    try:
        serve_forever(
            config, host=host, port=port, threads=threads, workers=workers, read_timeout=read_timeout, state=state
        )
    except PortBusyError as exc:
        click.echo(f"sora-mock: error: {exc.strerror}", err=True)
        sys.exit(1)


def _require_non_empty(**tokens: str | None) -> None:
    """A token given on the command line or in the environment must hold something."""
    for name, value in tokens.items():
        if value is not None and not value.strip():
            raise click.BadParameter("must not be empty", param_hint="--" + name.replace("_", "-"))


def _check_state_store(state: str | None, state_prefix: str, workers: int) -> None:
    """The state store can be shared by ``workers`` processes, and it answers."""
    try:
        check_shareable(state, workers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    _check_store(state, state_prefix)


def _warn_what_is_exposed(host: str, *, admin: bool, admin_token: str | None, cors: tuple[str, ...]) -> None:
    """One line on stderr for an admin API reachable beyond loopback, and one when CORS is on."""
    if admin and not is_loopback(host):
        guarded = "protected by --admin-token" if admin_token else "open to anyone who can reach it (no --admin-token)"
        click.echo(f"sora-mock: warning: the /__mock/ admin API is served on {host}, {guarded}", err=True)
    if cors:
        click.echo(f"sora-mock: CORS on for {', '.join(cors)} (headers a preflight asks for are allowed)", err=True)


@main.command("defects")
def list_defects() -> None:
    """List the named defects that `serve --defect NAME` can switch on."""
    from ..mock.defects import DEFECTS

    width = max(len(name) for name in DEFECTS)
    for name, description in sorted(DEFECTS.items()):
        click.echo(f"{name:<{width}}  {description}")


@main.command("coverage")
@click.argument("url")
@click.option(
    "--admin-token",
    envvar="SORA_MOCK_ADMIN_TOKEN",
    default=None,
    help="The admin token of a mock started with --admin-token (env SORA_MOCK_ADMIN_TOKEN).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (what GET /__mock/coverage answers).")
@click.option(
    "--require",
    default=None,
    metavar="OUTCOME[,OUTCOME...]|all",
    help="Exit with status 1, naming them, when these outcomes were never met.",
)
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds to wait.")
def coverage_command(url: str, admin_token: str | None, as_json: bool, require: str | None, timeout: float) -> None:
    """Print the contract coverage of the mock running at URL (e.g. http://127.0.0.1:8000).

    Lists every outcome of the endpoint with how often the mock gave it since its last reset, for
    clients in any language whose tests run against `make mock`.
    """
    import json as jsonlib

    from ..mock.coverage import missing, parse_required

    required: tuple[str, ...] = ()
    if require is not None:
        try:
            required = parse_required(require)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--require") from None
    try:
        report = _fetch_coverage(url, admin_token, timeout)
    except click.UsageError:
        raise
    except click.ClickException as exc:
        click.echo(f"sora-mock: error: {exc.message}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(jsonlib.dumps(report, indent=2))
    else:
        rows = [
            (row["outcome"], "-" if row["status"] is None else str(row["status"]), str(row["seen"]))
            for row in report["outcomes"]
        ]
        rows += [
            (row["outcome"] + " (stubbed)", str(row["status"]), str(row["seen"])) for row in report.get("stubbed", ())
        ]
        width = max(len("outcome"), *(len(row[0]) for row in rows))
        click.echo(f"{'outcome':<{width}}  status  seen")
        for outcome, status, seen in rows:
            click.echo(f"{outcome:<{width}}  {status:>6}  {seen:>4}")
        click.echo(f"{report['met']} of {report['total']} outcomes met")
    if required:
        absent = missing(report, required)
        if absent:
            click.echo(f"sora-mock: required outcomes never met: {', '.join(absent)}", err=True)
            sys.exit(1)


def _fetch_coverage(url: str, admin_token: str | None, timeout: float) -> dict[str, Any]:
    """``GET URL/__mock/coverage``; a one-line :class:`click.ClickException` when it is not a mock's answer."""
    import json as jsonlib
    import urllib.error
    import urllib.request

    from ..store import safe_url

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"must be an http(s) URL, got {safe_url(url)!r}", param_hint="URL")
    target = url.rstrip("/") + "/__mock/coverage"
    shown = safe_url(target)
    headers = {"Accept": "application/json"}
    if admin_token:
        headers["Authorization"] = f"Bearer {admin_token.strip()}"
    try:
        with urllib.request.urlopen(urllib.request.Request(target, headers=headers), timeout=timeout) as answer:
            raw = answer.read(4 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            hint = (
                "a wrong --admin-token"
                if admin_token
                else "its admin token: pass --admin-token or SORA_MOCK_ADMIN_TOKEN"
            )
            raise click.ClickException(f"{shown} answered 401: the admin API needs {hint}") from None
        if exc.code == 404:
            raise click.ClickException(
                f"{shown} answered 404: not a sora-mock with coverage, or one started with --no-admin"
            ) from None
        if exc.code == 403:
            raise click.ClickException(
                f"{shown} answered 403: the mock refuses this host name; start it with --allowed-host NAME"
            ) from None
        raise click.ClickException(f"{shown} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach {shown}: {reason}") from None
    try:
        report = jsonlib.loads(raw)
        if not isinstance(report, dict) or not isinstance(report.get("outcomes"), list):
            raise ValueError
        for row in report["outcomes"]:
            if not {"outcome", "status", "seen"} <= set(row):
                raise ValueError
        int(report["met"]), int(report["total"])
    except (ValueError, TypeError, KeyError):
        raise click.ClickException(f"{shown} did not answer a coverage report: is it a sora-mock?") from None
    return report
