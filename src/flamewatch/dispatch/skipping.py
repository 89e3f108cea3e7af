"""Which rows the dispatcher closes without sending when it takes them: silenced ones, and lower levels
superseded by a higher level of the same rule on the same story taken in the same batch.

Pure functions over the rows, like :mod:`.policies`, so they are easy to test alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..silences import Silence, silencing
from ..store import Delivery

__all__ = ["Skip", "silenced_rows", "skipped_rows", "superseded_rows"]


@dataclass(frozen=True)
class Skip:
    """Rows closed for one reason (``silenced: ...`` or ``superseded: ...``, the outbox marker)."""

    ids: tuple[int, ...]
    reason: str


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
            skips.setdefault(silence.reason(), []).append(row.id)
    return [Skip(tuple(ids), reason) for reason, ids in skips.items()]


def superseded_rows(rows: Sequence[Delivery]) -> list[Skip]:
    """The lower levels superseded by a higher one taken with them.

    When one story reached several numeric levels of one rule (``comments`` 100 and 250, say) before any
    of them went out, only the highest is sent: the others are marked ``superseded`` by its key. Levels
    that are words (keywords, mentions) never supersede.
    """
    skips: dict[str, list[int]] = {}
    highest: dict[tuple[int, str], Delivery] = {}
    for row in rows:
        event = row.event
        if not isinstance(event.level, int) or event.subject is not None:
            continue
        group = (event.story.id, event.rule)
        best = highest.get(group)
        if best is None or int(best.event.level) < event.level:
            highest[group] = row
    for row in rows:
        event = row.event
        if not isinstance(event.level, int) or event.subject is not None:
            continue
        best = highest[(event.story.id, event.rule)]
        if best.id != row.id and int(best.event.level) > event.level:
            skips.setdefault(f"superseded: by {best.event.key}", []).append(row.id)
    return [Skip(tuple(ids), reason) for reason, ids in skips.items()]
