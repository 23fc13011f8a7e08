"""A small relay on 127.0.0.1 that answers the guard the way a broken or hostile upstream would.

:class:`MisbehavingRelay` is a threaded socket server speaking just enough HTTP/1.1: it reads each
request (headers and a ``Content-Length`` body), records it, and answers with its ``behavior``:

- ``"gzip-lie"``: 200 with ``Content-Encoding: gzip`` over a plain JSON character;
- ``"huge"``: 200, chunked, ``size`` bytes of JSON-ish filler (it stops when the peer hangs up);
- ``"bomb"``: 200 with ``Content-Encoding: gzip``, a small body that inflates to ``size`` bytes;
- ``"trickle-body"``: 200 headers at once, then a character one byte every ``pause`` seconds;
- ``"trickle-head"``: the status line and headers themselves one byte every ``pause`` seconds;
- ``"redirect"``: 308 with the ``Location`` given in ``location``.

Everything it does is bounded: a trickle lasts at most ``steps`` pauses, every socket has a
timeout, and :meth:`stop` (or leaving the ``with`` block) ends the server and its threads.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import zlib
from dataclasses import dataclass
from types import TracebackType

__all__ = ["CHARACTER", "MisbehavingRelay", "Seen"]

CHARACTER = json.dumps(
    {
        "id": "ch_0123456789abcdef0123456789abcdef",
        "username": "brave.otter",
        "permalink": "https://sora.chatgpt.com/profile/brave.otter",
        "profile_picture_url": "https://videos.openai.com/az/files/x%2Fraw?se=1&sig=abc",
    }
).encode()
_CHUNK = 64 * 1024


@dataclass
class Seen:
    """One request as the relay received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes, built a chunk at a time (never ``size`` bytes in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(_CHUNK)
    parts = [packer.compress(zeros) for _ in range(size // _CHUNK)]
    parts.append(packer.flush())
    return b"".join(parts)


class MisbehavingRelay:
    """``with MisbehavingRelay("gzip-lie") as relay: ... relay.url ... relay.seen``."""

    def __init__(
        self,
        behavior: str,
        *,
        size: int = 64 * 1024 * 1024,
        pause: float = 0.1,
        steps: int = 60,
        location: str = "",
    ) -> None:
        self.behavior = behavior
        self.size = size
        self.pause = pause
        self.steps = steps
        self.location = location
        self.seen: list[Seen] = []
        self.sent_bytes = 0
        """Body bytes the relay managed to write (for ``huge``: less than ``size`` once the guard hangs up)."""
        self.hung_up = threading.Event()
        """Set when the peer closed the connection before the relay finished its answer."""
        self._stop = threading.Event()
        self._bomb = _gzip_bomb(size) if behavior == "bomb" else b""
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                relay._handle(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> MisbehavingRelay:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- one connection -----------------------------------------------------------------------

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            seen = self._read_request(conn)
            if seen is None:
                return
            self.seen.append(seen)
            self._answer(conn)
        except OSError:
            self.hung_up.set()

    def _read_request(self, conn: socket.socket) -> Seen | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 1 << 20:
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return Seen(method, path, headers, body[:length])

    def _answer(self, conn: socket.socket) -> None:
        if self.behavior == "gzip-lie":
            conn.sendall(self._head(200, len(CHARACTER), "Content-Encoding: gzip\r\n") + CHARACTER)
        elif self.behavior == "bomb":
            conn.sendall(self._head(200, len(self._bomb), "Content-Encoding: gzip\r\n"))
            self._send_body(conn, self._bomb)
        elif self.behavior == "huge":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            filler = b" " * _CHUNK
            frame = f"{len(filler):x}\r\n".encode() + filler + b"\r\n"
            while self.sent_bytes < self.size and not self._stop.is_set():
                conn.sendall(frame)
                self.sent_bytes += len(filler)
            conn.sendall(b"0\r\n\r\n")
        elif self.behavior == "trickle-body":
            conn.sendall(self._head(200, len(CHARACTER)))
            self._trickle(conn, CHARACTER)
        elif self.behavior == "trickle-head":
            self._trickle(conn, self._head(200, len(CHARACTER)) + CHARACTER)
        elif self.behavior == "redirect":
            body = b'{"moved": true}'
            conn.sendall(self._head(308, len(body), f"Location: {self.location}\r\n", status_text="Permanent Redirect"))
            conn.sendall(body)
        else:
            raise ValueError(f"unknown behavior {self.behavior!r}")

    @staticmethod
    def _head(status: int, length: int, extra: str = "", *, status_text: str = "OK") -> bytes:
        return (
            f"HTTP/1.1 {status} {status_text}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}Connection: close\r\n\r\n"
        ).encode()

    def _send_body(self, conn: socket.socket, body: bytes) -> None:
        for start in range(0, len(body), _CHUNK):
            conn.sendall(body[start : start + _CHUNK])
            self.sent_bytes += min(_CHUNK, len(body) - start)

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        """Send ``data`` a byte per pause, for at most ``steps`` pauses, then the rest at once."""
        for index in range(min(self.steps, len(data))):
            if self._stop.wait(self.pause):
                return
            conn.sendall(data[index : index + 1])
            self.sent_bytes += 1
        conn.sendall(data[self.steps :])
        self.sent_bytes += max(0, len(data) - self.steps)
