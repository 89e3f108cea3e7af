"""Incremental counting: after one walk, a story costs one request plus what changed in its tree.

Per watched story we keep the tree from the last walk (item id -> status and kids). Three sources keep it
exact without walking again:

1. **The stream of new items** (:mod:`flamewatch.stream`) hands over every new item on HN once;
   :meth:`IncrementalCounter.attach` hangs a new comment under its parent when the parent is in a watched
   tree. Additions are therefore exact at any churn, without trusting ``updates.json``.
2. **The story item is fetched every cycle**: fresh points, its top-level kids, and HN's ``descendants``
   as a cross-check.
3. **``/v0/updates.json``** (one request a cycle) names recently changed items. It is used only for what
   the stream cannot see: deletions, dead/undead flips and edits of items already counted. An item is
   re-fetched once per listing, not every cycle it stays listed, and never when the stream just
   delivered it. The list is bounded and overflows under churn; when two lists in a row do not overlap,
   the cycle log says that changes may have been missed.

A story whose tree changed is recounted from the cache (no request but for the re-fetched items and any
kid the cache does not know). If the count is *below* the story's ``descendants``, something was missed
and the story heals with one full crawl at once. Above it is normal while a thread grows (HN's figure
lags), so that heals only once ``descendants`` has stayed the same for :data:`SETTLE_CYCLES` cycles with us
still above it (a missed deletion). Either way at most once per ``descendants`` value, and only the story
that disagrees is re-walked. A shortfall no larger than the tree's ``null`` items is what those items
explain (HN counts comments it does not serve): a walk would find the same, so such a story is walked
again at most once every :data:`EXPLAINED_HEAL_EVERY` cycles, however often ``descendants`` moves. The
``null`` items themselves are kept in the cache, so recounts do not ask for them again.

Stories that leave the watched list are evicted, so the cache is bounded by the list's size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .crawl import (DEAD, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS, DELETED, MISSING, VISIBLE, CrawlResult, Node,
                    StoryCrawl, cache_node, status_of)
from .bootstrap import TreeSource
from .hn import FetchError, HNClient, Item

log = logging.getLogger("flamewatch.incremental")

#: How many cycles our count may stay above an unchanging ``descendants`` before we suspect a missed
#: deletion rather than HN's usual lag, and heal with a full crawl.
SETTLE_CYCLES = 3

#: The fewest cycles between two full walks of a story whose shortfall its ``null`` items explain (a
#: hostile or broken thread of 100,000 null kids would otherwise cost 100,000 requests every cycle).
EXPLAINED_HEAL_EVERY = 30


@dataclass
class _Growth:
    """What the stream attached to one tree since its last count: enough to add it to the count without
    walking the tree, when nothing else moved."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # attached items by cache status
    #: Depths of the items attached since the last walk, where known (a reply to a comment from the walk
    #: has an unknown one), and the deepest of them: kept until the next walk.
    depths: dict[int, int] = field(default_factory=dict)
    deepest: int = 0
    waiting: set[int] = field(default_factory=set)  # kids of attached items that were not attached yet
    clean: bool = True  # no attached item had malformed kids (else: walk, which counts them)


@dataclass
class _StoryCache:
    nodes: dict[int, Node] = field(default_factory=dict)
    #: Roots whose place in the tree is unknown (dead or deleted comments a first count from the search
    #: API found live replies under): recounts walk them too; a full walk finds them in place and clears them.
    orphans: tuple[int, ...] = ()
    growth: _Growth = field(default_factory=_Growth)
    depth_bound: int = 0  # no node is deeper than this (the last walk's deepest, plus one per attach since)
    result: CrawlResult | None = None
    kids: tuple[int, ...] = ()
    descendants: int | None = None
    healed_for: int | None = None
    walked_at: int | None = None  # the cycle of the last full walk
    above: int | None = None  # the descendants value our count was last seen above, and since which cycle
    above_since: int = 0
    attached: bool = False  # the stream added items since the last count
    attaches: int = 0  # items the stream ever added (a count notes it, to see those added while it awaited)


@dataclass
class CounterStats:
    """What the counter did so far (benchmarks and the cycle log read it)."""

    full_crawls: int = 0
    heals: int = 0
    attached: int = 0  # new comments hung into a watched tree from the stream
    grown: int = 0  # counts that added the attached comments to the last one, walking nothing
    bootstrapped: int = 0  # first counts taken from the search API's comment list (flamewatch.bootstrap)
    refetched: int = 0  # items re-fetched because updates.json named them
    overflows: int = 0  # cycles whose updates list did not overlap the previous one


