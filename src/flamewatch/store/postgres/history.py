"""The PostgreSQL store's story count history (table ``snapshots``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from ..base import CountSample, StateWrite
from ..state import state_row
from .connection import Conn, PostgresConnection
from .state import STATE_UPSERT

__all__ = ["PostgresHistory"]

_SAMPLE_COLUMNS = "story_id, at, comments, score, descendants, partial"


def _sample(row: asyncpg.Record) -> CountSample:
    return CountSample(row["story_id"], row["at"], row["comments"], row["score"], row["descendants"], row["partial"])


class PostgresHistory(PostgresConnection):
    """The count-history part of the :class:`~flamewatch.store.base.Store` contract, on PostgreSQL."""

    async def add_snapshots(self, samples: Sequence[CountSample], *, states: Sequence[StateWrite] = ()) -> None:
        """See :meth:`Store.add_snapshots <flamewatch.store.base.Store.add_snapshots>`."""
        if not samples and not states:
            return
        written_at = self.clock()
        values = [state_row(w.namespace, w.key, w.value, written_at) for w in states]

        async def body(conn: Conn) -> None:
            if values:
                await conn.executemany(STATE_UPSERT, values)
            if not samples:
                return
            # One statement; WITH ORDINALITY keeps the ids (ties in time) in the given order.
            await conn.execute(
                f"INSERT INTO snapshots ({_SAMPLE_COLUMNS}) SELECT s, a, c, sc, d, p FROM unnest("
                "$1::bigint[], $2::float8[], $3::int[], $4::int[], $5::int[], $6::bool[]) WITH ORDINALITY"
                " AS t(s, a, c, sc, d, p, ord) ORDER BY ord",
                [s.story_id for s in samples],
                [s.at for s in samples],
                [s.comments for s in samples],
                [s.score for s in samples],
                [s.descendants for s in samples],
                [s.partial for s in samples],
            )

        await self._write(body)

    async def history(self, story_id: int, since: float, *, include_partial: bool = False) -> list[CountSample]:
        """See :meth:`Store.history <flamewatch.store.base.Store.history>`."""
        sql = f"SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE story_id = $1 AND at >= $2"
        if not include_partial:
            sql += " AND NOT partial"
        return [_sample(row) for row in await self._read(sql + " ORDER BY at, id", (story_id, since))]

    async def latest(self, story_ids: Iterable[int]) -> dict[int, CountSample]:
        """See :meth:`Store.latest <flamewatch.store.base.Store.latest>`."""
        # One backward probe of snapshots_by_story per story: flat as the history grows (DISTINCT ON
        # sorted every sample of the watched stories).
        rows = await self._read(
            f"SELECT s.* FROM unnest($1::bigint[]) AS ids(id) CROSS JOIN LATERAL ("
            f" SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE story_id = ids.id AND NOT partial"
            " ORDER BY at DESC, id DESC LIMIT 1) AS s",
            (list(dict.fromkeys(story_ids)),),
        )
        return {sample.story_id: sample for sample in map(_sample, rows)}

    async def histories(self, story_ids: Iterable[int], since: float) -> dict[int, list[CountSample]]:
        """See :meth:`Store.histories <flamewatch.store.base.Store.histories>`."""
        rows = await self._read(
            f"SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE story_id = ANY($1::bigint[]) AND at >= $2"
            " AND NOT partial ORDER BY story_id, at, id",
            (list(story_ids), since),
        )
        found: dict[int, list[CountSample]] = {}
        for sample in map(_sample, rows):
            found.setdefault(sample.story_id, []).append(sample)
        return found

    async def prune_snapshots(self, older_than: float) -> int:
        """See :meth:`Store.prune_snapshots <flamewatch.store.base.Store.prune_snapshots>`."""
        return await self._change("DELETE FROM snapshots WHERE at < $1", (older_than,))
