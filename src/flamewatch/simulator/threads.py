"""Per-story comment bookkeeping: which comments belong to which story, and its true visible count.

The served items only link child to parent; growth needs the other direction quickly (pick a reply target
in a story, find its recent comments, keep ``descendants`` right), so `Threads` keeps it on the side.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from .model import DEAD, DELETED, VISIBLE, ThreadModel

__all__ = ["Thread", "Threads"]


@dataclass
class Thread:
    """One story's comment ids (creation order), its reply-target pool and its true visible count."""

    comments: list[int] = field(default_factory=list)
    #: each comment once, plus once per reply it has: picking from it is preferential attachment
    pool: list[int] = field(default_factory=list)
    visible: int = 0


class Threads:
    """Every story's `Thread`, plus each comment's story and depth, and the lag of served counts.

    HN's ``descendants`` lags behind the tree; with a `lag` of n steps, the counts to serve are those
    of n growth steps ago (see `end_step`).
    """

    def __init__(self) -> None:
        self.by_story: dict[int, Thread] = {}
        self._root: dict[int, int] = {}  # comment id -> story id
        self._depth: dict[int, int] = {}  # comment id -> depth (top-level = 1)
        self.lag = 0
        self._history: list[dict[int, int]] = []  # true counts at the end of each of the last steps

    def set_lag(self, steps: int) -> None:
        """Serve counts `steps` growth steps old from now on (0: serve true counts at once)."""
        self.lag = steps
        self._history.clear()

    def end_step(self) -> dict[int, int]:
        """At the end of a growth step: the ``descendants`` to serve now, by story (empty without a lag)."""
        if not self.lag:
            return {}
        self._history.append({sid: thread.visible for sid, thread in self.by_story.items()})
        return self._history.pop(0) if len(self._history) > self.lag else {}

    def open(self, story_id: int) -> Thread:
        """The story's thread, created empty if it has none yet."""
        return self.by_story.setdefault(story_id, Thread())

    def story_of(self, item_id: int) -> int | None:
        """The story a comment belongs to (a story is its own), or None if the item is in no thread."""
        return item_id if item_id in self.by_story else self._root.get(item_id)

    def add(self, story_id: int, comment_id: int, parent: int, depth: int, *, visible: bool) -> None:
        """Register a new comment of `story_id` at `depth`, replying to `parent`."""
        self._root[comment_id] = story_id
        self._depth[comment_id] = depth
        thread = self.by_story[story_id]
        thread.comments.append(comment_id)
        thread.pool.append(comment_id)
        if parent != story_id:
            thread.pool.append(parent)
        if visible:
            thread.visible += 1

    def depth(self, item_id: int) -> int:
        """A comment's depth (top-level = 1); 0 for a story or an unknown item."""
        return self._depth.get(item_id, 0)

    def heat(self, story_id: int, age_hours: float) -> float:
        """Growth weight: big threads attract comments, and young ones more (about a 6-hour half-life)."""
        return (self.by_story[story_id].visible + 3) * max(1e-6, math.exp(-age_hours / 8.6))

    def pick_parent(
        self, story_id: int, items: dict[int, dict[str, Any]], rng: random.Random, model: ThreadModel
    ) -> int:
        """Pick a reply target in a story with the calibrated attachment model."""
        thread = self.by_story[story_id]
        n = len(thread.comments)
        if n == 0 or rng.random() < model.p_top(n):
            return story_id
        j = story_id
        for _ in range(64):
            j = (
                thread.pool[rng.randrange(len(thread.pool))]
                if rng.random() < model.preferential
                else thread.comments[rng.randrange(n)]
            )
            item = items.get(j)
            if item is None or not isinstance(item.get("kids", []), list):
                continue  # corrupted by a test: never reply there
            status = DELETED if item.get("deleted") is True else (DEAD if item.get("dead") is True else VISIBLE)
            if rng.random() < model.accept(self._depth.get(j, 1), status):
                return j
        return story_id
