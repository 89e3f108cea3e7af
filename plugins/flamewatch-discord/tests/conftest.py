"""Fixtures of the Discord plugin's tests: a real aiohttp session and the fake webhook on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fake_discord import FakeDiscord

URL_ENV = "FW_TEST_DISCORD_WEBHOOK"


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_event_loop() -> None:
    # looptime calls get_event_loop() for sync tests, which on Python 3.11 creates a loop never closed
    # (a ResourceWarning under -W error). With no current loop set, nothing is created.
    asyncio.set_event_loop(None)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        monkeypatch.setenv(URL_ENV, fake.webhook_url)
        yield fake
