"""Runs the watcher's cycle: :meth:`Monitor.cycle` passes one batch through the pipeline's cycle stages.

The :class:`~flamewatch.watch.Watcher` calls :meth:`Monitor.cycle` every tick, and ``flamewatch once``
calls it once. The monitor holds no step of the alert path itself (those are the stages that
:func:`~flamewatch.pipeline.build_pipeline` lists); it holds what lives across cycles (the pipeline, each
list's last ids) and turns a finished batch into the cycle's :class:`~flamewatch.events.CycleStats`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from .crawl import CrawlResult
from .dispatch import Dispatcher
from .events import CycleStats
from .hn import HNClient
from .incremental import IncrementalCounter
from .people import Watchlist
from .pipeline import (
    HOUSEKEEPING_EVERY,
    CycleBatch,
    Guards,
    Parts,
    Pipeline,
    PipelineSettings,
    build_pipeline,
    housekeep,
    snapshot_of,
    story_snapshot,
)
from .rules import RuleEngine
from .store import Store
from .stream import ItemStream

log = logging.getLogger("flamewatch.monitor")

__all__ = ["HOUSEKEEPING_EVERY", "Monitor", "MonitorSettings", "snapshot_of", "story_snapshot"]

#: The settings the cycle reads (the name it had before the pipeline).
MonitorSettings = PipelineSettings


class Monitor:
    """Runs each cycle through the pipeline and reports its statistics."""

    def __init__(
        self,
        client: HNClient,
        store: Store,
        rules: RuleEngine,
        dispatcher: Dispatcher,
        settings: PipelineSettings | None = None,
        *,
        counter: IncrementalCounter | None = None,
        stream: ItemStream | None = None,
        watchlist: Watchlist | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.watchlist = watchlist
        self.parts = Parts(client=client, store=store, dispatcher=dispatcher, rules=rules,
                           settings=settings or PipelineSettings(), counter=counter, stream=stream,
                           watchlist=watchlist)
        self._last_lists: dict[str, list[int]] = {}  # each list's ids as last fetched, across rebuilds
        self._guards = Guards()  # a cycle and live batches share the stream's cursor and the counter
        self.pipeline: Pipeline = build_pipeline(self.parts, last_lists=self._last_lists, guards=self._guards)
        #: A pipeline a reload built; it replaces :attr:`pipeline` when the next cycle begins.
        self.next_pipeline: Pipeline | None = None
        self.last_results: list[CrawlResult] = []

    @property
    def settings(self) -> PipelineSettings:
        """The settings of the pipeline the next cycle runs."""
        return self.parts.settings

    @property
    def rules(self) -> RuleEngine:
        """The rules of the pipeline the next cycle runs."""
        return self.parts.rules

    def rebuild(self, *, rules: RuleEngine | None = None, settings: PipelineSettings | None = None) -> Pipeline:
        """Build the pipeline again with new rules or settings (a reload); the next cycle runs it."""
        changes = {k: v for k, v in (("rules", rules), ("settings", settings)) if v is not None}
        self.parts = Parts(**{**self.parts.__dict__, **changes})
        self.next_pipeline = build_pipeline(self.parts, last_lists=self._last_lists, guards=self._guards)
        return self.next_pipeline

    async def housekeep(self) -> None:
        """Prune the store now (every :data:`HOUSEKEEPING_EVERY` cycles otherwise)."""
        await housekeep(self.store, self.clock() - self.settings.history_seconds)

    async def cycle(self, number: int) -> CycleStats:
        """Run one cycle and return its statistics."""
        if self.next_pipeline is not None:
            self.pipeline, self.next_pipeline = self.next_pipeline, None
        now = self.clock()
        t0 = time.perf_counter()  # how long the cycle took: a duration, not a time of day
        before = self.client.stats.copy()
        batch = await self.pipeline.run_cycle(CycleBatch(number, now))
        self.last_results = batch.results
        after = self.client.stats
        _warn_partial(batch.results)
        return CycleStats(
            cycle=number,
            started_at=datetime.fromtimestamp(now, UTC),
            elapsed=time.perf_counter() - t0,
            stories=len(batch.results),
            requests=after.requests - before.requests,
            errors=after.failures - before.failures,
            partial=sum(1 for r in batch.results if r.partial or r.story is None),
            events=batch.events,
            new_items=batch.streamed,
            list_name=self.settings.watched_lists()[0][0],
            counted=tuple(batch.snapshots),
            rule_errors=tuple(sorted(batch.rule_errors.items())),
            stale=tuple(batch.stale),
        )


    async def live_items(self, maxitem: int | None = None) -> set[int]:
        """Live mode, when ``maxitem`` moved: fetch the new items now and run the item rules on them.

        Returns the watched stories whose trees the new items joined (their story rules are due again).
        """
        batch = await self.pipeline.run_live(CycleBatch(-1, self.clock(), live=True, maxitem=maxitem))
        return batch.touched

    async def live_recount(self, story_ids: list[int]) -> int:
        """Live mode: count ``story_ids`` again and run their story rules now; returns the events fired."""
        if not story_ids:
            return 0
        batch = await self.pipeline.run_live(CycleBatch(-1, self.clock(), ids=list(story_ids), live=True))
        return batch.events

    async def live_lists(self, lists: dict[str, list[int]]) -> int:
        """Live mode: watched lists changed on the stream; rank them now and count the stories that came in
        (and a watched user's that climbed): their rank and story rules run now; returns the events fired."""
        batch = await self.pipeline.run_live(CycleBatch(-1, self.clock(), live=True, listed=dict(lists)))
        return batch.events


def _warn_partial(results: Sequence[CrawlResult]) -> None:
    """One line per story whose count is partial, or whose item had malformed fields or kids."""
    for r in results:
        if r.partial or r.story is None:
            if r.errors:
                log.warning("story %d: partial count (%d unreachable): %s", r.story_id, r.unreachable, r.errors[0])
        elif r.invalid and r.errors:
            log.warning("story %d: %d malformed kid list(s) or id(s) ignored: %s", r.story_id, r.invalid, r.errors[0])
        if r.story is not None and r.story.dropped:
            log.warning("story %d: field(s) of the wrong type or out of range ignored: %s",
                        r.story_id, ", ".join(r.story.dropped))
