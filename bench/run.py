"""Benchmark the mock against Prism and WireMock with wrk, on this machine, in one run.

Rows: ``sora-mock serve`` (default config: every rule enforced, every request journaled);
Prism 5's static mock of the seed spec; WireMock 3.13 with one static stub of the endpoint
(bench/wiremock, journal on); and the ceiling, a trivial RSGI app on the same granian
(bench/trivial_rsgi.py). Each server is launched, timed from launch to its first 200 on a valid
create (cold start), warmed up, hit by ``wrk -t2 -d<duration> --latency`` at each concurrency
with the same request (bench/create.lua), then its process tree's resident memory is read and it
is stopped. Prints a table, the mock's ratios to each peer, and the CPU per request split into
server (the trivial app's CPU per request), adapter (the rest) and core (the endpoint core called
in-process); writes the same to ``reports/bench.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mock_server.contract.rules import EXAMPLE_VIDEO_URL

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "create.lua"
PATH = "/sora/v1/characters"
BODY = json.dumps({"url": EXAMPLE_VIDEO_URL, "timestamps": "1,3"}).encode()  # the bytes bench/create.lua sends
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}


@dataclass
class Row:
    server: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    rss_after_mib: float
    pss_after_mib: float
    cpu_ms_per_request: float
    cold_start_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def first_200(port: int, deadline: float) -> None:
    """Poll with the benchmark request until a 200 comes back (connection refused → retry)."""
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", PATH, body=BODY, headers=HEADERS)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
            raise SystemExit(f"server on port {port} answered {status} to the benchmark request")
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"no answer on port {port} in time") from None
            time.sleep(0.002)


def tree(root: int) -> list[int]:
    """``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    pids = [root]
    for pid in pids:
        pids.extend(children.get(pid, []))
    return pids


