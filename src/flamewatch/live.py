"""Live mode: act on HN's event stream between the periodic cycles.

When the live source (:class:`~flamewatch.hn.livesource.LiveSource`) reports that ``maxitem`` moved, the
driver has the monitor fetch the new items at once and run the item rules (mentions, replies, follows) on
them; new comments join the watched trees as they arrive. When a watched list changes on the stream, the
stories that entered or climbed it are ranked and counted at once (rank events, and a new story's tree
is cached so its comments count from then on). The stories those comments joined are counted
again from their cached trees and their story rules evaluated, debounced by ``debounce`` seconds so that
a burst of comments costs one recount per story, and a level fires when the comment crossing it arrives.

The periodic cycle stays as it was: it reconciles what the stream cannot see (points, edits, deletions,
lists) and, whenever the stream is down or refused, it is the polling that covers for it. Both share the
monitor's stream cursor under its lock, so an item is never handled twice; a cycle's list fetch replaces
what the stream said, as the reconciliation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from .hn.livesource import MAXITEM, MODE, LiveSource
from .tasks import cancel_and_wait

__all__ = ["DEFAULT_DEBOUNCE", "LiveDriver", "LiveTarget"]

log = logging.getLogger("flamewatch.live")

#: How long touched stories wait to be recounted, so a burst of comments is one recount per story.
DEFAULT_DEBOUNCE = 0.25


class LiveTarget(Protocol):
    """What the driver asks of the monitor."""

    async def live_items(self, maxitem: int | None = None) -> set[int]:
        """Fetch and handle the new items up to ``maxitem``; return the watched stories they joined."""
        ...

    async def live_recount(self, story_ids: list[int]) -> int:
        """Count these stories again and run their story rules; return the events fired."""
        ...

    async def live_lists(self, lists: dict[str, list[int]]) -> int:
        """Take these watched lists' new ids; rank and count the stories that came in; return the events."""
        ...


class LiveDriver:
    """Run the monitor's live steps on every ``maxitem`` and watched list change until :meth:`close`.

    ``active()`` is asked before each step: a standby instance of a shared store must not move the cursor.
    """

    def __init__(self, target: LiveTarget, source: LiveSource, *, debounce: float = DEFAULT_DEBOUNCE,
                 active: Callable[[], bool] = lambda: True) -> None:
        self.target = target
        self.source = source
        self.debounce = debounce
        self.active = active
        self.steps = 0
        self.recounts = 0
        self.list_steps = 0
        self.failures = 0
        self._touched: set[int] = set()
        self._handled: int | None = None  # the maxitem the last finished step handled
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None
        self._lists: dict[str, list[int]] = {}  # lists changed and not yet taken (latest ids)
        self._lister: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Whether no recount or list step is waiting or running (everything seen so far is evaluated)."""
        return (not self._touched and not self._lists
                and all(task is None or task.done() for task in (self._flush, self._lister)))

    async def settled(self, maxitem: int) -> None:
        """Wait until a step has handled ``maxitem`` (or more) and every recount it caused is done."""
        while self._handled is None or self._handled < maxitem or not self.idle:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def start(self) -> None:
        """Open the source's streams and start following them."""
        self.source.start()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="live driver")

    async def close(self) -> None:
        """Stop following; a pending recount is dropped (the next cycle counts those stories anyway)."""
        for task in (self._task, self._flush, self._lister):
            await cancel_and_wait(task)
        self._task = self._flush = self._lister = None
        await self.source.close()

    async def run(self) -> None:
        """Wait for changes and handle each coalesced batch of them."""
        while True:
            changed = await self.source.changes()
            if not self.active():
                continue
            if MAXITEM in changed:  # first: a newly listed story's comments are then above the cursor
                await self._step()
            self._lists.update((name, self.source.lists[name]) for name in changed - {MAXITEM, MODE}
                               if name in self.source.lists)
            if self._lists and (self._lister is None or self._lister.done()):
                # Its own task: walking a newly listed story's tree must not hold up the next new items.
                self._lister = asyncio.get_running_loop().create_task(self._take_lists(), name="live lists")

    async def _take_lists(self) -> None:
        # Lists changed while one step runs are not lost: this task goes round again with their latest ids.
        while self._lists:
            lists, self._lists = self._lists, {}
            self.list_steps += 1
            try:
                await self.target.live_lists(lists)
            except Exception as exc:  # the next cycle fetches the lists and ranks them anyway
                self.failures += 1
                log.error("live: handling a change of %s failed (%s: %s); the next cycle ranks it",
                          ", ".join(sorted(lists)), type(exc).__name__, exc)
        self._lister = None
        self._notify()

    async def _step(self) -> None:
        self.steps += 1
        target = self.source.maxitem
        try:
            touched = await self.target.live_items(target)
        except Exception as exc:  # a store or rule failure: the cycle retries from the same cursor
            self.failures += 1
            log.error("live: handling new items failed (%s: %s); the next cycle picks them up",
                      type(exc).__name__, exc)
            return
        if touched:
            self._touched |= touched
            if self._flush is None or self._flush.done():
                self._flush = asyncio.get_running_loop().create_task(self._recount(), name="live recount")
        self._handled = target
        self._notify()

    async def _recount(self) -> None:
        # Stories touched while a recount runs are not lost: this task goes round again for them.
        while self._touched:
            await asyncio.sleep(self.debounce)
            ids, self._touched = sorted(self._touched), set()
            self.recounts += 1
            try:
                await self.target.live_recount(ids)
            except Exception as exc:
                self.failures += 1
                log.error("live: recounting %d stories failed (%s: %s); the next cycle counts them",
                          len(ids), type(exc).__name__, exc)
        self._flush = None  # done: idle as soon as this task ends, even before the loop sees it end
        self._notify()
