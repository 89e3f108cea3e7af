"""The SQLite store, on real files: schema migrations, dedup across restarts, outbox lifecycle, history,
plugin state, bad paths, concurrency and a writer killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import textwrap
from datetime import UTC, datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flamewatch.events import Event, StorySnapshot
from flamewatch.testing import outbox_states
from flamewatch.store import (
    CountSample,
    DeliveryStatus,
    SQLiteStore,
    Store,
    StoreError,
    default_store_path,
    open_store,
)
from flamewatch.store.schema import MIGRATIONS, SCHEMA_VERSION

T0 = 1_700_000_000.0


def event(story_id: int = 1, rule: str = "comments", level: int | str = 100, title: str = "A story") -> Event:
    story = StorySnapshot(id=story_id, title=title, comments=150, score=42, by="pg", descendants=151)
    return Event(
        key=Event.make_key(story_id, rule, level),
        rule=rule,
        level=level,
        value=150,
        story=story,
        at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        velocity=12.5,
        growth=7,
    )


def snap(story_id: int, at: float, comments: int, *, partial: bool = False) -> CountSample:
    return CountSample(
        story_id=story_id, at=at, comments=comments, score=comments // 2, descendants=None, partial=partial
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "nested" / "flamewatch.db"


@pytest.fixture
async def store(store_location: str) -> AsyncIterator[Store]:
    """The store under test, once per backend (SQLite, PostgreSQL): the contract is the same."""
    async with await open_store(store_location) as s:
        yield s


@pytest.fixture
async def sqlite_store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    async with await SQLiteStore.open(db_path) as s:
        yield s


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.close()
    return int(version)


# -- opening, schema ---------------------------------------------------------------------------------


def test_default_store_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "flamewatch" / "flamewatch.db"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # ignored, per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "state" / "flamewatch" / "flamewatch.db"


async def test_open_creates_dirs_migrates_and_reopens(db_path: Path) -> None:
    async with await SQLiteStore.open(db_path) as store:
        assert store.path == str(db_path)
        await store.record_events([event()], {}, now=T0)
    assert await asyncio.to_thread(db_path.exists)
    assert user_version(db_path) == SCHEMA_VERSION
    with sqlite3.connect(db_path) as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert mode == "wal"

    # Re-opening an up-to-date store changes nothing and keeps the data.
    async with await open_store(db_path) as store:
        assert await store.fired_keys() == {"1:comments:100"}
    assert user_version(db_path) == SCHEMA_VERSION


async def test_memory_store_works() -> None:
    async with await open_store(":memory:") as store:
        assert await store.record_events([event()], {"1:comments:100": ["slack"]}, now=T0) == [event()]
        assert (await store.outbox_counts())["pending"] == 1


async def test_future_schema_version_is_refused(db_path: Path) -> None:
    async with await open_store(db_path):
        pass
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError) as info:
        await open_store(db_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(db_path) in message
    assert f"schema version {SCHEMA_VERSION + 5} is newer" in message


async def test_foreign_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="not a flamewatch store"):
        await open_store(other)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError) as info:
        await open_store(garbage)
    assert str(info.value) == f"cannot open store {garbage}: file is not a database"


async def test_unwritable_location_gives_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(StoreError) as info:
        await open_store(blocker / "sub" / "flamewatch.db")
    message = str(info.value)
    assert message.startswith(f"cannot open store {blocker / 'sub' / 'flamewatch.db'}: ")
    assert "not a directory" in message or "file exists" in message
    assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
async def test_read_only_directory_gives_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=r"^cannot open store .*flamewatch\.db: permission denied"):
            await open_store(locked / "flamewatch.db")
    finally:
        locked.chmod(0o700)


async def test_closed_store_raises_store_error(db_path: Path) -> None:
    store = await open_store(db_path)
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match="is closed"):
        await store.fired_keys()


# -- events and the outbox ---------------------------------------------------------------------------


async def test_record_events_dedups_across_restart(db_path: Path) -> None:
    a, b = event(1, "comments", 100), event(2, "keyword", "rust")
    routes = {a.key: ["slack", "mail", "slack"], b.key: ["hook"]}
    async with await open_store(db_path) as store:
        assert await store.record_events([a, b, a], routes, now=T0) == [a, b]
        assert await store.record_events([a], routes, now=T0 + 1) == []
        rows = await store.outbox()
        assert sorted((d.event.key, d.instance) for d in rows) == [
            (a.key, "mail"),
            (a.key, "slack"),
            (b.key, "hook"),
        ]

    # After a restart the same keys still never fire again, and no outbox rows are added.
    async with await open_store(db_path) as store:
        c = event(1, "comments", 200)
        assert await store.record_events([a, c, b], {**routes, c.key: ["slack"]}, now=T0 + 60) == [c]
        assert len(await store.outbox()) == 4
        assert await store.fired_keys() == {a.key, b.key, c.key}
        assert await store.fired_keys([1]) == {a.key, c.key}
        assert await store.fired_keys([]) == set()


async def test_event_round_trips_through_outbox(store: Store) -> None:
    original = event(7, "keyword", "<!channel> & co", title="Ünïcode <b>title</b>")
    await store.record_events([original], {original.key: ["slack"]}, now=T0)
    (delivery,) = await store.pending()
    assert delivery.event == original
    assert (delivery.instance, delivery.status, delivery.attempts) == ("slack", "pending", 0)
    assert (delivery.created_at, delivery.next_at, delivery.last_error) == (T0, T0, None)


async def test_event_without_routes_is_still_recorded(store: Store) -> None:
    assert await store.record_events([event()], {}, now=T0) == [event()]
    assert await store.outbox() == []
    assert await store.record_events([event()], {event().key: ["slack"]}, now=T0) == []


async def test_not_before_delays_an_instance(store: Store) -> None:
    e = event()
    await store.record_events([e], {e.key: ["ping", "digest"]}, now=T0, not_before={"digest": T0 + 3600})
    assert [d.instance for d in await store.due(T0)] == ["ping"]
    assert await store.next_due_at("digest") == T0 + 3600
    assert await store.next_due_at() == T0
    assert [d.instance for d in await store.due(T0 + 3600, instance="digest")] == ["digest"]


async def test_outbox_lifecycle(store: Store) -> None:
    events = [event(i) for i in range(1, 5)]
    await store.record_events(events, {e.key: ["hook"] for e in events}, now=T0)
    d1, d2, d3, d4 = await store.due(T0)
    assert [d.event.story.id for d in (d1, d2, d3, d4)] == [1, 2, 3, 4]
    assert await store.due(T0 - 1) == []
    assert len(await store.due(T0, limit=2)) == 2

    await store.mark_sent([d1.id], now=T0 + 1)
    await store.mark_retry([d2.id, d3.id], next_at=T0 + 30, error="HTTP 503\nService Unavailable")
    await store.mark_dead([d4.id], error="HTTP 401")
    assert await store.outbox_counts() == outbox_states(pending=2, sent=1, dead=1)

    assert await store.due(T0 + 29) == []
    assert await store.next_due_at() == T0 + 30
    retried = await store.due(T0 + 30)
    assert [(d.id, d.attempts, d.last_error) for d in retried] == [
        (d2.id, 1, "HTTP 503 Service Unavailable"),
        (d3.id, 1, "HTTP 503 Service Unavailable"),
    ]
    await store.mark_retry([d3.id], next_at=T0 + 20, error="timeout")
    assert [d.id for d in await store.due(T0 + 30)] == [d3.id, d2.id]  # longest waiting first
    await store.mark_dead([d3.id], error="gave up")
    (dead_d3,) = [d for d in await store.outbox("dead") if d.id == d3.id]
    assert (dead_d3.attempts, dead_d3.last_error) == (3, "gave up")

    # A done row is never moved back by a late mark_retry/mark_dead or a requeue.
    await store.mark_retry([d1.id], next_at=T0 + 99, error="late")
    await store.mark_dead([d1.id], error="late")
    assert await store.requeue([d1.id], now=T0 + 40) == 0
    assert [d.id for d in await store.outbox("sent")] == [d1.id]

    assert await store.requeue(None, now=T0 + 50) == 2  # all dead
    assert await store.outbox_counts() == outbox_states(pending=3, sent=1)
    requeued = {d.id: d for d in await store.due(T0 + 50)}
    assert requeued[d4.id].attempts == 0 and requeued[d4.id].next_at == T0 + 50
    assert requeued[d4.id].last_error == "HTTP 401"  # why it died stays visible

    await store.mark_dead([d2.id, d4.id], error="again")
    assert await store.drop([d2.id]) == 1
    assert await store.drop(None) == 1  # the remaining dead one
    assert await store.outbox_counts() == outbox_states(pending=1, sent=1)
    assert await store.pending() == await store.pending("hook")
    assert await store.pending("other") == []
    assert await store.next_due_at("other") is None

    assert await store.purge_done(older_than=T0 + 1) == 0  # done at exactly T0 + 1: not older
    assert await store.purge_done(older_than=T0 + 2) == 1
    assert await store.outbox_counts() == outbox_states(pending=1)
    # Purging deliveries keeps the fired keys: the event still cannot fire again.
    assert await store.record_events([events[0]], {events[0].key: ["hook"]}, now=T0 + 3) == []


async def test_outbox_rejects_unknown_status(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown outbox status 'delivered'"):
        await store.outbox("delivered")


# -- history -----------------------------------------------------------------------------------------


async def test_history_order_and_partial_filter(store: Store) -> None:
    await store.add_snapshots([snap(1, T0 + 120, 30), snap(2, T0, 5), snap(1, T0, 10)])
    await store.add_snapshots([snap(1, T0 + 60, 12, partial=True), snap(1, T0 + 180, 41)])
    assert [s.comments for s in await store.history(1, since=T0)] == [10, 30, 41]
    assert [s.comments for s in await store.history(1, since=T0, include_partial=True)] == [10, 12, 30, 41]
    assert [s.at for s in await store.history(1, since=T0 + 120)] == [T0 + 120, T0 + 180]
    assert await store.history(3, since=0) == []
    (partial,) = [s for s in await store.history(1, T0, include_partial=True) if s.partial]
    assert partial == snap(1, T0 + 60, 12, partial=True)


async def test_latest_skips_partial(store: Store) -> None:
    await store.add_snapshots(
        [
            snap(1, T0, 10),
            snap(1, T0 + 60, 20),
            snap(1, T0 + 120, 15, partial=True),
            snap(2, T0, 3, partial=True),
        ]
    )
    await store.add_snapshots([snap(3, T0 + 5, 1)])
    latest = await store.latest([1, 2, 3, 4])
    assert latest == {1: snap(1, T0 + 60, 20), 3: snap(3, T0 + 5, 1)}
    assert await store.latest([]) == {}


async def test_latest_breaks_ties_in_time_by_insertion_and_takes_repeated_ids(store: Store) -> None:
    await store.add_snapshots([snap(1, T0, 10), snap(1, T0, 11)])
    await store.add_snapshots([snap(1, T0, 12), snap(2, T0 - 1, 7)])
    assert await store.latest([1, 1, 2]) == {1: snap(1, T0, 12), 2: snap(2, T0 - 1, 7)}
    assert await store.latest(iter([2])) == {2: snap(2, T0 - 1, 7)}  # any iterable, read once


async def test_histories_are_each_storys_complete_samples_in_the_window(store: Store) -> None:
    await store.add_snapshots([snap(1, T0, 10), snap(2, T0 + 1, 3), snap(1, T0 + 60, 12, partial=True)])
    await store.add_snapshots([snap(1, T0 + 120, 30), snap(3, T0 - 600, 1), snap(2, T0 + 1, 4)])
    found = await store.histories([1, 2, 3, 4], since=T0)
    assert found == {1: [snap(1, T0, 10), snap(1, T0 + 120, 30)], 2: [snap(2, T0 + 1, 3), snap(2, T0 + 1, 4)]}
    for story_id in (1, 2):  # the same as one story's history, story by story
        assert found[story_id] == await store.history(story_id, since=T0)
    assert await store.histories([], since=0) == {}


async def test_prune_snapshots(store: Store) -> None:
    await store.add_snapshots([snap(1, T0 + i, i) for i in range(10)])
    assert await store.prune_snapshots(older_than=T0 + 7) == 7
    assert [s.comments for s in await store.history(1, since=0)] == [7, 8, 9]


# -- plugin state ------------------------------------------------------------------------------------


async def test_plugin_state_round_trips_across_reopen(db_path: Path) -> None:
    value = {"cursor": 12, "seen": ["a", "b"], "nested": {"ok": True, "none": None}, "ratio": 0.5}
    async with await open_store(db_path) as store:
        slack, mail = store.state_for("slack"), store.state_for("mail")
        assert await slack.get("cursor") is None
        await slack.set("cursor", value)
        await slack.set("count", 1)
        await slack.set("count", 2)  # overwrite
        await mail.set("cursor", "other instance")
        with pytest.raises(TypeError, match="state 'bad' of notifier 'slack' is not JSON"):
            await slack.set("bad", {1, 2})
    async with await open_store(db_path) as store:
        assert await store.state_for("slack").get("cursor") == value
        assert await store.state_for("slack").get("count") == 2
        assert await store.state_for("mail").get("cursor") == "other instance"
        assert await store.state_for("slack").get("bad") is None


# -- concurrency and crashes -------------------------------------------------------------------------


async def test_concurrent_tasks_do_not_corrupt(db_path: Path) -> None:
    keys = [event(i % 10, "comments", 100) for i in range(40)]  # 10 distinct keys, each raced by 4 tasks
    routes = {e.key: ["a", "b"] for e in keys}
    async with await open_store(db_path) as store:

        async def worker(n: int) -> list[Event]:
            new = await store.record_events([keys[n]], routes, now=T0 + n)
            await store.add_snapshots([snap(n, T0 + n, n)])
            await store.state_for(f"inst{n % 3}").set(f"k{n}", n)
            for delivery in await store.due(T0 + n, instance="a", limit=5):
                await store.mark_retry([delivery.id], next_at=T0 + 1000, error="busy")
            return new

        results = await asyncio.gather(*(worker(n) for n in range(40)))
        winners = [e.key for new in results for e in new]
        assert sorted(winners) == sorted({e.key for e in keys})  # each key won by exactly one task
        rows = await store.outbox()
        assert len(rows) == 20
        assert len({(d.event.key, d.instance) for d in rows}) == 20
        assert len(await store.history(5, since=0)) == 1
        assert await store.state_for("inst1").get("k37") == 37


async def test_cancelled_writers_leave_whole_transactions(store: Store, store_location: str) -> None:
    # Cancel record_events at every possible point; each call must be all-or-nothing, and the
    # store must stay usable (not stuck inside a half-finished transaction).
    def routes_for(e: Event) -> dict[str, list[str]]:
        return {e.key: ["x", "y", "z"]}

    for step in range(12):
        e = event(100 + step)
        task = asyncio.create_task(store.record_events([e], routes_for(e), now=T0))
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await store.close()  # waits for writes that outlived their cancelled callers
    async with await open_store(store_location) as reopened:
        fired = await reopened.fired_keys()
        # Step 0 cancels before the call starts; every later call had begun its write, which finishes.
        assert fired == {event(100 + step).key for step in range(1, 12)}
        rows = await reopened.outbox()
        assert {d.event.key for d in rows} == fired
        assert len(rows) == 3 * len(fired)
        assert await reopened.record_events([event(999)], routes_for(event(999)), now=T0) == [event(999)]


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from flamewatch.events import Event, StorySnapshot
    from flamewatch.store import CountSample, open_store

    async def main():
        store = await open_store(sys.argv[1])
        n = 0
        while True:
            key = Event.make_key(n, "comments", 100)
            story = StorySnapshot(id=n, title="t", comments=n)
            e = Event(key=key, rule="comments", level=100, value=n, story=story)
            await store.record_events([e], {key: ["a", "b"]}, now=float(n))
            await store.add_snapshots([CountSample(n, float(n), n, 0, None, False)])
            print("committed", n, flush=True)
            n += 1

    asyncio.run(main())
    """
)


