"""Record: the cycle's events become fired keys and outbox rows; its samples and state are written.

The last stage of a cycle. Every evaluation of the cycle (stories and new items) is published together
(one transaction): a key that already fired is dropped by the store, and each new event gets one outbox
row per notifier instance whose route takes it, written before anything is sent (the pump sends them).
Then the watchlist learns the counts, and the cycle's samples, the stream's cursor, the followed
threads' activity and the state the earlier stages left in the batch (decline's memory, the stale
sources) are written in one more transaction (a cursor that did not move and an activity that did not
change are left out). Now and then the store is pruned.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..rules import Evaluation
from .batch import CycleBatch

if TYPE_CHECKING:
    from ..dispatch import Dispatcher
    from ..people import Watchlist
    from ..store import Store
    from ..stream import ItemStream

log = logging.getLogger("flamewatch.monitor")

__all__ = ["HOUSEKEEPING_EVERY", "Record", "housekeep"]

#: Prune old history and finished deliveries every this many cycles (fired keys are kept forever).
HOUSEKEEPING_EVERY = 60


class Record:
    """Fired keys and outbox rows for the cycle's events; the watchlist's counts; housekeeping."""

    name = "record"

    def __init__(
        self, store: Store, dispatcher: Dispatcher, *, watchlist: Watchlist | None, history_seconds: float,
        stream: ItemStream | None = None,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.watchlist = watchlist
        self.stream = stream
        self.history_seconds = history_seconds

    async def __call__(self, batch: CycleBatch) -> CycleBatch:
        merged = Evaluation()
        for evaluation in batch.evaluations:
            merged.extend(evaluation)
        if merged.announce or merged.passed:
            batch.events += len(await self.dispatcher.publish(merged))
        if batch.live:
            return batch  # the followed threads' activity and housekeeping are the cycle's
        if self.watchlist is not None:
            await self.watchlist.after_counts(
                ((r.story_id, r.story, r.comments) for r in batch.results if r.story is not None or not r.errors),
                batch.now, save=False,
            )
        await self._write(batch)
        if batch.number % HOUSEKEEPING_EVERY == 0:
            await housekeep(self.store, batch.now - self.history_seconds)
        return batch

    async def _write(self, batch: CycleBatch) -> None:
        """The cycle's samples and whatever state changed, in one transaction (none when nothing did)."""
        parts = [p for p in (self.stream, self.watchlist) if p is not None]
        writes = [(p, w) for p in parts if (w := p.unsaved(batch.now)) is not None]
        await self.store.add_snapshots(batch.samples, states=[*batch.states, *(w for _, w in writes)])
        batch.samples, batch.states = [], []
        for part, write in writes:
            part.saved(write, batch.now)


async def housekeep(store: Store, cutoff: float) -> None:
    """Keep the store bounded: drop snapshots, finished deliveries and plugin state values older than
    ``cutoff`` (fired keys stay: they are what prevents repeat alerts)."""
    snapshots = await store.prune_snapshots(cutoff)
    deliveries = await store.purge_done(cutoff)
    states = await store.prune_state(cutoff)
    if snapshots or deliveries or states:
        log.info("store: pruned %d old snapshots, %d finished deliveries and %d stale plugin state values",
                 snapshots, deliveries, states)
