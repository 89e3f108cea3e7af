"""Decline: what happened next to watched users' stories and followed threads, kept in the store.

A stage of the cycle, after evaluate and before record. A story leaves a list on the cycles it is *not*
on it, so this cannot be a per-story rule; and its memory must survive a failed cycle and a restart (an
earlier in-memory "left a list" lost the event when a cycle failed, fired on a one-cycle glitch and was
reverted). So every watched story's last known state (title, dead, deleted, each stay on a list with
its ranks and how many cycles it has been away) is one JSON value in the store
(``state_for("core:decline")``), and each cycle:

1. reads it, and compares this cycle's lists and story items with it;
2. publishes the events (fired keys and outbox rows, one transaction);
3. only then writes the new state: it leaves it in the batch (``batch.states``), and the record stage
   writes it in the cycle's one transaction with the samples, after the cycle's other events.

A cycle that fails before 2 changes nothing: its missed list is not counted. One that fails between 2 and
3 is redone from the old state next cycle, and makes the same keys (a stay is named by when it began),
which the store drops as fired: neither lost nor repeated. The same holds across a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zlib import crc32

from ..eventkeys import EventKind, LevelOrder, decline_key
from ..events import Event, StorySnapshot, Wording
from ..notifier import StateWrite
from ..rules import Evaluation
from . import declinewords as words
from .batch import CycleBatch

if TYPE_CHECKING:
    from ..crawl import CrawlResult
    from ..dispatch import Dispatcher
    from ..people import Watchlist
    from ..rules.decline import DeclineRule
    from ..store import Store

log = logging.getLogger("flamewatch.decline")

__all__ = ["DECLINE_STATE", "Decline", "DeclineMemory"]

#: The store namespace of the decline state (":" keeps it apart from every notifier's namespace).
DECLINE_STATE = "core:decline"
#: A story off every list and no longer counted is forgotten after this long.
FORGET_AFTER = 2 * 86400.0
#: The most stories remembered (the oldest seen go first).
MAX_STORIES = 5_000
#: Lists a story slides through quickly by nature: vanishing from a high rank there is not a flag.
FAST_LISTS = frozenset({"newstories", "jobstories"})


@dataclass
class DeclineMemory:
    """The stored state: story id -> its last known facts and its stays on lists (plain JSON)."""

    stories: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: object) -> DeclineMemory:
        """Read what :meth:`to_json` wrote; anything else (a damaged or foreign value) reads as empty."""
        if not isinstance(raw, dict):
            return cls()
        return cls({int(k): v for k, v in raw.items() if k.isdigit() and isinstance(v, dict)})

    def to_json(self) -> dict[str, Any]:
        """The JSON value kept in the store."""
        return {str(k): v for k, v in self.stories.items()}


class Decline:
    """Decline events of watched stories (rule ``decline``), from state kept in the store."""

    name = "decline"

    def __init__(self, store: Store, dispatcher: Dispatcher, rule: DeclineRule | None,
                 watchlist: Watchlist | None, lists: tuple[str, ...]) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.rule = rule  # None: the rule is off (`[rules] decline` unset), the stage passes batches on
        self.watchlist = watchlist
        self.lists = lists

    async def __call__(self, batch: CycleBatch) -> CycleBatch:
        if self.rule is None:
            return batch
        state = self.store.state_for(DECLINE_STATE)
        memory = DeclineMemory.from_json(await state.get("stories"))
        events = self.compare(memory, batch)
        if events:
            batch.events += len(await self.dispatcher.publish(Evaluation(announce=events)))
        forget(memory, batch.now)
        batch.states.append(StateWrite(DECLINE_STATE, "stories", memory.to_json()))  # record writes it
        return batch

    def watched(self, result: CrawlResult, memory: DeclineMemory) -> bool:
        """A watched user's story, a followed thread, or one already remembered (a deleted story has no
        ``by`` any more)."""
        if result.story_id in memory.stories:
            return True
        if self.watchlist is None or result.story is None:
            return False
        return (result.story_id in self.watchlist.followed
                or self.watchlist.user_of_story(result.story_id, result.story.by) is not None)

    def compare(self, memory: DeclineMemory, batch: CycleBatch) -> list[Event]:
        """This cycle against ``memory`` (updated in place): the events it makes."""
        events: list[Event] = []
        for r in batch.results:
            if r.story is None or r.story.type not in (None, "story") or not self.watched(r, memory):
                continue
            entry = memory.stories.get(r.story_id)
            if entry is None:
                # First sight: what it is now is the baseline, not news (it "became" nothing).
                memory.stories[r.story_id] = entry = {"dead": bool(r.story.dead), "deleted": bool(r.story.deleted),
                                                      "title": r.story.title, "lists": {}}
            events += self._item_changes(r, entry, batch)
        for story_id, entry in memory.stories.items():
            events += self._list_changes(story_id, entry, batch)
        return events

    def _item_changes(self, r: CrawlResult, entry: dict[str, Any], batch: CycleBatch) -> list[Event]:
        """Deleted, dead and retitled, from this cycle's story item; the entry learns the item's facts."""
        assert r.story is not None
        story, out = r.story, []
        if story.deleted and not entry.get("deleted"):
            entry["deleted"] = True
            out.append(self._event(EventKind.DELETED, r.story_id, entry, batch, "deleted", words.deleted()))
        elif story.dead and not entry.get("dead"):
            entry["dead"] = True
            out.append(self._event(EventKind.DEAD, r.story_id, entry, batch, "dead", words.dead()))
        entry["dead"] = bool(story.dead) or bool(entry.get("deleted"))
        old = entry.get("title")
        if story.title and not story.deleted and isinstance(old, str) and story.title != old:
            entry["title"] = story.title
            hashed = format(crc32(story.title.encode()), "08x")
            out.append(self._event(EventKind.RETITLED, r.story_id, entry, batch, "retitled",
                                   words.retitled(old, story.title), hashed))
        if not story.deleted:
            entry.update(title=story.title or entry.get("title"), by=story.by, url=story.url,
                         score=story.score or 0)
        entry.update(comments=r.comments, seen=batch.now)
        return out

    def _list_changes(self, story_id: int, entry: dict[str, Any], batch: CycleBatch) -> list[Event]:
        """Stays on each watched list begun, continued (a sharp drop?) or ended after the grace period."""
        assert self.rule is not None
        opts, out = self.rule.options, []
        stays: dict[str, dict[str, Any]] = entry.setdefault("lists", {})
        on = batch.ranks.get(story_id, {})
        for name in self.lists:
            rank, stay = on.get(name), stays.get(name)
            if rank is not None:
                if stay is None or stay.get("gone"):
                    stays[name] = stay = {"since": int(batch.now), "best": rank, "ranks": []}
                stay.update(missed=0, last=rank, best=min(int(stay["best"]), rank))
                ranks = [p for p in stay["ranks"] if batch.now - p[0] <= opts.decline_drop_within]
                stay["ranks"] = ranks = [*ranks, [batch.now, rank]]
                top = min(p[1] for p in ranks)
                if opts.decline_rank_drop and not stay.get("dropped") and rank - top >= opts.decline_rank_drop:
                    stay["dropped"] = True
                    wording = words.dropped(name, top, rank, opts.decline_drop_within)
                    out.append(self._event(EventKind.DROPPED, story_id, entry, batch, name, wording,
                                           name, stay["since"], list_name=name, value=rank))
            elif stay is not None and not stay.get("gone"):
                stay["missed"] = int(stay.get("missed", 0)) + 1
                if stay["missed"] >= opts.decline_grace:
                    stay["gone"] = True
                    out += self._gone(story_id, entry, batch, name, stay)
        return out

    def _gone(self, story_id: int, entry: dict[str, Any], batch: CycleBatch, name: str,
              stay: dict[str, Any]) -> list[Event]:
        """A stay ended: "left", or "likely flagged" from a high rank; nothing for a dead or deleted story
        (that event already said why)."""
        assert self.rule is not None
        if entry.get("dead") or entry.get("deleted"):
            return []
        last, flag_rank = int(stay["last"]), self.rule.options.decline_flag_rank
        if flag_rank and last <= flag_rank and name not in FAST_LISTS:
            kind, wording = EventKind.FLAGGED, words.flagged(name, last)
        else:
            kind, wording = EventKind.LEFT, words.left(name, int(stay["best"]), last)
        return [self._event(kind, story_id, entry, batch, name, wording, name, stay["since"],
                            list_name=name, value=last)]

    def _event(self, kind: EventKind, story_id: int, entry: dict[str, Any], batch: CycleBatch, level: str,
               wording: Wording, *qualifiers: str | int, list_name: str | None = None,
               value: float = 0.0) -> Event:
        snapshot = StorySnapshot(
            id=story_id, title=str(entry.get("title") or f"item {story_id}"), comments=int(entry.get("comments", 0)),
            score=int(entry.get("score", 0)), url=entry.get("url"), by=entry.get("by"),
            lists=dict(batch.ranks.get(story_id, {})),
        )
        log.info("story %d: %s", story_id, wording.summary)
        return Event(key=decline_key(kind, story_id, *qualifiers), rule="decline", level=level, value=value,
                     story=snapshot, at=datetime.fromtimestamp(batch.now, UTC),
                     source_list=list_name or batch.source_of(story_id), wording=wording,
                     level_order=LevelOrder.NONE)


def forget(memory: DeclineMemory, now: float) -> None:
    """Drop stories off every list and not seen for :data:`FORGET_AFTER`; keep at most :data:`MAX_STORIES`."""
    for story_id, entry in list(memory.stories.items()):
        on_a_list = any(not s.get("gone") for s in entry.get("lists", {}).values())
        if not on_a_list and now - float(entry.get("seen", now)) > FORGET_AFTER:
            del memory.stories[story_id]
    if len(memory.stories) > MAX_STORIES:
        oldest = sorted(memory.stories, key=lambda k: float(memory.stories[k].get("seen", 0.0)))
        for story_id in oldest[: len(memory.stories) - MAX_STORIES]:
            del memory.stories[story_id]
