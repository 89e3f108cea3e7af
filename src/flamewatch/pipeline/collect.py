"""Collect: which stories are watched, the new items from the stream, and every watched story's count.

The first stage of a cycle. It asks HN for the watched lists (a list that cannot be fetched is replaced
by its previous cycle's ids), adds the followed threads, follows the stream of new items (their comments
join the watched trees, so counts stay exact), counts each story (the incremental counter or a full
walk) and reads each story's count before this cycle; record writes the new counts as history.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..crawl import CrawlResult, count_story
from ..hn import FetchError
from ..store import CountSample
from .batch import CycleBatch, PipelineSettings
from .guards import Guards

if TYPE_CHECKING:
    from ..dispatch import Dispatcher
    from ..hn import HNClient
    from ..incremental import IncrementalCounter
    from ..people import Watchlist
    from ..store import Store
    from ..stream import ItemStream

log = logging.getLogger("flamewatch.monitor")

__all__ = ["Collect", "Guards", "ListMemory", "store_counts", "take_counts"]

#: What the last successful fetch of each list gave: name -> ids (kept across cycles and rebuilds).
ListMemory = dict[str, list[int]]


class Collect:
    """The cycle's source: watched ids, new items and counts."""

    name = "collect"

    def __init__(
        self,
        client: HNClient,
        store: Store,
        dispatcher: Dispatcher,
        settings: PipelineSettings,
        *,
        counter: IncrementalCounter | None,
        stream: ItemStream | None,
        watchlist: Watchlist | None,
        item_rules: bool,
        last_lists: ListMemory,
        guards: Guards | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.counter = counter
        self.stream = stream
        self.watchlist = watchlist
        self.item_rules = item_rules  # whether any active rule reads new items (else they are not kept)
        self.last_lists = last_lists
        self.guards = guards if guards is not None else Guards()

    async def __call__(self, batch: CycleBatch) -> CycleBatch:
        await self._story_ids(batch)
        # `flamewatch silence add` from another process applies from this cycle on (the pump reads them).
        await self.dispatcher.refresh_silences()
        async with self.guards.stream:  # live mode polls the same cursor between cycles
            await self._follow_stream(batch)
        if self.counter is not None:
            async with self.guards.count:  # ...and recounts the stories new comments joined: not meanwhile
                await self.counter.begin_cycle(batch.ids)
        await self._count_all(batch)
        await take_counts(self.store, batch)  # record writes them, with the cursor, in one transaction
        return batch

    async def _count_all(self, batch: CycleBatch) -> None:
        outcomes = await asyncio.gather(*(self._count(i) for i in batch.ids), return_exceptions=True)
        for story_id, outcome in zip(batch.ids, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                log.error("story %d: count failed: %s: %s", story_id, type(outcome).__name__, outcome)
                batch.results.append(CrawlResult(story_id, failed=1, errors=[str(outcome)]))
            else:
                batch.results.append(outcome)

    async def _count(self, story_id: int) -> CrawlResult:
        if self.counter is not None:
            async with self.guards.story(story_id):  # a live recount of this story waits for this count only
                return await self.counter.count(story_id)
        return await count_story(
            self.client, story_id, max_depth=self.settings.max_depth, max_items=self.settings.max_items
        )

    async def _story_ids(self, batch: CycleBatch) -> None:
        """The watched ids: every watched list (a story on several counted once) and the followed threads."""
        ids: dict[int, None] = {}
        for name, top in self.settings.watched_lists():
            try:
                got = (await self.client.story_ids(name))[:top]
            except FetchError as exc:
                if name not in self.last_lists:
                    raise
                got = self.last_lists[name]
                # One failed list request must not cost a whole cycle: the front page moves slowly.
                log.warning("%s unavailable (%s): counting the previous cycle's %d stories", name, exc, len(got))
            self.last_lists[name] = got
            for position, story_id in enumerate(got, 1):
                batch.ranks.setdefault(story_id, {})[name] = position
                ids[story_id] = None
        if self.watchlist is not None:
            for story_id in await self.watchlist.story_ids(self.client, batch.now):
                ids.setdefault(story_id, None)
        batch.ids = list(ids)

    async def _follow_stream(self, batch: CycleBatch) -> None:
        """Poll the stream of new items (their comments join the watched trees before the counts)."""
        if self.stream is None:
            return
        try:
            polled = await self.stream.poll(save=False)  # record writes the cursor with the samples
        except FetchError as exc:
            # The cursor stays put, so the next cycle's poll covers this one's items too.
            log.warning("maxitem.json unavailable (%s): new items are followed next cycle", exc)
            return
        if polled.gap and self.counter is not None:
            self.counter.forget_all()  # the gap's comments are unknown: walk every watched story again
        batch.streamed = len(polled.new)
        if self.item_rules:
            # Existing replies to a watched user come first, once, when --backfill asked for them.
            backfill = self.watchlist.take_backfill() if self.watchlist is not None else []
            batch.new_items = [*backfill, *polled.new]


async def take_counts(store: Store, batch: CycleBatch) -> None:
    """Each story's count before this one (kept aside) and this cycle's samples (``batch.samples``)."""
    counted = [r for r in batch.results if r.story is not None and r.story.type in (None, "story")]
    if not counted:
        return
    batch.previous = await store.latest(r.story_id for r in counted)
    batch.samples = [
        CountSample(r.story_id, batch.now, r.comments, r.story.score or 0, r.story.descendants, r.partial)
        for r in counted if r.story is not None
    ]


async def store_counts(store: Store, batch: CycleBatch) -> None:
    """Keep each story's count as history now (the rules read it); the counts before are kept aside."""
    await take_counts(store, batch)
    await store.add_snapshots(batch.samples)
    batch.samples = []
