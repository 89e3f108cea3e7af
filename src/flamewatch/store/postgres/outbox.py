"""The PostgreSQL store's fired keys and delivery outbox, with the SQLite store's semantics exactly.

Keys are the primary key of ``fired`` (``INSERT ... ON CONFLICT DO NOTHING``), so of several instances
recording one key exactly one gets it. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` in one statement:
two instances claiming at once take disjoint rows without waiting for each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import asyncpg

from ...errors import StoreError
from ...events import Event
from ..base import FINISHED, SKIPPED, Backlog, Delivery, DeliveryStatus
from ..outbox import _delivery, _status, counts_by_instance, read_events
from ..schema import one_line
from .connection import Conn, PgLocation, PostgresConnection

__all__ = ["PostgresOutbox"]

PENDING, SENT, GROUPED, DEAD = (str(s) for s in (DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.GROUPED,
                                                  DeliveryStatus.DEAD))

_COLUMNS = (
    "o.id, f.event, o.instance, o.status, o.attempts, o.created_at, o.next_at, o.last_error,"
    " o.claimed_by, o.claimed_until, o.state_ref"
)
_FROM = "outbox AS o JOIN fired AS f ON f.key = o.event_key"
_UNCLAIM = "claimed_by = NULL, claimed_until = NULL"
#: An UPDATE of the pending rows among the ids ``$2`` (``$1`` is the pending status).
_PENDING_UPDATE = "UPDATE outbox SET {} WHERE status = $1 AND id = ANY($2::bigint[])"
# The lease invariant (see Store.claim_due): a live lease is never taken, not even by its owner.
_CLAIMABLE = "(o.claimed_until IS NULL OR o.claimed_until <= $2)"


class PostgresOutbox(PostgresConnection):
    """The fired-key and outbox half of the :class:`~flamewatch.store.base.Store` contract, on PostgreSQL."""

    def __init__(self, location: PgLocation, pool: asyncpg.Pool, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(location, pool, clock=clock)
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
        first = {e.key: e for e in reversed(events)}  # one per key, the earliest in the batch
        # Keys go in sorted, so two instances recording overlapping batches lock them in one order (no
        # deadlock); the outbox rows follow the caller's order.
        keys = sorted(first)

        async def body(conn: Conn) -> list[Event]:
            if not keys:
                return []
            won = await conn.fetch(
                "INSERT INTO fired (key, story_id, rule, fired_at, event)"
                " SELECT k, s, r, $4, e FROM unnest($1::text[], $2::bigint[], $3::text[], $5::text[]) AS t(k, s, r, e)"
                " ON CONFLICT (key) DO NOTHING RETURNING key",
                keys,
                [first[k].story.id for k in keys],
                [first[k].rule for k in keys],
                now,
                [json.dumps(first[k].to_dict()) for k in keys],
            )
            new_keys = {row["key"] for row in won}
            new: list[Event] = []
            rows: list[tuple[str, str, float]] = []
            for event in events:
                if event.key not in new_keys:
                    continue  # fired before (in an earlier run, by another instance)
                new_keys.discard(event.key)  # a second copy later in this batch is skipped too
                new.append(event)
                rows += [(event.key, name, waits.get(name, now)) for name in dict.fromkeys(routes.get(event.key, ()))]
            if rows:
                await conn.execute(
                    "INSERT INTO outbox (event_key, instance, status, created_at, next_at)"
                    " SELECT k, i, $4, $5, n FROM unnest($1::text[], $2::text[], $3::float8[]) WITH ORDINALITY"
                    " AS t(k, i, n, ord) ORDER BY ord",
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                    PENDING,
                    now,
                )
            return new

        return await self._write(body)

    async def fired_keys(self, story_ids: Iterable[int] | None = None) -> set[str]:
        """See :meth:`Store.fired_keys <flamewatch.store.base.Store.fired_keys>`."""
        if story_ids is None:
            rows = await self._read("SELECT key FROM fired")
        else:
            rows = await self._read("SELECT key FROM fired WHERE story_id = ANY($1::bigint[])", (list(story_ids),))
        return {row["key"] for row in rows}

    async def fired_events(self, story_ids: Iterable[int]) -> list[Event]:
        """See :meth:`Store.fired_events <flamewatch.store.base.Store.fired_events>`."""
        rows = await self._read("SELECT event FROM fired WHERE story_id = ANY($1::bigint[]) ORDER BY fired_at, key",
                                (list(story_ids),))
        return read_events(row["event"] for row in rows)

    async def due(self, now: float, *, instance: str | None = None, limit: int = 500) -> list[Delivery]:
        """See :meth:`Store.due <flamewatch.store.base.Store.due>`."""
        sql = f"SELECT {_COLUMNS} FROM {_FROM} WHERE o.status = $1 AND o.next_at <= $2"
        params: list[Any] = [PENDING, now]
        if instance is not None:
            sql += " AND o.instance = $3"
            params.append(instance)
        sql += f" ORDER BY o.next_at, o.id LIMIT ${len(params) + 1}"
        return self._deliveries(await self._read(sql, [*params, limit]))

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
        self._claim_owners.add(owner)
        only = " AND o.instance = $6" if instance is not None else ""
        # SKIP LOCKED: rows another instance is claiming right now are left to it, not waited for; the
        # claim columns then keep them from everyone else until the claim lapses.
        sql = (
            "WITH picked AS ("
            " SELECT o.id, o.claimed_by AS was_claimed_by FROM outbox AS o"
            f" WHERE o.status = $1 AND o.next_at <= $2 AND {_CLAIMABLE}{only}"
            " ORDER BY o.next_at, o.id LIMIT $5 FOR UPDATE SKIP LOCKED)"
            f" UPDATE outbox AS o SET claimed_by = $3, claimed_until = $4 FROM picked, fired AS f"
            f" WHERE o.id = picked.id AND f.key = o.event_key RETURNING {_COLUMNS}, picked.was_claimed_by"
        )
        params: list[Any] = [PENDING, now, owner, until, limit]
        if instance is not None:
            params.append(instance)

        async def body(conn: Conn) -> list[asyncpg.Record]:
            return list(await conn.fetch(sql, *params))

        rows = await self._write(body, one_statement=True)
        rows.sort(key=lambda r: (r["next_at"], r["id"]))
        # A claimed_by there before this claim is a claim that ended with no recorded outcome.
        reclaimed = {r["id"] for r in rows if r["was_claimed_by"] is not None}
        return [replace(d, reclaimed=d.id in reclaimed) for d in self._deliveries(tuple(r)[:-1] for r in rows)]

    async def renew_claims(self, owner: str, ids: Sequence[int], now: float, *, claim_for: float) -> list[int]:
        """See :meth:`Store.renew_claims <flamewatch.store.base.Store.renew_claims>`."""
        if not ids:
            return []
        sql = ("UPDATE outbox SET claimed_until = greatest(claimed_until, $1) WHERE claimed_by = $2"
               " AND claimed_until IS NOT NULL AND status = $3 AND id = ANY($4::bigint[]) RETURNING id")

        async def body(conn: Conn) -> list[int]:
            return [r["id"] for r in await conn.fetch(sql, now + claim_for, owner, PENDING, list(ids))]

        return await self._write(body, one_statement=True)

    def _deliveries(self, rows: Iterable[asyncpg.Record | tuple[Any, ...]]) -> list[Delivery]:
        """Rows as :class:`Delivery` values; one that cannot be read back is a :class:`StoreError`."""
        deliveries = []
        for row in rows:
            try:
                deliveries.append(_delivery(tuple(row)))
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"store {self.path}: outbox row {row[0]} cannot be read: {exc!r}") from exc
        return deliveries

    async def release_claims(self, owner: str | None) -> int:
        """See :meth:`Store.release_claims <flamewatch.store.base.Store.release_claims>`."""
        # claimed_by stays: the trace of a claim that ended with no outcome (see Store.release_claims).
        if owner is None:
            return await self._change(
                "UPDATE outbox SET claimed_until = NULL WHERE claimed_until IS NOT NULL AND status = $1", (PENDING,)
            )
        return await self._change(
            "UPDATE outbox SET claimed_until = NULL WHERE claimed_by = $1 AND claimed_until IS NOT NULL"
            " AND status = $2", (owner, PENDING)
        )

    async def pending(self, instance: str | None = None, *, stories: Iterable[int] | None = None) -> list[Delivery]:
        """See :meth:`Store.pending <flamewatch.store.base.Store.pending>`."""
        sql = f"SELECT {_COLUMNS} FROM {_FROM} WHERE o.status = $1"
        params: list[Any] = [PENDING]
        if instance is not None:
            params.append(instance)
            sql += f" AND o.instance = ${len(params)}"
        if stories is not None:
            params.append(list(stories))
            sql += f" AND f.story_id = ANY(${len(params)}::bigint[])"
        return self._deliveries(await self._read(sql + " ORDER BY o.id", params))

    async def next_due_at(self, instance: str | None = None, *, after: float | None = None) -> float | None:
        """See :meth:`Store.next_due_at <flamewatch.store.base.Store.next_due_at>`."""
        sql = "SELECT min(next_at) FROM outbox WHERE status = $1"
        params: list[Any] = [PENDING]
        if after is not None:
            params.append(after)
            sql += f" AND next_at > ${len(params)}"
        if instance is not None:
            params.append(instance)
            sql += f" AND instance = ${len(params)}"
        ((earliest,),) = await self._read(sql, params)
        return float(earliest) if earliest is not None else None

    async def mark_sent(self, ids: Sequence[int], now: float, *, grouped: Sequence[int] = (),
                        into: str | None = None) -> None:
        """See :meth:`Store.mark_sent <flamewatch.store.base.Store.mark_sent>`."""
        sent = f"status = $3, done_at = $4, {_UNCLAIM}"
        if not grouped:
            await self._update_pending(sent, (SENT, now), ids)
            return

        async def body(conn: Conn) -> None:
            await conn.execute(_PENDING_UPDATE.format(sent), PENDING, list(ids), SENT, now)
            await conn.execute(_PENDING_UPDATE.format(f"status = $3, done_at = $4, state_ref = $5, {_UNCLAIM}"),
                               PENDING, list(grouped), GROUPED, now, into)

        await self._write(body)

    async def mark_done(self, ids: Sequence[int], now: float) -> None:
        """See :meth:`Store.mark_done <flamewatch.store.base.Store.mark_done>`."""
        await self.mark_sent(ids, now)

    async def mark_retry(self, ids: Sequence[int], *, next_at: float, error: str) -> None:
        """See :meth:`Store.mark_retry <flamewatch.store.base.Store.mark_retry>`."""
        await self._update_pending(
            f"attempts = attempts + 1, next_at = $3, last_error = $4, {_UNCLAIM}", (next_at, one_line(error)), ids
        )

    async def mark_dead(self, ids: Sequence[int], *, error: str) -> None:
        """See :meth:`Store.mark_dead <flamewatch.store.base.Store.mark_dead>`."""
        await self._update_pending(
            f"status = $3, attempts = attempts + 1, last_error = $4, {_UNCLAIM}", (DEAD, one_line(error)), ids
        )

    async def mark_skipped(self, ids: Sequence[int], now: float, *, status: DeliveryStatus, ref: str) -> None:
        """See :meth:`Store.mark_skipped <flamewatch.store.base.Store.mark_skipped>`."""
        if status not in SKIPPED:
            raise ValueError(f"mark_skipped: {status!r} is not a state of a row closed unsent")
        await self._update_pending(
            f"status = $3, done_at = $4, state_ref = $5, {_UNCLAIM}", (str(status), now, one_line(ref)), ids
        )

    async def _update_pending(self, assignments: str, params: tuple[Any, ...], ids: Sequence[int]) -> None:
        # Only pending rows move: a row dropped or requeued from the CLI meanwhile is left as it is.
        if ids:
            await self._change(_PENDING_UPDATE.format(assignments), (PENDING, list(ids), *params))

    async def outbox(
        self,
        status: DeliveryStatus | str | Iterable[DeliveryStatus | str] | None = None,
        *,
        limit: int = 1000,
        ids: Sequence[int] | None = None,
        newest_first: bool = False,
    ) -> list[Delivery]:
        """See :meth:`Store.outbox <flamewatch.store.base.Store.outbox>`."""
        conditions: list[str] = []
        params: list[Any] = []
        if status is not None:
            # Filtered here, not by the caller: a dead row must never hide behind a limit of done ones.
            statuses = [status] if isinstance(status, str) else list(status)
            params.append([str(_status(s)) for s in statuses])
            conditions.append(f"o.status = ANY(${len(params)}::text[])")
        if ids is not None:
            params.append(list(ids))
            conditions.append(f"o.id = ANY(${len(params)}::bigint[])")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        params.append(limit)
        order = "o.id DESC" if newest_first else "o.id"
        rows = await self._read(f"SELECT {_COLUMNS} FROM {_FROM}{where} ORDER BY {order} LIMIT ${len(params)}",
                                tuple(params))
        return self._deliveries(rows)

    async def requeue(self, ids: Sequence[int] | None, now: float) -> int:
        """See :meth:`Store.requeue <flamewatch.store.base.Store.requeue>`."""
        sql = "UPDATE outbox SET status = $1, next_at = $2, attempts = 0"
        if ids is None:
            return await self._change(sql + " WHERE status = $3", (PENDING, now, DEAD))
        return await self._change(
            sql + " WHERE status IN ($3, $1) AND id = ANY($4::bigint[])", (PENDING, now, DEAD, list(ids))
        )

    async def drop(self, ids: Sequence[int] | None) -> int:
        """See :meth:`Store.drop <flamewatch.store.base.Store.drop>`."""
        if ids is None:
            return await self._change("DELETE FROM outbox WHERE status = $1", (DEAD,))
        return await self._change("DELETE FROM outbox WHERE id = ANY($1::bigint[])", (list(ids),))

    async def outbox_counts(self) -> dict[str, int]:
        """See :meth:`Store.outbox_counts <flamewatch.store.base.Store.outbox_counts>`."""
        counts: dict[str, int] = dict.fromkeys(DeliveryStatus, 0)
        for status, count in await self._read("SELECT status, count(*) FROM outbox GROUP BY status"):
            counts[DeliveryStatus(status)] = count
        return counts

    async def backlog(self) -> list[Backlog]:
        """See :meth:`Store.backlog <flamewatch.store.base.Store.backlog>`."""
        rows = await self._read(
            "SELECT instance, count(*) FILTER (WHERE status = $1), count(*) FILTER (WHERE status = $2), "
            "min(next_at) FILTER (WHERE status = $1) FROM outbox WHERE status IN ($1, $2) "
            "GROUP BY instance ORDER BY instance",
            (PENDING, DEAD),
        )
        return [Backlog(name, pending, dead, next_at) for name, pending, dead, next_at in rows]

    async def outbox_counts_by_instance(self) -> dict[str, dict[str, int]]:
        """See :meth:`Store.outbox_counts_by_instance <flamewatch.store.base.Store.outbox_counts_by_instance>`."""
        rows = await self._read("SELECT instance, status, count(*) FROM outbox GROUP BY instance, status")
        return counts_by_instance(tuple(row) for row in rows)

    async def sent_since(self, instance: str, since: float) -> list[float]:
        """See :meth:`Store.sent_since <flamewatch.store.base.Store.sent_since>`."""
        rows = await self._read("SELECT done_at FROM outbox WHERE instance = $1 AND status = $2 AND done_at >= $3"
                                " ORDER BY done_at", (instance, SENT, since))
        return [float(row["done_at"]) for row in rows]

    async def purge_done(self, older_than: float) -> int:
        """See :meth:`Store.purge_done <flamewatch.store.base.Store.purge_done>`."""
        return await self._change("DELETE FROM outbox WHERE status = ANY($1::text[]) AND done_at < $2",
                                  ([str(s) for s in sorted(FINISHED)], older_than))