async def test_killed_writer_leaves_committed_rows(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    with open(tmp_path / "writer.err", "wb") as err:  # noqa: ASYNC230 - local, opened once before the child starts
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(db), stdout=asyncio.subprocess.PIPE, stderr=err
        )
        last = -1
        try:
            async with asyncio.timeout(30):
                assert proc.stdout is not None
                while last < 50:  # many commits, so the kill lands in the middle of the loop
                    line = await proc.stdout.readline()
                    assert line, f"writer exited early: {(tmp_path / 'writer.err').read_text()}"
                    last = int(line.split()[1])
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert proc.stdout is not None
            await proc.stdout.read()
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    async with await open_store(db) as store:
        fired = await store.fired_keys()
        # Everything reported committed is there; at most the commit in flight is extra.
        assert {Event.make_key(n, "comments", 100) for n in range(last + 1)} <= fired
        rows = await store.outbox()
        assert len(rows) == 2 * len(fired)  # events and their outbox rows were written together
        assert len(await store.history(last, since=0)) == 1


async def test_version_1_database_migrates_and_stale_plugin_state_is_pruned(tmp_path: Path) -> None:
    import time

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:  # a store as version 1 of the schema left it
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO plugin_state (instance, key, value) VALUES ('slack', 'live:1', '\"ts-1\"')")
    conn.close()
    async with await open_store(path) as store:
        state = store.state_for("slack")
        assert await state.get("live:1") == "ts-1"  # kept across the migration
        await state.set("live:2", "ts-2")
        assert await store.prune_state(time.time() - 3600) == 0  # both written (or migrated) just now
        assert await store.prune_state(time.time() + 1) == 2
        assert await state.get("live:1") is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    conn.close()


