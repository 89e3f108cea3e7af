"""A token bucket per ntfy server and access token, the way ntfy limits a visitor.

ntfy.sh lets a visitor make a burst of requests and then refills the allowance one request every few
seconds; past it, 429. Keeping the same bucket on our side means a flood of events is spread out
instead of refused. A 429 still holds the bucket for the wait the server asks (:meth:`Bucket.hold_off`).
Waits read the loop clock and happen inside :func:`flamewatch.not_timed`.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flamewatch import Secret, not_timed

MAX_HOLD_OFF = 3600.0


class Bucket:
    """``size`` requests at once, one more every ``refill_every`` seconds, and a lock to take turns."""

    def __init__(self, size: int, refill_every: float) -> None:
        self.size, self.refill_every = size, refill_every
        self._tokens = float(size)
        self._updated: float | None = None
        self._held_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        if self._updated is not None:
            self._tokens = min(self.size, self._tokens + max(0.0, now - self._updated) / self.refill_every)
        self._updated = now

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for a token (and the end of any hold), then run the body: one request."""
        loop = asyncio.get_running_loop()
        async with not_timed():
            await self._lock.acquire()
        try:
            async with not_timed():
                self._refill(loop.time())
                delay = max(self._held_until - loop.time(), (1 - self._tokens) * self.refill_every)
                if delay > 0:
                    await asyncio.sleep(delay)
                    self._refill(loop.time())
            self._tokens = max(0.0, self._tokens - 1)
            try:
                yield
            finally:
                # Refilling counts from the answer: the server took its token later than we did.
                self._updated = max(self._updated or 0.0, loop.time())
        finally:
            self._lock.release()

    def hold_off(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's wait); the server's bucket is empty, so is ours."""
        now = asyncio.get_running_loop().time()
        self._held_until = max(self._held_until, now + min(seconds, MAX_HOLD_OFF))
        self._tokens = 0.0
        self._updated = self._held_until


_BUCKETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Bucket]] = weakref.WeakKeyDictionary()


def server_bucket(server: str, token: Secret | None, size: int, refill_every: float) -> Bucket:
    """The bucket of one server and visitor (ntfy counts per access token, else per address)."""
    who = hashlib.sha256(repr(token).encode()).hexdigest()[:16]  # which secret, never its value
    table = _BUCKETS.setdefault(asyncio.get_running_loop(), {})
    return table.setdefault(f"{server}|{who}|{size}|{refill_every}", Bucket(size, refill_every))
