"""Delivery outcomes the store could not record: kept in memory, written again later, never sent again.

A send that succeeded (or failed) is a fact; only writing it down failed (disk full, another process
holding the write lock). Sending the rows again would repeat an alert the receiver already has, so the
rows stay out of the pumps (``NotifierInstance.held``) while the store write alone is retried, with a
delay that doubles up to :data:`STORE_RETRY_CAP`. The trouble is said once when it starts and once when
it ends, not on every retry. Outcomes still unwritten at shutdown are the one case left: those rows are
pending in the store and are sent again by the next start (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import StoreError
from .attempt import Failure
from .instance import NotifierInstance

if TYPE_CHECKING:
    from ..store import Delivery

__all__ = ["STORE_RETRY_CAP", "OutcomeBacklog", "Unrecorded"]

log = logging.getLogger("flamewatch.dispatch")

#: The longest wait between two tries of an outcome's store write.
STORE_RETRY_CAP = 300.0


@dataclass(frozen=True)
class Unrecorded:
    """One attempt's outcome that is still to be written to the outbox."""

    instance: NotifierInstance
    rows: list[Delivery]
    failure: Failure | None  #: None: sent


class OutcomeBacklog:
    """The outcomes waiting for the store, and the one task that writes them as soon as it can."""

    def __init__(self, write: Callable[[Unrecorded], Awaitable[None]], *, first_delay: float) -> None:
        self._write = write
        self.first_delay = first_delay
        self._items: list[Unrecorded] = []
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Unrecorded, error: StoreError, label: str) -> None:
        """Keep ``item`` (its rows are never sent again) and make sure the writer task runs."""
        item.instance.held.update(r.id for r in item.rows)
        self._items.append(item)
        if self._task is None or self._task.done():
            outcome = "sent" if item.failure is None else "attempted"
            log.error("notifier %s: %s: %s, but the store cannot record it (%s); kept in memory and not sent "
                      "again; retrying the store write with a growing delay (said once)",
                      item.instance.name, label, outcome, str(error) or type(error).__name__)
            self._task = asyncio.create_task(self._run(), name="record-outcomes")
        else:
            log.debug("notifier %s: %s: outcome kept in memory until the store records again",
                      item.instance.name, label)

    async def _run(self) -> None:
        delay = self.first_delay
        written = 0
        while self._items:
            await asyncio.sleep(delay)
            try:
                written += await self._write_all()
            except StoreError as exc:
                delay = min(delay * 2, STORE_RETRY_CAP)
                log.debug("store still cannot record %d delivery outcome(s) (%s); next try in %gs",
                          len(self._items), exc, delay)
        log.warning("the store records again: wrote %d delivery outcome(s) kept in memory", written)

    async def _write_all(self) -> int:
        """Write the kept outcomes in order; the first StoreError stops (the rest wait for the next try)."""
        written = 0
        while self._items:
            item = self._items[0]
            await self._write(item)
            self._items.pop(0)
            item.instance.held.difference_update(r.id for r in item.rows)
            item.instance.wake.set()
            written += 1
        return written

    async def close(self) -> None:
        """Stop retrying; one last write of what is left, else say which deliveries the next start repeats."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not self._items:
            return
        try:
            await self._write_all()
        except StoreError as exc:
            rows = sum(len(i.rows) for i in self._items)
            log.error("stopping with %d delivery outcome(s) the store could not record (%s): those %d "
                      "deliveries are still pending and will be sent again at the next start", len(self._items),
                      exc, rows)
