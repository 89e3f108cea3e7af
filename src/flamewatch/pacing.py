"""Pacing a notifier to a service's rate limits: take turns, space requests, and honour ``Retry-After``.

A service that limits how fast it may be sent to (Slack: about one message a second per channel;
Telegram: one a second per chat and 20 a minute in a group; ntfy.sh: a bucket of requests) answers 429
to anything faster. A :class:`Pacer` keeps a notifier under the limit instead, and holds the target for
the wait a 429 names, so the next message does not collect one too::

    from flamewatch.pacing import Pace, fingerprint, shared_pacer

    async def send(self, event):
        pacer = shared_pacer(f"ntfy|{server}|{fingerprint(token)}", Pace(burst=60, refill_every=5.0))
        async with pacer.turn():                      # waits its turn, then one request
            async with self.ctx.session.post(url, json=payload) as response:
                if response.status == 429:
                    wait = pacer.hold_off(response.headers.get("Retry-After"), default=5.0)
                    raise DeliveryError("ntfy: rate limited", retry_after=wait)

The rules, all optional and all kept together: ``interval`` seconds from one answer to the next request;
at most ``window_limit`` requests in any ``window`` seconds (a sliding window); a bucket of ``burst``
requests refilled one every ``refill_every`` seconds; and :meth:`Pacer.hold_off`, which keeps the target
quiet for a server's ``Retry-After`` (seconds or an HTTP-date, capped at ``max_hold_off``).

Waits read the running loop's clock and sleep with :func:`asyncio.sleep` inside
:func:`flamewatch.not_timed` (waiting one's turn is not part of an attempt's timeout), so tests can run a
pacer on a fake loop clock (``looptime``) and see exact gaps without waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .notifier import not_timed, parse_retry_after

__all__ = ["DEFAULT_MAX_HOLD_OFF", "Pace", "Pacer", "fingerprint", "shared_pacer"]

#: The longest a ``Retry-After`` holds a target unless a pacer says otherwise (the core's own retry still
#: waits the full time the server asked for: the hold only keeps *other* messages from trying early).
DEFAULT_MAX_HOLD_OFF = 3600.0


@dataclass(frozen=True, slots=True)
class Pace:
    """The limits a :class:`Pacer` keeps to (see the module's docstring); every one is optional."""

    interval: float = 0.0
    window_limit: int | None = None
    window: float = 60.0
    burst: int | None = None
    refill_every: float = 1.0
    max_hold_off: float = DEFAULT_MAX_HOLD_OFF

    def __post_init__(self) -> None:
        if self.interval < 0 or self.window <= 0 or self.refill_every <= 0 or self.max_hold_off < 0:
            raise ValueError(f"pacing: interval and max_hold_off must be >= 0, window and refill_every > 0 ({self})")
        if (self.window_limit is not None and self.window_limit < 1) or (self.burst is not None and self.burst < 1):
            raise ValueError(f"pacing: window_limit and burst must be at least 1 ({self})")


class Pacer:
    """One rate-limited target (a channel, a chat, a webhook...): whose turn it is, and when it may be sent to.

    Use :func:`shared_pacer` to get the one every notifier instance sending to the same target shares;
    construct one directly for a target only one instance can reach.
    """

    def __init__(self, pace: Pace = Pace()) -> None:  # a Pace is frozen: one default is safe to share
        self.pace = pace
        self._lock = asyncio.Lock()
        self._next_at = 0.0  # loop time before which nothing is sent (interval, holds)
        self._recent: deque[float] = deque()  # answers within the sliding window
        self._tokens = float(self.pace.burst or 0)
        self._refilled_at: float | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait until the target may be sent to, run the body (one request), then count it.

        Turns are taken one at a time, in order. The spacing and the window count from the end of the
        body (the answer), so the gaps the service sees are at least what is counted here.
        """
        loop = asyncio.get_running_loop()
        async with not_timed():
            await self._lock.acquire()
        try:
            async with not_timed():
                # One wait suffices: only the holder of the turn sends; a hold that comes in meanwhile
                # applies to the next turn.
                delay = self._delay(loop.time())
                if delay > 0:
                    await asyncio.sleep(delay)
            self._take(loop.time())
            try:
                yield
            finally:
                self._answered(loop.time())
        finally:
            self._lock.release()

    def hold_off(self, wait: float | str | None, *, default: float | None = None) -> float | None:
        """Send nothing to the target for ``wait``: seconds, or a ``Retry-After`` header's value.

        The header may hold delta-seconds or an HTTP-date (:func:`flamewatch.parse_retry_after`); when
        ``wait`` is None or unreadable, ``default`` is used, and with no default nothing is held. The hold
        is capped at the pace's ``max_hold_off``. Returns the wait in seconds (uncapped: what the server
        asked for), for ``DeliveryError(..., retry_after=...)``; None when there was none.
        """
        seconds = parse_retry_after(wait) if isinstance(wait, str) else wait
        if seconds is None:
            seconds = default
        if seconds is None:
            return None
        now = asyncio.get_running_loop().time()
        self._next_at = max(self._next_at, now + min(max(0.0, seconds), self.pace.max_hold_off))
        if self.pace.burst is not None:  # the server's bucket is empty: so is ours, until the hold ends
            self._tokens, self._refilled_at = 0.0, self._next_at
        return seconds

    # --- the limits ---------------------------------------------------------------------------------

    def _delay(self, now: float) -> float:
        """Seconds until a request may go out at ``now``."""
        pace = self.pace
        delay = self._next_at - now
        if pace.window_limit is not None:
            while self._recent and self._recent[0] <= now - pace.window:
                self._recent.popleft()
            if len(self._recent) >= pace.window_limit:
                delay = max(delay, self._recent[0] + pace.window - now)
        if pace.burst is not None:
            self._refill(now)
            delay = max(delay, (1 - self._tokens) * pace.refill_every)
        return max(0.0, delay)

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None and self.pace.burst is not None:
            earned = max(0.0, now - self._refilled_at) / self.pace.refill_every
            self._tokens = min(float(self.pace.burst), self._tokens + earned)
        # Never backwards: a hold sets the refill to start when it ends.
        self._refilled_at = now if self._refilled_at is None else max(self._refilled_at, now)

    def _take(self, now: float) -> None:
        if self.pace.burst is not None:
            self._refill(now)
            self._tokens = max(0.0, self._tokens - 1)

    def _answered(self, now: float) -> None:
        pace = self.pace
        self._next_at = max(self._next_at, now + pace.interval)
        if pace.window_limit is not None:
            self._recent.append(now)
        if pace.burst is not None:
            # Refilling counts from the answer: the server took its token later than we did.
            self._refilled_at = max(self._refilled_at or 0.0, now)


# One table per event loop, because asyncio locks belong to one loop; a loop's table goes with it.
_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, Pace], Pacer]] = (
    weakref.WeakKeyDictionary()
)


def shared_pacer(key: str, pace: Pace) -> Pacer:
    """The pacer of the target ``key`` names, shared on the running loop by every caller with the same
    ``key`` and ``pace``.

    ``key`` should name the target as the service counts it (server, credentials, channel): two instances
    posting to one channel must get one pacer, or together they exceed the rate. Put no secret in it as
    is: :func:`fingerprint` tells secrets apart without keeping them.
    """
    table = _PACERS.setdefault(asyncio.get_running_loop(), {})
    pacer = table.get((key, pace))
    if pacer is None:
        pacer = table[(key, pace)] = Pacer(pace)
    return pacer


def fingerprint(secret: str) -> str:
    """A short digest that tells secrets apart (in a pacer's key) without keeping or showing them."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
