"""Leases on outbox rows: who may send a row, and for how long.

**The lease invariant.** A row is sent only under a live lease held by the sending dispatcher, and
:meth:`Store.claim_due <flamewatch.store.base.Store.claim_due>` never returns a row under a live lease,
not even to its own holder. A lease starts in the claim's atomic step and ends only in the statement
that records the row's outcome (done, retry, dead, skipped), by an explicit release, or when it lapses.
A claim lasts the attempt timeout plus :data:`CLAIM_MARGIN`; a delivery starts sending only while at
least its attempt timeout is left on its lease. Hence, while a row is being sent and until its outcome
is committed, no claim (of this pump, of this process or of another instance) can return it: a row is
never sent twice at once by construction, not by a filter applied after the claim. The dispatcher's
in-memory ``inflight`` and ``held`` sets stay as a second line of defence; a claim that hands back a row
they hold is logged as a broken invariant.

**Renewal** (:class:`LeaseKeeper`). A notifier's wait for its turn (``flamewatch.not_timed``: Slack's
pacing and hold-off after a 429, the plugins' pacers) does not count against the attempt timeout, so a
delivery may outlast its first lease. While a delivery runs, its lease is renewed every third of the
attempt timeout (:meth:`Store.renew_claims <flamewatch.store.base.Store.renew_claims>`: one statement,
only rows the owner still holds), so a lease always has two thirds of the timeout plus the margin left
while renewals work. The attempt itself runs under a *cut*: a deadline on the loop clock that pacing
does not pause, set :data:`CLAIM_MARGIN` before the lease would lapse (never before the attempt's own
deadline on a lease a slow pump pass shortened: see :meth:`LeaseKeeper.cut`) and moved on by every renewal. So
no part of a send can run past the lease, whatever the plugin waits for, and the margin is left to
record the outcome. The cases:

* renewal works: the cut moves on; a long pacing wait ends in a send under a live lease;
* the store refuses a renewal (an error, no answer): the lease stands as it was. A delivery waiting its
  turn is abandoned at once (nothing is on the wire yet: the send must not start on a lease that may
  not last); one that is sending goes on until the cut, and is cut there if no renewal worked since.
  Either way the attempt ends as a retryable failure (the row is retried after its backoff);
* the row is no longer this owner's (released, closed or dropped from the CLI, taken by another
  claim after a lapse) or this process no longer leads: the attempt is cut at once, and nothing is
  written for it (the row is someone else's now; for a lost lead, the next leader's);
* the process stalls past the cut: the cut fires as soon as it runs again; a send under way then may
  have been seen by the receiver after the lease lapsed. Nothing in one process can rule that out.

The lease is still renewed while the outcome is written. An outcome the store cannot record is kept in
memory (:mod:`.outcomes`), its rows held (never sent again by this process), and the lease renewed
meanwhile (every third of a lease, while this process leads) and right before each new try of the
write, so the rows stay this owner's while the store recovers. A *sent* fact is written even when the
lease was lost meanwhile (closing the row stops a send the next leader would make); a failure is
written only while the rows are still this owner's. The one case left is a store
that cannot record an outcome until the process stops, or until its lease lapses and another instance
leads: that row is sent again with the same key (at-least-once). A row claimed again after a claim
that ended with no outcome comes back ``reclaimed``; the pump then never closes it as superseded (it
may have been sent), it sends it.

Owners are unique for one dispatcher in one process run (``host:pid:random``): two instances on one
host, or a process restarted after ``kill -9``, never share one, so nobody takes back rows whose
earlier send may still be under way. Rows left leased by a dead process are taken when their lease
lapses; on a SQLite store the holder of the file lock releases them at start (the lock proves that
every other sender is gone).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

from ..errors import StoreError
from ..store import Delivery, Store

__all__ = ["CLAIM_MARGIN", "RENEWALS_PER_TIMEOUT", "LeaseKeeper", "claim_owner", "lease_left"]

#: A lease lasts the instance's attempt timeout plus this: the time left to record the outcome once the
#: send has ended. A crashed leader's rows in flight are resent by another instance after that long.
CLAIM_MARGIN = 5.0

#: A delivery in flight renews its lease this many times per attempt timeout.
RENEWALS_PER_TIMEOUT = 3


def claim_owner() -> str:
    """A new owner name for outbox leases: this host and process, and a random part for this run."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_left(rows: Iterable[Delivery], now: float) -> float:
    """Seconds until the first of ``rows``' leases lapses (0 when one has no lease)."""
    return min((r.claimed_until - now if r.claimed_until is not None else 0.0) for r in rows)


