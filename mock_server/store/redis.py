"""The shared store: one Redis database, for servers on one machine or many.

Every key starts with the store's prefix, so two mocks (or a mock and the guard) can share one
Redis. A log is a Redis stream whose entry ids are ``SEQ-0``, with its sequence counter and byte
total in a hash; a counted table is a sorted set (its order) and three hashes (items, takes, takes
left). Appends, takes and reservations are small Lua scripts, so each is atomic whatever server
runs it.

The client (the ``redis`` package) keeps a connection pool per process and reconnects after a
fork or when the server comes back; every command has short timeouts, so a stopped Redis makes
calls fail fast with :class:`StoreUnavailable` instead of hanging.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .base import _SECRET_NAME, IDENTITY, Entry, Store, StoreUnavailable, safe_url

__all__ = ["RedisStore"]

_T = TypeVar("_T")
_MIN_SECRET = 4  # shorter values are not replaced inside messages (they would mangle the text)
_MARKER_FIELD = f"\x00{IDENTITY}"
"""The identity marker's field in the counters hash (no counter is named so). Marker and counters are one
key, so whatever drops the counters (a flush, a restart, an eviction) drops the marker with them."""


def _secrets_of(url: str) -> list[str]:
    """The passwords ``url`` carries (in its user part or its query), as given and decoded."""
    try:
        parts = urllib.parse.urlsplit(url)
        found = [parts.password or parts.username or ""] if "@" in parts.netloc else []  # user:PW@ or SECRET@
        found += [value for name, value in urllib.parse.parse_qsl(parts.query) if _SECRET_NAME.search(name)]
    except ValueError:
        return []
    raw = [*found, *(urllib.parse.quote(value, safe="") for value in found)]
    return sorted({value for value in raw if len(value) >= _MIN_SECRET}, key=len, reverse=True)


# KEYS: stream, meta hash, log-name set; ARGV: item, max_items, max_bytes, log name
_APPEND = """
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local total = redis.call('HINCRBY', KEYS[2], 'bytes', string.len(ARGV[1]))
redis.call('XADD', KEYS[1], seq .. '-0', 'i', ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
local max_items = tonumber(ARGV[2])
local max_bytes = tonumber(ARGV[3])
local count = redis.call('XLEN', KEYS[1])
while count > 1 and (count > max_items or (max_bytes > 0 and total > max_bytes)) do
    local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
    redis.call('XDEL', KEYS[1], oldest[1])
    total = redis.call('HINCRBY', KEYS[2], 'bytes', -string.len(oldest[2][2]))
    count = count - 1
end
return seq
"""

# KEYS: the counters hash; ARGV: counter, limit, the identity expected ('' for none), the marker's field
_RESERVE = """
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], ARGV[4]) ~= ARGV[3] then return -1 end
local value = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if value >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""

# KEYS: the counters hash; ARGV: identity, '1' to replace the one held, the marker's field
_MARK = """
if ARGV[2] ~= '1' then
    local held = redis.call('HGET', KEYS[1], ARGV[3])
    if held then return held end
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[1])
return ARGV[1]
"""

# KEYS: log-name set, table-name set; ARGV: the key prefix
_RESET = """
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    redis.call('DEL', ARGV[1] .. 'log:' .. name)
    redis.call('HSET', ARGV[1] .. 'meta:' .. name, 'bytes', 0)
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    for _, part in ipairs({'order', 'items', 'taken', 'left'}) do
        redis.call('DEL', ARGV[1] .. 'table:' .. name .. ':' .. part)
    end
end
return 1
"""

# A counted table: KEYS[1] order (sorted set key -> n), [2] items (hash), [3] taken (hash), [4] takes left
# (hash; no field: no bound).
# put: KEYS[5] the counter behind n, [6] the table-name set; ARGV key, item, takes ('' for no bound), limit, name
_PUT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return 0
end
redis.call('SADD', KEYS[6], ARGV[5])
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[5]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], 0)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[3]) else redis.call('HDEL', KEYS[4], ARGV[1]) end
return 1
"""

# take: ARGV '1' and the key, or '0' for the oldest row with takes left; '1' to drop a spent row
_TAKE = """
local key = ARGV[2]
if ARGV[1] == '0' then
    key = false
    local start = 0
    while not key do
        local batch = redis.call('ZRANGE', KEYS[1], start, start + 63)
        if #batch == 0 then return false end
        for _, k in ipairs(batch) do
            local held = redis.call('HGET', KEYS[4], k)
            if not held or tonumber(held) > 0 then key = k break end
        end
        start = start + 64
    end
elseif not redis.call('ZSCORE', KEYS[1], key) then
    return false
end
local item = redis.call('HGET', KEYS[2], key)
local left = redis.call('HGET', KEYS[4], key)
if left then
    left = tonumber(left)
    if left <= 0 then return false end
    if left == 1 and ARGV[3] == '1' then
        redis.call('ZREM', KEYS[1], key)
        for i = 2, 4 do redis.call('HDEL', KEYS[i], key) end
        return item
    end
    redis.call('HSET', KEYS[4], key, left - 1)
end
redis.call('HINCRBY', KEYS[3], key, 1)
return item
"""

# remove: ARGV '1' and the key, or '0' for every row
_REMOVE = """
if ARGV[1] == '0' then
    local held = redis.call('ZCARD', KEYS[1])
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
    return held > 0 and 1 or 0
