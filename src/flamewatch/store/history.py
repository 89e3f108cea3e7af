"""The SQLite store's story count history (table ``snapshots``): what each story looked like at each
cycle, for the velocity and growth rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from .base import CountSample, StateWrite
from .connection import SQLiteConnection, json_list
from .state import STATE_UPSERT, state_row

__all__ = ["SQLiteHistory"]

_SAMPLE_COLUMNS = "story_id, at, comments, score, descendants, partial"


def _sample(row: Sequence[Any]) -> CountSample:
    story_id, at, comments, score, descendants, partial = row
    return CountSample(story_id, at, comments, score, descendants, bool(partial))


class SQLiteHistory(SQLiteConnection):
    """The count-history part of the :class:`~flamewatch.store.base.Store` contract, on SQLite."""

    async def add_snapshots(self, samples: Sequence[CountSample], *, states: Sequence[StateWrite] = ()) -> None:
        """See :meth:`Store.add_snapshots <flamewatch.store.base.Store.add_snapshots>`."""
        if not samples and not states:
            return
        rows = [(s.story_id, s.at, s.comments, s.score, s.descendants, int(s.partial)) for s in samples]
        written_at = self.clock()
        values = [state_row(w.namespace, w.key, w.value, written_at) for w in states]

        async def body(conn: aiosqlite.Connection) -> None:
            if rows:
                await conn.executemany(f"INSERT INTO snapshots ({_SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
            if values:
                await conn.executemany(STATE_UPSERT, values)

        await self._write(body)

    async def history(self, story_id: int, since: float, *, include_partial: bool = False) -> list[CountSample]:
        """See :meth:`Store.history <flamewatch.store.base.Store.history>`."""
        sql = f"SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE story_id = ? AND at >= ?"
        if not include_partial:
            sql += " AND partial = 0"
        sql += " ORDER BY at, rowid"
        return [_sample(row) for row in await self._read(sql, (story_id, since))]

    async def latest(self, story_ids: Iterable[int]) -> dict[int, CountSample]:
        """See :meth:`Store.latest <flamewatch.store.base.Store.latest>`."""
        # One index probe per story (snapshots_by_story ends in rowid, so "at DESC, rowid DESC" is its
        # order): the cost stays flat as the history grows, where a window over every sample of the
        # watched stories grew with the 7 days kept.
        rows = await self._read(
            f"""SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE rowid IN (
                   SELECT (SELECT rowid FROM snapshots
                           WHERE story_id = ids.value AND partial = 0 ORDER BY at DESC, rowid DESC LIMIT 1)
                   FROM json_each(?) AS ids)""",
            (json_list(story_ids),),
        )
        return {sample.story_id: sample for sample in map(_sample, rows)}

    async def histories(self, story_ids: Iterable[int], since: float) -> dict[int, list[CountSample]]:
        """See :meth:`Store.histories <flamewatch.store.base.Store.histories>`."""
        rows = await self._read(
            f"SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE story_id IN (SELECT value FROM json_each(?))"
            " AND at >= ? AND partial = 0 ORDER BY story_id, at, rowid",
            (json_list(story_ids), since),
        )
        found: dict[int, list[CountSample]] = {}
        for sample in map(_sample, rows):
            found.setdefault(sample.story_id, []).append(sample)
        return found

    async def latest_cycle_samples(self, window: float = 0.0) -> list[CountSample]:
        """The samples of the most recent cycle (partial ones too; a cycle stamps all its samples with one
        time): those taken at most ``window`` seconds before the newest one. For ``flamewatch status``."""
        sql = (f"SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE at >= (SELECT MAX(at) FROM snapshots) - ? "
               "ORDER BY at DESC, rowid DESC")
        seen: dict[int, CountSample] = {}
        for sample in map(_sample, await self._read(sql, (window,))):
            seen.setdefault(sample.story_id, sample)
        return list(seen.values())

    async def samples_since(self, since: float) -> list[CountSample]:
        """Every sample taken at or after ``since`` (partial ones too), oldest first: what
        ``flamewatch backtest`` replays. SQLite only, like :meth:`latest_cycle_samples`."""
        sql = f"SELECT {_SAMPLE_COLUMNS} FROM snapshots WHERE at >= ? ORDER BY at, rowid"
        return [_sample(row) for row in await self._read(sql, (since,))]

    async def prune_snapshots(self, older_than: float) -> int:
        """See :meth:`Store.prune_snapshots <flamewatch.store.base.Store.prune_snapshots>`."""
        return await self._change("DELETE FROM snapshots WHERE at < ?", (older_than,))
