"""The Faker provider: realistic, reproducible, never-repeating characters."""

from __future__ import annotations

import itertools
import time
from urllib.parse import parse_qs, urlsplit

from mock_server import Contract, check_character, make_faker


def test_characters_conform_and_embed_creation_time(contract: Contract) -> None:
    fake = make_faker(1)
    now = time.time()
    for serial in range(200):
        character = fake.character(now, serial)
        assert check_character(character, contract) == []
        assert int(character["id"][3:11], 16) == int(now)


def test_same_seed_same_sequence_other_seed_other_sequence() -> None:
    def run(seed: int) -> list[dict[str, str]]:
        fake = make_faker(seed)
        return [fake.character(1_763_202_593, n) for n in range(5)]

    assert run(11) == run(11)
    assert [c["username"] for c in run(11)] != [c["username"] for c in run(12)]
    assert [c["id"] for c in run(11)] != [c["id"] for c in run(12)]


def test_ids_never_repeat_across_serials_and_workers() -> None:
    fake = make_faker(3)
    ids = {fake.character_id(1_763_202_593, (worker << 64) | n) for worker in range(4) for n in range(20_000)}
    assert len(ids) == 80_000


def test_id_tails_look_random() -> None:
    fake = make_faker(5)
    tails = [fake.character_id(0, n)[11:] for n in range(1000)]
    # consecutive serials differ in about half of their bits, not in the last digit only
    flips = [bin(int(a, 16) ^ int(b, 16)).count("1") for a, b in itertools.pairwise(tails)]
    assert 30 < sum(flips) / len(flips) < 66


def test_profile_picture_url_is_signed_and_expires_later() -> None:
    now = time.time()
    url = make_faker(2).profile_picture_url(now)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "videos.openai.com")
    assert parts.path.startswith("/az/files/00000000-") and parts.path.endswith("%2Fraw")
    query = parse_qs(parts.query)
    assert {"se", "sig", "sp", "sv", "skoid"} <= set(query)
    expiry = time.mktime(time.strptime(query["se"][0], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert expiry > now + 3600
