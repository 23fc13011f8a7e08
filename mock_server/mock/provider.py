"""The fast seeded characters the mock serves (the Faker provider is :mod:`.faker_provider`).

Ids are ``ch_`` + 8 hex digits of the creation unix time + 24 hex digits that look random but
are a keyed bijection of a serial number, so two serials never give the same id (the key comes
from the seed). Everything else of the character for serial N is read from a SHAKE-128 digest of
(seed, N) alone (:func:`seeded_character`), so with one shared serial counter every
worker and every replica gives the Nth character of a run the same username, key and signature,
and building one costs a few microseconds (one SHAKE-128 digest) rather than tens of Faker calls.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import time
from typing import Any
from urllib.parse import quote

from .words import WORDS as _WORDS

__all__ = ["PERMALINK_PREFIX", "id_key", "seeded_character", "seeded_character_json"]

PERMALINK_PREFIX = "https://sora.chatgpt.com/profile/"
_MASK96 = (1 << 96) - 1
_MULTIPLIERS = (0x9E3779B97F4A7C15F39CC061, 0xBF58476D1CE4E5B9D6E8FEB9)
_SIGNED_URL_VALIDITY = 7 * 24 * 3600
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_MASK64 = (1 << 64) - 1
_LETTER_BYTES = bytes(_LETTERS.encode()[i % 26] for i in range(256))
"""Maps any byte to a lowercase letter (``bytes.translate``)."""


def _mix96(value: int, key: int) -> int:
    """A bijection on 96-bit integers (xor key, then odd multiplies and xor-shifts)."""
    value = (value ^ key) & _MASK96
    for multiplier, shift in zip(_MULTIPLIERS, (48, 41), strict=True):
        value = (value * multiplier) & _MASK96
        value ^= value >> shift
    return value


def id_key(seed: int) -> int:
    """The 96-bit key that maps serials to id tails for ``seed``."""
    return random.Random(seed).getrandbits(96)


def _username(rnd: random.Random) -> str:
    first = "".join(rnd.choices(_LETTERS, k=rnd.randint(6, 10)))
    second = rnd.choice(_WORDS) + "".join(rnd.choices(_LETTERS, k=rnd.randint(2, 5)))
    return f"{first}.{second}"


@functools.lru_cache(maxsize=8)  # two stamps per character, each the same for a whole second
def _stamp(moment: int) -> str:
    return time.strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ", time.gmtime(moment))


def _uuid(rnd: random.Random) -> str:
    h = f"{rnd.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _picture_url(rnd: random.Random, now: float) -> str:
    issued = int(now)
    expires = issued + _SIGNED_URL_VALIDITY
    file_id = "00000000-" + _uuid(rnd)[9:]
    signature = quote(base64.b64encode(rnd.getrandbits(256).to_bytes(32, "big")).decode(), safe="/")
    se = _stamp(expires)
    return (
        f"https://videos.openai.com/az/files/{file_id}%2Fraw?se={se}&sp=r&sv=2024-08-04&sr=b"
        f"&skoid={_uuid(rnd)}&sktid={_uuid(rnd)}&skt={_stamp(issued)}&ske={se}&sks=b&skv=2024-08-04"
        f"&sig={signature}&ac=oaisdmntprsouthcentralus"
    )


def _draws(seed: int, serial: int) -> bytes:
    """128 bytes that look random and depend on (``seed``, ``serial``) alone (SHAKE-128 of the pair)."""
    return hashlib.shake_128((((seed & _MASK64) << 64) | (serial & _MASK64)).to_bytes(16, "big")).digest(128)


def _seeded_parts(seed: int, serial: int, now: float, key: int | None) -> tuple[str, str, str]:
    """(id, username, profile picture URL) of character ``serial``: every choice read from :func:`_draws`."""
    draw = _draws(seed, serial)
    first = draw[8 : 14 + draw[0] % 5].translate(_LETTER_BYTES).decode()  # 6-10 letters
    second = draw[20 : 22 + draw[1] % 4].translate(_LETTER_BYTES).decode()  # 2-5 letters
    username = f"{first}.{_WORDS[int.from_bytes(draw[2:4], 'big') % len(_WORDS)]}{second}"
    tail = _mix96(serial, id_key(seed) if key is None else key)
    issued = int(now)
    se = _stamp(issued + _SIGNED_URL_VALIDITY)
    file_id, skoid, sktid = (draw[i : i + 16].hex() for i in (32, 48, 64))
    signature = base64.b64encode(draw[80:112]).decode().replace("+", "%2B").replace("=", "%3D")
    picture = (
        f"https://videos.openai.com/az/files/00000000-{_dashed(file_id)[9:]}%2Fraw"
        f"?se={se}&sp=r&sv=2024-08-04&sr=b&skoid={_dashed(skoid)}&sktid={_dashed(sktid)}&skt={_stamp(issued)}"
        f"&ske={se}&sks=b&skv=2024-08-04&sig={signature}&ac=oaisdmntprsouthcentralus"
    )
    return f"ch_{issued & 0xFFFFFFFF:08x}{tail:024x}", username, picture


def _dashed(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def seeded_character(seed: int, serial: int, now: float, *, key: int | None = None) -> dict[str, Any]:
    """Character number ``serial`` of a run seeded with ``seed``, created at ``now`` (unix seconds).

    Depends on (``seed``, ``serial``, ``now``) only. ``key`` is the id key (:func:`id_key` of the
    seed when not given; pass it to skip recomputing it).
    """
    character_id, username, picture = _seeded_parts(seed, serial, now, key)
    return {
        "id": character_id,
        "username": username,
        "permalink": PERMALINK_PREFIX + username,
        "profile_picture_url": picture,
    }


def seeded_character_json(seed: int, serial: int, now: float, *, key: int | None = None) -> bytes:
    """:func:`seeded_character` as the compact JSON the mock answers (the bytes of ``journal.dumps`` of it).

    Every member is ASCII with nothing JSON escapes (hex, lowercase letters, a dot, URL-quoted
    text), so the object is written directly.
    """
    character_id, username, picture = _seeded_parts(seed, serial, now, key)
    return (
        f'{{"id":"{character_id}","username":"{username}","permalink":"{PERMALINK_PREFIX}{username}",'
        f'"profile_picture_url":"{picture}"}}'
    ).encode()
