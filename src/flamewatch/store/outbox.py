"""The SQLite store's fired keys and delivery outbox (tables ``fired`` and ``outbox``).

An event's key goes into ``fired`` (its primary key, so the database itself refuses a second copy) in the
same transaction as its outbox rows, one per notifier instance, and *before* any send: delivery is
at-least-once and an event never fires twice, even across restarts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiosqlite

from ..errors import StoreError
from ..events import Event
from .base import FINISHED, SKIPPED, Backlog, Delivery, DeliveryStatus
from .connection import Clock, SQLiteConnection, json_list
from .schema import one_line

__all__ = ["SQLiteOutbox"]

#: Events inserted by one statement (5 values each, well under SQLite's 32,766 variables).
_EVENTS_A_STATEMENT = 500

PENDING, SENT, GROUPED, DEAD = DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.GROUPED, DeliveryStatus.DEAD

_DELIVERY_COLUMNS = (
    "o.id, f.event, o.instance, o.status, o.attempts, o.created_at, o.next_at, o.last_error,"
    " o.claimed_by, o.claimed_until, o.state_ref"
)
_DELIVERY_FROM = "outbox AS o JOIN fired AS f ON f.key = o.event_key"

# Whoever sends a row next must start from a clean slate: every outcome ends the sender's claim.
_UNCLAIM = "claimed_by = NULL, claimed_until = NULL"
# A lease ended without an outcome: free to claim, and the claimer learns that the row may have been sent.
_RELEASE = "claimed_until = NULL"


def _delivery(row: Sequence[Any]) -> Delivery:
    id_, event, instance, status, attempts, created_at, next_at, last_error, claimed_by, claimed_until, ref = row
    return Delivery(
        id=id_,
        event=Event.from_dict(json.loads(event)),
        instance=instance,
        status=DeliveryStatus(status),
        attempts=attempts,
        created_at=created_at,
        next_at=next_at,
        last_error=last_error,
        claimed_by=claimed_by,
        claimed_until=claimed_until,
        ref=ref,
    )


def _pending_update(assignments: str) -> str:
    """An UPDATE of the pending rows among a JSON list of ids (the last two parameters)."""
    return f"UPDATE outbox SET {assignments} WHERE status = ? AND id IN (SELECT value FROM json_each(?))"


def read_events(texts: Iterable[str]) -> list[Event]:
    """Events from their stored JSON; one that cannot be read (another program's write) is skipped."""
    events = []
    for text in texts:
        try:
            events.append(Event.from_dict(json.loads(text)))
        except (ValueError, KeyError, TypeError):
            continue
    return events


def _status(status: DeliveryStatus | str) -> DeliveryStatus:
    try:
        return DeliveryStatus(status)
    except ValueError:
        expected = ", ".join(DeliveryStatus)
        raise ValueError(f"unknown outbox status {status!r} (expected one of {expected})") from None


class SQLiteOutbox(SQLiteConnection):
    """The fired-key and outbox half of the :class:`~flamewatch.store.base.Store` contract, on SQLite."""

    def __init__(self, path: str, conn: aiosqlite.Connection, *, clock: Clock = time.time) -> None:
        super().__init__(path, conn, clock=clock)
        #: Owners that claimed rows through this store; :meth:`close` gives their claims back.
        self._claim_owners: set[str] = set()

    async def record_events(
        self,
        events: Sequence[Event],
        routes: Mapping[str, Sequence[str]],
        now: float,
        not_before: Mapping[str, float] | None = None,
    ) -> list[Event]:
        """See :meth:`Store.record_events <flamewatch.store.base.Store.record_events>`."""
        waits = dict(not_before or {})
        rows = [(e.key, e.story.id, e.rule, now, json.dumps(e.to_dict())) for e in events]

        async def body(conn: aiosqlite.Connection) -> list[Event]:
            # A statement per chunk of events, not per event: each statement is a hand-off to the
            # connection's thread, and a first cycle fires dozens of levels at once.
            inserted: set[str] = set()
            for start in range(0, len(rows), _EVENTS_A_STATEMENT):
                chunk = rows[start:start + _EVENTS_A_STATEMENT]
                cursor = await conn.execute(
                    "INSERT OR IGNORE INTO fired (key, story_id, rule, fired_at, event) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)) + " RETURNING key",
                    [value for row in chunk for value in row],
                )
                inserted.update(key for (key,) in await cursor.fetchall())
            new: list[Event] = []
            for event in events:
                # A key not returned fired before (in an earlier run, by another process); one returned
                # is new only the first time it appears in this batch.
                if event.key in inserted:
                    inserted.discard(event.key)
                    new.append(event)
            await conn.executemany(
                "INSERT INTO outbox (event_key, instance, status, created_at, next_at) VALUES (?, ?, ?, ?, ?)",
                [(event.key, name, PENDING, now, waits.get(name, now))
                 for event in new for name in dict.fromkeys(routes.get(event.key, ()))],  # dedup, keep order
            )
            return new

        return await self._write(body)

    async def fired_keys(self, story_ids: Iterable[int] | None = None) -> set[str]:
        """See :meth:`Store.fired_keys <flamewatch.store.base.Store.fired_keys>`."""
        if story_ids is None:
            rows = await self._read("SELECT key FROM fired")
        else:
            rows = await self._read(
                "SELECT key FROM fired WHERE story_id IN (SELECT value FROM json_each(?))", (json_list(story_ids),)
            )
        return {key for (key,) in rows}

    async def fired_events(self, story_ids: Iterable[int]) -> list[Event]:
        """See :meth:`Store.fired_events <flamewatch.store.base.Store.fired_events>`."""
        rows = await self._read(
            "SELECT event FROM fired WHERE story_id IN (SELECT value FROM json_each(?)) ORDER BY fired_at, rowid",
            (json_list(story_ids),),
        )
        return read_events(text for (text,) in rows)

    async def due(self, now: float, *, instance: str | None = None, limit: int = 500) -> list[Delivery]:
        """See :meth:`Store.due <flamewatch.store.base.Store.due>`."""
        sql, params = self._due_query(now, instance, limit)
        return self._deliveries(await self._read(sql, params))

    async def claim_due(
        self,
        now: float,
        *,
        instance: str | None = None,
        claim_for: float,
        owner: str,
        limit: int = 500,
    ) -> list[Delivery]:
        """See :meth:`Store.claim_due <flamewatch.store.base.Store.claim_due>`."""
        if claim_for <= 0:
            raise ValueError(f"claim_for must be more than zero seconds, got {claim_for!r}")
        until = now + claim_for
        sql, params = self._due_query(now, instance, limit, claimable=True)
        self._claim_owners.add(owner)

        # Reading and claiming in one IMMEDIATE transaction makes the pair atomic: no other connection
        # can write between them, so two processes never take the same row.
        async def body(conn: aiosqlite.Connection) -> list[Any]:
            rows = list(await conn.execute_fetchall(sql, params))
            if rows:
                await conn.execute(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT value FROM json_each(?))",
                    (owner, until, json_list(row[0] for row in rows)),
                )
            return rows

        rows = await self._write(body)
        # The rows were read before the claim: a claimed_by already there is a claim with no outcome.
        return [replace(d, claimed_by=owner, claimed_until=until, reclaimed=d.claimed_by is not None)
                for d in self._deliveries(rows)]

    async def renew_claims(self, owner: str, ids: Sequence[int], now: float, *, claim_for: float) -> list[int]:
        """See :meth:`Store.renew_claims <flamewatch.store.base.Store.renew_claims>`."""
        if not ids:
            return []

        async def body(conn: aiosqlite.Connection) -> list[int]:
            cursor = await conn.execute(
                "UPDATE outbox SET claimed_until = MAX(claimed_until, ?) WHERE claimed_by = ? AND claimed_until"
                " IS NOT NULL AND status = ? AND id IN (SELECT value FROM json_each(?)) RETURNING id",
                (now + claim_for, owner, PENDING, json_list(ids)),
            )
            return [id_ for (id_,) in await cursor.fetchall()]

        return await self._write(body)

    def _deliveries(self, rows: Iterable[Sequence[Any]]) -> list[Delivery]:
        """Rows as :class:`Delivery` values; a row that cannot be read back is a :class:`StoreError`.

        Only a damaged file (or another program's writes) can make one unreadable; saying which row
        lets ``flamewatch outbox drop`` remove it, where a bare ValueError would stop the dispatcher.
        """
        deliveries = []
        for row in rows:
            try:
                deliveries.append(_delivery(row))
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"store {self.path}: outbox row {row[0]} cannot be read: {exc!r}") from exc
        return deliveries

    def _due_query(
        self, now: float, instance: str | None, limit: int, *, claimable: bool = False
    ) -> tuple[str, list[Any]]:
        """The query for pending rows due at ``now``; ``claimable``: only rows without a live lease."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM} WHERE o.status = ? AND o.next_at <= ?"
        params: list[Any] = [PENDING, now]
        if claimable:
            # The lease invariant (see Store.claim_due): a live lease is never taken, not even by its owner.
            sql += " AND (o.claimed_until IS NULL OR o.claimed_until <= ?)"
            params.append(now)
        if instance is not None:
            sql += " AND o.instance = ?"
            params.append(instance)
        sql += " ORDER BY o.next_at, o.id LIMIT ?"
        params.append(limit)
        return sql, params

    async def release_claims(self, owner: str | None) -> int:
        """See :meth:`Store.release_claims <flamewatch.store.base.Store.release_claims>`."""
        # claimed_by stays: the trace of a claim that ended with no outcome (see Store.release_claims).
        if owner is None:
            return await self._change(
                f"UPDATE outbox SET {_RELEASE} WHERE claimed_until IS NOT NULL AND status = ?", (PENDING,)
            )
        return await self._change(
            f"UPDATE outbox SET {_RELEASE} WHERE claimed_by = ? AND claimed_until IS NOT NULL AND status = ?",
            (owner, PENDING),
        )

    async def pending(self, instance: str | None = None, *, stories: Iterable[int] | None = None) -> list[Delivery]:
        """See :meth:`Store.pending <flamewatch.store.base.Store.pending>`."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM} WHERE o.status = ?"
        params: list[Any] = [PENDING]
        if instance is not None:
            sql += " AND o.instance = ?"
            params.append(instance)
        if stories is not None:
            sql += " AND f.story_id IN (SELECT value FROM json_each(?))"
            params.append(json_list(stories))
        sql += " ORDER BY o.id"
        return self._deliveries(await self._read(sql, params))

    async def next_due_at(self, instance: str | None = None, *, after: float | None = None) -> float | None:
        """See :meth:`Store.next_due_at <flamewatch.store.base.Store.next_due_at>`."""
        sql = "SELECT MIN(next_at) FROM outbox WHERE status = ?"
        params: list[Any] = [PENDING]
        if after is not None:
            sql += " AND next_at > ?"
            params.append(after)
        if instance is not None:
            sql += " AND instance = ?"
            params.append(instance)
        ((earliest,),) = await self._read(sql, params)
        return float(earliest) if earliest is not None else None

    async def mark_sent(self, ids: Sequence[int], now: float, *, grouped: Sequence[int] = (),
                        into: str | None = None) -> None:
        """See :meth:`Store.mark_sent <flamewatch.store.base.Store.mark_sent>`."""
        sent = f"status = ?, done_at = ?, {_UNCLAIM}"
        if not grouped:
            await self._update_pending(sent, (SENT, now), ids)
            return

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.execute(_pending_update(sent), (SENT, now, PENDING, json_list(ids)))
            await conn.execute(_pending_update(f"status = ?, done_at = ?, state_ref = ?, {_UNCLAIM}"),
                               (GROUPED, now, into, PENDING, json_list(grouped)))

        await self._write(body)

    async def mark_done(self, ids: Sequence[int], now: float) -> None:
        """See :meth:`Store.mark_done <flamewatch.store.base.Store.mark_done>`."""
        await self.mark_sent(ids, now)

    async def mark_skipped(self, ids: Sequence[int], now: float, *, status: DeliveryStatus, ref: str) -> None:
        """See :meth:`Store.mark_skipped <flamewatch.store.base.Store.mark_skipped>`."""
        if status not in SKIPPED:
            raise ValueError(f"mark_skipped: {status!r} is not a state of a row closed unsent")
        await self._update_pending(
            f"status = ?, done_at = ?, state_ref = ?, {_UNCLAIM}", (status, now, one_line(ref)), ids
        )

    async def mark_retry(self, ids: Sequence[int], *, next_at: float, error: str) -> None:
        """See :meth:`Store.mark_retry <flamewatch.store.base.Store.mark_retry>`."""
        await self._update_pending(
            f"attempts = attempts + 1, next_at = ?, last_error = ?, {_UNCLAIM}", (next_at, one_line(error)), ids
        )

    async def mark_dead(self, ids: Sequence[int], *, error: str) -> None:
        """See :meth:`Store.mark_dead <flamewatch.store.base.Store.mark_dead>`."""
        await self._update_pending(
            f"status = ?, attempts = attempts + 1, last_error = ?, {_UNCLAIM}", (DEAD, one_line(error)), ids
        )

    async def _update_pending(self, assignments: str, params: tuple[Any, ...], ids: Sequence[int]) -> None:
        # Only pending rows move: a row dropped or requeued from the CLI meanwhile is left as it is.
        if not ids:
            return
        await self._change(_pending_update(assignments), (*params, PENDING, json_list(ids)))

    async def outbox(
        self,
        status: DeliveryStatus | str | Iterable[DeliveryStatus | str] | None = None,
        *,
        limit: int = 1000,
        ids: Sequence[int] | None = None,
        newest_first: bool = False,
    ) -> list[Delivery]:
        """See :meth:`Store.outbox <flamewatch.store.base.Store.outbox>`."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM} WHERE 1"
        params: list[Any] = []
        if status is not None:
            # Filtered here, not by the caller: a dead row must never hide behind a limit of done ones.
            statuses = [status] if isinstance(status, str) else list(status)
            sql += " AND o.status IN (SELECT value FROM json_each(?))"
            params.append(json_list(str(_status(s)) for s in statuses))
        if ids is not None:
            sql += " AND o.id IN (SELECT value FROM json_each(?))"
            params.append(json_list(ids))
        sql += f" ORDER BY o.id{' DESC' if newest_first else ''} LIMIT ?"
        params.append(limit)
        return self._deliveries(await self._read(sql, params))

    async def requeue(self, ids: Sequence[int] | None, now: float) -> int:
        """See :meth:`Store.requeue <flamewatch.store.base.Store.requeue>`."""
        sql = "UPDATE outbox SET status = ?, next_at = ?, attempts = 0"
        if ids is None:
            return await self._change(sql + " WHERE status = ?", (PENDING, now, DEAD))
        return await self._change(
            sql + " WHERE status IN (?, ?) AND id IN (SELECT value FROM json_each(?))",
            (PENDING, now, DEAD, PENDING, json_list(ids)),
        )

    async def drop(self, ids: Sequence[int] | None) -> int:
        """See :meth:`Store.drop <flamewatch.store.base.Store.drop>`."""
        if ids is None:
            return await self._change("DELETE FROM outbox WHERE status = ?", (DEAD,))
        return await self._change("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))", (json_list(ids),))

    async def outbox_counts(self) -> dict[str, int]:
        """See :meth:`Store.outbox_counts <flamewatch.store.base.Store.outbox_counts>`."""
        rows = await self._read("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        counts: dict[str, int] = dict.fromkeys(DeliveryStatus, 0)
        for status, count in rows:
            counts[DeliveryStatus(status)] = count
        return counts

    async def backlog(self) -> list[Backlog]:
        """See :meth:`Store.backlog <flamewatch.store.base.Store.backlog>`."""
        rows = await self._read(
            "SELECT instance, SUM(status = ?), SUM(status = ?), MIN(CASE WHEN status = ? THEN next_at END) "
            "FROM outbox WHERE status IN (?, ?) GROUP BY instance ORDER BY instance",
            (PENDING, DEAD, PENDING, PENDING, DEAD),
        )
        return [Backlog(name, pending, dead, next_at) for name, pending, dead, next_at in rows]

    async def outbox_counts_by_instance(self) -> dict[str, dict[str, int]]:
        """See :meth:`Store.outbox_counts_by_instance <flamewatch.store.base.Store.outbox_counts_by_instance>`."""
        rows = await self._read("SELECT instance, status, COUNT(*) FROM outbox GROUP BY instance, status")
        return counts_by_instance(rows)

    async def sent_since(self, instance: str, since: float) -> list[float]:
        """See :meth:`Store.sent_since <flamewatch.store.base.Store.sent_since>`."""
        rows = await self._read("SELECT done_at FROM outbox WHERE instance = ? AND status = ? AND done_at >= ?"
                                " ORDER BY done_at", (instance, SENT, since))
        return [float(done_at) for (done_at,) in rows]

    async def purge_done(self, older_than: float) -> int:
        """See :meth:`Store.purge_done <flamewatch.store.base.Store.purge_done>`."""
        return await self._change(
            "DELETE FROM outbox WHERE status IN (SELECT value FROM json_each(?)) AND done_at < ?",
            (json_list(str(s) for s in sorted(FINISHED)), older_than),
        )


def counts_by_instance(rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, int]]:
    """``(instance, status, count)`` rows as counts per instance, every status present."""
    out: dict[str, dict[str, int]] = {}
    for instance, status, count in rows:
        out.setdefault(instance, dict.fromkeys(DeliveryStatus, 0))[DeliveryStatus(status)] = int(count)
    return out
