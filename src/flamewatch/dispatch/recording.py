"""Writing the outcome of a delivery attempt to the outbox (done, dead letter, retry later), and the guard
that stops sending once this process no longer holds its store's lock. A mixin of the
:class:`~.runtime.Dispatcher`, so the runtime module stays about taking rows and running deliveries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..events import Event
from .attempt import Failure
from .instance import NotifierInstance
from .policies import RetryPolicy

if TYPE_CHECKING:
    from ..store import Delivery, InstanceLock, Store

log = logging.getLogger("flamewatch.dispatch")

__all__ = ["DispatchStats", "Recording", "label", "while_held"]


@dataclass
class DispatchStats:
    """Counts since the dispatcher was created (rows, not attempts, except ``retried``)."""

    events: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0  #: closed unsent: silenced or superseded (delivered counts grouped rows too)


class Recording:
    """Outcome writing (the attributes below are the dispatcher's)."""

    store: Store
    retry: RetryPolicy
    stats: DispatchStats
    clock: Callable[[], float]

    async def record(self, instance: NotifierInstance, rows: list[Delivery], failure: Failure | None) -> None:
        """Write the outcome of an attempt to the outbox: sent (the rows after the first of a message that
        carried several: grouped into it), dead letter, or retry later."""
        ids = [r.id for r in rows]
        if failure is None:
            await self.store.mark_sent(ids[:1], self.clock(), grouped=ids[1:], into=rows[0].event.key)
            self.stats.delivered += len(ids)
        elif failure.permanent:
            await self.store.mark_dead(ids, error=failure.error)
            self.stats.dead += len(ids)
            log.error("notifier %s: %s: permanent failure, moved to dead letters: %s", instance.name,
                      label(r.event for r in rows), failure.error)
        else:
            await self._retry_later(instance, rows, failure.error, failure.retry_after)

    async def _retry_later(
        self, instance: NotifierInstance, rows: list[Delivery], error: str, retry_after: float | None
    ) -> None:
        now = self.clock()
        first_due = min(r.created_at for r in rows)
        if instance.digest is not None:
            # A digest row waits for its send time before its first attempt: its age counts from then.
            first_due = min(instance.digest.next_after(r.created_at) for r in rows)
        if instance.quiet is not None:
            first_due = instance.quiet.not_before(first_due)
        attempts = max(r.attempts for r in rows)
        next_at = now + self.retry.delay(attempts, retry_after)
        ids = [r.id for r in rows]
        what = label(r.event for r in rows)
        if self.retry.gives_up(first_due, next_at):
            why = f"gave up after {attempts + 1} attempts"
            if retry_after is not None and self.retry.gives_up(first_due, now + retry_after):
                why = (f"the server asked to wait {retry_after:.0f}s (Retry-After), past delivery.max_age "
                       f"({self.retry.max_age:g}s)")
            await self.store.mark_dead(ids, error=f"{why}: {error}")
            self.stats.dead += len(ids)
            log.error("notifier %s: %s: %s: %s", instance.name, what, why, error)
            return
        await self.store.mark_retry(ids, next_at=next_at, error=error)
        self.stats.retried += len(ids)
        log.warning("notifier %s: %s: %s; retrying in %.1fs", instance.name, what, error, next_at - now)



def label(events: Iterable[Event]) -> str:
    """The event key of a single delivery, or "digest of N events", for log lines."""
    events = list(events)
    return events[0].key if len(events) == 1 else f"digest of {len(events)} events"


def while_held(lock: InstanceLock) -> Callable[[], bool]:
    """A ``may_send`` for a :class:`Dispatcher`: True while ``lock`` is held; losing it is logged once."""
    said = False

    def may_send() -> bool:
        nonlocal said
        if lock.held:
            return True
        if not said:
            said = True
            log.error("this flamewatch no longer holds the store's instance lock: sending stopped; the pending "
                      "deliveries are left to the lock's holder")
        return False

    return may_send
