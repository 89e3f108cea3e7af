"""Collect's second input: live mode's batches, between the cycles (see :mod:`flamewatch.live`).

A live batch (``CycleBatch.live``) is collected here instead of by :class:`~.collect.Collect`, then goes
through the same evaluate and record stages as a cycle's. Three kinds:

* **new items** (no ``ids``): ``maxitem`` moved, so the stream is polled now; the new items go to the item
  rules, their comments join the watched trees, and ``touched`` names the watched stories they joined;
* **recount** (``ids`` set): those stories are counted again (from their cached trees: one request per
  story) and stored as history, so their story rules see the comment that crossed a level;
* **lists** (``listed`` set): a watched list changed on the stream. Its new ids replace the remembered
  ones (so every live batch's ranks are the stream's), and the stories that entered it (and a watched
  user's that climbed in it) are counted now, so the rank rule's entered and level events fire before
  any cycle, and a newly listed story's tree is cached: its comments count from the next ``maxitem`` on.

:class:`Guards` keep a live batch and a cycle apart where they share state: one poll of the stream at a
time (its cursor), no recount during a cycle's ``begin_cycle``, one count of a story at a time (its
tree): a recount waits for the cycle's count of the stories it shares with it, not for all of them.
Evaluating and recording need no guard: a key fires once in the store whoever records it first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..crawl import CrawlResult, count_story
from ..hn import FetchError
from .batch import CycleBatch, PipelineSettings
from .collect import ListMemory, store_counts
from .guards import Guards

if TYPE_CHECKING:
    from ..hn import HNClient
    from ..incremental import IncrementalCounter
    from ..people import Watchlist
    from ..store import Store
    from ..stream import ItemStream

log = logging.getLogger("flamewatch.live")

__all__ = ["Guards", "LiveCollect"]


class LiveCollect:
    """The live batches' source: new items now, a recount of the stories they touched, or a list's change."""

    name = "collect (live)"

    def __init__(
        self,
        client: HNClient,
        store: Store,
        settings: PipelineSettings,
        *,
        counter: IncrementalCounter | None,
        stream: ItemStream | None,
        item_rules: bool,
        last_lists: ListMemory,
        guards: Guards,
        watchlist: Watchlist | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.counter = counter
        self.stream = stream
        self.item_rules = item_rules
        self.last_lists = last_lists
        self.guards = guards
        self.watchlist = watchlist

    async def __call__(self, batch: CycleBatch) -> CycleBatch:
        if batch.listed:
            batch.ids = self._take_lists(batch.listed)
        for name, ids in self.last_lists.items():  # ranks as last fetched or streamed (events name the list)
            for position, story_id in enumerate(ids, 1):
                batch.ranks.setdefault(story_id, {})[name] = position
        if batch.ids:
            await self._recount(batch)
        elif not batch.listed:
            await self._new_items(batch)
        return batch

    def _take_lists(self, listed: dict[str, list[int]]) -> list[int]:
        """Remember the streamed lists (trimmed to what is watched); return the stories due a count now.

        Those are the stories that entered a list (their trees are cached from now on) and, of those that
        climbed, a watched user's (a rank level may be crossed): one story dropping off the front page
        moves every story below it up, and the others' rules do not read ranks. A list no cycle has
        fetched yet is only remembered: the first cycle counts all of it anyway. A story that fell or
        stayed can fire nothing new (a key fires once), so it waits for the cycle.
        """
        watched = self._users_stories()
        due: dict[int, None] = {}
        for name, top in self.settings.watched_lists():
            if name not in listed:
                continue  # not streamed, or no longer watched since a reload
            got = listed[name][:top]
            before = self.last_lists.get(name)
            self.last_lists[name] = got
            if before is None:
                continue
            rank_before = {story_id: rank for rank, story_id in enumerate(before, 1)}
            for rank, story_id in enumerate(got, 1):
                was = rank_before.get(story_id)
                if was is None or (rank < was and story_id in watched):
                    due[story_id] = None
        return list(due)

    def _users_stories(self) -> set[int]:
        if self.watchlist is None:
            return set()
        return {s for user in self.watchlist.users.values() for s in user.stories}

    async def _new_items(self, batch: CycleBatch) -> None:
        if self.stream is None:
            return
        async with self.guards.stream:
            cursor = self.stream.cursor
            if batch.maxitem is not None and cursor is not None and batch.maxitem <= cursor:
                return  # a cycle's poll got there first (or the event is stale): nothing new, nothing asked
            try:
                polled = await self.stream.poll(batch.maxitem)
            except FetchError as exc:  # the cursor stays put: the next poll (live or cycle) covers these
                log.info("live: maxitem.json unavailable (%s)", exc)
                return
        if polled.gap and self.counter is not None:
            self.counter.forget_all()
        batch.streamed = len(polled.new)
        if self.item_rules:
            batch.new_items = list(polled.new)
        if self.counter is not None:
            owner_of = self.counter.owner_of
            batch.touched = {s for item in polled.new if (s := owner_of(item.id)) is not None}

    async def _count(self, story_id: int) -> CrawlResult:
        if self.counter is not None:
            async with self.guards.story(story_id):  # a cycle may be counting it: its tree, one count at a time
                return await self.counter.count(story_id)
        return await count_story(self.client, story_id, max_depth=self.settings.max_depth,
                                 max_items=self.settings.max_items)

    async def _recount(self, batch: CycleBatch) -> None:
        for story_id in batch.ids:
            try:
                # Per story, so a cycle's begin_cycle never waits for a whole list of new stories' walks.
                async with self.guards.count:
                    batch.results.append(await self._count(story_id))
            except Exception as exc:  # a broken story must not cost the others their levels
                log.warning("live: story %d: recount failed (%s: %s); the next cycle counts it",
                            story_id, type(exc).__name__, exc)
        await store_counts(self.store, batch)