end
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
for i = 2, 4 do redis.call('HDEL', KEYS[i], ARGV[2]) end
return removed
"""

# entries, oldest first: {key, item, taken, left or '', ...}
_ENTRIES = """
local out = {}
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    out[#out + 1] = key
    out[#out + 1] = redis.call('HGET', KEYS[2], key)
    out[#out + 1] = redis.call('HGET', KEYS[3], key)
    out[#out + 1] = redis.call('HGET', KEYS[4], key) or ''
end
return out
"""


class RedisStore(Store):
    """State in one Redis database: ``redis://[:PASSWORD@]HOST:PORT/DB`` or ``unix://PATH[?db=N]``."""

    def __init__(self, url: str, *, prefix: str = "sora-mock:", max_items: int = 1000, max_bytes: int = 0) -> None:
        self.backend = "redis"
        self.url = url
        self.prefix = prefix
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._pid = 0
        self._scripts: dict[str, Any] = {}

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None or self._pid != os.getpid():  # first use, or a forked child
                client = redis.Redis.from_url(
                    self.url,
                    socket_timeout=2,
                    socket_connect_timeout=1,
                    retry=Retry(NoBackoff(), 1),  # one retry replaces a connection the server closed
                    health_check_interval=0,
                )
                self._scripts = {
                    name: client.register_script(source)
                    for name, source in (
                        ("append", _APPEND),
                        ("reserve", _RESERVE),
                        ("mark", _MARK),
                        ("reset", _RESET),
                        ("put", _PUT),
                        ("take", _TAKE),
                        ("remove", _REMOVE),
                        ("entries", _ENTRIES),
                    )
                }
                self._client = client
                self._pid = os.getpid()
            return self._client

    def _run(self, work: Callable[[redis.Redis], _T]) -> _T:
        client = self._redis()
        try:
            return work(client)
        except redis.RedisError as exc:
            reason = str(exc).replace(self.url, safe_url(self.url))
            for secret in _secrets_of(self.url):
                reason = reason.replace(secret, "***")
            raise StoreUnavailable(f"the Redis state store {safe_url(self.url)} cannot be used: {reason}") from None

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}{name}"

    # logs
    def _append_args(self, log: str, item: bytes) -> tuple[list[str], list[Any]]:
        keys = [self._key("log:", log), self._key("meta:", log), self._key("logs")]
        return keys, [item, self.max_items, self.max_bytes, log]

    def append_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        def work(r: redis.Redis) -> list[int]:
            pipe = r.pipeline(transaction=False)
            for log, item in items:
                keys, args = self._append_args(log, item)
                self._scripts["append"](keys=keys, args=args, client=pipe)
            return [int(seq) for seq in pipe.execute()]

        return self._run(work)

    def read_batch(self, log: str, after: int, count: int) -> list[tuple[int, bytes]]:
        key = self._key("log:", log)

        def fetch(r: redis.Redis) -> Any:  # the client's stubs allow str and None here: ours has bytes
            return r.xrange(key, f"{after + 1}-0", "+", count=count)

        entries = self._run(fetch)
        return [(int(entry_id.split(b"-", 1)[0]), fields[b"i"]) for entry_id, fields in entries]

    # counters
    def incr(self, name: str, delta: int = 1) -> int:
        return int(self._run(lambda r: r.hincrby(self._key("counters"), name, delta)))

    def get(self, name: str) -> int:
        value = self._run(lambda r: r.hget(self._key("counters"), name))
        return int(value or 0)

    def reserve(self, name: str, limit: int) -> bool:
        keys, args = [self._key("counters")], [name, limit, self.identity or "", _MARKER_FIELD]
        done = int(self._run(lambda r: self._scripts["reserve"](keys=keys, args=args)))
        if done < 0:
            raise self._lost(self._marker())
        return bool(done)

    # counted tables
    def _table_keys(self, table: str) -> list[str]:
        return [self._key("table:", f"{table}:{part}") for part in ("order", "items", "taken", "left")]

    def put(self, table: str, key: str, item: bytes, takes: int | None, limit: int) -> bool:
        keys = [*self._table_keys(table), self._key("table:", f"{table}:n"), self._key("tables")]
        args: list[Any] = [key, item, "" if takes is None else takes, limit, table]
        return bool(self._run(lambda r: self._scripts["put"](keys=keys, args=args)))

    def entries(self, table: str) -> list[Entry]:
        flat: list[bytes] = self._run(lambda r: self._scripts["entries"](keys=self._table_keys(table)))
        return [
            (flat[i].decode(), bytes(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3]) if flat[i + 3] else None)
            for i in range(0, len(flat), 4)
        ]

    def take(self, table: str, key: str | None = None, *, drop_spent: bool = False) -> bytes | None:
        args = ["0", ""] if key is None else ["1", key]
        keys = self._table_keys(table)
        item = self._run(lambda r: self._scripts["take"](keys=keys, args=[*args, "1" if drop_spent else "0"]))
        return None if item is None else bytes(item)

    def remove(self, table: str, key: str | None = None) -> bool:
        args = ["0", ""] if key is None else ["1", key]
        return bool(self._run(lambda r: self._scripts["remove"](keys=self._table_keys(table), args=args)))

    # whole store
    def _reset(self, counters: tuple[str, ...]) -> None:
        keys = [self._key("logs"), self._key("tables")]
        self._run(lambda r: self._scripts["reset"](keys=keys, args=[self.prefix]))
        if counters:
            self._run(lambda r: r.hdel(self._key("counters"), *counters))

    def _ping(self) -> None:
        self._run(lambda r: r.ping())

    def _marker(self) -> str | None:
        value = self._run(lambda r: r.hget(self._key("counters"), _MARKER_FIELD))
        return None if value is None else bytes(value).decode("utf-8", "replace")  # type: ignore[arg-type]

    def _put_marker(self, identity: str, *, replace: bool) -> str:
        args = [identity, "1" if replace else "0", _MARKER_FIELD]
        held = self._run(lambda r: self._scripts["mark"](keys=[self._key("counters")], args=args))
        return bytes(held).decode("utf-8", "replace")

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None
            self._pid = 0
