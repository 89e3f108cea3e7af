"""Which rows the dispatcher closes without sending when it takes them: silenced ones, and lower levels
superseded by a higher level of the same rule on the same story taken in the same batch.

Pure functions over the rows, like :mod:`.policies`, so they are easy to test alone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..events import superseding
from ..silences import Silence, silencing
from ..store import Delivery, DeliveryStatus

__all__ = ["Skip", "may_supersede", "silenced_rows", "skipped_rows", "superseded_rows"]


@dataclass(frozen=True)
class Skip:
    """Rows closed unsent for one reason: their state (silenced or superseded) and what it refers to
    (the silence, the superseding key), as the outbox keeps them."""

    ids: tuple[int, ...]
    status: DeliveryStatus
    ref: str

    @property
    def reason(self) -> str:
        """The reason in words, for the log: ``superseded by 1:comments:500``."""
        return f"{self.status} by {self.ref}"


def skipped_rows(rows: Sequence[Delivery], silences: Sequence[Silence], now: float) -> list[Skip]:
    """The rows of ``rows`` not to send, grouped by reason: :func:`superseded_rows`, then
    :func:`silenced_rows` among the rest (the pump's order)."""
    skips = superseded_rows(rows)
    gone = {i for skip in skips for i in skip.ids}
    return skips + silenced_rows([r for r in rows if r.id not in gone], silences, now)


def silenced_rows(rows: Sequence[Delivery], silences: Sequence[Silence], now: float) -> list[Skip]:
    """The rows a silence active at ``now`` stops, grouped by silence."""
    skips: dict[str, list[int]] = {}
    for row in rows:
        silence = silencing(silences, row.event, now)
        if silence is not None:
            skips.setdefault(silence.describe(), []).append(row.id)
    return [Skip(tuple(ids), DeliveryStatus.SILENCED, ref) for ref, ids in skips.items()]


def superseded_rows(rows: Sequence[Delivery], waiting: Sequence[Delivery] = (),
                    keep: Collection[int] = ()) -> list[Skip]:
    """The rows superseded by a better level taken or waiting with them.

    When one story reached several levels of one rule (``comments`` 100 and 250; rank top 10 and #1)
    before any of them went out, only the best by the rule's :class:`~flamewatch.eventkeys.LevelOrder`
    is sent: the others are marked ``superseded`` by its key (:func:`~flamewatch.events.superseding`, the
    rules' own decision). ``waiting`` are the instance's other due rows nobody is sending (a pass takes
    only as many rows as can start, so the better level may not be among ``rows``); those are closed too
    when a better one is among them all. Levels that are words (keywords, mentions) and item events
    never supersede. The rows ``keep`` names are never closed (they may have been sent already: their
    last claim ended with no outcome), though they still count as better levels for the others.
    """
    taken = {row.id for row in rows}
    pool = [*rows, *(row for row in waiting if row.id not in taken)]
    skips: dict[str, list[int]] = {}
    for row, better in zip(pool, superseding([row.event for row in pool]), strict=True):
        if better is not None and row.id not in keep:
            skips.setdefault(better.key, []).append(row.id)
    return [Skip(tuple(ids), DeliveryStatus.SUPERSEDED, ref) for ref, ids in skips.items()]


def may_supersede(row: Delivery) -> bool:
    """Whether ``row``'s event takes part in supersede at all (an ordered level, not an item event)."""
    return row.event.subject is None and row.event.level_order.orders(row.event.level)
