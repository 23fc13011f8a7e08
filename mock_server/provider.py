"""Faker provider for realistic fake characters.

Ids are ``ch_`` + 8 hex digits of the creation unix time + 24 hex digits that look random but
are a keyed bijection of a serial number, so two serials never give the same id. Usernames,
the key and signatures come from the Faker instance's random generator, so a seeded Faker
gives a reproducible sequence.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from faker import Faker
from faker.providers import BaseProvider

__all__ = ["PERMALINK_PREFIX", "CharacterProvider", "make_faker"]

PERMALINK_PREFIX = "https://sora.chatgpt.com/profile/"
_MASK96 = (1 << 96) - 1
_MULTIPLIERS = (0x9E3779B97F4A7C15F39CC061, 0xBF58476D1CE4E5B9D6E8FEB9)
_SIGNED_URL_VALIDITY = timedelta(days=7)


def _mix96(value: int, key: int) -> int:
    """A bijection on 96-bit integers (xor key, then odd multiplies and xor-shifts)."""
    value = (value ^ key) & _MASK96
    for multiplier, shift in zip(_MULTIPLIERS, (48, 41), strict=True):
        value = (value * multiplier) & _MASK96
        value ^= value >> shift
    return value


class CharacterProvider(BaseProvider):
    """Adds ``character()``, ``character_id()``, ``character_username()`` and friends to Faker."""

    _id_key: int | None = None

    def _key(self) -> int:
        if self._id_key is None:
            self._id_key = self.generator.random.getrandbits(96)
        return self._id_key

    def character_id(self, created: int, serial: int) -> str:
        """``ch_`` + creation time (8 hex) + a never-repeating 24-hex tail for ``serial``."""
        return f"ch_{created & 0xFFFFFFFF:08x}{_mix96(serial, self._key()):024x}"

    def character_username(self) -> str:
        """Two lowercase parts joined by a dot, like ``hfspncadz.mooflapand``."""
        rnd = self.generator.random
        first = "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(6, 10)))
        second = self.generator.word().lower() + "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(2, 5)))
        return f"{first}.{''.join(ch for ch in second if ch.isascii() and ch.isalpha())}"

    def profile_picture_url(self, now: float) -> str:
        """A signed-looking, expiring avatar URL in the relay's style."""
        rnd = self.generator.random
        issued = datetime.fromtimestamp(int(now), tz=UTC)
        expires = issued + _SIGNED_URL_VALIDITY

        def stamp(moment: datetime) -> str:
            return quote(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), safe="")

        def uuid() -> str:
            h = f"{rnd.getrandbits(128):032x}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

        file_id = "00000000-" + uuid()[9:]
        signature = quote(base64.b64encode(rnd.getrandbits(256).to_bytes(32, "big")).decode(), safe="/")
        query = "&".join(
            [
                f"se={stamp(expires)}",
                "sp=r",
                "sv=2024-08-04",
                "sr=b",
                f"skoid={uuid()}",
                f"sktid={uuid()}",
                f"skt={stamp(issued)}",
                f"ske={stamp(expires)}",
                "sks=b",
                "skv=2024-08-04",
                f"sig={signature}",
                "ac=oaisdmntprsouthcentralus",
            ]
        )
        return f"https://videos.openai.com/az/files/{file_id}%2Fraw?{query}"

    def character(self, now: float, serial: int) -> dict[str, Any]:
        """A complete 200 body for a character created at ``now`` (unix seconds)."""
        username = self.character_username()
        return {
            "id": self.character_id(int(now), serial),
            "username": username,
            "permalink": PERMALINK_PREFIX + username,
            "profile_picture_url": self.profile_picture_url(now),
        }


def make_faker(seed: int | None = None) -> Faker:
    """A Faker instance with :class:`CharacterProvider`, seeded when ``seed`` is given."""
    fake = Faker("en_US")
    if seed is not None:
        fake.seed_instance(seed)
    fake.add_provider(CharacterProvider)
    return fake
