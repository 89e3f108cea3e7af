"""Pacing to Telegram's limits: about one message a second per chat, and 20 a minute in a group.

Every notifier instance posting to one chat through one bot shares a :class:`ChatPacer`, so two
instances cannot together break the limits. The pacer reads the event loop's clock and waits with
:func:`asyncio.sleep` inside :func:`flamewatch.not_timed` (waiting one's turn is not part of an attempt's
timeout), so tests run it on a fake loop clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flamewatch import not_timed

#: Seconds between two messages to one chat.
CHAT_INTERVAL = 1.0
#: At most this many messages in any :data:`GROUP_WINDOW` seconds to one group or channel.
GROUP_LIMIT = 20
GROUP_WINDOW = 60.0
#: Longest a 429's ``retry_after`` may hold a chat (the core's own retry waits the full time anyway).
MAX_HOLD_OFF = 3600.0


class ChatPacer:
    """When one chat may next receive a message, and a lock to take turns."""

    def __init__(self, interval: float, window_limit: int | None, window: float) -> None:
        self.interval = interval
        self.window_limit = window_limit
        self.window = window
        self._lock = asyncio.Lock()
        self._next_at = 0.0
        self._recent: deque[float] = deque()  # when the last requests in the window were sent

    def _wait(self, now: float) -> float:
        """Seconds until a message may go out at ``now``."""
        delay = self._next_at - now
        if self.window_limit is not None:
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            if len(self._recent) >= self.window_limit:
                delay = max(delay, self._recent[0] + self.window - now)
        return max(0.0, delay)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait until the chat is free, run the body (one request), then keep the chat quiet a while."""
        loop = asyncio.get_running_loop()
        async with not_timed():
            await self._lock.acquire()
        try:
            async with not_timed():
                # One wait suffices: only the holder of the lock sends or holds the chat off.
                delay = self._wait(loop.time())
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                yield
            finally:
                # Both counted from the answer, so the gaps Telegram sees are at least what we count.
                self._recent.append(loop.time())
                self.hold_off(self.interval)
        finally:
            self._lock.release()

    def hold_off(self, seconds: float) -> None:
        """Keep the chat quiet for at least ``seconds`` from now (a 429's ``retry_after``)."""
        now = asyncio.get_running_loop().time()
        self._next_at = max(self._next_at, now + min(seconds, MAX_HOLD_OFF))


# One table per event loop: asyncio locks belong to one loop, and a loop's table goes with it.
_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ChatPacer]] = weakref.WeakKeyDictionary()


def chat_pacer(api_url: str, token: str, chat: int | str, *, group: bool) -> ChatPacer:
    """The pacer of ``chat`` reached with bot ``token``, shared by every instance on the running loop."""
    # The token is kept only as a digest: enough to tell two bots apart, useless to anyone reading memory dumps.
    key = f"{api_url}|{hashlib.sha256(token.encode()).hexdigest()[:16]}|{chat}"
    table = _PACERS.setdefault(asyncio.get_running_loop(), {})
    pacer = table.get(key)
    if pacer is None:
        pacer = table[key] = ChatPacer(CHAT_INTERVAL, GROUP_LIMIT if group else None, GROUP_WINDOW)
    return pacer
