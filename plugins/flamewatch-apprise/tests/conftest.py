"""Fixtures of the Apprise plugin's tests: local JSON receivers that Apprise's json:// URLs post to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

URLS_ENV = "FW_TEST_APPRISE_URLS"


class Receiver:
    """An HTTP endpoint taking Apprise's json:// posts; it can fail the next requests with a status."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refused = 0
        self.fail_next: list[int] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"json://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if self.fail_next:
            self.refused += 1
            return web.Response(status=self.fail_next.pop(0))
        self.posts.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_event_loop() -> None:
    asyncio.set_event_loop(None)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    async with Receiver() as one, Receiver() as two:
        yield one, two
