"""Pacing a Discord webhook by what Discord says: the ``X-RateLimit-*`` headers and a 429's ``retry_after``.

Discord tells every answer how many requests are left in the webhook's bucket (``X-RateLimit-Remaining``)
and when it refills (``X-RateLimit-Reset-After``, seconds). When none is left, the next request waits for
the refill instead of collecting a 429. On top of that, messages are spaced :data:`MIN_INTERVAL` apart:
a webhook may post about 30 messages a minute to a channel, a limit no header announces.

One :class:`WebhookPacer` per webhook on the running loop, shared by every instance posting to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from flamewatch import not_timed

#: Seconds between two messages through one webhook (30 a minute).
MIN_INTERVAL = 2.0
#: Longest a header or a 429 may hold the webhook (the core's retry waits the full time anyway).
MAX_HOLD_OFF = 3600.0


class WebhookPacer:
    """When one webhook may next be used, and a lock to take turns."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._next_at = 0.0

    @asynccontextmanager
    async def turn(self, interval: float = MIN_INTERVAL) -> AsyncIterator[None]:
        """Wait for the webhook's turn, run the body (one request), then keep it quiet ``interval`` s."""
        loop = asyncio.get_running_loop()
        async with not_timed():
            await self._lock.acquire()
        try:
            async with not_timed():
                delay = self._next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                yield
            finally:
                self.hold_off(interval)
        finally:
            self._lock.release()

    def hold_off(self, seconds: float) -> None:
        """Keep the webhook quiet for at least ``seconds`` from now."""
        now = asyncio.get_running_loop().time()
        self._next_at = max(self._next_at, now + min(max(0.0, seconds), MAX_HOLD_OFF))

    def learn(self, headers: Mapping[str, str]) -> None:
        """Read an answer's rate-limit headers: an empty bucket holds the webhook until it refills."""
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        reset_after = _number(headers.get("X-RateLimit-Reset-After"))
        if remaining is not None and remaining < 1 and reset_after is not None:
            self.hold_off(reset_after)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WebhookPacer]] = weakref.WeakKeyDictionary()


def webhook_pacer(url: str) -> WebhookPacer:
    """The pacer of webhook ``url`` (kept only as a digest: the URL holds the webhook's token)."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    table = _PACERS.setdefault(asyncio.get_running_loop(), {})
    return table.setdefault(key, WebhookPacer())
