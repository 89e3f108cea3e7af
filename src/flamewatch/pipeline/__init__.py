"""The alert path, built in one function: :func:`build_pipeline`.

From a new comment on HN to a message in a channel, an alert meets these stages, in this order::

    cycle (every tick):   collect → stale → evaluate → decline → record
    live (between ticks): collect (live) → evaluate → record    (HN's event stream: flamewatch.live)
    pump (per notifier):  lead → quiet hours → take → supersede → silence → group → flood cap
    delivery (per message, a tracked task):  send → record outcome

(``stale`` and ``decline`` are the cycle's only: they compare whole lists, which a live batch has not.)

Every stage is a small object behind one typed interface (:class:`flamewatch.stage.Stage`): it takes a
batch and returns it. The cycle's stages pass a :class:`CycleBatch` (see :mod:`.collect`,
:mod:`.evaluate`, :mod:`.record`); the pump's and a delivery's are the dispatcher's
(:mod:`flamewatch.dispatch.pump`), which every notifier instance's pump runs. A reload builds a new
pipeline with this same function, so whatever it applies is applied everywhere at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..stage import Stage
from .batch import CycleBatch, PipelineSettings
from .collect import Collect, ListMemory
from .decline import Decline
from .guards import Guards
from .live import LiveCollect
from .evaluate import Evaluate, snapshot_of, story_snapshot
from .stale import Stale
from .record import HOUSEKEEPING_EVERY, Record, housekeep

if TYPE_CHECKING:
    from ..dispatch import Dispatcher
    from ..dispatch.pump import DeliveryBatch, PumpBatch
    from ..hn import HNClient
    from ..incremental import IncrementalCounter
    from ..people import Watchlist
    from ..rules import RuleEngine
    from ..rules.decline import DeclineRule
    from ..rules.stale import StaleRule
    from ..store import Store
    from ..stream import ItemStream

__all__ = [
    "HOUSEKEEPING_EVERY",
    "CycleBatch",
    "Guards",
    "Parts",
    "Pipeline",
    "PipelineSettings",
    "Stage",
    "build_pipeline",
    "housekeep",
    "snapshot_of",
    "story_snapshot",
]


@dataclass(frozen=True)
class Parts:
    """What the stages are built from: the long-lived objects of a running flamewatch."""

    client: HNClient
    store: Store
    dispatcher: Dispatcher
    rules: RuleEngine
    settings: PipelineSettings
    counter: IncrementalCounter | None = None
    stream: ItemStream | None = None
    watchlist: Watchlist | None = None


@dataclass(frozen=True)
class Pipeline:
    """The alert path, in order: the cycle's stages, each pump's, then each delivery's.

    ``live`` is the cycle's chain with collect's second input (HN's event stream) first."""

    cycle: Sequence[Stage[CycleBatch]]
    pump: Sequence[Stage[PumpBatch]]
    delivery: Sequence[Stage[DeliveryBatch]]
    live: Sequence[Stage[CycleBatch]] = ()

    def chain(self) -> list[str]:
        """Every stage's name, in the order an alert meets them."""
        return [*(s.name for s in self.cycle), *(s.name for s in self.pump), *(s.name for s in self.delivery)]

    def describe(self) -> str:
        """The chain on one line: ``collect → evaluate → record ⇒ pump: ... ⇒ delivery: ...``."""
        return " ⇒ ".join((
            " → ".join(s.name for s in self.cycle),
            "pump: " + " → ".join(s.name for s in self.pump),
            "delivery: " + " → ".join(s.name for s in self.delivery),
        ))

    async def run_cycle(self, batch: CycleBatch) -> CycleBatch:
        """Pass one cycle's batch through the cycle's stages."""
        for stage in self.cycle:
            batch = await stage(batch)
        return batch

    async def run_live(self, batch: CycleBatch) -> CycleBatch:
        """Pass one live batch (``batch.live``) through the live chain."""
        for stage in self.live:
            batch = await stage(batch)
        return batch


def build_pipeline(parts: Parts, *, last_lists: ListMemory | None = None, guards: Guards | None = None) -> Pipeline:
    """The whole alert path for ``parts``, stage by stage, in order.

    ``last_lists`` is each watched list's last fetched ids (kept across rebuilds, so a list that fails
    right after a reload still falls back to what it was); ``guards`` the locks a cycle shares with live
    batches (kept across rebuilds too).
    """
    lists = last_lists if last_lists is not None else {}
    guards = guards if guards is not None else Guards()
    item_rules = bool(parts.rules.item_rules)
    evaluate = Evaluate(parts.store, parts.rules, first_list=parts.settings.watched_lists()[0][0],
                        stream=parts.stream, watchlist=parts.watchlist)
    record = Record(parts.store, parts.dispatcher, watchlist=parts.watchlist,
                    history_seconds=parts.settings.history_seconds, stream=parts.stream)
    return Pipeline(
        cycle=(
            Collect(parts.client, parts.store, parts.dispatcher, parts.settings, counter=parts.counter,
                    stream=parts.stream, watchlist=parts.watchlist, item_rules=item_rules, last_lists=lists,
                    guards=guards),
            Stale(parts.store, parts.dispatcher, stale_rule(parts.rules), parts.stream,
                  tuple(name for name, _top in parts.settings.watched_lists())),
            evaluate,
            Decline(parts.store, parts.dispatcher, decline_rule(parts.rules), parts.watchlist,
                    tuple(name for name, _top in parts.settings.watched_lists())),
            record,
        ),
        # The pump's stages (lead → quiet hours → take → supersede → silence → group → flood cap) and one
        # delivery's (send → record outcome) are the dispatcher's: flamewatch.dispatch.pump.pump_chain lists them.
        pump=parts.dispatcher.pump,
        delivery=parts.dispatcher.delivery,
        # Collect's second input: new items the moment HN's event stream says maxitem moved, a recount
        # of the stories they joined, and the stories a streamed list change brought in or up;
        # then the same evaluate and record (flamewatch.live drives it).
        live=(
            LiveCollect(parts.client, parts.store, parts.settings, counter=parts.counter, stream=parts.stream,
                        item_rules=item_rules, last_lists=lists, guards=guards, watchlist=parts.watchlist),
            evaluate,
            record,
        ),
    )


def decline_rule(rules: RuleEngine) -> DeclineRule | None:
    """The active ``decline`` rule, whose options the decline stage reads (None: it is off)."""
    from ..rules.decline import DeclineRule

    return next((r for r in rules.rules if isinstance(r, DeclineRule)), None)


def stale_rule(rules: RuleEngine) -> StaleRule | None:
    """The active ``stale`` rule, whose options the stale stage reads (None: it is off)."""
    from ..rules.stale import StaleRule

    return next((r for r in rules.rules if isinstance(r, StaleRule)), None)
