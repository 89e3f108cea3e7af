"""Per-channel pacing for the Slack notifier: Slack accepts about one message a second per channel.

Every notifier instance that posts to the same channel (same API, token and channel, or same webhook)
shares one :class:`ChannelPacer`, so two instances cannot together exceed the rate. The pacer reads the
event loop's clock and waits with :func:`asyncio.sleep`, so tests can run it on a fake loop clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flamewatch import not_timed

#: Longest wait a ``Retry-After`` may impose on a channel's later messages (the core waits too).
MAX_HOLD_OFF = 60.0


class ChannelPacer:
    """The next time (loop clock) one channel may receive a message, and a lock to take turns."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._next_at = 0.0

    @asynccontextmanager
    async def turn(self, interval: float) -> AsyncIterator[None]:
        """Wait until the channel is free, run the body, then keep the channel quiet for ``interval`` s."""
        loop = asyncio.get_running_loop()
        # Waiting for the channel is not part of the attempt: the delivery timeout bounds the request.
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
                # Counted from the end of the request, so the gap seen by Slack is at least ``interval``.
                self.hold_off(interval)
        finally:
            self._lock.release()

    def hold_off(self, seconds: float) -> None:
        """Keep the channel quiet for at least ``seconds`` from now (capped at :data:`MAX_HOLD_OFF`)."""
        now = asyncio.get_running_loop().time()
        self._next_at = max(self._next_at, now + min(seconds, MAX_HOLD_OFF))


# One table per event loop, because asyncio locks belong to one loop; a loop's table goes with it.
_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ChannelPacer]] = weakref.WeakKeyDictionary()


def channel_pacer(key: str) -> ChannelPacer:
    """The pacer of the channel ``key`` names, shared by every instance on the running loop."""
    table = _PACERS.setdefault(asyncio.get_running_loop(), {})
    return table.setdefault(key, ChannelPacer())


def fingerprint(secret: str) -> str:
    """A short digest that tells secrets apart (in a pacer key) without keeping or showing them."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
