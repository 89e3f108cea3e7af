"""Fixtures of the Apprise plugin's tests: local JSON receivers that Apprise's json:// URLs post to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from flamewatch.testing import FakeService
from flamewatch.testing.fixtures import no_implicit_event_loop, session

__all__ = ["URLS_ENV", "Receiver", "no_implicit_event_loop", "receivers", "session"]

URLS_ENV = "FW_TEST_APPRISE_URLS"


class Receiver(FakeService):
    """An HTTP endpoint taking Apprise's json:// posts (``fail_next`` refuses the next ones with a status)."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{path:.*}", self._handle)

    @property
    def json_url(self) -> str:
        """The Apprise URL that posts here."""
        return "json" + self.url.removeprefix("http") + "/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    async with Receiver() as one, Receiver() as two:
        yield one, two
