"""What the rest of flamewatch may ask of a store, whatever keeps the data.

:class:`Store` is the contract (a :class:`typing.Protocol`); :class:`Delivery` and :class:`CountSample` are
the values it hands back; :class:`DeliveryStatus` names the states of an outbox row. Open a store (SQLite
or PostgreSQL) with :func:`~flamewatch.store.factory.open_store`.

Every time is a Unix timestamp in seconds (float). Methods that take ``now`` use the caller's clock, so
the dispatcher and the tests decide what "now" is; the few places where a store reads the time itself use
the clock it was opened with. Every database failure raises :class:`~flamewatch.errors.StoreError`.

Several processes may share one store: fired keys are unique in the database itself, and a process takes
outbox rows with :meth:`Store.claim_due`, which leases them to it until their outcome is recorded (or the
lease lapses), so no row is sent twice at once, by two processes or by one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from ..events import Event
from ..notifier import PluginState, StateWrite

__all__ = [
    "FINISHED", "SKIPPED", "Backlog", "CountSample", "Delivery", "DeliveryStatus", "InstanceLock", "StateWrite",
    "Store",
]


class DeliveryStatus(enum.StrEnum):
    """The state of one outbox row. The values are what the database stores: never change them.

    A row starts ``pending`` and ends in one of the others. ``Delivery.ref`` says more for three of them:
    the key that superseded a row, the key of the row whose message carried a grouped one, the silence
    that stopped a silenced one.
    """

    #: Still to be sent, once its ``next_at`` has passed.
    PENDING = "pending"
    #: Sent: alone, or as the first row of a message that carried several (a digest, a group).
    SENT = "sent"
    #: Sent inside the message of another row of the same instance (``ref``: that row's event key).
    GROUPED = "grouped"
    #: Closed unsent: a silence covered it when it was taken (``ref``: the silence).
    SILENCED = "silenced"
    #: Closed unsent: a better level of the same rule and story was taken with it (``ref``: its key).
    SUPERSEDED = "superseded"
    #: Given up on (a permanent failure, or retried for too long); ``flamewatch outbox retry`` requeues it.
    DEAD = "dead"

    @classmethod
    def _missing_(cls, value: object) -> DeliveryStatus | None:
        # "done" is what sent rows were called before states had values of their own (scripts, old docs).
        return cls.SENT if value == "done" else None

    @property
    def finished(self) -> bool:
        """Whether the row is closed for good (sent, grouped, silenced, superseded): pruned with age."""
        return self in FINISHED


#: The states a row ends in without being dead; ``purge_done`` prunes them with age.
FINISHED = frozenset({DeliveryStatus.SENT, DeliveryStatus.GROUPED, DeliveryStatus.SILENCED,
                      DeliveryStatus.SUPERSEDED})

#: The states a row is closed in without being sent (:meth:`Store.mark_skipped`).
SKIPPED = (DeliveryStatus.SILENCED, DeliveryStatus.SUPERSEDED)


@dataclass(frozen=True)
class CountSample:
    """One story's counts at one moment, as kept in its history. ``partial`` means ``comments`` is a
    lower bound (the crawl stopped early)."""

    story_id: int
    at: float
    comments: int
    score: int
    descendants: int | None
    partial: bool


@dataclass(frozen=True)
class Delivery:
    """One outbox row: ``event`` to be sent to notifier instance ``instance``.

    ``attempts`` counts failed sends; ``last_error`` is the latest failure, on one line. ``ref`` says more
    about the state (see :class:`DeliveryStatus`), else None. While a process is sending the row,
    ``claimed_by`` names that process and ``claimed_until`` says when its claim lapses. ``claimed_by`` stays
    set until an outcome is recorded (a released claim only loses its ``claimed_until``), so a pending row
    with ``claimed_by`` set and no live lease is one whose last send may or may not have happened.
    """

    id: int
    event: Event
    instance: str
    status: DeliveryStatus
    attempts: int
    created_at: float
    next_at: float
    last_error: str | None
    claimed_by: str | None = None
    claimed_until: float | None = None
    ref: str | None = None
    #: Set by :meth:`Store.claim_due` only: this claim took the row from an earlier claim that ended with
    #: no recorded outcome (it lapsed, or was released), so the row may have been sent already.
    reclaimed: bool = False

    @property
    def shown_status(self) -> str:
        """The state as a word (kept for callers from before states were values of their own)."""
        return str(self.status)

    def describe_state(self) -> str:
        """The state in a few words: ``sent``, ``superseded by 1:comments:500``, ``grouped into ...``,
        ``silenced by s1 domain:example.com``."""
        link = {DeliveryStatus.SUPERSEDED: "by", DeliveryStatus.SILENCED: "by", DeliveryStatus.GROUPED: "into"}
        word = link.get(self.status)
        return f"{self.status} {word} {self.ref}" if word and self.ref else str(self.status)


@dataclass(frozen=True)
class Backlog:
    """One instance's open outbox rows counted (:meth:`Store.backlog`), and the first pending ``next_at``."""

    instance: str
    pending: int
    dead: int
    next_at: float | None


