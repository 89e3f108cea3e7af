"""The live source: ``maxitem`` and the watched lists over HN's event stream, changes coalesced.

One :class:`~flamewatch.hn.live.PathStream` per path. The consumer waits on :meth:`LiveSource.changes`,
which returns the names that changed since its last call (``"maxitem"``, a list name, ``"mode"`` when the
source turned live or fell back to polling): however many events arrived meanwhile, one wake-up covers
them, and the values to act on are the latest (:attr:`LiveSource.maxitem`, :attr:`LiveSource.lists`).
Nothing here fetches items: the consumer moves its own stored cursor up to ``maxitem``, so a drop, a
stall or a burst can neither skip nor repeat an item.

    source = LiveSource(session, "https://hacker-news.firebaseio.com/v0", lists=["topstories"])
    source.start()
    while True:
        changed = await source.changes()
        if "maxitem" in changed: ...  # fetch the items above the cursor, up to source.maxitem
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

import aiohttp

from .item import is_item_id
from .live import PathStream

__all__ = ["LiveSource"]

MODE = "mode"
MAXITEM = "maxitem"


class LiveSource:
    """Follow ``maxitem`` and ``lists`` below ``base_url``; ``options`` go to every :class:`PathStream`."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, lists: Iterable[str] = (),
                 **options: Any) -> None:
        base = base_url.rstrip("/")
        self.maxitem: int | None = None
        self.lists: dict[str, list[int]] = {}
        self._dirty: set[str] = set()
        self._changed = asyncio.Event()
        self.since = time.time()
        self.maxitem_stream = PathStream(session, f"{base}/{MAXITEM}.json", self._on_maxitem,
                                         on_mode=self._on_mode, **options)
        self.streams = [self.maxitem_stream] + [
            PathStream(session, f"{base}/{name}.json", partial(self._on_list, name), **options)
            for name in dict.fromkeys(lists)
        ]

    @property
    def live(self) -> bool:
        """Whether new items arrive over the stream now (``maxitem`` is what makes the source live)."""
        return self.maxitem_stream.live

    @property
    def mode(self) -> str:
        """``"live"`` or ``"polling"``."""
        return "live" if self.live else "polling"

    def start(self) -> None:
        """Open every stream (in tasks of the running loop)."""
        for stream in self.streams:
            stream.start()

    async def close(self) -> None:
        """Close every stream."""
        for stream in self.streams:
            await stream.close()

    async def changes(self) -> set[str]:
        """Wait for the next change and return what changed since the last call (coalesced)."""
        while not self._dirty:
            self._changed.clear()
            await self._changed.wait()
        dirty, self._dirty = self._dirty, set()
        return dirty

    def status(self) -> dict[str, Any]:
        """For the status page and the API: the mode, since when (unix time) and the streams' counters."""
        return {
            "mode": self.mode,
            "since": self.since,
            "maxitem": self.maxitem,
            "last_error": self.maxitem_stream.last_error,
            "streams": {str(s.url.path): vars(s.stats).copy() for s in self.streams},
        }

    def _mark(self, name: str) -> None:
        self._dirty.add(name)
        self._changed.set()

    def _on_maxitem(self, value: Any) -> None:
        if is_item_id(value) and value != self.maxitem:
            self.maxitem = value
            self._mark(MAXITEM)

    def _on_list(self, name: str, value: Any) -> None:
        ids = [i for i in value if is_item_id(i)] if isinstance(value, list) else []
        if ids != self.lists.get(name):
            self.lists[name] = ids
            self._mark(name)

    def _on_mode(self, live: bool) -> None:
        self.since = self.maxitem_stream.since
        self._mark(MODE)
