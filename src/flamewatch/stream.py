"""Follow every new item on Hacker News, once, in id order.

HN item ids only grow, and HN makes about 11,000 items a day. Each poll fetches the items from the last
seen ``maxitem`` + 1 up to the current ``maxitem`` (through the client, so the ``max_inflight`` bound
holds) and hands each one to the subscribers, in ascending id order. The counts use it to attach new
comments to the trees they watch, so additions are exact without trusting ``updates.json``; plugins see it
through the ``flamewatch_new_item`` hook; replies and mentions build on it.

The cursor (and the few ids to try again) is kept in the store, so a restart resumes with no gap and no
repeat. What a broken or hostile API can do is bounded:

* one poll fetches at most ``max_gap`` ids. A longer range (a long downtime, or ``maxitem`` jumping far)
  is walked in pages of that size over the following polls, oldest first, so no item is skipped (a reply
  to a watched user in the middle of it is still seen, late). The stream says so once and reports the gap,
  so the caller re-walks the watched stories meanwhile. A ``maxitem`` that jumped absurdly far costs one
  page a poll, never more, and the real new items (just above the cursor) come in the first page;
* a ``maxitem`` that goes backwards fetches nothing; if it stays below the cursor for
  :data:`BACKWARDS_POLLS` polls, the API is trusted again from there;
* a failed fetch, or a ``null`` among the newest :data:`RETRY_WINDOW` ids (one HN has not published yet),
  is tried again on the next polls, then skipped and counted once it has been tried ``retries`` more
  times *and* ``retry_for`` seconds (loop time) have passed since it first came back missing: live mode
  polls seconds apart, so a count of polls alone would give up on an item HN publishes a moment late; a
  ``null`` further
  down is an item HN does not have. At most :data:`MAX_PENDING` ids wait to be tried again: when a poll
  would need more, the cursor stops before the first one that does not fit, and the next poll fetches
  from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import FetchError
from .hn import HNClient
from .hn.item import Item, is_item_id
from .notifier import PluginState, SavedValue, StateWrite

log = logging.getLogger("flamewatch.stream")

#: The most ids one poll fetches (about 44 hours of all of HN); a longer range is walked over several polls.
DEFAULT_MAX_GAP = 20_000

#: A ``null`` among this many ids below ``maxitem`` may not be published yet, so it is tried again.
RETRY_WINDOW = 1_000

#: The most ids waiting to be tried again (they are kept in the store with the cursor).
MAX_PENDING = 1_000

#: How many later polls a missing or failed id is tried again before it is skipped.
DEFAULT_RETRIES = 3

#: How long (seconds) a missing or failed id keeps being retried, however many polls that takes.
DEFAULT_RETRY_FOR = 30.0

#: How many polls in a row ``maxitem`` may stay below our cursor before we trust it again.
BACKWARDS_POLLS = 3

#: How many item -> thread entries the stream remembers (recent items; about 10 days of all of HN).
THREAD_CACHE_SIZE = 100_000

#: The longest parent chain followed to find an item's story (HN threads are rarely deeper than 100).
MAX_CHAIN = 500

#: The store namespace of the stream's state, and the key of its cursor there.
#: (":" cannot appear in a notifier instance's name, so this never shares a notifier's namespace.)
STREAM_STATE = "core:stream"
STATE_KEY = "cursor"

Subscriber = Callable[[Item], None]


@dataclass
class StreamBatch:
    """What one :meth:`ItemStream.poll` saw.

    ``items`` are the new items delivered to subscribers, in ascending id order (ids retried from an
    earlier poll come first). ``fetched`` counts item requests; ``pending`` the ids to try again later;
    ``skipped`` the ids given up on this poll; ``behind`` how many ids up to ``top`` are left for the next
    polls; ``gap`` is set (to the range's size) on the poll where the stream fell behind by more than one
    page (the caller should re-walk what it watches, as the page's items arrive late), and ``first_poll``
    is true when there was no cursor yet (nothing to follow: the watched stories are walked anyway).
    """

    top: int | None = None
    items: list[Item] | None = None
    fetched: int = 0
    pending: int = 0
    skipped: int = 0
    gap: int = 0
    behind: int = 0
    first_poll: bool = False

    @property
    def new(self) -> list[Item]:
        return self.items or []


class ItemStream:
    """The stream of new HN items: a persistent cursor over ``maxitem`` and a list of subscribers."""

    def __init__(
        self,
        client: HNClient,
        state: PluginState,
        *,
        max_gap: int = DEFAULT_MAX_GAP,
        retries: int = DEFAULT_RETRIES,
        retry_for: float = DEFAULT_RETRY_FOR,
        namespace: str = STREAM_STATE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.state = state
        self._saved = SavedValue(namespace, STATE_KEY)  # a cursor that did not move is not written again
        self.max_gap = max_gap
        self.retries = retries
        self.retry_for = retry_for
        self._clock = clock  # None: the running loop's clock
        self.cursor: int | None = None
        self._retry: dict[int, int] = {}  # id -> attempts so far
        # id -> when it first came back missing (loop time; not stored: a restart gives it retry_for again)
        self._missed_at: dict[int, float] = {}
        self._subscribers: list[Subscriber] = []
        self._loaded = False
        self._backwards = 0
        self._behind = 0  # ids left for later polls after the last one
        self.skipped_total = 0
        self._threads: OrderedDict[int, int] = OrderedDict()  # item id -> its story's id (recent items)
        self._roots: OrderedDict[int, Item] = OrderedDict()  # story id -> the story item, as last fetched
        self.orphans = 0  # items whose parent chain looped, broke or never reached a story

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(item)`` for every new item, once, in id order. It must be quick and not raise."""
        self._subscribers.append(subscriber)

    async def load(self) -> None:
        """Read the cursor from the store (once; :meth:`poll` calls it)."""
        if self._loaded:
            return
        self._loaded = True
        saved = await self.state.get(STATE_KEY)
        if not isinstance(saved, dict):
            return
        self._saved.loaded(saved, time.time())
        cursor = saved.get("cursor")
        if is_item_id(cursor):
            self.cursor = cursor
        retry = saved.get("retry")
        if isinstance(retry, dict):
            for key, attempts in retry.items():
                if key.isdigit() and is_item_id(int(key)) and type(attempts) is int:
                    self._retry[int(key)] = attempts

    async def poll(self, top: int | None = None, *, save: bool = True) -> StreamBatch:
        """Fetch every item since the last poll and hand each new one to the subscribers.

        ``top`` is ``maxitem`` when the caller already knows it (live mode: the event stream just said
        so), which saves asking. Raises :class:`~flamewatch.errors.FetchError` only when ``maxitem`` itself
        cannot be fetched (the cursor then stays where it was, so the next poll covers this one's range too).
        ``save=False`` leaves the cursor's write to the caller (:meth:`unsaved`: a cycle writes it with its
        samples, in one transaction).
        """
        await self.load()
        top = top if top is not None and is_item_id(top) else await self._maxitem()
        batch = StreamBatch(top=top)
        if self.cursor is None:
            log.info("stream: following new items from #%d", top)
            batch.first_poll = True
            self.cursor = top
            if save:
                await self._save()
            return batch
        start = self._start(top)
        end = self._page_end(start, top, batch)
        ids = sorted(self._retry) + list(range(start, end + 1))
        found, failed = await self._fetch(ids)
        batch.fetched = len(ids)
        items, stop = self._settle(ids, found, failed, top, batch)
        if stop is not None:
            end = stop - 1  # the next poll fetches again from the first id that could not wait
            log.warning("stream: more than %d items to try again; fetching from #%d next poll", MAX_PENDING, stop)
        if end >= self.cursor:
            self.cursor = end
        for item in items:
            self._remember(item)
        for item in items:
            for subscriber in self._subscribers:
                subscriber(item)
        if save:
            await self._save()
        return batch

    def _start(self, top: int) -> int:
        """The first new id to fetch, given ``maxitem``; a ``maxitem`` below the cursor fetches nothing."""
        assert self.cursor is not None
        if top >= self.cursor:
            self._backwards = 0
            return self.cursor + 1
        self._backwards += 1
        if self._backwards < BACKWARDS_POLLS:
            log.warning("stream: maxitem went backwards (%d < %d); waiting for it to come back", top, self.cursor)
        else:
            log.warning("stream: maxitem stayed below our cursor for %d polls; following from #%d",
                        self._backwards, top)
            self._backwards = 0
            self.cursor = top
        return top + 1  # fetch nothing new; retries still run

    def _page_end(self, start: int, top: int, batch: StreamBatch) -> int:
        """The last id this poll fetches: ``top``, or the end of one page when the range is longer."""
        size = top - start + 1
        end = top if size <= self.max_gap else start + self.max_gap - 1
        batch.behind = top - end
        if batch.behind and not self._behind:
            batch.gap = size
            log.warning(
                "stream: %d new items since the last poll (over the page of %d): fetching them a page a poll, "
                "oldest first, over the next %d polls; the watched stories are walked again meanwhile",
                size, self.max_gap, -(-batch.behind // self.max_gap),
            )
        elif self._behind and not batch.behind:
            log.info("stream: caught up with maxitem #%d", top)
        self._behind = batch.behind
        return end

    def _settle(
        self, ids: list[int], found: dict[int, Item], failed: set[int], top: int, batch: StreamBatch
    ) -> tuple[list[Item], int | None]:
        """Sort this poll's answers into items, ids to try again and ids skipped.

        Returns the items and, when more ids would wait than :data:`MAX_PENDING` allows, the first new id
        that did not fit (it and everything after it are left for the next poll).
        """
        items: list[Item] = []
        stop: int | None = None
        now = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        for item_id in ids:
            item = found.get(item_id)
            if item is not None:
                self._retry.pop(item_id, None)
                self._missed_at.pop(item_id, None)
                items.append(item)
                continue
            attempts = self._retry.get(item_id, 0) + 1
            waited = now - self._missed_at.setdefault(item_id, now)
            if (attempts > self.retries and waited >= self.retry_for) or (
                    item_id not in failed and item_id <= top - RETRY_WINDOW):
                self._retry.pop(item_id, None)
                self._missed_at.pop(item_id, None)
                batch.skipped += 1
            elif item_id in self._retry or len(self._retry) < MAX_PENDING:
                self._retry[item_id] = attempts
            else:
                self._missed_at.pop(item_id, None)
                stop = item_id
                break
        if stop is not None:
            items = [item for item in items if item.id < stop]
        if batch.skipped:
            self.skipped_total += batch.skipped
            log.warning("stream: %d item(s) missing on HN or still failing after %d tries and %g s, skipped",
                        batch.skipped, self.retries + 1, self.retry_for)
        batch.pending = len(self._retry)
        batch.items = items
        return items, stop

    async def thread_of(self, item: Item) -> Item | None:
        """The story ``item`` belongs to (itself for a story), following its parent chain.

        Recent items are remembered, so most lookups cost no request; otherwise each unknown ancestor is
        fetched once. A chain that loops, breaks (a missing item) or runs past :data:`MAX_CHAIN` gives None,
        counted in :attr:`orphans` with a warning naming the item.
        """
        chain = [item.id]
        current = item
        for _ in range(MAX_CHAIN):
            if current.parent is None:
                self._remember_chain(chain, current)
                return current
            known = self._threads.get(current.parent)
            if known is not None:
                root = self._roots.get(known) or await self._fetch_root(known)
                if root is not None:
                    self._remember_chain(chain, root)
                return root
            if current.parent in chain:
                return self._orphan(item, "its parent chain loops")
            chain.append(current.parent)
            try:
                parent = await self.client.item(current.parent)
            except FetchError as exc:
                return self._orphan(item, f"item {current.parent} could not be fetched ({exc})")
            if parent is None:
                return self._orphan(item, f"item {current.parent} is missing")
            current = parent
        return self._orphan(item, f"no story within {MAX_CHAIN} parents")

    def _orphan(self, item: Item, why: str) -> Item | None:
        """Count and report an item whose story cannot be found; always None (for ``return``)."""
        self.orphans += 1
        log.warning("stream: item %d belongs to no story we can find (%s); skipped", item.id, why)
        return None

    async def _fetch_root(self, story_id: int) -> Item | None:
        try:
            root = await self.client.item(story_id)
        except FetchError:
            return None
        if root is not None:
            self._cache(self._roots, story_id, root, 1_000)
        return root

    def _remember(self, item: Item) -> None:
        """Note which story a new item belongs to, when its parent's story is known (no request)."""
        if item.parent is None:
            self._cache(self._threads, item.id, item.id, THREAD_CACHE_SIZE)
            self._cache(self._roots, item.id, item, 1_000)
        elif (story := self._threads.get(item.parent)) is not None:
            self._cache(self._threads, item.id, story, THREAD_CACHE_SIZE)

    def _remember_chain(self, chain: list[int], root: Item) -> None:
        self._cache(self._roots, root.id, root, 1_000)
        for item_id in chain:
            self._cache(self._threads, item_id, root.id, THREAD_CACHE_SIZE)

    @staticmethod
    def _cache(cache: OrderedDict[int, Any], key: int, value: Any, limit: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > limit:
            cache.popitem(last=False)

    async def _maxitem(self) -> int:
        value = await self.client.get_json("maxitem.json")
        if not is_item_id(value):
            raise FetchError(f"maxitem.json: expected an item id, got {type(value).__name__}")
        top: int = value
        return top

    async def _fetch(self, ids: list[int]) -> tuple[dict[int, Item], set[int]]:
        """Fetch ``ids`` with as many workers as the client allows in flight: the items found (a ``null``
        is absent) and the ids whose fetch failed."""
        found: dict[int, Item] = {}
        failed: set[int] = set()
        queue = iter(ids)

        async def worker() -> None:
            for item_id in queue:
                try:
                    item = await self.client.item(item_id)
                except FetchError as exc:
                    log.debug("stream: item %d: %s (will try again)", item_id, exc)
                    failed.add(item_id)
                    continue
                if item is not None:
                    found[item_id] = item

        workers = min(len(ids), self.client.max_inflight)
        if workers:
            await asyncio.gather(*(worker() for _ in range(workers)))
        return found, failed

    def unsaved(self, now: float) -> StateWrite | None:
        """The write the cursor (and the ids to try again) need, or None when the store holds them already."""
        if not self._loaded:
            return None
        value: dict[str, Any] = {"cursor": self.cursor, "retry": {str(k): v for k, v in self._retry.items()}}
        return self._saved.write(value, now)

    def saved(self, write: StateWrite, now: float) -> None:
        """``write`` (from :meth:`unsaved`) is in the store now."""
        self._saved.written(write, now)

    async def _save(self) -> None:
        now = time.time()  # the cycle's own writes (record) pass the cycle's time instead
        if (write := self.unsaved(now)) is not None:
            await self.state.set(STATE_KEY, write.value)
            self.saved(write, now)
