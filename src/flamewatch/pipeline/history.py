"""The history windows the rules read, kept in memory between cycles.

Rules such as ``velocity`` read each story's samples over their longest window (an hour: 60 samples a
story at a 60 s period). Reading them from the store every cycle costs work in proportion to the window
for every story, every cycle; here they are read once per story (when it is first watched, or after a
reload changes the window) and then kept: each cycle appends the sample the collect stage just took
and drops what fell out of the window. A partial count's sample is never part of a window (it would
read as a drop, then a burst), as in the store's own ``histories``.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from ..crawl import CrawlResult

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["HistoryWindows"]


class HistoryWindows:
    """Each watched story's complete samples within ``span`` seconds, as ``(time, comments)``, oldest first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.span: float | None = None
        self._samples: dict[int, deque[tuple[float, int]]] = {}

    async def windows(
        self, results: Sequence[CrawlResult], now: float, span: float, *, live: bool = False, stored: bool = True
    ) -> dict[int, list[tuple[float, int]]]:
        """The windows of this batch's complete counts.

        ``live``: a live batch (a few recounted stories, between cycles): it keeps every other story's
        window, since only a cycle's results say which stories are still watched. ``stored``: the batch's
        samples are in the store already (a live recount's), else record writes them after the rules ran
        (a cycle's), so a window read from the store now lacks this batch's sample.
        """
        if span != self.span:
            self._samples, self.span = {}, span
        counted = {r.story_id: r.comments for r in results
                   if r.story is not None and r.story.type in (None, "story") and not r.partial}
        loaded_now = await self._load(counted, now - span)
        known = self._samples
        for story_id, comments in counted.items():
            samples = known[story_id]
            if story_id not in loaded_now or not stored:  # read from the store: has it this batch's sample?
                _add(samples, (now, comments))
            while samples and samples[0][0] < now - span:
                samples.popleft()
        if not live:
            watched = {r.story_id for r in results}
            for story_id in [s for s in known if s not in watched]:  # left the watched lists
                del known[story_id]
        return {story_id: list(known[story_id]) for story_id in counted}

    async def _load(self, stories: Collection[int], since: float) -> set[int]:
        """Read from the store the windows of ``stories`` not held yet; the ids read."""
        known = self._samples
        loaded_now: set[int] = set()
        # A live batch and a cycle share these windows and run at once: while one reads the store,
        # the other may add or drop windows. Read until every story counted here has one; the
        # caller's updates then run with no await between them.
        while missing := [s for s in stories if s not in known]:
            loaded = await self.store.histories(missing, since)
            for story_id in missing:
                if story_id not in known:
                    known[story_id] = deque((s.at, s.comments) for s in loaded.get(story_id, ()))
                    loaded_now.add(story_id)
        return loaded_now


def _add(samples: deque[tuple[float, int]], sample: tuple[float, int]) -> None:
    """Put ``sample`` in its place by time: a cycle that started before a live recount may finish after
    it, so its sample can be older than the newest one held (the window stays oldest first)."""
    if not samples or samples[-1][0] <= sample[0]:
        samples.append(sample)
    else:
        insort(samples, sample, key=_at)


def _at(sample: tuple[float, int]) -> float:
    return sample[0]
