"""Evaluate: run the rules over every counted story and every new item; collect what they say.

Nothing is recorded here (that is the next stage): this stage only turns counts and items into
:class:`~flamewatch.rules.Evaluation` values, each rule isolated by the
:class:`~flamewatch.rules.RuleEngine` (a rule that raises is skipped for that story or item, counted and
named once a cycle).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..crawl import CrawlResult
from ..events import Event, StorySnapshot, Subject
from ..hn import Item
from ..hn.item import on_domain
from ..text import excerpt
from ..rules import Evaluation, ItemContext, RuleEngine
from ..rules.engine import RuleErrors
from .batch import CycleBatch
from .history import HistoryWindows

if TYPE_CHECKING:
    from ..people import Watchlist
    from ..store import Store
    from ..stream import ItemStream

__all__ = ["Evaluate", "snapshot_of", "story_snapshot"]


class Evaluate:
    """Rules over stories (counts and history) and over new items (replies, mentions)."""

    name = "evaluate"

    def __init__(
        self,
        store: Store,
        rules: RuleEngine,
        *,
        first_list: str,
        stream: ItemStream | None,
        watchlist: Watchlist | None,
    ) -> None:
        self.store = store
        self.rules = rules
        self.first_list = first_list  # a snapshot's ``rank`` is its rank on this list
        self.stream = stream
        self.watchlist = watchlist
        self.windows = HistoryWindows(store)  # the rules' history windows, read once, then kept

    async def __call__(self, batch: CycleBatch) -> CycleBatch:
        errors = self.rules.errors()
        await self._stories(batch, errors)
        if self.stream is not None and batch.new_items:
            await self._items(batch, errors)
        batch.rule_errors = dict(errors.counts)
        return batch

    async def _stories(self, batch: CycleBatch, errors: RuleErrors) -> None:
        span = self.rules.history_span  # the longest history window any rule asked for
        histories = {} if span is None else await self.windows.windows(batch.results, batch.now, span,
                                                                        live=batch.live, stored=not batch.samples)
        for r in batch.results:
            if r.story is None or r.story.type not in (None, "story"):
                continue
            on = batch.ranks.get(r.story_id, {})
            snapshot = story_snapshot(r, on.get(self.first_list), lists=on)
            batch.snapshots.append(snapshot)
            prev = batch.previous.get(r.story_id)
            growth = snapshot.comments - prev.comments if prev is not None and not r.partial else None
            samples = histories.get(r.story_id, [])
            evaluation = self.rules.evaluate(
                snapshot, history=samples, growth=growth, source_list=batch.source_of(r.story_id), now=batch.now,
                errors=errors,
            )
            if self.watchlist is not None and self.watchlist.is_silent(r.story_id, snapshot.by):
                # A watched user's first run: record what their stories already reached, announce nothing.
                evaluation = Evaluation(passed=evaluation.announce + evaluation.passed)
            batch.evaluations.append(evaluation)

    async def _items(self, batch: CycleBatch, errors: RuleErrors) -> None:
        """The item rules (replies, mentions...) over the new items; a match's thread is fetched."""
        assert self.stream is not None
        counted = {s.id: s for s in batch.snapshots}
        at = datetime.fromtimestamp(batch.now, UTC)
        for item in batch.new_items:
            matches = self.rules.observe_item(item, ItemContext(now=batch.now), errors)
            if not matches:
                continue
            thread = await self.stream.thread_of(item)
            if thread is None:
                continue
            story = counted.get(thread.id) or snapshot_of(thread)
            matches = [(rule, m) for rule, m in matches
                       if not m.thread_domains or on_domain(story.domain, m.thread_domains)]
            if not matches:
                continue
            subject = None if item.id == thread.id else Subject(
                id=item.id, type=item.type or "comment", by=item.by, excerpt=excerpt(item.text),
                parent=item.parent, time=item.time,
            )
            batch.evaluations.append(Evaluation(announce=[
                Event(key=match.event_key(rule.name, item.id), rule=rule.name, level=match.level,
                      value=match.value, story=story, at=at, source_list=batch.source_of(story.id),
                      wording=match.wording, subject=subject, level_order=rule.level_order)
                for rule, match in matches
            ]))


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
