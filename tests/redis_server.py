"""A real ``redis-server`` for tests: on a Unix socket in a temporary folder, stopped afterwards.

Without the Debian package the tests that need it are skipped with an install hint, except in
CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

__all__ = ["INSTALL_HINT", "RedisServer", "require_redis_server"]

INSTALL_HINT = "redis-server is not installed; install it with `apt-get install redis-server` (CI installs it)"


def require_redis_server() -> str:
    """The ``redis-server`` path; skips the test (fails it when ``CI=true``) when it is missing."""
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


class RedisServer:
    """``redis-server`` on ``DIR/redis.sock`` (no TCP port, no persistence); start, stop, start again."""

    def __init__(self, folder: Path) -> None:
        self.binary = require_redis_server()
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> RedisServer:
        command = [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder), "--loglevel", "warning"]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
                client.ping()
                client.close()
                return self
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def flush(self) -> None:
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
        client.flushall()
        client.close()
