"""Fixtures of the ntfy plugin's tests: a real aiohttp session and the fake ntfy server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_ntfy import FakeNtfy

from flamewatch.testing.fixtures import no_implicit_event_loop, session
from flamewatch_ntfy import NtfyNotifier

__all__ = ["TOKEN", "TOKEN_ENV", "Paced", "no_implicit_event_loop", "ntfy", "session"]

TOKEN_ENV = "FW_TEST_NTFY_TOKEN"
TOKEN = "tk_fakevalidtoken0000000000000"


class Paced(NtfyNotifier):
    """The notifier with the fake's bucket (ntfy.sh's is 60 requests)."""

    bucket_size = 5


@pytest.fixture
async def ntfy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeNtfy]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    fake = FakeNtfy(tokens={TOKEN}, protected={"private-alerts"}, burst=Paced.bucket_size, refill_every=5.0)
    async with fake:
        yield fake
