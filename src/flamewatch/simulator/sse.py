"""The simulator's event stream: Firebase's REST streaming on ``maxitem.json`` and the story lists.

A GET with ``Accept: text/event-stream`` on one of those paths is answered as Firebase answers it: a
``put`` with the whole value at path ``/``, then a ``put`` (or, for a list where few places changed, a
``patch`` of those places) on every change, and a ``keep-alive`` when nothing changed for
``StreamFaults.keepalive`` seconds. The world has no change callbacks, so :class:`StreamHub` looks at the
streamed values every ``check_every`` seconds while anyone listens, and at once on :meth:`StreamHub.poke`
(call it after changing the world to skip that wait).

Faults (:class:`StreamFaults`, changeable while the server runs): ``refuse`` answers plain JSON as a server
without streaming would; ``stall`` keeps connections open and silent; ``burst`` sends every step of a
``maxitem`` move as its own event; ``flood`` repeats each event that many extra times; ``hostile`` mixes
malformed lines and an oversized event into the stream; ``drop_after`` closes each connection after that
many change events, and :meth:`StreamHub.drop_all` drops every open one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .lists import LIST_LIMIT, LIST_NAMES
from .world import World

__all__ = ["StreamFaults", "StreamHub", "StreamStats", "wants_stream"]

STREAM_TYPE = "text/event-stream"
#: How much junk one ``hostile`` event carries (over the client's default bound of 256 KB).
HOSTILE_BYTES = 300_000


@dataclass
class StreamFaults:
    """Faults of the event stream (see the module docstring); all off by default."""

    keepalive: float = 30.0
    refuse: bool = False
    stall: bool = False
    burst: bool = False
    flood: int = 0
    hostile: bool = False
    drop_after: int | None = None


@dataclass
class StreamStats:
    """What the streams did."""

    connections: int = 0
    open: int = 0
    events: int = 0
    keepalives: int = 0
    drops: int = 0
    refused: int = 0


def wants_stream(request: web.Request) -> bool:
    """Whether a request asks for the event stream."""
    return STREAM_TYPE in request.headers.get("Accept", "")


@dataclass(eq=False)
class _Listener:
    name: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False


class StreamHub:
    """Serves the streams of one simulator and tells its listeners when the world changed."""

    def __init__(
        self,
        world: World,
        faults: Callable[[], StreamFaults],
        latency: Callable[[], float],
        wait: Callable[[float], Awaitable[None]],
        *,
        check_every: float = 0.01,
    ) -> None:
        self.world = world
        self._faults = faults
        self.stats = StreamStats()
        self.check_every = check_every
        self._latency = latency
        self._wait = wait
        self._listeners: set[_Listener] = set()
        self._seen: dict[str, Any] = {}
        self._checker: asyncio.Task[None] | None = None
        self.closing = asyncio.Event()

    @property
    def faults(self) -> StreamFaults:
        """The stream faults in force (read from the server's `Faults` on every use)."""
        return self._faults()

    def value(self, name: str) -> Any:
        """The streamed value of ``name`` (``maxitem`` or a list name) as the world holds it now."""
        if name == "maxitem":
            return self.world.maxitem
        return list(self.world.lists.get(name, [])[:LIST_LIMIT])

    def poke(self) -> None:
        """Look at the world now and wake the listeners whose value changed."""
        for name in {listener.name for listener in self._listeners}:
            now = self.value(name)
            if self._seen.get(name) != now:
                self._seen[name] = now
                for listener in self._listeners:
                    if listener.name == name:
                        listener.wake.set()

    def drop_all(self) -> int:
        """Drop every open stream connection (as a network failure would); returns how many."""
        for listener in self._listeners:
            listener.dropped = True
            listener.wake.set()
        return len(self._listeners)

    async def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closing.set()
        self.drop_all()
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker

    async def handle(self, request: web.Request, name: str) -> web.StreamResponse:
        """Answer a stream request on ``name``; returns when the connection ends."""
        if name != "maxitem" and name not in LIST_NAMES:
            raise web.HTTPBadRequest(text="streams serve maxitem.json and the story lists\n")
        if self.faults.refuse:
            self.stats.refused += 1
            return web.Response(body=json.dumps(self.value(name)).encode(), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": STREAM_TYPE, "Cache-Control": "no-cache"})
        await resp.prepare(request)
        listener = _Listener(name)
        self._listeners.add(listener)
        self.stats.connections += 1
        self.stats.open += 1
        self._ensure_checker()
        try:
            await self._serve(resp, listener)
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            self._listeners.discard(listener)
            self.stats.open -= 1
        if listener.dropped and request.transport is not None:
            self.stats.drops += 1
            request.transport.close()  # abrupt, as a network failure: no clean end of the chunked body
        return resp

    async def _serve(self, resp: web.StreamResponse, listener: _Listener) -> None:
        last = self.value(listener.name)
        await self._send(resp, "put", {"path": "/", "data": last})
        changes = 0
        while not listener.dropped and not self.closing.is_set():
            try:
                async with asyncio.timeout(self.faults.keepalive):
                    await listener.wake.wait()
            except TimeoutError:
                if not self.faults.stall:
                    await self._send(resp, "keep-alive", None)
                continue
            listener.wake.clear()
            if listener.dropped or self.faults.stall:
                continue
            now = self.value(listener.name)
            if now == last:
                continue
            if (latency := self._latency()) > 0:
                await self._wait(latency)  # the event travels as long as an answer would
            for event, data in _changes(listener.name, last, now, burst=self.faults.burst):
                await self._send(resp, event, data)
            last = now
            changes += 1
            if self.faults.drop_after is not None and changes >= self.faults.drop_after:
                listener.dropped = True

    async def _send(self, resp: web.StreamResponse, event: str, data: Any) -> None:
        faults = self.faults
        if faults.hostile:
            junk = b"x" * HOSTILE_BYTES
            await resp.write(b"this is not sse\nevent: put\ndata: {not json\n\nevent: put\ndata: " + junk + b"\n\n")
        body = json.dumps(data, separators=(",", ":")).encode()
        frame = b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"
        await resp.write(frame * (1 + faults.flood))
        if event == "keep-alive":
            self.stats.keepalives += 1
        else:
            self.stats.events += 1 + faults.flood

    def _ensure_checker(self) -> None:
        if self._checker is None or self._checker.done():
            self._checker = asyncio.get_running_loop().create_task(self._check(), name="sim stream checker")

    async def _check(self) -> None:
        while self._listeners:
            self.poke()
            await asyncio.sleep(self.check_every)
        self._seen.clear()


def _changes(name: str, old: Any, new: Any, *, burst: bool) -> list[tuple[str, Any]]:
    """The events that carry a change from ``old`` to ``new``."""
    if name == "maxitem":
        if burst and isinstance(old, int) and new > old:
            return [("put", {"path": "/", "data": value}) for value in range(old + 1, new + 1)]
        return [("put", {"path": "/", "data": new})]
    if len(old) == len(new):
        diff = {str(i): v for i, (u, v) in enumerate(zip(old, new, strict=True)) if u != v}
        if len(diff) * 2 < len(new):
            return [("patch", {"path": "/", "data": diff})]
    return [("put", {"path": "/", "data": new})]
