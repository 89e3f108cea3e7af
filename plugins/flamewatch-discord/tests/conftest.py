"""Fixtures of the Discord plugin's tests: a real aiohttp session and the fake webhook on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_discord import FakeDiscord

from flamewatch.testing.fixtures import no_implicit_event_loop, session

__all__ = ["URL_ENV", "discord", "no_implicit_event_loop", "session"]

URL_ENV = "FW_TEST_DISCORD_WEBHOOK"


@pytest.fixture
async def discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        monkeypatch.setenv(URL_ENV, fake.webhook_url)
        yield fake
