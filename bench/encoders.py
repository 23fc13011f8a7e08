"""The journal entry and the character: the hand-written encoders against orjson, in one run.

``python bench/encoders.py`` times, per create, what the endpoint encodes: the journal entry of a
created character (headers already encoded once per header set, as the endpoint caches them) and
the 200 body. Each way is timed with ``timeit`` over several repeats; the best repeat is printed in
µs per call, with the ratio to the hand-written way. Needs ``orjson`` (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from collections.abc import Callable

try:
    import orjson
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("bench/encoders.py needs orjson: pip install orjson (make install brings it)")

from mock_server.contract.rules import EXAMPLE_VIDEO_URL
from mock_server.contract.spec import ENDPOINT_PATH
from mock_server.mock import journal
from mock_server.mock.provider import PERMALINK_PREFIX, _seeded_parts, id_key, seeded_character, seeded_character_json

SEED = 7
KEY = id_key(SEED)
NOW = 1_763_600_000.25
HEADERS = (
    ("Host", "127.0.0.1:8000"),
    ("User-Agent", "python-httpx/0.28.1"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Connection", "keep-alive"),
    ("Authorization", "Bearer sk-test-bench-token"),
    ("Content-Type", "application/json"),
    ("Content-Length", "106"),
)
RAW = json.dumps({"url": EXAMPLE_VIDEO_URL, "timestamps": "1,3"}).encode()
BODY = json.loads(RAW)
REDACTED_HEADERS = journal.redact_headers(journal.titled(HEADERS))
HEADERS_JSON = journal.dumps(REDACTED_HEADERS)
HEADERS_FRAGMENT = orjson.Fragment(HEADERS_JSON)


def entry_by_hand() -> bytes:
    body = journal.encode_body(RAW, BODY)
    return journal.encode_entry_bytes(
        time=NOW, method="POST", path=ENDPOINT_PATH, status=200, outcome="created", headers=HEADERS_JSON, body=body
    )


def _entry_orjson(headers: object) -> bytes:
    entry = {
        "time": NOW,
        "method": "POST",
        "path": ENDPOINT_PATH,
        "status": 200,
        "outcome": "created",
        "headers": headers,
        "body": BODY,
    }
    return orjson.dumps(entry)


def entry_orjson_cached_headers() -> bytes:
    return _entry_orjson(HEADERS_FRAGMENT)


def entry_orjson_everything() -> bytes:
    return _entry_orjson(journal.redact_headers(journal.titled(HEADERS)))


PARTS = _seeded_parts(SEED, 42, NOW, KEY)


def character_by_hand() -> bytes:
    character_id, username, picture = PARTS
    return (
        f'{{"id":"{character_id}","username":"{username}","permalink":"{PERMALINK_PREFIX}{username}",'
        f'"profile_picture_url":"{picture}"}}'
    ).encode()


def character_orjson() -> bytes:
    character_id, username, picture = PARTS
    return orjson.dumps(
        {
            "id": character_id,
            "username": username,
            "permalink": PERMALINK_PREFIX + username,
            "profile_picture_url": picture,
        }
    )


def character_whole_by_hand() -> bytes:
    return seeded_character_json(SEED, 42, NOW, key=KEY)


def character_whole_orjson() -> bytes:
    return orjson.dumps(seeded_character(SEED, 42, NOW, key=KEY))


GROUPS: dict[str, list[tuple[str, Callable[[], bytes]]]] = {
    "journal entry of a create": [
        ("hand-written (journal.encode_entry_bytes)", entry_by_hand),
        ("orjson, headers as a cached Fragment", entry_orjson_cached_headers),
        ("orjson, headers encoded each time", entry_orjson_everything),
    ],
    "200 body, encoding only": [
        ("hand-written (f-string)", character_by_hand),
        ("orjson.dumps of the dict", character_orjson),
    ],
    "200 body, digest + encoding": [
        ("hand-written (seeded_character_json)", character_whole_by_hand),
        ("orjson.dumps of the dict", character_whole_orjson),
    ],
}


def same_json() -> None:
    """Each way writes the same JSON value (so the race is fair)."""
    for name, ways in GROUPS.items():
        values = [json.loads(way()) for _, way in ways]
        assert all(value == values[0] for value in values), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats (the best is kept)")
    args = parser.parse_args()
    same_json()
    print(f"python {sys.version.split()[0]}, orjson {orjson.__version__}, {time.strftime('%Y-%m-%d')}")
    for name, ways in GROUPS.items():
        print(f"\n{name}")
        base = None
        for label, way in ways:
            best = min(timeit.repeat(way, number=args.number, repeat=args.repeat)) / args.number * 1e6
            base = base or best
            print(f"  {label:45s} {best:6.2f} µs  ({best / base:.2f}×)")


if __name__ == "__main__":
    main()
