"""Request slots handed out by priority: a counting semaphore whose waiters are served best first.

The crawl asks for a slot per item with the item's depth as its priority. Serving deeper items first
walks each tree depth-first, so long reply chains (a round trip per level, one after the other) start
early and the wide, shallow rest fills the free slots around them; first come, first served walked
breadth-first and left a long tail of lone deep chains at the end of a cycle, with most slots idle.
"""

from __future__ import annotations

import asyncio
import heapq

__all__ = ["Slots"]


class Slots:
    """``limit`` slots; :meth:`acquire` waits for one, higher ``priority`` first, FIFO among equals."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = 0

    async def acquire(self, priority: int = 0) -> None:
        """Take a slot, waiting behind every waiter of higher (or equal, earlier) priority."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, self._order, waiter))
        self._order += 1
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """Give a slot back: to the best waiter still waiting, else to the free pool."""
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
