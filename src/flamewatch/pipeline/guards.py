"""The locks a cycle and live mode's batches share (see :mod:`.live`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = ["Guards"]


@dataclass
class Guards:
    """What a cycle and live batches must not do at the same time.

    * ``stream``: one poll of the stream at a time (its cursor);
    * ``count``: the counter's cycle-wide steps (a cycle's ``begin_cycle``: evictions and ``updates.json``)
      apart from a live recount, which holds it while it counts;
    * :meth:`story`: one count of a story at a time (its cached tree). A cycle counts each story under
      its own guard, so a live recount waits for the story it shares with the cycle, never for the
      cycle's whole counting pass.

    The monitor keeps one across pipeline rebuilds, so a reload never lets two of any run at once.
    """

    stream: asyncio.Lock = field(default_factory=asyncio.Lock)
    count: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: story id -> its lock and how many hold or wait for it (dropped at 0: idle stories cost nothing).
    _stories: dict[int, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @asynccontextmanager
    async def story(self, story_id: int) -> AsyncIterator[None]:
        """Hold ``story_id``'s guard for the ``async with`` block."""
        lock, users = self._stories.get(story_id) or (asyncio.Lock(), 0)
        self._stories[story_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._stories[story_id]
            if users == 1:
                del self._stories[story_id]
            else:
                self._stories[story_id] = (lock, users - 1)

    @property
    def stories_guarded(self) -> int:
        """How many stories are counted or waited for now (0 when idle)."""
        return len(self._stories)
