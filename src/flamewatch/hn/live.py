"""One Firebase path followed over the event stream, kept alive through drops, stalls and refusals.

:class:`PathStream` opens ``GET <url>`` with ``Accept: text/event-stream`` (following Firebase's 307 to the
machine that serves the path), applies every ``put``/``patch`` to its copy of the value and hands the whole
value to ``on_value``. It is live from its first ``put`` until the connection ends; then it is polling (the
caller's periodic cycle does the work) until a new connection delivers again. What it survives:

* a drop or a server error: reconnect after a backoff with full jitter (``backoff`` doubling up to
  ``max_backoff``; reset once a connection has delivered);
* a stall: no byte (not even a keep-alive) within ``keepalive_window`` of loop time ends the connection;
* a refusal (a 4xx, an answer that is not an event stream, ``cancel``, ``auth_revoked``): try again only
  after ``refused_retry``;
* a hostile stream: events over ``max_event_bytes`` and malformed lines are skipped and counted (one
  warning line per connection and per minute at most), and more than ``max_events_per_second`` events pause
  the reading until the second is over, so a flood costs at most that many parses a second. Values are
  coalesced by the caller: ``on_value`` gets the latest value, never a queue of them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ..tasks import cancel_and_wait
from .sse import DEFAULT_MAX_EVENT_BYTES, EventParser, FirebaseEvent, apply_event, decode

__all__ = ["LiveStats", "PathStream", "Refused"]

log = logging.getLogger("flamewatch.hn.live")

#: Firebase sends a keep-alive about every 30 s; a connection silent for longer than this is stalled.
DEFAULT_KEEPALIVE_WINDOW = 45.0
DEFAULT_MAX_EVENTS_PER_SECOND = 200
#: How long a refused stream waits before it asks again (the periodic cycle covers the time).
DEFAULT_REFUSED_RETRY = 300.0
MAX_REDIRECTS = 3
#: How often at most one stream logs its malformed-line warning.
WARN_EVERY = 60.0

_STREAM_TYPE = "text/event-stream"


class Refused(Exception):
    """The server will not stream this path (a 4xx, not an event stream, cancel, auth_revoked)."""


class _Ended(Exception):
    """The connection ended or failed in a way worth an ordinary reconnect."""


@dataclass
class LiveStats:
    """What one stream saw since it was made."""

    connects: int = 0  # connections that delivered their first put
    drops: int = 0  # connections that ended after delivering (closed, failed, stalled)
    failures: int = 0  # attempts that failed before delivering
    stalls: int = 0
    refusals: int = 0
    events: int = 0  # put and patch events applied
    keepalives: int = 0
    malformed: int = 0  # lines and events skipped (oversized ones included)
    oversized: int = 0
    throttled: int = 0  # times the reading paused for the events-per-second bound


class PathStream:
    """Follow ``url`` over the event stream until :meth:`close`; see the module docstring.

    ``on_value(value)`` is called with the location's whole value after each change; ``on_mode(live)``
    when the stream turns live or stops being live. Both must be quick and must not raise.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        on_value: Callable[[Any], None],
        *,
        on_mode: Callable[[bool], None] | None = None,
        keepalive_window: float = DEFAULT_KEEPALIVE_WINDOW,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_events_per_second: int = DEFAULT_MAX_EVENTS_PER_SECOND,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        refused_retry: float = DEFAULT_REFUSED_RETRY,
        rng: random.Random | None = None,
    ) -> None:
        if keepalive_window <= 0 or backoff <= 0 or max_backoff < backoff or max_events_per_second < 1:
            raise ValueError(f"PathStream {url}: keepalive_window, backoff, events per second must be positive")
        self.session = session
        self.url = URL(url)
        self.on_value = on_value
        self.on_mode = on_mode
        self.keepalive_window = keepalive_window
        self.max_event_bytes = max_event_bytes
        self.max_events_per_second = max_events_per_second
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.refused_retry = refused_retry
        self.stats = LiveStats()
        self.live = False
        self.since = time.time()  # wall-clock time of the last change of `live`, for people to read
        self.last_error = ""
        self.value: Any = None
        self._rng = rng if rng is not None else random.Random()
        self._task: asyncio.Task[None] | None = None
        self._warned_at = -WARN_EVERY
        self._waiters: list[asyncio.Future[None]] = []

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start following in a task of the running loop (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"live {self.url.path}")

    async def close(self) -> None:
        """Stop following and close the connection."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._set_live(False, "closed")

    async def run(self) -> None:
        """Connect, read, reconnect, forever (until cancelled)."""
        attempt = 0
        while True:
            delivered_before = self.stats.connects
            try:
                await self._connect_once()
                delay = self._delay(0)  # the server closed a good stream: come back soon
            except Refused as exc:
                self.stats.refusals += 1
                self._lost(f"refused: {exc}")
                delay = self.refused_retry * (0.5 + self._rng.random() / 2)
            except (_Ended, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._lost(_describe(exc))
                delay = self._delay(attempt)
            if self.stats.connects > delivered_before:
                attempt = 0
            else:
                attempt += 1
            await asyncio.sleep(delay)

    # --- one connection ---------------------------------------------------------------------------

    async def _connect_once(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, connect=self.keepalive_window, sock_read=None)
        headers = {"Accept": _STREAM_TYPE, "Cache-Control": "no-cache"}
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            async with asyncio.timeout(self.keepalive_window):  # headers must come within the window too
                resp = await self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False)
            try:
                if resp.status in (301, 302, 303, 307, 308):
                    url = _redirect_target(url, resp.headers.get("Location"))
                    continue
                self._check_answer(resp)
                await self._read(resp)
                return
            finally:
                resp.release()
        raise _Ended(f"more than {MAX_REDIRECTS} redirects")

    def _check_answer(self, resp: aiohttp.ClientResponse) -> None:
        if 400 <= resp.status < 500 and resp.status not in (408, 429):
            raise Refused(f"HTTP {resp.status}")
        if resp.status != 200:
            raise _Ended(f"HTTP {resp.status}")
        if resp.content_type != _STREAM_TYPE:
            raise Refused(f"answered {resp.content_type or 'no content type'}, not an event stream")

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        parser = EventParser(self.max_event_bytes)
        loop = asyncio.get_running_loop()
        window_start, in_window = loop.time(), 0
        try:
            async with asyncio.timeout(self.keepalive_window) as deadline:
                while chunk := await resp.content.readany():
                    deadline.reschedule(loop.time() + self.keepalive_window)
                    for event in parser.feed(chunk):
                        self._handle(decode(event), parser)
                        in_window += 1
                        if in_window < self.max_events_per_second:
                            continue
                        if (now := loop.time()) - window_start < 1.0:  # a flood: pause until the second is over
                            self.stats.throttled += 1
                            await asyncio.sleep(window_start + 1.0 - now)
                            deadline.reschedule(loop.time() + self.keepalive_window)
                        window_start, in_window = loop.time(), 0
        except TimeoutError:
            self.stats.stalls += 1
            raise _Ended(f"stalled: nothing within {self.keepalive_window:g} s") from None
        finally:
            self._count_malformed(parser)
        raise _Ended("the server closed the stream")

    def _handle(self, event: FirebaseEvent | None, parser: EventParser) -> None:
        if event is None:
            parser.malformed += 1
        elif event.kind == "keep-alive":
            self.stats.keepalives += 1
        elif event.kind in ("cancel", "auth_revoked"):
            raise Refused(f"the server sent {event.kind}")
        else:
            self.value = apply_event(self.value, event)
            self.stats.events += 1
            if not self.live and event.kind == "put" and not event.path:
                self.stats.connects += 1
                self._set_live(True, "")
            if self.live:
                self.on_value(self.value)
        self._notify()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds; it is checked after every event and every change of state."""
        while not condition():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _notify(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # --- bookkeeping ------------------------------------------------------------------------------

    def _count_malformed(self, parser: EventParser) -> None:
        if not parser.malformed:
            return
        self.stats.malformed += parser.malformed
        self.stats.oversized += parser.oversized
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("stream %s: skipped %d malformed or oversized lines/events (%d in all)",
                        self.url.path, parser.malformed, self.stats.malformed)

    def _lost(self, reason: str) -> None:
        if self.live:
            self.stats.drops += 1
        else:
            self.stats.failures += 1
        self.last_error = reason
        self._set_live(False, reason)
        self._notify()

    def _set_live(self, live: bool, reason: str) -> None:
        if live == self.live:
            return
        self.live = live
        self.since = time.time()
        if live:
            log.info("stream %s: live", self.url.path)
        else:
            log.info("stream %s: not live (%s); polling covers it", self.url.path, reason)
        if self.on_mode is not None:
            self.on_mode(live)

    def _delay(self, attempt: int) -> float:
        """Full jitter: a uniform draw below the capped exponential step."""
        return self._rng.uniform(0.0, min(self.max_backoff, self.backoff * 2.0**min(attempt, 30)))


def _redirect_target(current: URL, location: str | None) -> URL:
    """Where Firebase sends us: the same scheme, on the same host or a sibling under its parent domain."""
    if not location:
        raise _Ended("a redirect without a Location")
    target = current.join(URL(location))
    origin_host, host = current.host or "", target.host or ""
    parent = origin_host.split(".", 1)[1] if origin_host.count(".") >= 2 else origin_host
    if target.scheme != current.scheme or not (host == origin_host or host.endswith("." + parent)):
        raise Refused(f"redirect to another site ({target.scheme}://{host}) not followed")
    return target


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
