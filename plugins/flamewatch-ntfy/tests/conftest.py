"""Fixtures of the ntfy plugin's tests: a real aiohttp session and the fake ntfy server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fake_ntfy import FakeNtfy

TOKEN_ENV = "FW_TEST_NTFY_TOKEN"
TOKEN = "tk_fakevalidtoken0000000000000"


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
async def ntfy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeNtfy]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with FakeNtfy(tokens={TOKEN}, protected={"private-alerts"}, burst=5, refill_every=5.0) as fake:
        yield fake
