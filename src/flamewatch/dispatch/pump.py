"""The pump's stages and one delivery's, listed in order by :func:`pump_chain`.

Each notifier instance has a pump (:class:`~.runtime.Dispatcher` runs it): a loop that passes a
:class:`PumpBatch` through the pump stages whenever it is woken or its next row falls due. A stage that
sets ``batch.wait`` ends the pass (the pump looks again after that many seconds). What is left at the
end is a list of messages; each goes out in its own tracked delivery task, which passes a
:class:`DeliveryBatch` through the delivery stages (send, then record the outcome).

The order, and why:

* **lead**: only the store's one sender takes rows (a standby takes nothing);
* **quiet hours**: inside an instance's quiet window nothing is taken, so no claim is held through it;
* **take**: lease the due rows, no more than can start now (the lease invariant, :mod:`.lease`: no
  claim returns a row while it is being sent, by this process or another sharing the store);
* **supersede**: of several levels of one rule on one story taken together, only the best is sent;
* **silence**: rows a silence covers are closed unsent (checked here, at sending, so a silence added
  after a row was queued still stops it);
* **group**: a digest or a ``group_wait`` instance sends its rows as one message, others one per row;
* **flood cap**: an instance with ``max_per_hour`` sends at most that many messages in any hour; past
  it, the rest is held (due again when the hour's first message is an hour old) and goes out as one digest;
* then per message, in a tracked task: **send** (through the plugin, with its timeout) and **record
  outcome** (done, retry later, dead letter; the ``flamewatch_delivery_done`` hook).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..stage import Stage
from .attempt import Failure, attempt
from .instance import NotifierInstance
from .lease import LeaseKeeper
from .outcomes import Unrecorded
from .policies import FLOOD_WINDOW
from .recording import label
from .skipping import Skip, may_supersede, silenced_rows, superseded_rows

if TYPE_CHECKING:
    from ..store import Delivery
    from .runtime import Dispatcher

__all__ = ["DeliveryBatch", "PumpBatch", "pump_chain"]

log = logging.getLogger("flamewatch.dispatch")


@dataclass
class PumpBatch:
    """One pass of an instance's pump: the rows taken, then the messages to send."""

    instance: NotifierInstance
    now: float
    rows: list[Delivery] = field(default_factory=list)
    messages: list[list[Delivery]] = field(default_factory=list)
    #: Set by a stage to end the pass: look again after this many seconds (0: at once).
    wait: float | None = None


@dataclass
class DeliveryBatch:
    """One message (one row, or a digest's rows) on its way out."""

    instance: NotifierInstance
    rows: list[Delivery]
    lease: LeaseKeeper  #: the rows' lease, renewed while the delivery runs
    failure: Failure | None = None
    #: False: nothing to record (not attempted: the lead was lost, or the rows are someone else's now)
    sent: bool = False


class Lead:
    """Nothing is taken unless this process may send (it holds the store's lock, or leads)."""

    name = "lead"

    def __init__(self, dispatcher: Dispatcher, poll: float) -> None:
        self.d = dispatcher
        self.poll = poll

    async def __call__(self, batch: PumpBatch) -> PumpBatch:
        if not self.d.may_send():
            batch.wait = self.poll  # a standby: resume() wakes us when we lead
        return batch


class QuietHours:
    """Inside the instance's quiet hours nothing is taken until the window ends."""

    name = "quiet hours"

    async def __call__(self, batch: PumpBatch) -> PumpBatch:
        quiet = batch.instance.quiet
        if quiet is not None and (end := quiet.end_after(batch.now)) is not None:
            batch.wait = max(0.0, end - batch.now)
        return batch


