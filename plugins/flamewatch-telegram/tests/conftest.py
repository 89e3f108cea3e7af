"""Fixtures of the Telegram plugin's tests: a real aiohttp session and the fake Bot API on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fake_telegram import Chat, FakeTelegram

TOKEN_ENV = "FW_TEST_TELEGRAM_TOKEN"


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
async def tg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(chats={-1001: Chat("supergroup", topics={7}), 42: Chat("private")})
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    async with fake:
        yield fake
