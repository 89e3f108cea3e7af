"""The workers that fetch every item of every tree walk sharing one HN client.

A crawl used to start one task per kid it fetched, after reserving the kid's request slot. That is the
seed's fan-out made safe, but it costs a task, a done-callback and a semaphore wait per item: about a
fifth of a crawl's CPU on top of the HTTP exchange itself. The walk pool does the same work the way the
strictest baseline does it: at most ``limit`` long-lived worker loops (``limit`` is the client's
``max_inflight``), each taking the next kid from a shared queue of pending work, fetching it and handing
the item back to the walk it belongs to. Workers are started when work arrives and end when the queue is
empty, so an idle pool holds no task at all.

Pending work is served first in, first out: the walk goes breadth-first, level by level, over all the
walks at once. That keeps every worker busy to the end. Served last in, first out (depth-first), the
oldest entries, the top-level replies of the first stories, came last, and their subtrees were then
found one round trip per level with most workers idle: at 20 ms per request the crawl ran 2-4% slower.
Pending work is a few machine words per kid not yet fetched (an entry points at the parent's own kid
tuple), a small fraction of what the items themselves cost while they are parsed.

What a walk must provide is :class:`Walk`. :class:`~flamewatch.crawl.StoryCrawl` is the one in the
project; :func:`pool_for` gives the pool shared by every walk on one client.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .errors import FetchError

if TYPE_CHECKING:
    from .hn import HNClient, Item
    from .hn.item import Walked

__all__ = ["Walk", "WalkPool", "pool_for"]


class Walk(Protocol):
    """One tree walk whose fetches a :class:`WalkPool` runs.

    For every kid the pool takes from the walk's pending work it calls :meth:`admit` and then, if the
    kid was admitted, exactly one of :meth:`arrived`, :meth:`fetch_failed` or :meth:`broke`. These are
    plain functions called from a worker: they must not block, and new pending work found in an item
    goes back through :meth:`WalkPool.add`.
    """

    client: HNClient

    def admit(self, item_id: int) -> bool:
        """Whether to fetch ``item_id`` (False for an item already visited or over a cap)."""

    def arrived(self, item_id: int, depth: int, item: Item | Walked | None) -> None:
        """``item_id`` was fetched (``None``: HN answered ``null``). Below the root (``depth`` > 0) it comes
        from :meth:`~flamewatch.hn.HNClient.walked`: a well-formed comment is ``(deleted, dead, kids)``."""

    def fetch_failed(self, item_id: int, error: FetchError) -> None:
        """``item_id`` could not be fetched, even after the client's retries."""

    def broke(self, item_id: int, error: Exception) -> None:
        """Handling ``item_id`` raised ``error``: a bug or data nobody foresaw; its subtree is lost."""


# One entry of pending work: [walk, kid ids, index of the next kid to take, depth of those kids]. A list,
# not a tuple: the index moves as kids are taken, and the entry leaves the queue with its last kid.
_Frame = list[Any]


class WalkPool:
    """At most ``limit`` workers fetching, for any number of walks, the kids those walks hand in."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames: deque[_Frame] = deque()
        self._queued = 0  # kids in the queue not taken yet
        # Every live worker and the walk whose item it is fetching (None before its first item). Only
        # a fetch awaits, so whenever another coroutine runs, each worker is inside one or not started.
        self._serving: dict[asyncio.Task[None], Walk | None] = {}

    @property
    def workers(self) -> int:
        """Worker tasks alive now (never more than :attr:`limit`)."""
        return len(self._serving)

    def add(self, walk: Walk, kids: Sequence[int], depth: int) -> None:
        """Queue ``kids`` (at ``depth``) of ``walk`` for fetching, after the work already queued."""
        if not kids:
            return
        self._frames.append([walk, kids, 0, depth])
        self._queued += len(kids)
        if len(self._serving) < self.limit:  # else every worker is alive already (the usual case mid-crawl)
            self._spawn()

    async def abandon(self, walk: Walk) -> None:
        """Forget ``walk``'s pending kids, cancel its fetches in progress and wait until they have ended."""
        kept: list[_Frame] = []
        for frame in self._frames:
            if frame[0] is walk:
                self._queued -= len(frame[1]) - frame[2]
            else:
                kept.append(frame)
        self._frames.clear()
        self._frames.extend(kept)  # in place: the workers hold this deque
        idle_too = not kept  # nothing left for a worker that has not started yet: let it go as well
        ending = [task for task, serving in self._serving.items()
                  if serving is walk or (idle_too and serving is None)]
        for task in ending:
            task.cancel()  # each one's _ended starts a replacement if other walks' kids are waiting
        await asyncio.gather(*ending, return_exceptions=True)

    def _spawn(self) -> None:
        missing = min(self._queued, self.limit) - len(self._serving)
        if missing <= 0:
            return
        loop = asyncio.get_running_loop()
        for _ in range(missing):
            task = loop.create_task(self._work())
            if not task.done():  # an eager task factory (3.12+) may have run it to the end already
                self._serving.setdefault(task, None)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A worker leaves _serving itself as it ends, but one cancelled before its first step never ran
        # its body: it leaves here, or it would be counted for ever and keep replacements from starting.
        self._serving.pop(task, None)
        if task.cancelled() and self._queued:
            self._spawn()  # a cancelled worker may leave other walks' kids without one

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        frames, serving = self._frames, self._serving
        try:
            while frames:
                frame = frames[0]
                walk, kids, index, depth = frame
                if index + 1 == len(kids):
                    frames.popleft()
                else:
                    frame[2] = index + 1
                self._queued -= 1
                kid = kids[index]
                if not walk.admit(kid):
                    continue
                serving[me] = walk
                try:
                    client = walk.client
                    walk.arrived(kid, depth, await (client.walked(kid) if depth else client.item(kid)))
                except FetchError as exc:
                    walk.fetch_failed(kid, exc)
                except Exception as exc:  # never lose the worker, or every walk waiting on it hangs
                    walk.broke(kid, exc)
        finally:
            serving.pop(me, None)


_pools: weakref.WeakKeyDictionary[HNClient, WalkPool] = weakref.WeakKeyDictionary()


def pool_for(client: HNClient) -> WalkPool:
    """The pool every walk on ``client`` shares, so all of them together stay within its ``max_inflight``.

    The pool holds no reference to the client (a walk carries it), so it goes away with the client.
    """
    pool = _pools.get(client)
    if pool is None:
        pool = _pools[client] = WalkPool(client.max_inflight)
    return pool