class InstanceLock(Protocol):
    """Who may send from a store: one flamewatch at a time (a file lock for SQLite, a leader lock for
    PostgreSQL). Only the holder runs cycles and deliveries; read-only commands need no lock.
    """

    async def acquire(self, *, wait: bool) -> None:
        """Take the lock. ``wait=False``: raise :class:`~flamewatch.errors.StoreLockedError` (naming the
        store and :meth:`holder`) when someone else has it. ``wait=True``: wait until it is free (a
        standby instance)."""
        ...

    @property
    def held(self) -> bool:
        """True while this process holds the lock; False once it is released or lost (a PostgreSQL
        connection cut). A sender checks it before every send and stops at once when it is False."""
        ...

    async def holder(self) -> str | None:
        """Who holds the lock now, in words (``"pid 1234 on host-a"``), or None when nobody does."""
        ...

    async def release(self) -> None:
        """Give the lock up (idempotent)."""
        ...


class Store(Protocol):
    """Everything flamewatch keeps across restarts: fired keys, the delivery outbox, story count history
    and notifier plugin state.

    A store is shared by every task of a process; all methods may be called concurrently. A method either
    completes its change as a whole or not at all (also when its caller is cancelled). Use it as an async
    context manager, or call :meth:`close`.
    """

    # -- fired events and the outbox -------------------------------------------------------------------

    async def record_events(
        self,
        events: Sequence[Event],
        routes: Mapping[str, Sequence[str]],
        now: float,
        not_before: Mapping[str, float] | None = None,
    ) -> list[Event]:
        """Record events never fired before and queue their deliveries, all in one transaction.

        For each event whose key is new, one pending outbox row is written per notifier instance in
        ``routes[event.key]`` (duplicates ignored; none if absent), due at ``not_before[instance]`` or else
        ``now``. Returns the new events in the given order; an event whose key already fired (in any run, by
        any process, or earlier in this batch) is skipped entirely. Keys are unique in the database, so of
        two processes recording the same key at once exactly one gets it back.
        """
        ...

    async def fired_keys(self, story_ids: Iterable[int] | None = None) -> set[str]:
        """Keys of every fired event, or only of those about ``story_ids``."""
        ...

    async def fired_events(self, story_ids: Iterable[int]) -> list[Event]:
        """Every event fired about ``story_ids`` (of every kind: levels, rank, replies, mentions), in the
        order they fired. An event that cannot be read back is left out (this feeds listings only)."""
        ...

    async def due(self, now: float, *, instance: str | None = None, limit: int = 500) -> list[Delivery]:
        """Pending rows whose ``next_at`` is at or before ``now`` (claimed or not), longest waiting first,
        then oldest row first; only ``instance``'s when given. Reads only: nothing is claimed."""
        ...

    async def claim_due(
        self,
        now: float,
        *,
        instance: str | None = None,
        claim_for: float,
        owner: str,
        limit: int = 500,
    ) -> list[Delivery]:
        """Take the due rows nobody is sending, in :meth:`due`'s order, atomically.

        **The lease invariant**: a row under a live lease is never returned, not even to the owner
        holding it. A pending row is taken only when its ``next_at`` is at or before ``now`` and it has no
        lease or its lease has lapsed (``claimed_until <= now``); the check and the new lease (``owner``,
        until ``now + claim_for``) are one atomic step, so of two claims at once only one gets a row. A
        lease ends only in the statement that records the row's outcome (:meth:`mark_sent`,
        :meth:`mark_retry`, :meth:`mark_dead`, :meth:`mark_skipped`), by :meth:`release_claims`, or by
        lapsing. So while a send is under way and until its outcome is committed, no claim, by anyone,
        returns that row: the sender takes ``claim_for`` longer than its send may last plus the time to
        record the outcome. ``owner`` names one sender for one run of a process (never reused), so a
        restarted process does not take back the rows of the one before it: they lapse, or the holder
        of the store's instance lock releases them (see :meth:`release_claims`). A row taken over from a
        claim that ended without an outcome comes back with ``reclaimed`` set.
        """
        ...

    async def renew_claims(self, owner: str, ids: Sequence[int], now: float, *, claim_for: float) -> list[int]:
        """Extend ``owner``'s leases on the rows ``ids`` to ``now + claim_for`` (never shorter), in one
        statement; returns the ids renewed: pending rows still claimed by ``owner`` and not released. A
        lapsed lease nobody took is renewed too (any claim or outcome rewrites ``claimed_by``, so nobody
        else sent the row meanwhile). See :mod:`flamewatch.dispatch.lease` for who renews, and when."""
        ...

    async def release_claims(self, owner: str | None) -> int:
        """End every lease ``owner`` holds on a pending row, so those rows can be taken at once (a
        process stopping with deliveries unfinished, after they ended). ``owner=None`` ends every
        lease: only for a process that knows every other sender is dead (the holder of a SQLite store's
        file lock, at start). ``claimed_until`` is cleared; ``claimed_by`` is kept as the trace of a claim
        with no recorded outcome (the next claim says ``reclaimed``). Returns how many rows were released."""
        ...

    async def pending(self, instance: str | None = None, *, stories: Iterable[int] | None = None) -> list[Delivery]:
        """Every pending row (due or not, claimed or not), oldest first; only ``instance``'s when given, and
        only those about ``stories`` when given (chosen by the database: a dead endpoint may hold thousands)."""
        ...

    async def next_due_at(self, instance: str | None = None, *, after: float | None = None) -> float | None:
        """The earliest ``next_at`` among pending rows (only ``instance``'s, and only those due later than
        ``after``, when given), or None when there is none."""
        ...

    async def mark_sent(self, ids: Sequence[int], now: float, *, grouped: Sequence[int] = (),
                        into: str | None = None) -> None:
        """Record that these rows were sent at ``now`` (status ``sent``), and the rows ``grouped`` went out
        in the same message (status ``grouped``, ``ref`` = ``into``, the key of the message's first row);
        all in one transaction, claims cleared. Only pending rows change: a row dropped or requeued
        meanwhile is left as it is."""
        ...

    async def mark_done(self, ids: Sequence[int], now: float) -> None:
        """:meth:`mark_sent` without grouped rows (the name from before states had values of their own)."""
        ...

    async def mark_skipped(self, ids: Sequence[int], now: float, *, status: DeliveryStatus, ref: str) -> None:
        """Close these rows without sending them: ``status`` (one of :data:`SKIPPED`: a silence, a better
        level superseding them) at ``now``, with ``ref`` (the silence, the superseding key); claim
        cleared. Only pending rows change."""
        ...

    async def mark_retry(self, ids: Sequence[int], *, next_at: float, error: str) -> None:
        """Record a failed send to retry at ``next_at``: attempts + 1, ``error`` kept (on one line, bounded)
        as ``last_error``, claim cleared. Only pending rows change."""
        ...

    async def mark_dead(self, ids: Sequence[int], *, error: str) -> None:
        """Give up on these rows: status ``dead``, attempts + 1, ``error`` kept as ``last_error``, claim
        cleared. Only pending rows change."""
        ...

    async def outbox(
        self,
        status: DeliveryStatus | str | Iterable[DeliveryStatus | str] | None = None,
        *,
        limit: int = 1000,
        ids: Sequence[int] | None = None,
        newest_first: bool = False,
    ) -> list[Delivery]:
        """Outbox rows, oldest first (newest first with ``newest_first``), at most ``limit``: only those
        with ``status`` (one, or any of several) and only the rows ``ids`` when given, both filtered before
        the limit applies.

        Raises :class:`ValueError` for a status that is not a :class:`DeliveryStatus` value.
        """
        ...

    async def requeue(self, ids: Sequence[int] | None, now: float) -> int:
        """Make dead (or pending) rows pending again, due ``now``, with attempts reset to 0; ``ids=None``
        requeues every dead row. Finished rows never change; ``last_error`` is kept. Returns how many changed."""
        ...

    async def drop(self, ids: Sequence[int] | None) -> int:
        """Delete these rows whatever their status, or every dead row when ``ids`` is None; returns how
        many. The fired keys stay, so the events still never fire again."""
        ...

    async def outbox_counts(self) -> dict[str, int]:
        """How many rows have each status, keyed by :class:`DeliveryStatus`; every status is present,
        possibly with 0."""
        ...

    async def backlog(self) -> list[Backlog]:
        """Per notifier instance with open (pending or dead) rows, those rows counted, by instance name.
        Counted by the database: a status page asks this on every request, whatever the backlog's size."""
        ...

    async def outbox_counts_by_instance(self) -> dict[str, dict[str, int]]:
        """:meth:`outbox_counts` per notifier instance (only instances with rows appear)."""
        ...

    async def sent_since(self, instance: str, since: float) -> list[float]:
        """``done_at`` of ``instance``'s ``sent`` rows (one a message) closed at or after ``since``, oldest first."""
        ...

    async def purge_done(self, older_than: float) -> int:
        """Delete finished rows (:data:`FINISHED`) closed before ``older_than``; returns how many. Fired
        keys are kept."""
        ...

    # -- story count history ---------------------------------------------------------------------------

    async def add_snapshots(self, samples: Sequence[CountSample], *, states: Sequence[StateWrite] = ()) -> None:
        """Append count samples to the history and write ``states``, all in one transaction (or none of it).

        A cycle's store work is this one call: its samples, the stream's cursor, the followed threads'
        activity, decline's memory and the stale sources together (nothing is written when both are empty)."""
        ...

    async def history(self, story_id: int, since: float, *, include_partial: bool = False) -> list[CountSample]:
        """One story's samples taken at or after ``since``, oldest first (ties in insertion order).

        Partial samples are left out unless ``include_partial``: their lower-bound counts would make a
        thread look as if it shrank and then grew.
        """
        ...

    async def latest(self, story_ids: Iterable[int]) -> dict[int, CountSample]:
        """The most recent complete (non-partial) sample of each story that has one; its cost does not
        grow with the history kept (it runs every cycle)."""
        ...

    async def histories(self, story_ids: Iterable[int], since: float) -> dict[int, list[CountSample]]:
        """:meth:`history` of several stories in one query (complete samples only); a story without
        samples in the window is absent."""
        ...

    async def prune_snapshots(self, older_than: float) -> int:
        """Delete samples taken before ``older_than``; returns how many."""
        ...

    # -- notifier plugin state -------------------------------------------------------------------------

    def instance_lock(self, owner: str) -> InstanceLock:
        """The lock that makes this process the store's one sender; ``owner`` describes this process."""
        ...

    def state_for(self, instance: str) -> PluginState:
        """The persistent key/value state of notifier instance ``instance``. Values are anything JSON can
        encode; setting one that cannot be encoded raises :class:`TypeError`."""
        ...

    async def prune_state(self, older_than: float) -> int:
        """Forget plugin state values last written before ``older_than``; returns how many."""
        ...

    # -- lifetime --------------------------------------------------------------------------------------

    def file_problem(self) -> str | None:
        """One line when the store's file was removed or replaced since it was opened (the open file's
        identity no longer matches its path), else None; always None for a store that is not a file.

        A daemon writing on into a deleted file would lose every fired key at its next start and send
        those alerts again, so ``flamewatch run`` checks this every cycle and stops when it is not None.
        """
        ...

    async def close(self) -> None:
        """Let running writes finish, give back this store's claims, then close. Closing twice is harmless;
        any other call on a closed store raises :class:`~flamewatch.errors.StoreError`."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