class Take:
    """Lease the instance's due rows, as many as can start now (see :mod:`.lease`)."""

    name = "take"

    #: Most rows one pass takes for a digest or group (they go out as one message, so no slot waits).
    BATCH_LIMIT = 500

    #: The shortest wait before looking again when nothing could be taken (see ``__call__``).
    MIN_WAIT = 0.001

    def __init__(self, dispatcher: Dispatcher, poll: float, claim_margin: float, owner: str) -> None:
        self.d = dispatcher
        self.poll = poll
        self.claim_margin = claim_margin
        self.owner = owner

    async def __call__(self, batch: PumpBatch) -> PumpBatch:
        instance = batch.instance
        # No more rows than can start now: a row waiting for a free slot would use up its lease.
        room = self.BATCH_LIMIT if instance.batches else instance.concurrency - len(instance.inflight)
        if room <= 0:
            batch.wait = self.poll  # every slot busy: a finishing delivery wakes the pump
            return batch
        claimed = await self.d.store.claim_due(
            batch.now, instance=instance.name, claim_for=instance.timeout + self.claim_margin, owner=self.owner,
            limit=room,
        )
        batch.rows = self._not_ours_yet(instance, claimed)
        if not batch.rows:
            # At least MIN_WAIT: a wait shorter than the clock's step (a row due 1e-10 s from now, after float
            # rounding) would end without the clock moving, and the pump would ask again forever.
            batch.wait = min(self.poll, max(self.MIN_WAIT, await self._time_to_next(instance, batch.now)))
        return batch

    @staticmethod
    def _not_ours_yet(instance: NotifierInstance, rows: list[Delivery]) -> list[Delivery]:
        """``rows`` without those this process is sending, or sent without recording the outcome yet.

        Defence in depth: by the lease invariant a claim never returns a row in flight, so one that does
        is logged as a bug. A held row comes back once its lease lapsed while the store refused its
        outcome (the documented exception, :mod:`.lease`); it is never sent again.
        """
        sending = [r.id for r in rows if r.id in instance.inflight]
        if sending:
            log.error("notifier %s: bug: a claim returned rows %s that this process is sending (the lease "
                      "invariant is broken); not sending them again", instance.name, sending)
        return [r for r in rows if r.id not in instance.inflight and r.id not in instance.held]

    async def _time_to_next(self, instance: NotifierInstance, now: float) -> float:
        """Seconds until a row falls due or a lease on a due row lapses (``poll`` when neither).

        Rows due now and free were all taken, and a finishing delivery wakes the pump. What is left:
        rows due later (one indexed query, not a scan of the pending rows: a dead endpoint may hold
        thousands), and rows due now leased by another sender: one that is gone (a crashed or cut-off
        leader) or, while it renews its lease, one still sending (then the pump looks again at each lapse
        it saw, about once a lease, and sleeps on). This process's own rows are left out: those in flight
        and those whose outcome waits for the store (``held``, whose leases the backlog renews) never
        come back to this pump, and waking for their lapses would only spend queries.
        """
        upcoming = await self.d.store.next_due_at(instance.name, after=now)
        mine = instance.inflight | instance.held
        lapses = [r.claimed_until for r in await self.d.store.due(now, instance=instance.name, limit=100)
                  if r.claimed_until is not None and r.claimed_until > now and r.id not in mine]
        soonest = min([t for t in (upcoming, *lapses) if t is not None], default=None)
        return self.poll if soonest is None else max(0.0, soonest - now)


class _Skipping:
    """Close the rows a rule of this stage says not to send; the rest go on."""

    name = ""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    async def skips(self, batch: PumpBatch) -> list[Skip]:
        raise NotImplementedError

    async def __call__(self, batch: PumpBatch) -> PumpBatch:
        skips = await self.skips(batch)
        if not skips:
            return batch
        for skip in skips:
            await self.d.store.mark_skipped(skip.ids, self.d.clock(), status=skip.status, ref=skip.ref)
            log.info("notifier %s: %d deliveries not sent: %s", batch.instance.name, len(skip.ids), skip.reason)
        self.d.stats.skipped += sum(len(skip.ids) for skip in skips)
        gone = {i for skip in skips for i in skip.ids}
        await self.d.announce_change()
        batch.rows = [r for r in batch.rows if r.id not in gone]
        if not batch.rows:
            batch.wait = 0.0  # look again at once: more rows may have fallen due meanwhile
        return batch


class Supersede(_Skipping):
    """Several levels of one rule on one story taken together: only the best is sent."""

    name = "supersede"

    async def skips(self, batch: PumpBatch) -> list[Skip]:
        if not any(may_supersede(row) for row in batch.rows):
            return []  # nothing here can be superseded or supersede: no need to look at the waiting rows
        # A pass takes only as many rows as can start, and a row retrying after an outage is due later, so
        # the better level may still wait: the instance's pending rows about these stories that nobody
        # holds a live lease on are weighed too (and closed when something better is among them).
        stories = {row.event.story.id for row in batch.rows if may_supersede(row)}
        waiting = [r for r in await self.d.store.pending(batch.instance.name, stories=stories)
                   if r.event.story.id in stories and (r.claimed_until is None or r.claimed_until <= batch.now)]
        # A row whose last claim ended with no recorded outcome may have been sent: "superseded" (closed
        # unsent) could be false, so it is sent (again, same key) instead; it may still supersede others.
        unsure = {r.id for r in batch.rows if r.reclaimed} | {r.id for r in waiting if r.claimed_by is not None}
        return superseded_rows(batch.rows, waiting, keep=unsure)


class Silence(_Skipping):
    """Rows a silence covers now are closed unsent."""

    name = "silence"

    async def skips(self, batch: PumpBatch) -> list[Skip]:
        return silenced_rows(batch.rows, self.d.silences, batch.now)


class Group:
    """A digest or ``group_wait`` instance sends its rows as one message; any other, one per row."""

    name = "group"

    async def __call__(self, batch: PumpBatch) -> PumpBatch:
        batch.messages = [batch.rows] if batch.instance.batches else [[row] for row in batch.rows]
        return batch


