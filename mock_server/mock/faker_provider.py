"""Faker provider for realistic fake characters (needs the ``faker`` extra; the mock itself does not).

:func:`make_faker` gives a seeded Faker with :class:`CharacterProvider`, for tests that want
character-shaped data beside the mock's own (:mod:`.provider`).
"""

from __future__ import annotations

from typing import Any

from ..extras import require

require("faker", "faker", "mock_server's CharacterProvider and make_faker")

from faker import Faker  # noqa: E402 - after the one-line message for a missing extra
from faker.providers import BaseProvider  # noqa: E402

from .provider import _MASK64, _mix96, _picture_url, _username, seeded_character  # noqa: E402

__all__ = ["CharacterProvider", "make_faker"]


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

    def _seed(self) -> int:
        return self._key() & _MASK64

    def character_username(self) -> str:
        """Two lowercase parts joined by a dot, like ``hfspncadz.mooflapand``."""
        return _username(self.generator.random)

    def profile_picture_url(self, now: float) -> str:
        """A signed-looking, expiring avatar URL in the relay's style."""
        return _picture_url(self.generator.random, now)

    def character(self, now: float, serial: int) -> dict[str, Any]:
        """A complete 200 body for character number ``serial`` created at ``now`` (unix seconds).

        The same Faker seed and serial always give the same character (see :func:`seeded_character`).
        """
        return seeded_character(self._seed(), serial, now, key=self._key())


def make_faker(seed: int | None = None) -> Faker:
    """A Faker instance with :class:`CharacterProvider`, seeded when ``seed`` is given."""
    fake = Faker("en_US")
    if seed is not None:
        fake.seed_instance(seed)
    fake.add_provider(CharacterProvider)
    return fake
