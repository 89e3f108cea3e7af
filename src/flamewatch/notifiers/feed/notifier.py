"""The ``feed`` notifier: keeps the events its route takes, for the HTTP face to serve as Atom and JSON Feed.

A feed is a notifier instance like any other, so it is chosen by exactly the same route keys
(``min_comments``, ``rules``, ``lists``, ``keywords``...) and fed through the same outbox. Its "send"
stores the event in the instance's persistent state (one JSON list, newest last, at most ``keep``
entries), so the feed survives restarts and a standby sharing the store serves the same entries.
``GET /feeds/<name>.atom?token=...`` and ``.json`` read it back (:mod:`flamewatch.http.feeds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flamewatch import Event, Notifier, NotifierContext, PermanentDeliveryError, PositiveInt, Secret

#: The state key holding the entries (``Event.to_dict()`` of each, oldest first).
ENTRIES_KEY = "entries"


@dataclass(frozen=True)
class FeedOptions:
    """Options of a ``type = "feed"`` notifier.

    ``token`` protects the feed: readers put it in the URL (``?token=...``), since feed readers send no
    headers. ``keep`` is how many of the latest entries the feed holds.
    """

    token: Secret
    title: str = ""
    keep: PositiveInt = 100


class FeedNotifier(Notifier):
    """Collect events for an Atom / JSON feed served by the HTTP face."""

    type_name = "feed"
    description = "keeps events for an Atom and JSON feed at /feeds/<name>.atom and .json (HTTP face)"
    Options = FeedOptions

    options: FeedOptions

    def __init__(self, ctx: NotifierContext, options: FeedOptions) -> None:
        super().__init__(ctx, options)
        self._writing = asyncio.Lock()

    async def start(self) -> None:
        """Check that the token can be read (a feed nobody can open is a config mistake)."""
        self.token()

    def token(self) -> str:
        """The feed's secret token, read now."""
        try:
            value = self.options.token.reveal().strip()
        except LookupError as exc:  # names the variable or file, never the value
            raise PermanentDeliveryError(f"token: {exc}") from None
        if len(value) < 16 or not value.isprintable() or any(ch.isspace() for ch in value):
            # It ends up in a URL and guards the feed alone: short or odd values are mistakes.
            raise PermanentDeliveryError("token: the secret must be at least 16 printable characters without spaces")
        return value

    async def entries(self) -> list[Event]:
        """The stored events, newest first (rows that no longer read as events are skipped)."""
        raw = await self.ctx.state.get(ENTRIES_KEY)
        events = []
        for item in raw if isinstance(raw, list) else []:
            try:
                events.append(Event.from_dict(item))
            except (KeyError, TypeError, ValueError):
                continue
        return events[::-1]

    async def send(self, event: Event) -> None:
        """Add ``event`` to the feed (again: a retried delivery replaces its earlier copy, same id)."""
        await self._add([event])

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Add every event of a digest (a feed has no use for one message; readers list entries)."""
        await self._add(list(events))

    async def _add(self, events: list[Event]) -> None:
        # Sends run at once with ``concurrency`` > 1: one read-add-write at a time, or the last write
        # would drop what the others added.
        async with self._writing:
            raw = await self.ctx.state.get(ENTRIES_KEY)
            stored: list[Any] = raw if isinstance(raw, list) else []
            keys = {e.key for e in events}
            kept = [item for item in stored if not (isinstance(item, dict) and item.get("key") in keys)]
            kept.extend(e.to_dict() for e in events)
            await self.ctx.state.set(ENTRIES_KEY, kept[-self.options.keep:])
