"""Writing delivery outcomes: in a task a cancelled delivery does not stop, and kept in memory (written
again later, never sent again) when the store cannot record them.

A send that succeeded (or failed) is a fact; only writing it down can fail (disk full, another process
holding the write lock, a lost connection). Each outcome is written by a task of its own behind
:func:`asyncio.shield`, so a delivery cancelled during the write (lead lost, the shutdown's grace ran out)
still records it; :meth:`OutcomeBacklog.close` waits for those writes. Sending the rows again would
repeat an alert the receiver already has, so when the store refuses a write the rows stay out of the
pumps (``NotifierInstance.held``) while the store write alone is retried, with a delay that doubles up
to :data:`STORE_RETRY_CAP`. Meanwhile their leases are renewed (every third of a lease, while this
process leads) and once more right before each try, so no other sender takes the rows while
the store recovers (see :mod:`.lease`): a *sent* outcome is then written whether or not the rows are
still this owner's, a failure only if they are. The trouble is said once when it starts and once when it
ends, not on every retry. Outcomes still unwritten at shutdown are the one case left: those rows are
pending in the store and are sent again by the next start, or by another instance once their leases
lapse (at-least-once, same key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import StoreError
from .attempt import Failure
from .instance import NotifierInstance
from .lease import CLAIM_MARGIN

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
    """The outcomes being written or waiting for the store, and the one task that retries the latter.

    ``write`` records an outcome; ``renew`` renews its rows' leases and says whether all are still ours
    (both raise :class:`StoreError`); ``may_renew`` says whether this process leads (no renewal between
    tries otherwise: a row must not stay away from the next leader for longer than its lease).
    """

    def __init__(self, write: Callable[[Unrecorded], Awaitable[None]], *, first_delay: float,
                 renew: Callable[[Unrecorded], Awaitable[bool]], may_renew: Callable[[], bool]) -> None:
        self._write = write
        self._renew = renew
        self._may_renew = may_renew
        self.first_delay = first_delay
        self._items: list[Unrecorded] = []
        self._task: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()
        self._kept = asyncio.Event()  # set by add(): a wait under way re-plans for the shortest lease

    def __len__(self) -> int:
        return len(self._items)

    async def write(self, item: Unrecorded, label: str) -> None:
        """Record ``item`` now, in a task that goes on if the caller is cancelled; kept when the store refuses."""
        task = asyncio.create_task(self._write_or_keep(item, label), name="record-outcome")
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        await asyncio.shield(task)

    async def _write_or_keep(self, item: Unrecorded, label: str) -> None:
        try:
            await self._write(item)
        except StoreError as exc:
            self.add(item, exc, label)
        except Exception:
            # A bug: never send these rows again in this process either.
            item.instance.held.update(r.id for r in item.rows)
            log.exception("notifier %s: %s: bug while recording the outcome; not sent again by this process",
                          item.instance.name, label)

    def add(self, item: Unrecorded, error: StoreError, label: str) -> None:
        """Keep ``item`` (its rows are never sent again) and make sure the writer task runs."""
        item.instance.held.update(r.id for r in item.rows)
        self._items.append(item)
        self._kept.set()
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
            await self._wait_renewing(delay)
            try:
                written += await self._write_all()
            except StoreError as exc:
                delay = min(delay * 2, STORE_RETRY_CAP)
                log.debug("store still cannot record %d delivery outcome(s) (%s); next try in %gs",
                          len(self._items), exc, delay)
        log.warning("the store records again: wrote %d delivery outcome(s) kept in memory", written)

    async def _wait_renewing(self, delay: float) -> None:
        """Wait ``delay`` seconds, renewing the kept rows' leases as a delivery in flight would."""
        loop = asyncio.get_running_loop()
        left = delay
        while True:
            # A third of the shortest lease kept now: one failed renewal still leaves the next before the
            # lapse. An outcome kept meanwhile (its lease may be shorter) ends the step at once: re-planned.
            every = min(i.instance.timeout + CLAIM_MARGIN for i in self._items) / 3
            step = min(every, left)
            self._kept.clear()
            began = loop.time()
            try:
                async with asyncio.timeout(step):
                    await self._kept.wait()
                left -= loop.time() - began
            except TimeoutError:
                # Counted, not measured: a remainder below the clock's resolution would make a wait that
                # never moves it.
                left -= step
            if left <= 0:
                return  # the write's own renewal follows
            if self._may_renew():
                for item in list(self._items):
                    with contextlib.suppress(StoreError):  # the next try of the write says it, once
                        await self._renew(item)

    async def _write_all(self) -> int:
        """Write the kept outcomes in order; the first StoreError stops (the rest wait for the next try)."""
        written = 0
        while self._items:
            item = self._items[0]
            # Renewed first: still ours, the write lands before anyone else may take the rows.
            if await self._renew(item) or item.failure is None:
                await self._write(item)
            else:
                log.info("notifier %s: a failed attempt's outcome is not written: its rows were taken or closed "
                         "meanwhile", item.instance.name)
            self._items.pop(0)
            item.instance.held.difference_update(r.id for r in item.rows)
            item.instance.wake.set()
            written += 1
        return written

    async def close(self, settle_for: float) -> None:
        """Let outcome writes under way finish (``settle_for`` seconds at most), stop retrying, make one
        last write of what is left, else say which deliveries will be sent again."""
        if self._writing:
            await asyncio.wait(set(self._writing), timeout=settle_for)
            for task in list(self._writing):
                task.cancel()  # the store finishes a statement it started; the rows stay pending otherwise
            await asyncio.gather(*self._writing, return_exceptions=True)
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