async def test_version_2_database_migrates_and_its_outbox_rows_start_unclaimed(tmp_path: Path) -> None:
    import json

    path = tmp_path / "v2.db"
    old = event(3, "comments", 100)
    with sqlite3.connect(path) as conn:  # a store as version 2 of the schema left it, one row pending, one sent
        for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO fired (key, story_id, rule, fired_at, event) VALUES (?, 3, 'comments', ?, ?)",
            (old.key, T0, json.dumps(old.to_dict())),
        )
        conn.execute(
            "INSERT INTO outbox (event_key, instance, created_at, next_at) VALUES (?, 'slack', ?, ?)", (old.key, T0, T0)
        )
        conn.execute(
            "INSERT INTO outbox (event_key, instance, status, created_at, next_at, done_at)"
            " VALUES (?, 'hook', 'done', ?, ?, ?)",
            (old.key, T0, T0, T0 + 1),
        )
    conn.close()
    async with await open_store(path) as store:
        (pending,) = await store.pending()
        assert (pending.event, pending.instance, pending.status) == (old, "slack", DeliveryStatus.PENDING)
        assert (pending.claimed_by, pending.claimed_until) == (None, None)
        assert await store.outbox_counts() == outbox_states(pending=1, sent=1)
        (claimed,) = await store.claim_due(T0, instance="slack", claim_for=60, owner="me")
        assert (claimed.id, claimed.claimed_by, claimed.claimed_until) == (pending.id, "me", T0 + 60)
        assert await store.record_events([old], {old.key: ["slack"]}, now=T0 + 5) == []  # still fired
    assert user_version(path) == SCHEMA_VERSION == 4


