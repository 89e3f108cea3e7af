"""One watcher cycle: list -> count every story -> history -> rules -> dispatch.

:class:`Monitor` holds what lives across cycles (client, store, rules, dispatcher, the crawl cache);
:meth:`Monitor.cycle` is the function the :class:`~flamewatch.watch.Watcher` runs every tick, and
``flamewatch once`` runs once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .crawl import CrawlResult, count_story
from .dispatch import Dispatcher
from .events import CycleStats, Event, StorySnapshot, Subject
from .incremental import IncrementalCounter
from .config.model import CrawlSettings, StoreSettings, WatchSettings
from .hn import FetchError, HNClient, Item
from .hn.item import domain_of, on_domain
from .hn.text import excerpt
from .people import Watchlist
from .rules import Evaluation, ItemContext, RuleEngine
from .store import CountSample, Store
from .stream import ItemStream

log = logging.getLogger("flamewatch.monitor")

#: Prune old history and finished deliveries every this many cycles (fired keys are kept forever).
HOUSEKEEPING_EVERY = 60


@dataclass(frozen=True)
class MonitorSettings:
    """What the monitor needs from the config; the defaults are the config's own."""

    list_name: str = WatchSettings.list
    top: int = WatchSettings.top
    max_depth: int = CrawlSettings.max_depth
    max_items: int = CrawlSettings.max_items
    history_seconds: float = StoreSettings.history_days * 86400.0
    #: Several lists at once, as (list, top) in config order; empty: just ``list_name``/``top``.
    lists: tuple[tuple[str, int], ...] = ()

    def watched_lists(self) -> tuple[tuple[str, int], ...]:
        """The (list, top) pairs counted each cycle."""
        return self.lists or ((self.list_name, self.top),)


