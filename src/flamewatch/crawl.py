"""Count one story's comments by walking its comment tree: the seed's recursive fan-out / fan-in, bounded.

The walk fetches an item and then every one of its kids, and theirs, and adds up what it finds. Done right:

* no recursion: pending kids wait in an explicit queue (:mod:`flamewatch.walkpool`), so a 10,000-deep
  reply chain costs no Python frames and raises no ``RecursionError``;
* the fetches are run by at most ``max_inflight`` worker loops shared by every walk on one client, the
  shape of the strictest baseline (no task, future or semaphore wait per item), so live tasks and
  pending work stay bounded by the requests in flight, not by the size of the tree;
* a visited set makes cycles harmless, and caps on depth and items bound a hostile tree;
* items arrive parsed and checked (:class:`~flamewatch.hn.Item`): the walk reads typed fields only;
* a failed item costs only its own subtree: the count becomes a lower bound marked ``partial``;
* counters live in a per-crawl object (the seed's global fetch counter, fixed).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

from .hn import FetchError, HNClient, Item
from .hn.item import Walked
from .walkpool import pool_for

log = logging.getLogger("flamewatch.crawl")

DEFAULT_MAX_ITEMS = 200_000
#: The walk keeps no frame per level, so depth costs no more than breadth: by default only the item cap
#: bounds it, and a 50,000-deep chain is counted exactly (each level is a round trip, so a deep chain is
#: slow; the cycle's timeout bounds that).
DEFAULT_MAX_DEPTH = DEFAULT_MAX_ITEMS


@dataclass
class CrawlResult:
    """The outcome of counting one story.

    ``comments`` is what HN shows (neither deleted nor dead). ``unreachable`` = ``missing`` (answered
    ``null``) + ``failed`` (could not be fetched). ``skipped`` counts kids not visited because a cap
    was hit; ``cycles`` counts kids that pointed at an item already visited; ``invalid`` counts kid
    ids of the wrong type (a ``kids`` that is not a list counts as one). ``partial`` is true when the
    true count may be higher. ``gone`` counts comments known to be dead or deleted without knowing which
    (a first count from the search API's comment list, :mod:`flamewatch.bootstrap`, sees only that they are
    not live; the story's next full walk sorts them into ``deleted`` and ``dead``). ``max_depth_seen`` is a
    lower bound while such a count has comments whose place in the tree is unknown.
    """

    story_id: int
    story: Item | None = None
    comments: int = 0
    deleted: int = 0
    dead: int = 0
    gone: int = 0
    missing: int = 0
    failed: int = 0
    skipped: int = 0
    cycles: int = 0
    invalid: int = 0
    fetches: int = 0
    max_depth_seen: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def unreachable(self) -> int:
        """Kids that could not be counted: ``missing`` + ``failed``."""
        return self.missing + self.failed

    @property
    def partial(self) -> bool:
        """Whether the true count may be higher (a fetch failed or a cap was hit)."""
        return self.failed > 0 or self.skipped > 0

    @property
    def title(self) -> str:
        """The story's title, or "" when unknown."""
        return (self.story.title if self.story is not None else None) or ""

    def to_json(self) -> dict[str, Any]:
        """The per-story JSON object printed by ``count --json`` and ``once --json``."""
        story = self.story
        return {
            "id": self.story_id,
            "title": self.title,
            "comments": self.comments,
            "deleted": self.deleted,
            "dead": self.dead,
            "gone": self.gone,
            "unreachable": self.unreachable,
            "missing": self.missing,
            "failed": self.failed,
            "fetches": self.fetches,
            "partial": self.partial,
            "descendants": story.descendants if story is not None else None,
            "score": story.score if story is not None else None,
        }


# Status codes kept in the incremental cache (small ints keep a 50,000-node cache compact). MISSING is an
# id HN answered ``null`` for: kept, so a tree full of nulls is not asked for them again every cycle (a
# full walk, or updates.json naming the id, asks again). GONE is a comment known only to be dead or deleted
# (from the search API's comment list, flamewatch.bootstrap): it is not fetched, and counted as neither.
VISIBLE, DELETED, DEAD, MISSING, GONE = 0, 1, 2, 3, 4

#: The depth an orphan (a dead or deleted comment whose parent is unknown) is walked at: the shallowest it
#: can be, since it is not one of the story's own kids.
ORPHAN_DEPTH = 2


def status_of(item: Item) -> int:
    """The cache status of a comment: :data:`DELETED`, :data:`DEAD` or :data:`VISIBLE`."""
    return DELETED if item.deleted else DEAD if item.dead else VISIBLE


@dataclass(frozen=True, slots=True)
class Node:
    """What the incremental cache remembers of one fetched item: its status and its kids (a tuple as
    fetched; a list once the stream has attached new replies to it, appended in place)."""

    status: int
    kids: Sequence[int]


#: The leaf of each status, indexed by status (0 to GONE): one shared object each (nodes are never changed
#: in place).
_LEAVES = tuple(Node(status, ()) for status in range(GONE + 1))
assert [leaf.status for leaf in _LEAVES] == sorted((VISIBLE, DELETED, DEAD, MISSING, GONE))


def cache_node(status: int, kids: tuple[int, ...]) -> Node:
    """The cache's node for an item; most comments are leaves, and every leaf of one status is one
    shared object (nodes are never changed in place), which keeps a 50,000-leaf tree ~3 MB smaller."""
    return Node(status, kids) if kids else _LEAVES[status]


class StoryCrawl:
    """One walk over one story's tree. Use :func:`count_story` unless you need the object.

    The fetching is done by the :class:`~flamewatch.walkpool.WalkPool` of the client, shared by every
    walk on it; this object decides what to fetch and counts what arrives (it is the pool's
    :class:`~flamewatch.walkpool.Walk`).

    With a ``cache`` (item id -> :class:`Node` from an earlier walk), items in it that are not in
    ``refresh`` are taken from it instead of fetched, and every item that *is* fetched is written back:
    this is how :mod:`flamewatch.incremental` re-fetches only what changed. Without one, every item
    is fetched: the plain recursive walk. ``orphans`` (with a cache only) are extra roots: comments of the
    story whose place in the tree is unknown, walked at :data:`ORPHAN_DEPTH` (so ``max_depth_seen`` is a
    lower bound); one also reached in place is counted once and is no cycle.
    """

    def __init__(
        self,
        client: HNClient,
        story_id: int,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_items: int = DEFAULT_MAX_ITEMS,
        cache: dict[int, Node] | None = None,
        refresh: set[int] | frozenset[int] = frozenset(),
        orphans: Sequence[int] = (),
    ) -> None:
        self.client = client
        self.max_depth = max_depth
        self.max_items = max_items
        self.cache = cache
        self.refresh = refresh
        self.result = CrawlResult(story_id)
        #: Ids fetched and written to the cache (with a cache only): what a recount added or changed.
        self.fetched: list[int] = []
        self._seen: set[int] = set()
        self._orphans = orphans if cache is not None else ()
        self._rooted: set[int] = set()  # orphans walked as roots, not yet reached in place
        self._pool = pool_for(client)
        self._outstanding = 0  # kids handed to the pool and not yet done with
        self._done: asyncio.Future[None] | None = None

    async def run(self, story: Item | None = None) -> CrawlResult:
        """Walk the tree; ``story`` is the already-fetched story item, if the caller has it.

        Cancelling it stops the walk's fetches in progress and waits for them before re-raising, so no
        request of this walk outlives it.
        """
        self._done = asyncio.get_running_loop().create_future()
        story_id = self.result.story_id
        if story is None:
            self._queue((story_id,), 0)
        elif self._enter(story_id):
            self._descend(story_id, self._record(story_id, story, 0), 0)
        for orphan in self._orphans:
            self._root(orphan)
        if self._outstanding:
            try:
                await self._done
            except asyncio.CancelledError:
                await self._pool.abandon(self)
                raise
        return self.result

    # The pool's side (see flamewatch.walkpool.Walk): called by a worker for each kid it takes.

    # admit and arrived run once per item fetched: the usual case is written out in each, without the calls
    # that the general case (_enter, _record) makes.

    def admit(self, item_id: int) -> bool:
        """Whether the pool should fetch ``item_id``; when not, the kid is done with."""
        seen = self._seen
        if item_id not in seen and len(seen) < self.max_items:
            seen.add(item_id)
            self.result.fetches += 1
            return True
        self._enter(item_id)  # counts the cycle or the kid skipped
        self._finish()
        return False

    def arrived(self, item_id: int, depth: int, item: Item | Walked | None) -> None:
        """Count a fetched item and queue its kids."""
        if isinstance(item, tuple):  # the usual item: a well-formed comment (hn.item.parse_walked)
            deleted, dead, kids = item
        elif item is None:
            self.result.missing += 1
            if self.cache is not None:
                self.cache[item_id] = _LEAVES[MISSING]
            self._finish()
            return
        elif depth and not item.bad_kids:  # a comment, well formed, that took the full parse
            deleted, dead, kids = item.deleted, item.dead, item.kids
        else:
            if kids := self._record(item_id, item, depth):
                self._descend(item_id, kids, depth)
            self._finish()
            return
        # A well-formed comment: _record's work, written out.
        result = self.result
        if deleted:
            status = DELETED
            result.deleted += 1
        elif dead:
            status = DEAD
            result.dead += 1
        else:
            status = VISIBLE
            result.comments += 1
        if depth > result.max_depth_seen:
            result.max_depth_seen = depth
        if self.cache is not None:
            self.cache[item_id] = Node(status, kids) if kids else _LEAVES[status]
            self.fetched.append(item_id)
        if kids:  # most comments are leaves: skip the walk machinery for them
            self._descend(item_id, kids, depth)
        self._finish()

    def fetch_failed(self, item_id: int, error: FetchError) -> None:
        """A failed item costs only its own subtree: the count becomes a lower bound."""
        self.result.failed += 1
        self._note(str(error))
        self._finish()

    def broke(self, item_id: int, error: Exception) -> None:
        """A bug or hostile data raised while handling ``item_id``: count its subtree as failed, keep the rest."""
        log.debug("item %d: unexpected error in the walk", item_id, exc_info=error)
        self.result.failed += 1
        self._note(f"item {item_id}: a subtree failed: {error!r}")
        self._finish()

    # The walk itself.

    def _queue(self, kids: Sequence[int], depth: int) -> None:
        self._outstanding += len(kids)
        self._pool.add(self, kids, depth)

    def _finish(self) -> None:
        """One kid handed to the pool is done with; the walk is over when the last one is."""
        self._outstanding -= 1
        if self._outstanding == 0 and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _root(self, item_id: int) -> None:
        """Walk an orphan as a root, unless the walk reached it in place already."""
        if item_id in self._seen or self.cache is None:
            return
        self._rooted.add(item_id)
        node = self.cache.get(item_id) if item_id not in self.refresh else None
        if node is None:
            self._queue((item_id,), ORPHAN_DEPTH)
        elif self._enter(item_id):
            self._count_status(node.status)
            self.result.max_depth_seen = max(self.result.max_depth_seen, ORPHAN_DEPTH)
            self._descend(item_id, node.kids, ORPHAN_DEPTH)

    def _enter(self, item_id: int) -> bool:
        """Mark ``item_id`` visited; False when it was already (a cycle) or the item cap is reached."""
        if item_id in self._seen:
            if item_id in self._rooted:  # an orphan met both as a root and in place: counted once
                self._rooted.discard(item_id)
            else:
                self.result.cycles += 1
            return False
        if len(self._seen) >= self.max_items:
            self.result.skipped += 1
            return False
        self._seen.add(item_id)
        return True

    def _record(self, item_id: int, item: Item, depth: int) -> tuple[int, ...]:
        """Count a fetched item (and cache it); returns its kid ids. :meth:`arrived` writes this out for a
        well-formed comment (the usual item): a change here belongs there too."""
        result = self.result
        status = VISIBLE
        if depth == 0:
            result.story = item
        else:
            status = status_of(item)
            self._count_status(status)
            result.max_depth_seen = max(result.max_depth_seen, depth)
        kids = item.kids
        if bad := item.bad_kids:
            result.invalid += bad
            self._note(f"item {item_id}: {bad} kid id(s) of the wrong type ignored")
        if self.cache is not None:
            self.cache[item_id] = cache_node(status, kids)
            self.fetched.append(item_id)
        return kids

    def _descend(self, parent: int, kids: Sequence[int], depth: int) -> None:
        """Queue the kids of ``parent`` for fetching; cached ones are walked here, in a plain loop."""
        if not kids:
            return
        cache = self.cache
        # The plain walk, or none of the kids cached (a first walk): every kid is fetched.
        if cache is None or cache.keys().isdisjoint(kids):
            if depth >= self.max_depth:
                self._cap_depth(parent, kids)
            else:
                # The pool reads the sequence lazily: a cache's kid list is one the stream appends to, so
                # hand it a copy (item kids are tuples already).
                self._queue(kids if type(kids) is tuple else tuple(kids), depth + 1)
            return
        result, refresh = self.result, self.refresh
        stack: list[tuple[int, Sequence[int], int]] = [(parent, kids, depth)]
        while stack:
            item_id, item_kids, item_depth = stack.pop()
            if not item_kids:
                continue
            if item_depth >= self.max_depth:
                self._cap_depth(item_id, item_kids)
                continue
            to_fetch: list[int] = []
            for kid in item_kids:
                node = cache.get(kid) if kid not in refresh else None
                if node is None:
                    to_fetch.append(kid)
                elif self._enter(kid):
                    self._count_status(node.status)
                    result.max_depth_seen = max(result.max_depth_seen, item_depth + 1)
                    stack.append((kid, node.kids, item_depth + 1))
            if to_fetch:
                self._queue(to_fetch, item_depth + 1)

    def _cap_depth(self, item_id: int, kids: Sequence[int]) -> None:
        self.result.skipped += len(kids)
        self._note(f"item {item_id}: depth cap {self.max_depth} reached, {len(kids)} kid(s) not visited")

    def _count_status(self, status: int) -> None:
        if status == VISIBLE:
            self.result.comments += 1
        elif status == DELETED:
            self.result.deleted += 1
        elif status == MISSING:
            self.result.missing += 1
        elif status == GONE:
            self.result.gone += 1
        else:
            self.result.dead += 1

    def _note(self, message: str) -> None:
        # Keep a few examples for the one-line summary; a hostile tree must not grow this without bound.
        if len(self.result.errors) < 5:
            self.result.errors.append(message)


async def count_story(
    client: HNClient,
    story_id: int,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> CrawlResult:
    """Count the comments of story ``story_id`` (see :class:`CrawlResult` for what is counted)."""
    return await StoryCrawl(client, story_id, max_depth=max_depth, max_items=max_items).run()
