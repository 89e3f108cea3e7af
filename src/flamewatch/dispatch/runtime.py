"""Route events to notifier instances through the outbox, as tracked fire-and-forget tasks.

The flow for one event (the stages are listed in order by :func:`.pump.pump_chain`):

1. :meth:`Dispatcher.publish` asks each instance's :class:`~.policies.Route` whether it wants the event,
   then records the event and one outbox row per chosen instance in a single store transaction (a key
   that already fired is dropped there: no repeat alerts, even across restarts).
2. Each notifier instance has a *pump*: a task that takes its due outbox rows and starts one delivery
   task per row (or one per batch, for a digest), at most ``concurrency`` at a time. Deliveries run in a
   :class:`~flamewatch.tasks.TaskRegistry`, never on the watcher's path, so a slow notifier cannot
   delay a cycle.
3. A delivery that succeeds marks its rows done; a retryable failure reschedules them as the
   :class:`~.policies.RetryPolicy` says (never sooner than ``Retry-After``) until ``max_age``; a permanent
   failure, or running out of time, moves them to the dead-letter state with the reason.
4. :meth:`Dispatcher.close` stops the pumps, lets running deliveries finish within the shutdown
   timeout and cancels the rest: their rows stay pending and are resumed on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..events import Event
from ..silences import Silence, SilenceList
from ..tasks import CloseReport, TaskRegistry
from .attempt import Failure
from .firedkeys import FiredKeys
from .instance import NotifierInstance
from .lease import CLAIM_MARGIN, LeaseKeeper, claim_owner
from .membership import Membership
from .outcomes import OutcomeBacklog, Unrecorded
from .policies import RetryPolicy
from .pump import DeliveryBatch, PumpBatch, pump_chain
from .recording import DispatchStats, Recording

if TYPE_CHECKING:
    from ..rules import Evaluation
    from ..store import Delivery, Store

__all__ = [
    "BLOCKING_WARN_SECONDS",
    "POLL_SECONDS",
    "STORE_ERROR_BACKOFF",
    "DispatchStats",
    "Dispatcher",
    "HookCaller",
]

log = logging.getLogger("flamewatch.dispatch")

#: A notifier step (the code between two awaits) running longer than this blocked every other task:
#: the watcher's ticks, the HN crawl and the other notifiers. It is reported with the notifier's name.
BLOCKING_WARN_SECONDS = 0.1

#: An idle pump re-reads its outbox at least this often, even when nothing woke it: rows requeued by
#: ``flamewatch outbox retry`` from another process, or recorded by a publish cancelled before it woke us.
POLL_SECONDS = 30.0

#: How long a pump waits after it failed to read the outbox (or hit a bug), and the first wait before
#: writing again a delivery outcome the store could not record (see :mod:`.outcomes`).
STORE_ERROR_BACKOFF = 5.0

#: How often a dispatcher writes the silences back (the store forgets state values not written for
#: ``history_days``; a silence may be longer).
SILENCES_REWRITE_EVERY = 86400.0


HookCaller = Callable[..., None]


class Dispatcher(Membership, Recording):
    """Owns the notifier instances' pumps and every delivery task."""

    def __init__(
        self,
        store: Store,
        instances: Sequence[NotifierInstance],
        *,
        retry: RetryPolicy | None = None,
        on_event: HookCaller | None = None,
        on_delivery: HookCaller | None = None,
        clock: Callable[[], float] = time.time,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        """``may_send``: whether this process may send now (it holds the store's instance lock, or leads a
        shared store); checked before rows are taken and before every send, since a lock can be lost."""
        not_open = [i.name for i in instances if not i.is_open]
        if not_open:
            raise ValueError(f"notifier instances must be open before dispatching: {', '.join(not_open)}")
        self.store = store
        self.instances = {instance.name: instance for instance in instances}
        self.retry = retry or RetryPolicy()
        self.clock = clock
        #: Checked before rows are taken and before every send: False (a standby, or a leader that lost
        #: its lock) and nothing goes out; :meth:`resume` wakes the pumps when it turns True again.
        self.may_send: Callable[[], bool] = may_send or (lambda: True)
        #: This dispatcher's name on the outbox rows it leases; never shared (see :mod:`.lease`).
        self.owner = claim_owner()
        self._on_event = on_event
        self._on_delivery = on_delivery
        self.deliveries = TaskRegistry("deliveries")
        self._pumps: list[asyncio.Task[None]] = []
        self._pump_of: dict[str, asyncio.Task[None]] = {}
        #: Instances whose notifier failed to start, with the exception (``run`` refuses a permanent one).
        self.start_failures: dict[str, BaseException] = {}
        self.stats = DispatchStats()
        #: The pump's stages and one delivery's, in order (see :func:`.pump.pump_chain`).
        self.pump, self.delivery = pump_chain(self, poll=POLL_SECONDS, claim_margin=CLAIM_MARGIN, owner=self.owner,
                                              blocking_warn=BLOCKING_WARN_SECONDS)
        #: Outcomes of sends the store could not record: their rows are never sent again by this process.
        self.backlog = OutcomeBacklog(lambda u: self.record(u.instance, u.rows, u.failure),
                                      first_delay=STORE_ERROR_BACKOFF, renew=self._renew_kept,
                                      may_renew=lambda: self.may_send())
        # Notified (and _changes counted) when a delivery attempt ends and when a publish has written its
        # rows: the moments at which "nothing due or in flight" or a stats predicate can start to hold.
        self._changed = asyncio.Condition()
        self._changes = 0
        #: The silences in the store as last read (:meth:`refresh_silences`, every cycle and at start).
        self.silences: list[Silence] = []
        #: Keys seen recorded: a level a story crossed long ago, reported again each cycle, is skipped.
        self.fired = FiredKeys()

    # --- events in ------------------------------------------------------------------------------

    async def publish(self, evaluation: Evaluation) -> list[Event]:
        """Record the evaluation's events and queue deliveries; returns the events that were new."""
        fired = self.fired
        announce = [e for e in evaluation.announce if e.key not in fired]
        passed = [e for e in evaluation.passed if e.key not in fired]
        if not announce and not passed:
            return []
        now = self.clock()
        routes = self._routes(announce, passed)
        chosen = {n for names in routes.values() for n in names}
        # Digests, groups (group_wait) and quiet hours decide when a new row is first due.
        not_before = {name: self.instances[name].not_before(now) for name in chosen}
        try:
            new = await self.store.record_events([*announce, *passed], routes, now, not_before)
            fired.add(routes)
        finally:
            # The write may have committed even if this task is being cancelled (a cycle timeout): wake the
            # pumps regardless, so committed rows do not wait for some unrelated event.
            for name in chosen:
                self.instances[name].wake.set()
            await self.announce_change()
        announce_keys = {e.key for e in announce}
        fresh = [e for e in new if e.key in announce_keys]
        self._fired(fresh)
        return fresh

    def _routes(self, announce: Sequence[Event], passed: Sequence[Event]) -> dict[str, list[str]]:
        """Event key -> the instances whose route takes it; a passed event goes nowhere (it is recorded as
        fired so it is never announced later)."""
        routes: dict[str, list[str]] = {}
        for event in announce:
            routes[event.key] = [i.name for i in self.instances.values() if i.route.accepts(event)]
        for event in passed:
            routes[event.key] = []
        return routes

    def _fired(self, fresh: Sequence[Event]) -> None:
        """Count the new events and tell the ``flamewatch_event_fired`` observers."""
        for event in fresh:
            self.stats.events += 1
            if self._on_event is not None:
                self._on_event(event=event)

    # --- lifecycle ------------------------------------------------------------------------------

    async def refresh_silences(self) -> None:
        """Re-read the silences from the store (``flamewatch silence add`` from another process shows up
        here); written back now and then so the store's pruning of old state never drops a long one."""
        try:
            book = await SilenceList.load(self.store)
            now = self.clock()
            if book.silences and now - book.written_at > SILENCES_REWRITE_EVERY:
                await book.save(self.store, now)
        except StoreError as exc:
            log.error("cannot read the silences (%s); keeping the %d known", exc, len(self.silences))
            return
        self.silences = book.active(now)

    async def start(self) -> None:
        """Start every instance's notifier and pump; pending rows from an earlier run are resumed."""
        await self.refresh_silences()
        for instance in self.instances.values():
            await self._start_instance(instance)
        orphans: dict[str, int] = {}
        for row in await self.store.pending():
            if row.instance not in self.instances:
                orphans[row.instance] = orphans.get(row.instance, 0) + 1
        for name, count in sorted(orphans.items()):
            log.warning("%d deliveries are queued for notifier %r, which is not configured (or not enabled) now; "
                        "they wait for it to come back ('flamewatch outbox drop' removes them)", count, name)

    async def flush_digests(self, instance: str | None = None) -> int:
        """Make every waiting digest due now (all digest instances, or the one named); returns the rows moved."""
        now = self.clock()
        moved = 0
        for target in self.instances.values():
            if target.digest is None or (instance is not None and target.name != instance):
                continue
            ids = [r.id for r in await self.store.pending(target.name) if r.next_at > now]
            if ids:
                moved += await self.store.requeue(ids, now)
                target.wake.set()
        return moved

    async def wait_for(self, predicate: Callable[[DispatchStats], bool]) -> None:
        """Wait until ``predicate(self.stats)`` holds; re-checked after every delivery attempt."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.stats))

    async def wait_idle(self) -> None:
        """Wait until nothing is due or in flight (tests and ``once`` use this).

        Rows due later (a retry, a digest) do not count until they are due. Event-driven: it sleeps until
        the deliveries have ended, then looks at the outbox once; rows due but not yet taken wake their
        pumps, and it sleeps again until the next delivery ends or publish writes rows.
        """
        while True:
            await self.deliveries.wait_idle()
            if not self.may_send():
                return  # nothing will be sent from here: the rows wait for the lock's holder
            seen = self._changes  # read before the outbox: a change during the query is not missed
            now = self.clock()
            due = {r.instance for r in await self.store.due(now)
                   if r.instance in self.instances and r.id not in self.instances[r.instance].held
                   and not self._quiet_now(self.instances[r.instance], now)}
            if len(self.deliveries):
                continue  # a pump started deliveries while we looked
            if not due:
                return
            for name in due:
                self.instances[name].wake.set()
            await self._wait_for_change_since(seen)

    @staticmethod
    def _quiet_now(instance: NotifierInstance, now: float) -> bool:
        """Whether ``instance`` is inside its quiet hours (its due rows wait for the window's end)."""
        return instance.quiet is not None and instance.quiet.end_after(now) is not None

    async def close(self, grace: float) -> CloseReport:
        """Stop the pumps, give running deliveries ``grace`` seconds, cancel the rest, close notifiers."""
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._pumps.clear()
        self._pump_of.clear()
        report = await self.deliveries.close(grace)
        # Outcome writes outlive cancelled deliveries: they get the lease's margin, the time it leaves them.
        await self.backlog.close(CLAIM_MARGIN)
        if report.cancelled:
            log.warning("%d deliveries did not finish in %.1fs; they stay in the outbox for the next start",
                        report.cancelled, grace)
        for instance in self.instances.values():
            try:
                async with asyncio.timeout(instance.timeout):
                    await instance.notifier.aclose()
            except Exception as exc:  # plugin code may raise anything; one must not stop the others closing
                log.error("notifier %s: error while closing: %s", instance.name, exc)
        return report

    def resume(self) -> None:
        """Wake every pump (``may_send`` turned True: this instance leads now); the flood caps count the
        last hour again from the store (the previous leader's messages are not in this process's count)."""
        for instance in self.instances.values():
            instance.count_from_store = True
            instance.wake.set()

    def halt(self) -> None:
        """Cancel the deliveries in flight (``may_send`` turned False). Their rows stay pending and leased
        until the lease lapses (a send cancelled here may have reached its receiver): whoever sends them
        next, this instance leading again included, does so after that, with the same key."""
        self.deliveries.cancel_all()

    async def _wait_for_change_since(self, seen: int) -> None:
        """Wait until :meth:`announce_change` has run since ``self._changes`` was ``seen``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._changes != seen)

    async def announce_change(self) -> None:
        self._changes += 1
        async with self._changed:
            self._changed.notify_all()

    # --- the pump -------------------------------------------------------------------------------

    async def _pump(self, instance: NotifierInstance) -> None:
        """Start deliveries for ``instance`` as its rows fall due, until cancelled.

        A store error is expected (disk full, database locked): wait and read again. Anything else is a
        bug in the dispatcher (the pump runs no plugin code). It is logged with its traceback, once while
        it repeats, and the pump carries on after the same wait rather than ending: an ended pump would
        silently stop this instance's deliveries for the rest of the run while everything else looks
        healthy, and its rows are safe in the outbox either way, so trying again costs one query.
        """
        last_bug: str | None = None
        while True:
            try:
                wait = await self._pump_once(instance)
            except StoreError as exc:
                log.error("notifier %s: cannot read the outbox (%s); trying again in %gs", instance.name,
                          str(exc) or type(exc).__name__, STORE_ERROR_BACKOFF)
                await asyncio.sleep(STORE_ERROR_BACKOFF)
                continue
            except Exception as exc:
                bug = f"{type(exc).__name__}: {exc}"
                if bug != last_bug:
                    log.exception("notifier %s: bug in the dispatcher's pump (%s); trying again every %gs",
                                  instance.name, bug, STORE_ERROR_BACKOFF)
                    last_bug = bug
                await asyncio.sleep(STORE_ERROR_BACKOFF)
                continue
            last_bug = None
            if wait > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives as the wake-up does, and close() would then wait for this pump forever.
                try:
                    async with asyncio.timeout(wait):
                        await instance.wake.wait()
                except TimeoutError:
                    pass

    async def _pump_once(self, instance: NotifierInstance) -> float:
        """One pass of ``instance``'s pump through the pump stages (:mod:`.pump`), then one tracked delivery
        task per message left; returns how long to wait before looking again (0: at once)."""
        instance.wake.clear()
        batch = PumpBatch(instance, self.clock())
        for stage in self.pump:
            batch = await stage(batch)
            if batch.wait is not None:
                return batch.wait
        for message in batch.messages:
            if instance.batches:
                self._start(instance, message)
            else:
                await instance.slots.acquire()
                self._start(instance, message, release_slot=True)
        return 0.0

    def _start(self, instance: NotifierInstance, rows: list[Delivery], *, release_slot: bool = False) -> None:
        if self.deliveries.closed:  # shutting down: leave the rows pending for the next start
            if release_slot:
                instance.slots.release()
            return
        instance.inflight.update(r.id for r in rows)
        label = rows[0].event.key if len(rows) == 1 else f"digest of {len(rows)}"
        self.deliveries.spawn(self._deliver(instance, rows, release_slot), name=f"deliver:{instance.name}:{label}")

    async def _deliver(self, instance: NotifierInstance, rows: list[Delivery], release_slot: bool) -> None:
        """One message through the delivery stages (send, record the outcome), in its own tracked task."""
        lease = LeaseKeeper(self.store, self.owner, rows, timeout=instance.timeout, clock=self.clock,
                            may_send=self.may_send)
        batch = DeliveryBatch(instance, rows, lease)
        try:
            async with lease.kept():  # renewed until the outcome is written (see .lease)
                for stage in self.delivery:
                    batch = await stage(batch)
        finally:
            instance.inflight.difference_update(r.id for r in rows)
            if release_slot:
                instance.slots.release()
            instance.wake.set()
            await self.announce_change()

    async def _renew_kept(self, kept: Unrecorded) -> bool:
        """Renew the leases of an outcome's rows kept in memory; whether they are all still ours."""
        ids = [r.id for r in kept.rows]
        renewed = await self.store.renew_claims(self.owner, ids, self.clock(), claim_for=kept.instance.timeout
                                                + CLAIM_MARGIN)
        return len(renewed) == len(ids)

    def delivery_done(self, instance: NotifierInstance, events: list[Event], failure: Failure | None) -> None:
        """Tell the ``flamewatch_delivery_done`` observers about one attempt."""
        if self._on_delivery is None:
            return
        for event in events:
            self._on_delivery(event=event, notifier=instance.name, ok=failure is None,
                              error=failure.error if failure else None)
