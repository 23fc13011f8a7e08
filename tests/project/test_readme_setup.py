"""The README's set-up block: the two commands a new user runs, and what ``make test`` costs."""

from __future__ import annotations

import re

from ..helpers import ROOT

_SET_UP = re.compile(r"## Set up\n\n```sh\n(.*?)```\n\n(.*?)\n\n", re.S)


def test_the_set_up_block_says_make_test_is_optional_and_how_long_it_takes() -> None:
    match = _SET_UP.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match is not None, "README.md needs a ## Set up section with a ```sh block"
    lines = match[1].splitlines()
    assert [line.split("#")[0].strip() for line in lines] == ["make install && make mock", "make test"]
    make_test = lines[1]
    assert "optional" in make_test and re.search(r"~\d+(\.\d+)? minutes", make_test), make_test
    assert re.search(r"`make test` is not needed to use the kit.*takes about \d+(\.\d+)? minutes", match[2], re.S)
