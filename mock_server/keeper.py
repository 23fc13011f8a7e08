"""The state keeper: one small process holding the journal and characters of a multi-process server.

Worker processes stream length-prefixed frames to it over a Unix socket: ``J`` (a journal entry)
and ``C`` (a created character) carry JSON and get no reply; ``Q``/``K`` (list the journal /
the characters) and ``R`` (reset) are answered. Before answering, the keeper drains every
worker connection, so an admin call sees every request answered before it was made: a worker
writes its entry before it sends its answer. Both lists are bounded deques of JSON bytes.

Run as a script (standard library only, so the process stays small and starts fast):
``python keeper.py SOCKET_PATH JOURNAL_SIZE``. It exits when its parent process is gone (or on
SIGTERM), removing its socket and the socket's private folder.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import sys
from collections import deque

__all__ = ["HEADER", "main", "run"]

HEADER = struct.Struct("!cI")
_CONTROL = (b"Q", b"K", b"R")


def run(path: str, journal_size: int) -> None:
    """Serve the state on the Unix socket ``path`` until the parent process exits."""
    journal: deque[bytes] = deque(maxlen=journal_size)
    characters: deque[bytes] = deque(maxlen=journal_size)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(128)
    os.replace(path + ".tmp", path)  # the path appears only once it accepts connections
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    buffers: dict[socket.socket, bytearray] = {}
    parent = os.getppid()

    def read(conn: socket.socket, pending: list[tuple[socket.socket, bytes]]) -> None:
        buf = buffers[conn]
        while True:
            try:
                chunk = conn.recv(1 << 20)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                selector.unregister(conn)
                del buffers[conn]
                conn.close()
                return
            buf += chunk
            while len(buf) >= HEADER.size:
                kind, length = HEADER.unpack_from(buf)
                end = HEADER.size + length
                if len(buf) < end:
                    break
                if kind == b"J":
                    journal.append(bytes(buf[HEADER.size : end]))
                elif kind == b"C":
                    characters.append(bytes(buf[HEADER.size : end]))
                elif kind in _CONTROL:
                    pending.append((conn, kind))
                del buf[:end]

    def accept_all() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            buffers[conn] = bytearray()
            selector.register(conn, selectors.EVENT_READ, True)

    listener.setblocking(False)
    while os.getppid() == parent:
        pending: list[tuple[socket.socket, bytes]] = []
        for key, _ in selector.select(timeout=0.5):
            if key.data is None:
                accept_all()
            elif key.fileobj in buffers:
                read(key.fileobj, pending)
        if not pending:
            continue
        accept_all()  # a worker's first connection may still wait in the backlog
        for conn in list(buffers):  # everything written before the control frame arrived
            if conn in buffers:
                read(conn, pending)
        for conn, kind in pending:
            if kind == b"R":
                journal.clear()
                characters.clear()
                reply = b"{}"
            else:
                reply = b"[" + b",".join(journal if kind == b"Q" else characters) + b"]"
            try:
                conn.setblocking(True)
                conn.sendall(HEADER.pack(kind, len(reply)) + reply)
                conn.setblocking(False)
            except OSError:
                pass


def main(argv: list[str]) -> None:
    """Script entry: serve, and remove the socket and its private folder however it ends."""
    path = argv[1]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops us
    try:
        run(path, int(argv[2]))
    finally:
        for leftover in (path, path + ".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    main(sys.argv)
