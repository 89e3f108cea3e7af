"""Fixtures of the Telegram plugin's tests: a real aiohttp session and the fake Bot API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_telegram import Chat, FakeTelegram

from flamewatch.testing.fixtures import no_implicit_event_loop, session

__all__ = ["TOKEN_ENV", "no_implicit_event_loop", "session", "tg"]

TOKEN_ENV = "FW_TEST_TELEGRAM_TOKEN"


@pytest.fixture
async def tg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(chats={-1001: Chat("supergroup", topics={7}), 42: Chat("private")})
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    async with fake:
        yield fake
