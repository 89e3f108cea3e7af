"""Defects a review of the alert path (issues 18-23) found, each pinned by a test."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flamewatch.crawl import CrawlResult
from flamewatch.dispatch import Dispatcher, NotifierInstance
from flamewatch.hn import Item
from flamewatch.pipeline.history import HistoryWindows
from flamewatch.rules import Evaluation
from flamewatch.store import CountSample, Delivery, Store, open_store
from flamewatch.testing import RecordingNotifier, make_event, notifier_context


def _counted(now: float, ids: list[int]) -> list[CrawlResult]:
    return [CrawlResult(s, story=Item(s, type="story"), comments=int(now) % 97 + s) for s in ids]


async def test_a_live_recount_between_a_cycles_history_reads_neither_fails_nor_evicts_the_cycles_stories(
    tmp_path: Path,
) -> None:
    # Live mode evaluates a few recounted stories while a cycle evaluates them all, on one HistoryWindows.
    # The cycle reads the windows of stories new to it from the store; a live batch that ran meanwhile
    # took every story it did not recount for one that left the lists, and the cycle then failed with a
    # KeyError on a story it had counted on finding.
    span = 600.0
    async with await open_store(str(tmp_path / "fw.db")) as store:
        windows = HistoryWindows(store)
        await store.add_snapshots([CountSample(s, 1000.0, 1, 0, None, False) for s in (1, 2, 5)])
        await windows.windows(_counted(1000.0, [1, 5]), 1000.0, span)  # an earlier cycle: 1 and 5 known
        await store.add_snapshots([CountSample(s, 1060.0, 2, 0, None, False) for s in (1, 2, 5)])
        cycle = asyncio.create_task(windows.windows(_counted(1060.0, [1, 2, 5]), 1060.0, span))  # 2 is new
        live = asyncio.create_task(windows.windows(_counted(1060.0, [5]), 1060.0, span, live=True))
        got, _ = await asyncio.gather(cycle, live)
        assert set(got) == {1, 2, 5}
        # A live batch counts a few stories: it must not make the next cycle read every other window again.
        await windows.windows(_counted(1070.0, [5]), 1070.0, span, live=True)
        assert set(windows._samples) == {1, 2, 5}


async def test_a_feed_sending_several_events_at_once_keeps_every_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A feed instance with concurrency > 1 runs several sends at once; each read the stored entries,
    # added its own and wrote them back, so the last write lost the others' entries (delivered, marked
    # done, and absent from the feed).
    from flamewatch import Secret
    from flamewatch.notifier import NotifierContext
    from flamewatch.notifiers.feed import FeedNotifier, FeedOptions

    monkeypatch.setenv("FW_FEED_TOKEN", "feed-token-0123456789abcdef")
    async with await open_store(str(tmp_path / "fw.db")) as store, aiohttp.ClientSession() as session:
        feed = FeedNotifier(NotifierContext(name="f", session=session, state=store.state_for("f")),
                            FeedOptions(token=Secret(env="FW_FEED_TOKEN")))
        events = [make_event(story_id=i, comments=120) for i in range(1, 6)]
        await asyncio.gather(*(feed.send(event) for event in events))
        assert sorted(e.story.id for e in await feed.entries()) == [1, 2, 3, 4, 5]


class PendingSpy:
    """A real store that notes how many rows each ``pending`` read handed back."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.pending_reads: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def pending(self, *args: Any, **kwargs: Any) -> list[Delivery]:
        rows: list[Delivery] = await self._store.pending(*args, **kwargs)
        self.pending_reads.append(len(rows))
        return rows


async def test_supersede_reads_only_the_waiting_rows_about_the_stories_it_weighs(store_location: str) -> None:
    # Supersede weighs the instance's waiting rows about the stories it took. It read every pending row
    # of the instance (events parsed, on the event loop) on every pass: after an outage, with thousands
    # queued, each delivery cost a read of them all (about 0.1 s of a blocked loop per 3000 rows).
    async with await open_store(store_location) as real, aiohttp.ClientSession() as session:
        store = PendingSpy(real)
        sink = RecordingNotifier(notifier_context(session, "sink"))
        later = time.time() + 3600.0
        others = [make_event(story_id=s, comments=120) for s in range(100, 160)]
        low = make_event(story_id=1, level=100, comments=260)  # a lower level retrying later
        await real.record_events([*others, low], {e.key: ["sink"] for e in [*others, low]}, time.time(),
                                 {"sink": later})
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink)])  # type: ignore[arg-type]
        await dispatcher.start()
        store.pending_reads.clear()  # start reads them all once, for its orphan check
        high = make_event(story_id=1, level=250, comments=260)
        await dispatcher.publish(Evaluation(announce=[high]))
        await sink.wait_for(1)
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
        assert [e.key for e in sink.sent] == [high.key]
        states = {d.event.key: d.shown_status for d in await real.outbox()}
        assert states[low.key] == "superseded" and states[others[0].key] == "pending"
        assert store.pending_reads and max(store.pending_reads) <= 2  # story 1's rows, not the other 60


async def test_an_older_store_is_not_migrated_under_the_older_flamewatch_sending_from_it(tmp_path: Path) -> None:
    # Upgrading flamewatch while the old daemon runs, then any command that writes (silence add, follow,
    # outbox retry, a second run): the store was migrated under the daemon, whose outcome writes then all
    # failed the new CHECK on status ("done" is no state any more); its sent rows stayed pending and the
    # next start sent them again.
    import sqlite3

    from flamewatch.errors import StoreSetupError
    from flamewatch.store.filelock import SQLiteFileLock
    from flamewatch.store.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:3]:
            for statement in step:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    running = SQLiteFileLock(str(path), "pid 4242 on old-host")
    await running.acquire(wait=False)
    try:
        with pytest.raises(StoreSetupError, match=r"schema version 3 is older .*\(pid 4242 on old-host\)"):
            async with await open_store(path):  # (closed again when it wrongly opens)
                pass
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (3,)
        conn.close()
    finally:
        await running.release()
    async with await open_store(path):  # stopped: this version migrates it
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_an_older_postgres_schema_is_not_migrated_under_its_older_leader() -> None:
    # As on SQLite: a newer flamewatch opening the schema (any command that writes, or a new instance
    # joining as standby) migrated it under the older leader, whose outcome writes then failed.
    import asyncpg
    from pgserver import fresh_schema, server_url

    from flamewatch.errors import StoreSetupError
    from flamewatch.store.postgres.schema import LOCK_NAMESPACE, MIGRATIONS, leader_key

    async with fresh_schema() as url:
        schema = url().rsplit("schema=", 1)[1]
        conn = await asyncpg.connect(server_url())
        leader = await asyncpg.connect(server_url(), server_settings={"application_name": "flamewatch old leader"})
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
            await conn.execute("INSERT INTO schema_version VALUES (1)")
            for statement in MIGRATIONS[0]:
                await conn.execute(statement)
            assert await leader.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, leader_key(schema))
            with pytest.raises(StoreSetupError, match=r"version 1 is older .*\(flamewatch old leader\)"):
                async with await open_store(url()):  # (closed again when it wrongly opens)
                    pass
            assert await conn.fetchval("SELECT max(version) FROM schema_version") == 1
            await leader.close()  # the old leader stopped: this version migrates the schema
            async with await open_store(url()):
                pass
            assert await conn.fetchval("SELECT max(version) FROM schema_version") == 2
        finally:
            await leader.close()
            await conn.close()