async def test_statuses_are_stored_as_before(sqlite_store: Store, db_path: Path) -> None:
    store = sqlite_store
    # Files written by earlier versions hold these exact strings: the enum must keep reading them.
    assert [s.value for s in DeliveryStatus] == ["pending", "sent", "grouped", "silenced", "superseded", "dead"]
    assert DeliveryStatus("done") is DeliveryStatus.SENT  # the older name, in scripts and old listings
    events = [event(i) for i in range(1, 4)]
    await store.record_events(events, {e.key: ["hook"] for e in events}, now=T0)
    first, second, _ = await store.pending()
    await store.mark_sent([first.id], T0)
    await store.mark_dead([second.id], error="no")
    with sqlite3.connect(db_path) as conn:
        on_disk = dict(conn.execute("SELECT id, status FROM outbox").fetchall())
    conn.close()
    assert sorted(on_disk.values()) == ["dead", "pending", "sent"]
    assert all(type(d.status) is DeliveryStatus for d in await store.outbox())


async def test_backlog_counts_open_rows_per_instance_and_newest_first_reads_from_the_end(store: Store) -> None:
    """What the status page asks on every request: counted by the database, and only the newest rows."""
    from flamewatch.store import Backlog

    assert await store.backlog() == []
    events = [event(n) for n in range(1, 8)]
    await store.record_events(events, {e.key: ["hook", "mail"] for e in events}, T0)
    rows = await store.outbox()
    mail = [r.id for r in rows if r.instance == "mail"]
    await store.mark_dead(mail[:2], error="550")
    await store.mark_done(mail[2:3], T0)
    await store.mark_retry(mail[3:4], next_at=T0 - 50, error="503")
    await store.mark_done([r.id for r in rows if r.instance == "hook"], T0)
    assert await store.backlog() == [Backlog("mail", pending=4, dead=2, next_at=T0 - 50)]
    newest = await store.outbox(["pending", "dead"], limit=3, newest_first=True)
    assert [r.id for r in newest] == sorted(mail, reverse=True)[:3]
    assert [r.id for r in await store.outbox("dead", newest_first=True)] == sorted(mail[:2], reverse=True)
