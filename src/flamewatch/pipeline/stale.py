"""Stale: a source that stops changing (``maxitem``, a watched list) gives one event when it starts and
one when it ends; the cycle's stats carry the reason, so ``/-/ready`` and the status page name it.

A stage of the cycle, right after collect. Each source's fingerprint (``maxitem`` from the stream's
cursor; a list's ids in order) and when it last changed are kept in the store (``core:stale``), written
after the cycle's events are published, in the record stage's one transaction, as the decline stage's
state is: a failed cycle or a restart neither loses nor repeats the start or the end (a stretch is named
by when the source last changed). A list that cannot be fetched counts as its previous ids, and a
``maxitem`` that cannot be fetched leaves the cursor where it was, so an outage of the API reads as what
it is to us: a source that stopped changing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zlib import crc32

from ..eventkeys import LevelOrder, stale_key
from ..events import SITE, Event, Wording
from ..notifier import StateWrite
from ..rules import Evaluation
from .batch import CycleBatch

if TYPE_CHECKING:
    from ..dispatch import Dispatcher
    from ..rules.stale import StaleRule
    from ..store import Store
    from ..stream import ItemStream

log = logging.getLogger("flamewatch.stale")

__all__ = ["STALE_STATE", "Stale", "source_label"]

#: The store namespace of the sources' fingerprints.
STALE_STATE = "core:stale"


def source_label(source: str) -> str:
    """How a source reads: ``maxitem`` (new items on HN), ``the topstories list``."""
    return "maxitem (new items on HN)" if source == "maxitem" else f"the {source} list"


def _span(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.1f} hours"


class Stale:
    """The stale source alert (rule ``stale``), from fingerprints kept in the store."""

    name = "stale"

    def __init__(self, store: Store, dispatcher: Dispatcher, rule: StaleRule | None, stream: ItemStream | None,
                 lists: tuple[str, ...]) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.rule = rule  # None: `[rules] stale_after` is unset, the stage passes batches on
        self.stream = stream
        self.lists = lists

    def fingerprints(self, batch: CycleBatch) -> dict[str, int]:
        """Each watched source's fingerprint this cycle."""
        assert self.rule is not None
        out: dict[str, int] = {}
        if self.stream is not None and self.stream.cursor is not None:
            out["maxitem"] = self.stream.cursor
        if self.rule.options.stale_lists:
            for name in self.lists:
                ids = sorted((rank, sid) for sid, on in batch.ranks.items() if (rank := on.get(name)) is not None)
                out[name] = crc32(",".join(str(sid) for _rank, sid in ids).encode())
        return out

    async def __call__(self, batch: CycleBatch) -> CycleBatch:
        if self.rule is None or self.rule.options.stale_after is None:
            return batch
        state = self.store.state_for(STALE_STATE)
        raw = await state.get("sources")
        known: dict[str, dict[str, Any]] = raw if isinstance(raw, dict) else {}
        events = []
        for source, print_ in self.fingerprints(batch).items():
            event = self._compare(source, print_, known, batch)
            if event is not None:
                events.append(event)
        batch.stale = [f"{source_label(s)} unchanged for {_span(batch.now - float(v['changed']))}"
                       for s, v in sorted(known.items()) if v.get("stale")]
        if events:
            batch.events += len(await self.dispatcher.publish(Evaluation(announce=events)))
        batch.states.append(StateWrite(STALE_STATE, "sources", known))  # record writes it
        return batch

    def _compare(self, source: str, print_: int, known: dict[str, dict[str, Any]], batch: CycleBatch) -> Event | None:
        assert self.rule is not None and self.rule.options.stale_after is not None
        entry = known.get(source)
        if entry is None:
            known[source] = {"print": print_, "changed": batch.now, "stale": False}
            return None
        since = int(float(entry["changed"]))
        if entry.get("print") != print_:
            was_stale = bool(entry.get("stale"))
            known[source] = {"print": print_, "changed": batch.now, "stale": False}
            if was_stale:
                took = _span(batch.now - since)
                wording = Wording(summary=f"{source_label(source)} changes again",
                                  headline=f"is live again: {source_label(source)} changes again, after {took}",
                                  emoji="white_check_mark")
                return self._event(stale_key(source, since, "end"), source, "end", batch, wording)
            return None
        if not entry.get("stale") and batch.now - since > self.rule.options.stale_after:
            entry["stale"] = True
            quiet = _span(batch.now - since)
            at = datetime.fromtimestamp(since, UTC).strftime("%H:%M UTC")
            wording = Wording(summary=f"{source_label(source)} unchanged for {quiet}",
                              headline=f"looks stale: {source_label(source)} has not changed for {quiet} (since {at})",
                              emoji="warning")
            return self._event(stale_key(source, since, "start"), source, "start", batch, wording)
        return None

    def _event(self, key: str, source: str, phase: str, batch: CycleBatch, wording: Wording) -> Event:
        log.warning("%s", wording.headline)
        # About no story: SITE, which channels show without counts or a discussion link.
        return Event(key=key, rule="stale", level=f"{source} {phase}", value=0.0, story=SITE,
                     at=datetime.fromtimestamp(batch.now, UTC), source_list=source if source != "maxitem" else "",
                     wording=wording, level_order=LevelOrder.NONE)