class FloodCap:
    """At most ``max_per_hour`` messages an hour per instance; past it, the rest waits for one digest.

    The rows over the cap are put back in the outbox, due when the hour's first message is an hour old
    (``last_error`` says so, and counts as an attempt). Meanwhile the instance batches (take and group
    treat it like a digest), so whatever comes is held with them; when they fall due, every row taken
    then goes as one digest, and counting starts again. The count is kept in memory, read from the store's
    ``sent`` rows of the last hour after each start and each takeover of the lead (neither resets it).
    """

    name = "flood cap"

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    async def __call__(self, batch: PumpBatch) -> PumpBatch:
        instance, cap = batch.instance, batch.instance.max_per_hour
        if cap is None or instance.digest is not None or instance.group_wait is not None or not batch.messages:
            return batch
        if instance.count_from_store:
            await self.d.count_last_hour(instance)
        sent = instance.sent_times
        while sent and sent[0] <= batch.now - FLOOD_WINDOW:
            sent.popleft()
        if instance.flood_until and batch.now >= instance.flood_until:
            batch.messages = [[row for message in batch.messages for row in message]]  # the held rows, at once
            instance.flood_until = 0.0
            sent.clear()
            sent.append(batch.now)
            return batch
        room = 0 if instance.flood_until else max(0, cap - len(sent))
        keep, held = batch.messages[:room], batch.messages[room:]
        sent.extend([batch.now] * len(keep))
        if held:
            instance.flood_until = instance.flood_until or sent[0] + FLOOD_WINDOW
            ids = [row.id for message in held for row in message]
            await self.d.store.mark_retry(ids, next_at=instance.flood_until,
                                          error=f"flood cap: over {cap} an hour, held for one digest")
            log.info("notifier %s: over %d messages an hour; %d held for one digest", instance.name, cap, len(ids))
            await self.d.announce_change()
        batch.messages = keep
        return batch


class Send:
    """One attempt through the plugin, within the instance's timeout."""

    name = "send"

    def __init__(self, dispatcher: Dispatcher, blocking_warn: float) -> None:
        self.d = dispatcher
        self.blocking_warn = blocking_warn

    async def __call__(self, batch: DeliveryBatch) -> DeliveryBatch:
        if not self.d.may_send():
            return batch  # lost the lead since the row was taken: leave it pending
        instance, lease = batch.instance, batch.lease
        if lease.left() < instance.timeout:
            # The lease would lapse during the send (the process stalled): another claim could take the
            # row while we send it. Leave it; it is taken again once its lease lapses.
            log.warning("notifier %s: %s: its lease on the outbox is nearly over; sending it later",
                        instance.name, label(r.event for r in batch.rows))
            return batch
        try:
            # The cut (see .lease): no part of the attempt runs past the lease, pacing waits included.
            async with lease.cut():
                batch.failure = await attempt(instance, [r.event for r in batch.rows], blocking_warn=self.blocking_warn,
                                              logger=log, on_timer=lease.watch)
        except TimeoutError:
            if lease.lost is not None:
                # Someone else's row now (or the next leader's): whatever we write would undo their claim.
                log.warning("notifier %s: %s: %s", instance.name, label(r.event for r in batch.rows), lease.why_cut())
                return batch
            batch.failure = Failure(lease.why_cut())
        batch.sent = True
        return batch


class RecordOutcome:
    """Done, retry later or dead letter in the outbox; then the ``flamewatch_delivery_done`` hook."""

    name = "record outcome"

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    async def __call__(self, batch: DeliveryBatch) -> DeliveryBatch:
        if not batch.sent:
            return batch
        instance, rows, failure = batch.instance, batch.rows, batch.failure
        events = [r.event for r in rows]
        # In a task of its own: a delivery cancelled now (lead lost, shutdown) does not stop the write, and
        # what the store refuses is kept and written later (never sent again by this process).
        await self.d.backlog.write(Unrecorded(instance, rows, failure), label(events))
        self.d.delivery_done(instance, events, failure)
        return batch


def pump_chain(
    dispatcher: Dispatcher, *, poll: float, claim_margin: float, owner: str, blocking_warn: float
) -> tuple[tuple[Stage[PumpBatch], ...], tuple[Stage[DeliveryBatch], ...]]:
    """The pump's stages and one delivery's, in the order a row meets them (see the module docstring)."""
    pump: tuple[Stage[PumpBatch], ...] = (
        Lead(dispatcher, poll),
        QuietHours(),
        Take(dispatcher, poll, claim_margin, owner),
        Supersede(dispatcher),
        Silence(dispatcher),
        Group(),
        FloodCap(dispatcher),
    )
    delivery: tuple[Stage[DeliveryBatch], ...] = (
        Send(dispatcher, blocking_warn),
        RecordOutcome(dispatcher),
    )
    return pump, delivery
