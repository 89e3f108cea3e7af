"""The store shared by several processes, and real database faults.

Two store objects opened on one file stand for two flamewatch processes (each has its own connection),
as a server database will later: fired keys must be unique in the database, outbox rows are taken with
claims. Faults are real: another connection holding the write lock, a table gone under the store.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flamewatch.events import Event
from flamewatch.store import CountSample, SQLiteStore, StateWrite, Store, StoreError, open_store
from flamewatch.testing import make_event, make_story

T0 = 1_700_000_000.0


def event(story_id: int, level: int = 100) -> Event:
    return make_event(make_story(story_id), level=level, at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shared.db"


@pytest.fixture
async def first(store_location: str) -> AsyncIterator[Store]:
    """One process's store: on SQLite and on PostgreSQL (the ``store_location`` fixture's backends)."""
    async with await open_store(store_location) as store:
        yield store


@pytest.fixture
async def sqlite_first(db_path: Path) -> AsyncIterator[Store]:
    """A SQLite store, for the tests that reach into its file."""
    async with await open_store(db_path) as store:
        yield store


@pytest.fixture
async def second(store_location: str, first: Store) -> AsyncIterator[Store]:
    async with await open_store(store_location) as store:  # opened after `first`, which created it
        yield store


async def queue(store: Store, *story_ids: int, instance: str = "hook") -> list[int]:
    """Record one event per story routed to ``instance``; returns the new outbox row ids, oldest first."""
    events = [event(i) for i in story_ids]
    await store.record_events(events, {e.key: [instance] for e in events}, now=T0)
    return [d.id for d in await store.pending(instance)]


# -- fired keys ---------------------------------------------------------------------------------------


async def test_a_key_recorded_by_two_processes_at_once_fires_once(first: Store, second: Store) -> None:
    races = [event(i) for i in range(1, 21)]
    routes = {e.key: ["hook"] for e in races}
    results = await asyncio.gather(
        *(store.record_events([e], routes, now=T0) for e in races for store in (first, second))
    )
    winners = sorted(e.key for new in results for e in new)
    assert winners == sorted(e.key for e in races)  # each key won exactly once, whichever process won it
    assert len(await first.outbox()) == len(races)


async def test_a_key_twice_in_one_batch_is_new_once_and_queued_once(first: Store) -> None:
    one, two = event(1), event(2)
    assert await first.record_events([one], {one.key: ["hook"]}, now=T0) == [one]
    new = await first.record_events([two, one, two], {one.key: ["hook"], two.key: ["hook", "hook", "mail"]}, now=T0)
    assert new == [two]  # one fired before; two is new the first time only
    assert sorted((d.event.key, d.instance) for d in await first.pending()) == sorted(
        [(one.key, "hook"), (two.key, "hook"), (two.key, "mail")])


def test_the_database_itself_refuses_a_second_copy_of_a_key(db_path: Path) -> None:
    async def record_one() -> None:
        async with await open_store(db_path) as store:
            await store.record_events([event(1)], {}, now=T0)

    asyncio.run(record_one())
    with sqlite3.connect(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(
            "INSERT INTO fired (key, story_id, rule, fired_at, event) VALUES (?, 1, 'comments', 0, '{}')",
            (event(1).key,),
        )
    conn.close()


# -- claims -------------------------------------------------------------------------------------------


async def test_a_claimed_row_is_not_taken_by_another_owner_until_its_claim_lapses(
    first: Store, second: Store
) -> None:
    a, b, c = await queue(first, 1, 2, 3)
    taken = await first.claim_due(T0, instance="hook", claim_for=60, owner="one", limit=2)
    assert [(d.id, d.claimed_by, d.claimed_until) for d in taken] == [(a, "one", T0 + 60), (b, "one", T0 + 60)]
    assert [d.id for d in await second.claim_due(T0 + 1, claim_for=60, owner="two")] == [c]
    assert await second.claim_due(T0 + 2, claim_for=60, owner="two", instance="other") == []
    # Reading is not claiming: due() and pending() still list every row, with its claim.
    assert [(d.id, d.claimed_by) for d in await first.due(T0 + 2)] == [(a, "one"), (b, "one"), (c, "two")]
    # The lease invariant: not even its owner takes a row under a live lease (it may still be sending it).
    assert await first.claim_due(T0 + 30, claim_for=60, owner="one") == []
    assert await second.claim_due(T0 + 59, claim_for=60, owner="two") == []
    # At T0 + 60 the claims of "one" lapse: the other process may take those rows (a crashed sender).
    lapsed = await second.claim_due(T0 + 60, claim_for=60, owner="two")
    assert [(d.id, d.claimed_by) for d in lapsed] == [(a, "two"), (b, "two")]
    assert [d.id for d in await first.claim_due(T0 + 61, claim_for=60, owner="one")] == [c]


async def test_every_outcome_clears_the_claim(first: Store, second: Store) -> None:
    a, b, c, d = await queue(first, 1, 2, 3, 4)
    await first.claim_due(T0, claim_for=3600, owner="one")
    await first.mark_sent([a], T0 + 1)
    await first.mark_retry([b], next_at=T0 + 10, error="HTTP 503")
    await first.mark_dead([c], error="HTTP 401")
    claims = {row.id: (row.status, row.claimed_by, row.claimed_until) for row in await second.outbox()}
    assert claims == {a: ("sent", None, None), b: ("pending", None, None), c: ("dead", None, None),
                      d: ("pending", "one", T0 + 3600)}
    # The retried row is free for anyone once due; the one still claimed is not.
    assert [row.id for row in await second.claim_due(T0 + 10, claim_for=60, owner="two")] == [b]
    assert await second.requeue([c], T0 + 20) == 1
    # b is under the lease "two" took at T0 + 10: only c.
    assert [row.id for row in await second.claim_due(T0 + 20, claim_for=60, owner="two")] == [c]


async def test_released_claims_and_a_closed_store_leave_rows_free(store_location: str, second: Store) -> None:
    a, b = await queue(second, 1, 2)
    first = await open_store(store_location)
    await first.claim_due(T0, claim_for=3600, owner="one")
    assert await second.claim_due(T0, claim_for=60, owner="two") == []
    assert await first.release_claims("one") == 2
    assert [d.id for d in await second.claim_due(T0, claim_for=60, owner="two", limit=1)] == [a]
    await first.claim_due(T0 + 1, claim_for=3600, owner="one")  # takes b; a is claimed by "two"
    # Closing a store gives back the claims it took: a stopped process does not hold rows for an hour.
    await first.close()
    # (a stays under the lease "two" took at T0.)
    assert [(d.id, d.claimed_by) for d in await second.claim_due(T0 + 2, claim_for=60, owner="two")] == [
        (b, "two"),
    ]


async def test_two_processes_claiming_at_once_split_the_rows(first: Store, second: Store) -> None:
    ids = await queue(first, *range(1, 41))
    batches = await asyncio.gather(
        *(
            store.claim_due(T0, claim_for=60, owner=f"{side}{n}", limit=7)
            for n in range(6)
            for side, store in (("a", first), ("b", second))
        )
    )
    taken = [d.id for batch in batches for d in batch]
    assert sorted(taken) == ids  # every row taken once: 12 claims of up to 7 cover 40 rows exactly
    assert len(taken) == len(set(taken))


async def test_claim_for_must_be_positive(first: Store) -> None:
    with pytest.raises(ValueError, match="claim_for must be more than zero"):
        await first.claim_due(T0, claim_for=0, owner="one")


# -- the injected clock -------------------------------------------------------------------------------


async def test_plugin_state_is_stamped_by_the_injected_clock(store_location: str) -> None:
    now = [T0]
    async with await open_store(store_location, clock=lambda: now[0]) as store:
        state = store.state_for("slack")
        await state.set("live:1", "ts-1")
        now[0] = T0 + 100
        await state.set("live:2", "ts-2")
        assert await store.prune_state(T0) == 0
        assert await store.prune_state(T0 + 50) == 1  # only the value written at T0
        assert await state.get("live:1") is None
        assert await state.get("live:2") == "ts-2"


async def test_samples_and_state_are_written_together_or_not_at_all(store_location: str) -> None:
    now = [T0]
    async with await open_store(store_location, clock=lambda: now[0]) as store:
        state = store.state_for("core:stream")
        await store.add_snapshots([CountSample(1, T0, 5, 1, 5, False)],
                                  states=[StateWrite("core:stream", "cursor", {"cursor": 10})])
        assert await state.get("cursor") == {"cursor": 10}
        assert [s.comments for s in await store.history(1, 0)] == [5]
        now[0] = T0 + 100
        await store.add_snapshots([], states=[StateWrite("core:stream", "cursor", {"cursor": 12})])  # state alone
        assert await state.get("cursor") == {"cursor": 12}
        assert await store.prune_state(T0 + 50) == 0  # stamped by the store's clock when written
        with pytest.raises(TypeError, match="'cursor'"):  # nothing of a refused call is written
            await store.add_snapshots([CountSample(1, T0 + 60, 9, 1, 9, False)],
                                      states=[StateWrite("core:stream", "cursor", {1j})])
        assert [s.comments for s in await store.history(1, 0)] == [5]


# -- opening -------------------------------------------------------------------------------------------


async def test_a_url_is_refused_without_repeating_its_password() -> None:
    with pytest.raises(StoreError) as info:
        await open_store("mysql://flamewatch:s3cret@db.example/flamewatch")
    assert "mysql" in str(info.value)
    assert "s3cret" not in str(info.value)


# -- real faults ---------------------------------------------------------------------------------------


async def test_a_write_lock_held_elsewhere_is_a_store_error_and_the_store_recovers(db_path: Path) -> None:
    async with await SQLiteStore.open(db_path, busy_timeout=0.05) as store:
        (row,) = await queue(store, 1)
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process is writing, and keeps the lock
            attempts: dict[str, Callable[[], Awaitable[object]]] = {
                "record_events": lambda: store.record_events([event(2)], {}, now=T0),
                "claim_due": lambda: store.claim_due(T0, claim_for=60, owner="one"),
                "mark_done": lambda: store.mark_sent([row], T0),
                "add_snapshots": lambda: store.add_snapshots([CountSample(1, T0, 5, 1, 5, False)]),
                "state set": lambda: store.state_for("slack").set("k", 1),
            }
            for name, attempt in attempts.items():
                with pytest.raises(StoreError) as info:
                    await attempt()
                assert str(info.value) == f"store {db_path}: database is locked", name
                assert isinstance(info.value.__cause__, sqlite3.OperationalError), name
            assert await store.fired_keys() == {event(1).key}  # reads still work in WAL mode
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Nothing was left half done: the same writes succeed once the lock is gone.
        assert await store.record_events([event(2)], {}, now=T0) == [event(2)]
        assert [d.id for d in await store.claim_due(T0, claim_for=60, owner="one")] == [row]


async def test_opening_while_another_process_holds_the_lock_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=r"^cannot open store .*new\.db: database is locked$") as info:
            await open_store(path, busy_timeout=0.05)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_broken_schema_is_a_store_error_on_read_and_write(sqlite_first: Store, db_path: Path) -> None:
    first = sqlite_first
    with sqlite3.connect(db_path) as conn:  # someone dropped the table under the running store
        conn.execute("DROP TABLE snapshots")
    conn.close()
    with pytest.raises(StoreError, match=r"^store .*shared\.db: no such table: snapshots$") as info:
        await first.history(1, since=0)
    assert isinstance(info.value.__cause__, sqlite3.Error)
    with pytest.raises(StoreError, match="no such table: snapshots"):
        await first.prune_snapshots(T0)
    assert await first.fired_keys() == set()  # the rest of the store still works


async def test_a_damaged_row_is_a_store_error_naming_it(sqlite_first: Store, db_path: Path) -> None:
    first = sqlite_first
    (row,) = await queue(first, 1)
    await first.state_for("slack").set("live:1", "ts")
    with sqlite3.connect(db_path) as conn:  # another program wrote garbage where our JSON was
        conn.execute("UPDATE fired SET event = 'not json'")
        conn.execute("UPDATE plugin_state SET value = '{broken'")
    conn.close()
    with pytest.raises(StoreError, match=rf"^store .*shared\.db: outbox row {row} cannot be read: "):
        await first.claim_due(T0, claim_for=60, owner="one")
    with pytest.raises(StoreError, match=r"state 'live:1' of notifier 'slack' cannot be read"):
        await first.state_for("slack").get("live:1")
    assert await first.drop([row]) == 1  # the way out the message points to
    assert await first.pending() == []


async def test_one_sender_per_store_file(tmp_path: Path) -> None:
    import os

    from flamewatch.errors import StoreLockedError
    from flamewatch.store.filelock import SQLiteFileLock

    path = str(tmp_path / "fw.db")
    first, second = SQLiteFileLock(path, "run"), SQLiteFileLock(path, "once")
    await first.acquire(wait=False)
    assert first.held
    with pytest.raises(StoreLockedError, match=rf"store .*fw\.db is in use by another flamewatch \(pid {os.getpid()} "):
        await second.acquire(wait=False)
    assert not second.held
    await first.release()
    await second.acquire(wait=False)  # free again once released
    assert second.held and not first.held
    await second.release()


async def test_one_sender_per_store_file_whatever_path_names_it(tmp_path: Path) -> None:
    """A symlink to the store, or to its directory, names the same store: one lock, one sender."""
    from flamewatch.errors import StoreLockedError
    from flamewatch.store.filelock import SQLiteFileLock, lock_holder

    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "fw.db"
    real.touch()
    (tmp_path / "link.db").symlink_to(real)
    (tmp_path / "dirlink").symlink_to(real_dir)
    first = SQLiteFileLock(str(real), "run")
    await first.acquire(wait=False)
    try:
        for other in (tmp_path / "link.db", tmp_path / "dirlink" / "fw.db", real_dir / ".." / "real" / "fw.db"):
            with pytest.raises(StoreLockedError, match=r"is in use by another flamewatch \(pid "):
                await SQLiteFileLock(str(other), "once").acquire(wait=False)
            assert lock_holder(str(other)) is not None, other
    finally:
        await first.release()
    via_link = SQLiteFileLock(str(tmp_path / "link.db"), "run")
    await via_link.acquire(wait=False)  # the other way round too
    try:
        with pytest.raises(StoreLockedError):
            await SQLiteFileLock(str(real), "once").acquire(wait=False)
    finally:
        await via_link.release()
    assert not (tmp_path / "link.db.lock").exists()  # the lock lives beside the real file only