class IncrementalCounter:
    """Counts stories like :func:`~flamewatch.crawl.count_story`, fetching only what changed."""

    def __init__(
        self, client: HNClient, *, max_depth: int = DEFAULT_MAX_DEPTH, max_items: int = DEFAULT_MAX_ITEMS,
        trees: TreeSource | None = None,
    ) -> None:
        """``trees``: where a story's first count may come from in one request a 1,000 comments
        (:mod:`flamewatch.bootstrap`)."""
        self.client = client
        self.max_depth = max_depth
        self.max_items = max_items
        self.trees = trees
        self.stats = CounterStats()
        self._stories: dict[int, _StoryCache] = {}
        self._owner: dict[int, int] = {}  # item id -> the watched story whose tree holds it
        self._refresh: set[int] = set()  # this cycle's ids to re-fetch (named in updates.json)
        self._listed: set[int] | None = None  # the previous updates list: its ids were re-fetched already
        self._streamed: set[int] = set()  # ids the stream fetched since the last cycle began: fresh
        self._cycle = 0

    @property
    def full_crawls(self) -> int:
        return self.stats.full_crawls

    @property
    def heals(self) -> int:
        return self.stats.heals

    def attach(self, item: Item) -> None:
        """Take one new item from the stream: a comment under a watched tree joins that tree.

        Items arrive in id order, so a reply whose parent is new too finds it already attached. An item
        the cache knows already (a walk saw it first) changes nothing.
        """
        self._streamed.add(item.id)
        parent = item.parent
        if parent is None:
            return
        story_id = self._owner.get(parent)
        cache = self._stories.get(story_id) if story_id is not None else None
        if cache is None or story_id is None:
            return
        known = cache.nodes.get(item.id)
        if known is not None and known.status != MISSING:  # an id HN answered null for may come later
            return
        parent_node = cache.nodes.get(parent)
        if parent_node is None or parent_node.status == MISSING:
            return
        kids = parent_node.kids
        if known is not None:
            pass  # an id HN answered null for is listed under its parent already
        elif type(kids) is list:  # made below by an earlier reply, so the cache's own: O(1) for each reply
            kids.append(item.id)
        elif item.id not in kids:  # kids as fetched (a reply listed before it could be fetched is there)
            cache.nodes[parent] = Node(parent_node.status, [*kids, item.id])
        status = status_of(item)
        cache.nodes[item.id] = cache_node(status, item.kids)
        self._owner[item.id] = story_id
        cache.attached = True
        cache.attaches += 1
        self.stats.attached += 1
        grown = cache.growth
        grown.counts[status] += 1
        # A null counted as missing that arrived after all: recounting from the cache sets both figures right.
        grown.clean = grown.clean and not item.bad_kids and known is None
        grown.waiting.discard(item.id)
        if item.kids:  # replies already there come later in the stream (larger ids); until then, unknown
            grown.waiting.update(kid for kid in item.kids if kid not in cache.nodes)
        cache.depth_bound += 1
        depth = 1 if parent == story_id else grown.depths.get(parent, -1) + 1
        if depth > 0:  # a reply to an older comment: its depth is unknown (and bounded by depth_bound)
            grown.depths[item.id] = depth
            grown.deepest = max(grown.deepest, depth)

    def owner_of(self, item_id: int) -> int | None:
        """The watched story whose cached tree holds ``item_id``, if any."""
        return self._owner.get(item_id)

    def forget_all(self) -> None:
        """Drop every cached tree, so each watched story is walked again (after a gap in the stream)."""
        self._stories.clear()
        self._owner.clear()

    async def begin_cycle(self, story_ids: list[int]) -> None:
        """Start a cycle over ``story_ids``: evict stories no longer watched, read updates.json once."""
        self._cycle += 1
        watched = set(story_ids)
        for story_id in [s for s in self._stories if s not in watched]:
            self._evict(story_id)
        try:
            changed = await self.client.updates()
        except FetchError as exc:
            log.warning("updates.json unavailable (%s): deletions and edits are seen through the "
                        "descendants cross-check this cycle", exc)
            changed = None
        streamed, self._streamed = self._streamed, set()
        if changed is None:
            self._refresh = set()
            return
        previous = self._listed
        # Every new item is a change too: more new items than the list holds, or no overlap with the
        # previous list, means changes fell off its end.
        if changed and (len(streamed) > len(changed) or (previous and previous.isdisjoint(changed))):
            self.stats.overflows += 1
            log.info("updates.json may have overflowed since the last cycle (%d new items, %d listed): deletions "
                     "and edits in between are left to the descendants cross-check", len(streamed), len(changed))
        # Once per listing: an id still listed from last time was re-fetched then.
        self._refresh = changed - (previous or set()) - streamed
        self._listed = changed

    def cached_items(self) -> int:
        """How many items the cache holds (for memory checks)."""
        return sum(len(c.nodes) for c in self._stories.values())

    async def count(self, story_id: int) -> CrawlResult:
        """The story's count, as exact as a full crawl would give."""
        cache = self._stories.setdefault(story_id, _StoryCache())
        last = cache.result
        try:
            story = await self.client.item(story_id)
        except FetchError as exc:
            if last is None:
                return CrawlResult(story_id, failed=1, fetches=1, errors=[str(exc)])
            # Keep the last known count, marked partial (failed), rather than a count of 0: an event or
            # a summary built from this result must not show the thread as empty.
            return replace(last, failed=last.failed + 1, fetches=1, errors=[str(exc)])
        if story is None:
            self._evict(story_id)
            return CrawlResult(story_id, missing=1, fetches=1)
        usable = last is not None and not last.partial
        refresh = {i for i in self._refresh if i in cache.nodes and i != story_id} if usable else set()
        unmoved = usable and story.kids == cache.kids and not refresh and not cache.attached
        if last is not None and unmoved and not self._needs_heal(cache, last.comments, story.descendants, last.missing):
            return replace(last, story=story, fetches=1, errors=[])  # nothing in this tree moved: the count stands
        seen = cache.attaches  # what was attached when this count decided how to count
        result = await self._recount(story, cache, last, refresh, unmoved=unmoved)
        result.fetches += 1  # the story item fetched above
        cache.result = result
        cache.kids = story.kids
        cache.descendants = story.descendants
        # Live mode attaches while a walk awaits: what came after the decision may be missing from this
        # count, so the story stays due and its next count walks (from the cache) instead of adding.
        late = cache.attaches != seen
        cache.attached = late
        cache.growth = _Growth(depths=cache.growth.depths, deepest=cache.growth.deepest, clean=not late)
        return result

    async def _recount(
        self, story: Item, cache: _StoryCache, last: CrawlResult | None, refresh: set[int], *, unmoved: bool
    ) -> CrawlResult:
        """A new count of a story just fetched: healed, the last plus the stream's replies, or walked.

        ``refresh``: cached ids to fetch again; ``unmoved``: nothing in the tree moved (then it is healed:
        ``count`` returned the last count itself when no heal was due). Decided before the first await."""
        story_id, descendants = story.id, story.descendants
        usable = last is not None and not last.partial
        if last is not None and unmoved:
            return await self._heal(story_id, story, cache, last.comments)
        if last is not None and usable and not refresh and (grown := self._grown(story, cache, last)) is not None:
            # Only replies from the stream changed the tree: their counts are added, nothing is walked.
            self.stats.grown += 1
            if self._needs_heal(cache, grown.comments, descendants, grown.missing):
                return await self._heal(story_id, story, cache, grown.comments)
            return grown
        self.stats.refetched += len(refresh)
        booted = await self._bootstrap(story, cache) if last is None else None
        result = booted or await self._walk(story_id, story, cache, refresh if usable else None)
        if usable and not result.partial and self._needs_heal(cache, result.comments, descendants, result.missing):
            walked = result.fetches
            result = await self._heal(story_id, story, cache, result.comments)
            result.fetches += walked
        return result

    def _grown(self, story: Item, cache: _StoryCache, last: CrawlResult) -> CrawlResult | None:
        """The last count plus what the stream attached, when that is all that changed; else None.

        It is: every kid of an attached item was attached too, the story lists exactly the top-level kids
        the cache holds, and neither cap can have been reached. ``max_depth_seen`` then counts the attached
        replies whose depth is known (a reply to an older comment may be one level deeper)."""
        grown = cache.growth
        node = cache.nodes.get(story.id)
        if grown.waiting or not grown.clean or node is None or cache.depth_bound >= self.max_depth:
            return None
        if len(cache.nodes) > self.max_items or len(story.kids) != len(node.kids):
            return None
        if story.kids != node.kids and set(story.kids) != set(node.kids):
            return None
        counts = grown.counts
        return replace(last, story=story, comments=last.comments + counts[VISIBLE],
                       deleted=last.deleted + counts[DELETED], dead=last.dead + counts[DEAD],
                       max_depth_seen=max(last.max_depth_seen, grown.deepest), fetches=0, errors=[])

    async def _bootstrap(self, story: Item, cache: _StoryCache) -> CrawlResult | None:
        """A first count from the story's comment list, when configured and it checks out."""
        if self.trees is None or (tree := await self.trees.tree(story)) is None:
            return None
        story_id, owner = story.id, self._owner
        if tree.orphans and self.max_depth < self.max_items:
            # An orphan's depth is unknown; with max_depth >= max_items the item cap binds before it would.
            self.trees.refuse(story, f"{len(tree.orphans)} comment(s) of unknown depth, max_depth {self.max_depth}")
            return None
        if any(owner.get(item_id, story_id) != story_id for item_id in tree.nodes):
            self.trees.refuse(story, "it names comments of another watched story")
            return None
        # The tree is the cache: a walk over it fetches nothing (every kid it names has a node), and counts
        # the orphans' replies too. Kept only if the count equals HN's own figure; else the caller walks.
        cache.nodes, cache.orphans = tree.nodes, tree.orphans
        result = await self._walk(story_id, story, cache, set())
        result.fetches += tree.pages
        if result.partial or result.comments != story.descendants:
            self.trees.refuse(story, f"it counts {result.comments}, descendants says {story.descendants}")
            cache.nodes, cache.orphans = {}, ()
            return None
        for item_id in tree.nodes:
            owner[item_id] = story_id
        self.trees.accepted += 1
        self.stats.bootstrapped += 1
        return result

    async def _heal(self, story_id: int, story: Item, cache: _StoryCache, counted: int) -> CrawlResult:
        """The cache missed a change: one full crawl of this story only."""
        self.stats.heals += 1
        cache.healed_for = story.descendants
        log.info("story %d: our count %d disagrees with HN's descendants %s: walking its tree again",
                 story_id, counted, story.descendants)
        return await self._walk(story_id, story, cache, None)

    def _needs_heal(self, cache: _StoryCache, comments: int, descendants: int | None, missing: int) -> bool:
        """Whether a count from the cache disagrees with HN's ``descendants`` in a way lag cannot explain."""
        if descendants is None or cache.healed_for == descendants:
            return False
        if comments < descendants:
            if descendants - comments <= missing and cache.walked_at is not None:
                # The null items may be the comments HN counts: walking again finds the same nulls.
                return self._cycle - cache.walked_at >= EXPLAINED_HEAL_EVERY
            return True  # HN knows of comments the cache does not: an addition was missed
        if comments == descendants:
            cache.above = None
            return False
        if cache.above != descendants:  # above a new figure: HN is probably just behind
            cache.above, cache.above_since = descendants, self._cycle
            return False
        return self._cycle - cache.above_since >= SETTLE_CYCLES

    async def _walk(self, story_id: int, story: Item, cache: _StoryCache, refresh: set[int] | None) -> CrawlResult:
        left: dict[int, Node] = {}
        if refresh is None:
            # Full crawl into a fresh node map: items that left the tree must not linger.
            self.stats.full_crawls += 1
            left, cache.nodes, cache.orphans = cache.nodes, {}, ()
            cache.walked_at = self._cycle
        crawl = StoryCrawl(
            self.client,
            story_id,
            max_depth=self.max_depth,
            max_items=self.max_items,
            cache=cache.nodes,
            refresh=refresh or frozenset(),
            orphans=cache.orphans,
        )
        result = await crawl.run(story)
        owner = self._owner
        for item_id in cache.nodes if refresh is None else crawl.fetched:  # a recount: its new items only
            owner[item_id] = story_id
        # Nor may their owners (a stale list's made-up orphan, say): eviction only sees the tree it holds.
        # Dropped after the walk, not before: the stream attaches to this story meanwhile through them.
        self._disown(story_id, left.keys() - cache.nodes.keys())
        cache.depth_bound = result.max_depth_seen
        cache.growth = _Growth()
        return result

    def _evict(self, story_id: int) -> None:
        cache = self._stories.pop(story_id, None)
        if cache is not None:
            self._disown(story_id, cache.nodes)

    def _disown(self, story_id: int, item_ids: Iterable[int]) -> None:
        """Forget that ``story_id``'s tree holds ``item_ids`` (those another story's tree holds now stay its)."""
        owner = self._owner
        for item_id in item_ids:
            if owner.get(item_id) == story_id:
                del owner[item_id]
