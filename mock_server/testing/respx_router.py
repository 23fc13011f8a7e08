"""A respx router that answers httpx calls to the relay from the in-process mock, no socket.

Requests to ``{base}/sora/v1/characters`` (any method, so a GET earns the mock's 405) for each
base URL go straight to the mock's endpoint core (:mod:`mock_server.mock.core`, the same one
``sora-mock serve`` and :func:`mock_server.mock.app.create_app` answer with); every other request fails
as unmocked, so nothing slips out to the network. Works for ``httpx.Client`` and
``httpx.AsyncClient`` alike.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import respx
from flask import Flask

from ..contract.http import body_size_verdict
from ..contract.spec import ENDPOINT_PATH, RELAY_BASE_URL
from ..mock.app import create_app
from ..mock.compose import composition_of
from ..mock.config import MockConfig
from ..mock.core import Endpoint, Request
from .sora_server import MockHandle, build_config

__all__ = ["RELAY_BASE_URL", "SoraRouter", "core_answer", "default_base_urls"]


def default_base_urls() -> tuple[str, ...]:
    """The relay's base URL, plus ``SORA_BASE_URL`` when that is set to another one."""
    urls = [RELAY_BASE_URL]
    extra = os.environ.get("SORA_BASE_URL", "").strip().rstrip("/")
    if extra and extra != RELAY_BASE_URL:
        urls.append(extra)
    return tuple(urls)


def core_answer(endpoint: Endpoint, request: httpx.Request, script_name: str = "") -> httpx.Response:
    """Answer an httpx request for the endpoint path with the endpoint core, as its server would.

    The answer's delay is slept; a dropped connection surfaces as :class:`httpx.RemoteProtocolError`,
    what an httpx client sees when a server closes the connection unanswered.
    """
    path = request.url.path
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :] or "/"
    content = request.content
    refusal = body_size_verdict(None, len(content), endpoint.max_body_bytes)
    headers = tuple(request.headers.multi_items())
    answer = endpoint.handle(Request(request.method, path, headers, None if refusal else content, "", refusal))
    if answer.delay:
        time.sleep(answer.delay)
    if answer.drop:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    return httpx.Response(answer.status, headers=answer.headers, content=answer.body, request=request)


class SoraRouter(respx.MockRouter, MockHandle):
    """A :class:`respx.MockRouter` whose relay routes are answered by an in-process mock.

    Use it like any respx router (``with SoraRouter() as router:``, add more routes of your own);
    it also has the mock helpers: ``.requests``, ``.characters``, ``.reset()``, ``.fail_next()``,
    ``.drop_next()``, ``.token``. Unmatched requests raise (``assert_all_mocked``).
    """

    def __init__(
        self,
        config: MockConfig | dict[str, Any] | None = None,
        *,
        app: Flask | None = None,
        base_urls: Sequence[str] | None = None,
        assert_all_called: bool = False,
        assert_all_mocked: bool = True,
        base_url: str | None = None,
        using: Any = respx.router.DEFAULT,
    ) -> None:
        respx.MockRouter.__init__(
            self,
            assert_all_called=assert_all_called,
            assert_all_mocked=assert_all_mocked,
            base_url=base_url,
            using=using,
        )
        if app is None:
            app = create_app(build_config(config))
        MockHandle.__init__(self, app)
        self._stopping = False
        self.base_urls = tuple(base_urls) if base_urls is not None else default_base_urls()
        for base in self.base_urls:
            self._add_relay_route(base)

    def __repr__(self) -> str:
        return f"SoraRouter(base_urls={list(self.base_urls)!r})"

    def _add_relay_route(self, base: str) -> None:
        parts = urlsplit(base.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be an absolute http(s) URL; got {base!r}")
        prefix = parts.path.rstrip("/")

        def answer(request: httpx.Request) -> httpx.Response:
            return core_answer(composition_of(self._app).endpoint, request, script_name=prefix)

        path = "/+".join(re.escape(part) for part in ENDPOINT_PATH.split("/"))  # doubled slashes merge, as served
        pattern = rf"{re.escape(f'{parts.scheme}://{parts.netloc}{prefix}')}{path}(\?.*)?$"
        self.route(url__regex=pattern).mock(side_effect=answer)

    def __enter__(self) -> SoraRouter:
        respx.MockRouter.__enter__(self)
        return self

    def reset(self) -> None:
        """Clear respx's call records and the mock's journal, characters and faults."""
        respx.MockRouter.reset(self)
        if hasattr(self, "_app") and not self._stopping:
            MockHandle.reset(self)

    def stop(self, clear: bool = True, reset: bool = True, quiet: bool = False) -> None:
        """Stop patching; the mock's journal and characters stay readable afterwards."""
        self._stopping = True
        try:
            respx.MockRouter.stop(self, clear=clear, reset=reset, quiet=quiet)
        finally:
            self._stopping = False
