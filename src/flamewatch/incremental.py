"""Incremental counting: steady-state cycles cost little more than the stories that changed.

Per watched story we keep the tree from the last walk (item id -> status and kids). Each cycle:

1. ``/v0/updates.json`` names recently changed items (one request for the whole cycle).
2. A story that is cached, complete, re-checked recently, and neither it nor any item of its tree is
   named in the updates costs *no request at all*: its last count stands.
3. Otherwise the story item is fetched. If its ``kids`` and ``descendants`` are unchanged and no item
   of its cached tree is named in the updates, the cached count stands (one request).
4. Otherwise the cached tree is walked again, re-fetching only items named in the updates and items
   not seen before (new kids); everything else comes from the cache.
5. If that recount is *below* the story's ``descendants``, the cache missed something and the story
   heals with one full crawl. Above it is normal while a thread grows (HN's figure lags the tree), so
   that heals only once ``descendants`` has stayed the same for :data:`SETTLE_CYCLES` cycles with us
   still above it (a missed deletion). Either way at most once per ``descendants`` value.

Stories that leave the watched list are evicted, so the cache is bounded by the list's size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from .crawl import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS, CrawlResult, Node, StoryCrawl
from .hn import FetchError, HNClient, Item

log = logging.getLogger("flamewatch.incremental")

#: Re-fetch a story item at least every this many cycles even when updates.json never names it,
#: so a missed update can only delay a count, never freeze it.
RECHECK_EVERY = 10

#: How many cycles our count may stay above an unchanging ``descendants`` before we suspect a missed
#: deletion rather than HN's usual lag, and heal with a full crawl.
SETTLE_CYCLES = 3


@dataclass
class _StoryCache:
    nodes: dict[int, Node] = field(default_factory=dict)
    result: CrawlResult | None = None
    kids: tuple[int, ...] = ()
    descendants: int | None = None
    healed_for: int | None = None
    checked_cycle: int = 0
    above: int | None = None  # the descendants value our count was last seen above, and since which cycle
    above_since: int = 0


class IncrementalCounter:
    """Counts stories like :func:`~flamewatch.crawl.count_story`, re-fetching only what changed."""

    def __init__(
        self, client: HNClient, *, max_depth: int = DEFAULT_MAX_DEPTH, max_items: int = DEFAULT_MAX_ITEMS
    ) -> None:
        self.client = client
        self.max_depth = max_depth
        self.max_items = max_items
        self._stories: dict[int, _StoryCache] = {}
        self._changed: set[int] | None = None  # None: updates unknown this cycle, trust nothing
        self._cycle = 0
        self.full_crawls = 0
        self.heals = 0

    async def begin_cycle(self, story_ids: list[int]) -> None:
        """Start a cycle over ``story_ids``: fetch updates.json and evict stories no longer watched."""
        self._cycle += 1
        watched = set(story_ids)
        for story_id in [s for s in self._stories if s not in watched]:
            del self._stories[story_id]
        try:
            self._changed = await self.client.updates()
        except FetchError as exc:
            log.warning("updates.json unavailable (%s): re-checking every story this cycle", exc)
            self._changed = None

    def cached_items(self) -> int:
        """How many items the cache holds (for memory checks)."""
        return sum(len(c.nodes) for c in self._stories.values())

    async def count(self, story_id: int) -> CrawlResult:
        """The story's count, as exact as a full crawl would give."""
        cache = self._stories.setdefault(story_id, _StoryCache())
        changed = self._changed
        last = cache.result
        # Items of this story's tree that updates.json names (HN's descendants lags, so a story whose own
        # item did not change can still have a changed tree).
        # Without updates.json this cycle, only the story's own kids and descendants can tell.
        touched = changed is not None and any(item in cache.nodes for item in changed if item != story_id)
        if (
            last is not None
            and not last.partial
            and changed is not None
            and story_id not in changed
            and not touched
            and self._cycle - cache.checked_cycle < RECHECK_EVERY
        ):
            return replace(last, fetches=0, errors=[])

        try:
            story = await self.client.item(story_id)
        except FetchError as exc:
            if last is None:
                return CrawlResult(story_id, failed=1, fetches=1, errors=[str(exc)])
            # Keep the last known count, marked partial (failed), rather than a count of 0: an event or
            # a summary built from this result must not show the thread as empty.
            return replace(last, failed=last.failed + 1, fetches=1, errors=[str(exc)])
        cache.checked_cycle = self._cycle
        if story is None:
            self._stories.pop(story_id, None)
            return CrawlResult(story_id, missing=1, fetches=1)
        kids = story.kids
        descendants = story.descendants
        # Unchanged kids and descendants, and no item of its tree named in updates.json: nothing moved.
        # (descendants alone is not enough: HN's figure lags, so a new deep reply can leave it as it was.)
        if (
            last is not None
            and not last.partial
            and kids == cache.kids
            and descendants == cache.descendants
            and not touched
        ):
            if not self._needs_heal(cache, last.comments, descendants):
                return replace(last, story=story, fetches=1, errors=[])
            result = await self._heal(story_id, story, cache, descendants)
        else:
            complete = last is not None and not last.partial and changed is not None
            result = await self._walk(story_id, story, cache, changed if complete else None)
            if complete and not result.partial and self._needs_heal(cache, result.comments, descendants):
                walked = result.fetches
                result = await self._heal(story_id, story, cache, descendants)
                result.fetches += walked
        result.fetches += 1  # the story item fetched above
        cache.result = result
        cache.kids = kids
        cache.descendants = descendants
        return result

    async def _heal(self, story_id: int, story: Item, cache: _StoryCache, descendants: int | None) -> CrawlResult:
        """The cache missed a change (updates.json only covers a short window): one full crawl."""
        self.heals += 1
        cache.healed_for = descendants
        return await self._walk(story_id, story, cache, None)

    def _needs_heal(self, cache: _StoryCache, comments: int, descendants: int | None) -> bool:
        """Whether a count from the cache disagrees with HN's ``descendants`` in a way lag cannot explain."""
        if descendants is None or cache.healed_for == descendants:
            return False
        if comments < descendants:
            return True  # HN knows of comments the cache does not: an addition was missed
        if comments == descendants:
            cache.above = None
            return False
        if cache.above != descendants:  # above a new figure: HN is probably just behind
            cache.above, cache.above_since = descendants, self._cycle
            return False
        return self._cycle - cache.above_since >= SETTLE_CYCLES

    async def _walk(self, story_id: int, story: Item, cache: _StoryCache, refresh: set[int] | None) -> CrawlResult:
        if refresh is None:
            # Full crawl into a fresh node map: items that left the tree must not linger.
            self.full_crawls += 1
            cache.nodes = {}
        crawl = StoryCrawl(
            self.client,
            story_id,
            max_depth=self.max_depth,
            max_items=self.max_items,
            cache=cache.nodes,
            refresh=refresh or frozenset(),
        )
        return await crawl.run(story)