class Monitor:
    """Counts the watched stories each cycle and turns the counts into events."""

    def __init__(
        self,
        client: HNClient,
        store: Store,
        rules: RuleEngine,
        dispatcher: Dispatcher,
        settings: MonitorSettings = MonitorSettings(),
        *,
        counter: IncrementalCounter | None = None,
        stream: ItemStream | None = None,
        watchlist: Watchlist | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.rules = rules
        #: Rules a config reload set; they replace :attr:`rules` when the next cycle begins.
        self.next_rules: RuleEngine | None = None
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        # The incremental crawler (flamewatch.incremental) when enabled; a full crawl otherwise.
        self.counter = counter
        # The stream of new items (flamewatch.stream), polled once a cycle before the stories are counted.
        self.stream = stream
        self.last_results: list[CrawlResult] = []
        self._snapshots: dict[int, StorySnapshot] = {}  # the watched stories as last counted
        self.item_events = 0  # events fired by item rules since the last cycle began
        self._last_ids: list[int] = []
        # Followed threads and watched users (flamewatch.people): extra stories to count each cycle.
        self.watchlist = watchlist
        self._last_lists: dict[str, list[int]] = {}  # each list's ids as last fetched
        self._ranks: dict[int, dict[str, int]] = {}  # story id -> {list: rank} this cycle

    async def count(self, story_id: int) -> CrawlResult:
        if self.counter is not None:
            return await self.counter.count(story_id)
        return await count_story(
            self.client, story_id, max_depth=self.settings.max_depth, max_items=self.settings.max_items
        )

    async def cycle(self, number: int) -> CycleStats:
        """Run one cycle and return its statistics."""
        if self.next_rules is not None:
            self.rules, self.next_rules = self.next_rules, None
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        before = self.client.stats.copy()
        ids = await self._story_ids()
        await self.dispatcher.refresh_silences()  # `flamewatch silence add` from another process applies now
        self.item_events = 0
        new_items = await self._follow_stream()
        if self.counter is not None:
            await self.counter.begin_cycle(ids)
        outcomes = await asyncio.gather(*(self.count(i) for i in ids), return_exceptions=True)
        results: list[CrawlResult] = []
        for story_id, outcome in zip(ids, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                log.error("story %d: count failed: %s: %s", story_id, type(outcome).__name__, outcome)
                results.append(CrawlResult(story_id, failed=1, errors=[str(outcome)]))
            else:
                results.append(outcome)
        self.last_results = results
        events, counted = await self._evaluate(results, ids)
        if self.watchlist is not None:
            await self.watchlist.after_counts(
                ((r.story_id, r.story, r.comments) for r in results if r.story is not None or not r.errors),
                self.clock(),
            )
        events += self.item_events
        if number % HOUSEKEEPING_EVERY == 0:
            await self._housekeep()
        after = self.client.stats
        partial = [r for r in results if r.partial or r.story is None]
        for r in results:
            if r.partial or r.story is None:
                if r.errors:
                    log.warning("story %d: partial count (%d unreachable): %s", r.story_id, r.unreachable, r.errors[0])
            elif r.invalid and r.errors:
                log.warning("story %d: %d malformed kid list(s) or id(s) ignored: %s",
                            r.story_id, r.invalid, r.errors[0])
            if r.story is not None and r.story.dropped:
                log.warning("story %d: field(s) of the wrong type or out of range ignored: %s",
                            r.story_id, ", ".join(r.story.dropped))
        return CycleStats(
            cycle=number,
            started_at=started,
            elapsed=time.perf_counter() - t0,
            stories=len(results),
            requests=after.requests - before.requests,
            errors=after.failures - before.failures,
            partial=len(partial),
            events=events,
            new_items=new_items,
            list_name=self.settings.watched_lists()[0][0],
            counted=tuple(counted),
        )

    async def _follow_stream(self) -> int:
        """Poll the stream of new items (their comments join the watched trees); returns how many came."""
        if self.stream is None:
            return 0
        try:
            batch = await self.stream.poll()
        except FetchError as exc:
            # The cursor stays put, so the next cycle's poll covers this one's items too.
            log.warning("maxitem.json unavailable (%s): new items are followed next cycle", exc)
            return 0
        if batch.gap and self.counter is not None:
            self.counter.forget_all()  # the gap's comments are unknown: walk every watched story again
        if self.rules.item_rules:
            # Existing replies to a watched user come first, once, when --backfill asked for them.
            backfill = self.watchlist.take_backfill() if self.watchlist is not None else []
            self.item_events += await self._observe_items(backfill + batch.new)
        return len(batch.new)

    async def _observe_items(self, items: Sequence[Item]) -> int:
        """Run the item rules (replies, mentions...) over the new items; returns the events fired."""
        assert self.stream is not None
        now = self.clock()
        fired = 0
        for item in items:
            matches = self.rules.observe_item(item, ItemContext(now=now))
            if not matches:
                continue
            thread = await self.stream.thread_of(item)
            if thread is None:
                continue
            host = domain_of(thread.url)
            matches = [(rule, m) for rule, m in matches if not m.thread_domains or on_domain(host, m.thread_domains)]
            if not matches:
                continue
            story = self._snapshots.get(thread.id) or snapshot_of(thread)
            subject = None if item.id == thread.id else Subject(
                id=item.id, type=item.type or "comment", by=item.by, excerpt=excerpt(item.text),
                parent=item.parent, time=item.time,
            )
            at = datetime.fromtimestamp(now, UTC)
            events = [
                Event(key=f"{rule.name}:{match.key or item.id}", rule=rule.name, level=match.level,
                      value=match.value, story=story, at=at, source_list=self._source_of(story.id),
                      wording=match.wording, subject=subject)
                for rule, match in matches
            ]
            fired += len(await self.dispatcher.publish(Evaluation(announce=events)))
        return fired

    async def _housekeep(self) -> None:
        """Keep the store bounded: drop snapshots, finished deliveries and plugin state values older than
        the history window (fired keys stay: they are what prevents repeat alerts)."""
        cutoff = self.clock() - self.settings.history_seconds
        snapshots = await self.store.prune_snapshots(cutoff)
        deliveries = await self.store.purge_done(cutoff)
        states = await self.store.prune_state(cutoff)
        if snapshots or deliveries or states:
            log.info("store: pruned %d old snapshots, %d finished deliveries and %d stale plugin state values",
                     snapshots, deliveries, states)

    async def _story_ids(self) -> list[int]:
        """The watched ids: every watched list (a story on several counted once) and the followed threads.

        A list that cannot be fetched is replaced by its previous cycle's ids (if any). Each story's rank on
        each list is kept in ``_ranks`` for its snapshot.
        """
        ids: dict[int, None] = {}
        ranks: dict[int, dict[str, int]] = {}
        for name, top in self.settings.watched_lists():
            try:
                got = (await self.client.story_ids(name))[:top]
            except FetchError as exc:
                if name not in self._last_lists:
                    raise
                got = self._last_lists[name]
                # One failed list request must not cost a whole cycle: the front page moves slowly.
                log.warning("%s unavailable (%s): counting the previous cycle's %d stories", name, exc, len(got))
            self._last_lists[name] = got
            for position, story_id in enumerate(got, 1):
                ranks.setdefault(story_id, {})[name] = position
                ids[story_id] = None
        if self.watchlist is not None:
            for story_id in await self.watchlist.story_ids(self.client, self.clock()):
                ids.setdefault(story_id, None)
        self._ranks = ranks
        self._last_ids = list(ids)
        return self._last_ids

    def _source_of(self, story_id: int) -> str:
        """The list an event about ``story_id`` names: the first watched list it is on, else "followed"."""
        on = self._ranks.get(story_id)
        return next(iter(on)) if on else "followed"

    async def _evaluate(self, results: Sequence[CrawlResult], ids: Sequence[int]) -> tuple[int, list[StorySnapshot]]:
        """Record the counts, run the rules and publish their events; returns (events fired, stories counted)."""
        now = self.clock()
        counted = [r for r in results if r.story is not None and r.story.type in (None, "story")]
        if not counted:
            return 0, []
        previous = await self.store.latest(r.story_id for r in counted)
        await self.store.add_snapshots([
            CountSample(r.story_id, now, r.comments, r.story.score or 0, r.story.descendants, r.partial)
            for r in counted if r.story is not None
        ])
        span = self.rules.history_span  # the longest history window any rule asked for
        fired = 0
        snapshots: list[StorySnapshot] = []
        self._snapshots = {}  # this cycle's stories only: a story no longer watched is not kept
        for r in counted:
            assert r.story is not None
            on = self._ranks.get(r.story_id, {})
            snapshot = story_snapshot(r, on.get(self.settings.watched_lists()[0][0]), lists=on)
            snapshots.append(snapshot)
            self._snapshots[snapshot.id] = snapshot
            prev = previous.get(r.story_id)
            growth = snapshot.comments - prev.comments if prev is not None and not r.partial else None
            samples: list[tuple[float, int]] = []
            if span is not None and not r.partial:  # a partial count would read as a drop, then a burst
                samples = [(s.at, s.comments) for s in await self.store.history(r.story_id, now - span)]
            evaluation = self.rules.evaluate(
                snapshot, history=samples, growth=growth, source_list=self._source_of(r.story_id), now=now
            )
            if self.watchlist is not None and self.watchlist.is_silent(r.story_id):
                # A watched user's first run: record what their stories already reached, announce nothing.
                evaluation = Evaluation(passed=evaluation.announce + evaluation.passed)
            fired += len(await self.dispatcher.publish(evaluation))
        return fired, snapshots


def story_snapshot(
    result: CrawlResult, rank: int | None = None, *, lists: dict[str, int] | None = None
) -> StorySnapshot:
    """The event-facing view of a counted story (its fields were checked when the item was parsed)."""
    story = result.story
    if story is None:
        story = Item(result.story_id)
    return StorySnapshot(
        id=result.story_id,
        title=story.title or f"item {result.story_id}",
        comments=result.comments,
        score=story.score or 0,
        url=story.url,
        by=story.by,
        time=story.time,
        descendants=story.descendants,
        partial=result.partial,
        rank=rank,
        lists=dict(lists or {}),
    )


def snapshot_of(story: Item) -> StorySnapshot:
    """The event-facing view of a story that is not counted here: its comments are HN's ``descendants``."""
    return StorySnapshot(
        id=story.id,
        title=story.title or f"item {story.id}",
        comments=story.descendants or 0,
        score=story.score or 0,
        url=story.url,
        by=story.by,
        time=story.time,
        descendants=story.descendants,
    )