def tree_memory_mib(root: int) -> tuple[float, float]:
    """(RSS, PSS) of ``root`` and its descendants in MiB; PSS splits pages forked processes share."""
    rss = pss = 0
    for pid in tree(root):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for name, value in re.findall(r"^(Rss|Pss):\s+(\d+) kB", rollup, re.M):
            if name == "Rss":
                rss += int(value)
            else:
                pss += int(value)
    return rss / 1024, pss / 1024


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds used so far by ``root`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(port: int, connections: int, duration: int) -> dict[str, Any]:
    """Run wrk once and parse its --latency report."""
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (total and rps and "50" in percentiles and "99" in percentiles):
        raise SystemExit(f"unreadable wrk output:\n{out}")
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "requests": int(total.group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def bench_server(
    name: str, command: list[str], port: int, concurrencies: list[int], duration: int, warmup: int
) -> list[Row]:
    print(f"== {name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    # A session of its own, so the whole tree is stopped (npm's wiremock wrapper starts a JVM child).
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=ROOT, start_new_session=True
    )
    try:
        first_200(port, started + 60)
        cold = time.monotonic() - started
        if warmup:
            wrk(port, concurrencies[0], warmup)
        rows = []
        for connections in concurrencies:
            cpu = tree_cpu_s(proc.pid)
            result = wrk(port, connections, duration)
            cpu = tree_cpu_s(proc.pid) - cpu
            rss, pss = tree_memory_mib(proc.pid)
            rows.append(
                Row(
                    name,
                    connections,
                    rss_after_mib=round(rss, 1),
                    pss_after_mib=round(pss, 1),
                    cpu_ms_per_request=round(cpu * 1000 / max(result["requests"], 1), 3),
                    cold_start_s=round(cold, 3),
                    **result,
                )
            )
            print(f"   c={connections}: {result}", file=sys.stderr, flush=True)
        return rows
    finally:
        stop_tree(proc)


def stop_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL whatever is left after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def app_alone_us(count: int = 3000) -> tuple[float, float]:
    """Microseconds per create with no server (median of 3): the endpoint core called directly, and
    ``create_app()`` called as a WSGI app (the Flask adapter over the same core)."""
    from werkzeug.test import EnvironBuilder

    from mock_server.mock.app import create_app, endpoint_of
    from mock_server.mock.core import Request

    app = create_app()
    endpoint = endpoint_of(app)
    headers = tuple((name.lower(), value) for name, value in {**HEADERS, "Host": "127.0.0.1"}.items())
    request = Request("POST", PATH, headers, BODY, "127.0.0.1:50000")

    def environ() -> dict[str, Any]:
        return EnvironBuilder(path=PATH, method="POST", data=BODY, headers=HEADERS).get_environ()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    def core(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            endpoint.handle(request)
        return (time.perf_counter() - started) / n * 1e6

    def flask(n: int) -> float:
        environs = [environ() for _ in range(n)]
        started = time.perf_counter()
        for env in environs:
            b"".join(app(env, start_response))
        return (time.perf_counter() - started) / n * 1e6

    core(300), flask(300)  # warm caches
    return sorted(core(count) for _ in range(3))[1], sorted(flask(count) for _ in range(3))[1]


def table(rows: list[Row]) -> str:
    head = "| server | c | req/s | p50 ms | p99 ms | non-2xx | RSS after MiB (PSS) | CPU ms/req | cold start s |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r.server} | {r.concurrency} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.non_2xx + r.socket_errors} | {r.rss_after_mib:.0f} ({r.pss_after_mib:.0f}) "
            f"| {r.cpu_ms_per_request:.3f} | {r.cold_start_s:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prism", default=str(ROOT / ".tools/prism/node_modules/.bin/prism"))
    parser.add_argument("--wiremock", default=str(ROOT / ".tools/wiremock/node_modules/.bin/wiremock"))
    parser.add_argument("--mock", default=str(Path(sys.executable).parent / "sora-mock"), help="sora-mock executable")
    parser.add_argument("--mock-args", default="", help="extra `sora-mock serve` arguments (default config: none)")
    parser.add_argument(
        "--mock-command",
        default=None,
        help="serve the mock another way for comparison: a command line with {port}, e.g. another WSGI server",
    )
    parser.add_argument("--label", default="sora-mock", help="name of the mock's rows")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per concurrency")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unreported wrk before measuring")
    parser.add_argument(
        "--wiremock-warmup", type=int, default=10, help="seconds of unreported wrk for WireMock (its JIT warms up)"
    )
    parser.add_argument("--only", choices=["mock", "prism", "wiremock", "trivial", "app"], default=None)
    parser.add_argument("--out", default=str(ROOT / "reports/bench.json"))
    args = parser.parse_args()

    rows: list[Row] = []
    core_us = flask_us = None
    if args.only in (None, "app"):
        core_us, flask_us = (round(us, 1) for us in app_alone_us())
        print(f"== app alone: {core_us} us per create in the core, {flask_us} us through create_app", file=sys.stderr)
    if args.only in (None, "mock"):
        port = free_port()
        command = [args.mock, "serve", "--host", "127.0.0.1", "--port", str(port), *shlex.split(args.mock_args)]
        if args.mock_command:
            command = shlex.split(args.mock_command.format(port=port))
        rows += bench_server(args.label, command, port, args.concurrency, args.duration, args.warmup)
    if args.only in (None, "prism"):
        port = free_port()
        spec = str(ROOT / "openapi/vendor/create-character.openapi.yaml")
        command = [args.prism, "mock", spec, "-h", "127.0.0.1", "-p", str(port), "-v", "error"]
        rows += bench_server("prism", command, port, args.concurrency, args.duration, args.warmup)
    if args.only in (None, "wiremock"):
        port = free_port()
        root = str(ROOT / "bench/wiremock")
        command = [args.wiremock, "--port", str(port), "--bind-address", "127.0.0.1", "--root-dir", root]
        rows += bench_server(
            "wiremock", [*command, "--disable-banner"], port, args.concurrency, args.duration, args.wiremock_warmup
        )
    if args.only in (None, "trivial"):
        port = free_port()
        command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--workers", "1", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--log-level", "warning", "bench.trivial_rsgi:app"]
        rows += bench_server("trivial RSGI app", command, port, args.concurrency, args.duration, args.warmup)

    ratios: dict[str, dict[str, float]] = {}
    for peer in ("prism", "wiremock", "trivial RSGI app"):
        for c in args.concurrency:
            mock = next((r for r in rows if r.server == args.label and r.concurrency == c), None)
            other = next((r for r in rows if r.server == peer and r.concurrency == c), None)
            if mock and other and other.requests_per_s:
                ratios.setdefault(peer, {})[str(c)] = round(mock.requests_per_s / other.requests_per_s, 2)
    split: dict[str, dict[str, float]] = {}
    for c in args.concurrency:
        mock = next((r for r in rows if r.server == args.label and r.concurrency == c), None)
        trivial = next((r for r in rows if r.server == "trivial RSGI app" and r.concurrency == c), None)
        if mock and trivial and core_us is not None:
            total = mock.cpu_ms_per_request * 1000
            server = trivial.cpu_ms_per_request * 1000
            split[str(c)] = {
                "total_us": round(total),
                "server_us": round(server),
                "core_us": round(core_us),
                "adapter_us": round(total - server - core_us),
            }

    print(table(rows))
    if core_us is not None and flask_us is not None:
        print(
            f"| core alone (Endpoint.handle, no server) | 1 | {1e6 / core_us:,.0f} | {core_us / 1000:.3f} | | | | | |"
        )
        print(f"| create_app alone (WSGI, no server) | 1 | {1e6 / flask_us:,.0f} | {flask_us / 1000:.3f} | | | | | |")
    for peer, by_c in ratios.items():
        for c, ratio in by_c.items():
            print(f"mock / {peer} req/s at c={c}: {ratio:.2f}x")
    for c, parts in split.items():
        print(
            f"CPU per request at c={c}: {parts['total_us']} us = server {parts['server_us']} + "
            f"adapter {parts['adapter_us']} + core {parts['core_us']}"
        )
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "wrk": {"threads": 2, "duration_s": args.duration, "warmup_s": args.warmup, "script": "bench/create.lua"},
        "mock": args.mock_command or f"sora-mock serve {args.mock_args}".strip(),
        "rows": [asdict(r) for r in rows],
        "core_alone_us_per_create": core_us,
        "create_app_alone_us_per_create": flask_us,
        "ratios": ratios,
        "cpu_split_us_per_request": split,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
