"""The ceiling row of ``make bench``: the simplest RSGI app on the same granian, one worker.

It awaits the request body and answers a fixed character, so its rate is what granian and a
Python callback cost with nothing of the mock in between:
``python -m granian --interface rsgi --workers 1 --port PORT bench.trivial_rsgi:app``.
"""

from __future__ import annotations

from typing import Any

_CHARACTER = (
    b'{"id":"ch_6918d62178e48191a0b1ae49be428a13","username":"hfspncadz.mooflapand",'
    b'"permalink":"https://sora.chatgpt.com/profile/hfspncadz.mooflapand",'
    b'"profile_picture_url":"https://videos.openai.com/az/files/00000000-b788-71f7-9de5-96555ff29024%2Fraw"}'
)
_HEADERS = [("content-type", "application/json")]


class App:
    """Reads the body, answers 200 with a fixed character."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        await protocol()
        protocol.response_bytes(200, _HEADERS, _CHARACTER)


app = App()