class LeaseKeeper:
    """One delivery's lease on its rows: renewed while the delivery runs, and the cut its attempt runs under.

    ``clock`` is the dispatcher's (the store's times); the cut is on the event loop's clock.
    """

    def __init__(self, store: Store, owner: str, rows: list[Delivery], *, timeout: float, clock: Callable[[], float],
                 may_send: Callable[[], bool], margin: float = CLAIM_MARGIN) -> None:
        self.store = store
        self.owner = owner
        self.timeout = timeout
        self.ids = frozenset(r.id for r in rows)
        self.claim_for = timeout + margin
        self.every = timeout / RENEWALS_PER_TIMEOUT
        self.margin = margin
        self.clock = clock
        self.may_send = may_send
        #: When the lease lapses, on the store's clock (the earliest of the rows').
        self.until = clock() + lease_left(rows, clock())
        #: Why the rows are not this owner's any more (None: they are).
        self.lost: str | None = None
        #: The last renewal's store error (None once a renewal worked).
        self.trouble: str | None = None
        self._cut: asyncio.Timeout | None = None
        self._attempt: asyncio.Timeout | None = None
        self._attempt_expired = False  # the attempt's own timeout fired too (a loop blocked past both)
        self._floor = 0.0  # the earliest cut, on the store's clock (see cut())

    def left(self) -> float:
        """Seconds until the lease lapses (as far as this process knows; 0 once lost)."""
        return 0.0 if self.lost else self.until - self.clock()

    @asynccontextmanager
    async def kept(self) -> AsyncIterator[LeaseKeeper]:
        """Renew the lease every :attr:`every` seconds while the body (the whole delivery) runs."""
        renewing = asyncio.create_task(self._renew_every(), name="renew-lease")
        try:
            yield self
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _renew_every(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.renew()

    async def renew(self) -> bool:
        """Extend the lease now; False when it could not be (what that means for the attempt is done here)."""
        if self.lost is not None:
            return False
        if not self.may_send():
            self._lose("this process no longer leads")
            return False
        now = self.clock()
        try:
            renewed = await self.store.renew_claims(self.owner, sorted(self.ids), now, claim_for=self.claim_for)
        except StoreError as exc:
            self.trouble = str(exc) or type(exc).__name__
            if self._waiting_its_turn():
                self._cut_at(0.0)  # nothing is on the wire yet: it must not start on a lease that may not last
            return False
        if set(renewed) != self.ids:
            self._lose("the row was released, closed or taken by another sender meanwhile")
            return False
        self.trouble = None
        self.until = max(self.until, now + self.claim_for)
        self._cut_at(self._cut_in())
        return True

    @asynccontextmanager
    async def cut(self) -> AsyncIterator[None]:
        """Run the body (an attempt) no later than :attr:`margin` before the lease lapses; past that it is
        cancelled and :class:`TimeoutError` raised (pacing waits do not pause this deadline).

        Never before the attempt's own deadline when nothing paused it, though: a pump pass that took a
        while leaves less than timeout + margin on a fresh lease (at least the timeout, checked before).
        Then the cut is halfway between that deadline and the lapse, so the attempt's own timeout ends it
        (and says so) with a shorter time left to record the outcome, as before there was a cut.
        """
        loop = asyncio.get_running_loop()
        now = self.clock()
        self._floor = (now + self.timeout + max(self.until, now + self.timeout)) / 2
        async with asyncio.timeout_at(loop.time() + self._cut_in()) as cut:
            self._cut = cut
            try:
                yield
            finally:
                self._attempt_expired = self._attempt is not None and self._attempt.expired()
                self._cut = self._attempt = None

    def watch(self, attempt: asyncio.Timeout) -> None:
        """Told the attempt's own timeout, which ``not_timed`` suspends while the plugin waits its turn."""
        self._attempt = attempt

    def why_cut(self) -> str:
        """Why the attempt was cut, for the outbox's ``last_error`` and the log."""
        if self.lost is not None:
            return f"abandoned: {self.lost}"
        if self._attempt_expired:
            return f"timed out after {self.timeout:g}s"  # as attempt() says it: the send's own limit was reached
        why = f"the store did not renew it ({self.trouble})" if self.trouble else "it ran out"
        return f"abandoned: its lease on the outbox row could not be kept: {why}"

    def _cut_in(self) -> float:
        return 0.0 if self.lost else max(0.0, max(self.until - self.margin, self._floor) - self.clock())

    def _cut_at(self, delay: float) -> None:
        cut = self._cut
        if cut is not None and not cut.expired():
            cut.reschedule(asyncio.get_running_loop().time() + delay)

    def _lose(self, why: str) -> None:
        self.lost = why
        self._cut_at(0.0)

    def _waiting_its_turn(self) -> bool:
        """Whether the attempt is inside ``not_timed`` now (its timeout suspended): nothing being sent."""
        attempt = self._attempt
        return attempt is not None and not attempt.expired() and attempt.when() is None
