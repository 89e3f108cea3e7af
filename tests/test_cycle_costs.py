"""What a cycle asks of the store grows with what changed, not with what was fired before (issue 23).

The statements are read from SQLite's own trace of the store's connection, on a real App counting a
simulated front page: no stand-in store.
"""

from __future__ import annotations

from pathlib import Path

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.dispatch.firedkeys import FiredKeys
from flamewatch.rules import Evaluation
from flamewatch.simulator import SimulatorServer, World
from flamewatch.store import SQLiteStore
from flamewatch.notifier import SavedValue, StateWrite
from flamewatch.testing import RecordingNotifier, make_event, make_test_plugins, plugin_offering


def settings(sim: SimulatorServer, store: Path) -> dict[str, object]:
    return {
        "hn": {"api_url": sim.base_url, "retries": 0},
        "watch": {"top": 5},
        "rules": {"comment_levels": [1, 2, 3, 5, 8], "points_levels": [1, 2]},
        "store": {"path": str(store)},
        "notifiers": [{"type": "recording"}],
    }


async def test_a_quiet_cycle_writes_its_samples_and_nothing_for_levels_fired_before(tmp_path: Path) -> None:
    world = World(seed=4, stories=5, total_comments=300)  # static: every level fires in the first cycle
    async with SimulatorServer(world) as sim:
        config = parse_config(settings(sim, tmp_path / "fw.db"), "costs.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            first = await app.monitor.cycle(0)
            assert first.events > 5  # levels of several stories fired
            await app.dispatcher.wait_idle()  # their deliveries' own writes are done

            store = app.monitor.store
            assert isinstance(store, SQLiteStore)
            statements: list[str] = []
            await store._live().set_trace_callback(statements.append)
            quiet = await app.monitor.cycle(1)
            await store._live().set_trace_callback(None)

    assert quiet.events == 0
    writes = [s for s in statements if s.lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    samples = [w for w in writes if w.lstrip().startswith("INSERT INTO snapshots")]
    assert len(samples) == quiet.stories  # this cycle's samples (executemany traces a row each)
    # No fired key inserted again, no event encoded again, no outbox row touched by the cycle.
    assert not any("fired" in w or "outbox" in w for w in writes), writes
    assert not any("ROW_NUMBER" in s for s in statements)  # the latest sample is no sort of the history
    # One transaction for the cycle's store work; the cursor did not move and no activity changed.
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    assert not any("plugin_state" in w for w in writes), writes


async def test_decline_and_stale_state_share_the_cycles_one_transaction(tmp_path: Path) -> None:
    world = World(seed=4, stories=0)
    for i in range(4):
        world.add_story(f"Story {i}", by="you" if i == 2 else f"someone{i}")
    async with SimulatorServer(world) as sim:
        config = parse_config({
            **settings(sim, tmp_path / "fw.db"),
            "watch": {"top": 4, "users": [{"name": "you", "rank_levels": []}]},
            "rules": {"comment_levels": [], "decline": True, "stale_after": "1h"},
        }, "costs.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
            store = app.monitor.store
            assert isinstance(store, SQLiteStore)
            statements: list[str] = []
            await store._live().set_trace_callback(statements.append)
            quiet = await app.monitor.cycle(1)  # nothing fires; decline's memory and the stale sources change
            await store._live().set_trace_callback(None)
            decline = await store.state_for("core:decline").get("stories")
            stale = await store.state_for("core:stale").get("sources")

    assert quiet.events == 0 and decline and stale
    states = [s for s in statements if s.startswith("INSERT") and "plugin_state" in s]
    assert len(states) == 2, statements  # decline's memory and the stale sources (executemany: a row each)
    # Before: each stage wrote its state in a transaction of its own, three a cycle.
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"], statements


async def test_a_cycle_writes_its_samples_and_a_moved_cursor_in_one_transaction(tmp_path: Path) -> None:
    world = World(seed=4, stories=3, total_comments=60)
    async with SimulatorServer(world) as sim:
        config = parse_config(settings(sim, tmp_path / "fw.db"), "costs.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None and app.stream is not None
            await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
            world.grow(5)  # maxitem moves: the stream's cursor follows it
            store = app.monitor.store
            assert isinstance(store, SQLiteStore)
            statements: list[str] = []
            await store._live().set_trace_callback(statements.append)
            cycle = await app.monitor.cycle(1)
            await store._live().set_trace_callback(None)
            await app.dispatcher.wait_idle()
            saved = await store.state_for("core:stream").get("cursor")

    assert cycle.new_items == 5 and saved["cursor"] == world.maxitem
    # Whatever events the growth fired are a transaction of their own; samples and cursor share one.
    begins = [i for i, s in enumerate(statements) if s == "BEGIN IMMEDIATE"]
    samples_at = next(i for i, s in enumerate(statements) if s.startswith("INSERT INTO snapshots"))
    state_at = next(i for i, s in enumerate(statements) if "plugin_state" in s and s.startswith("INSERT"))
    opened = max(b for b in begins if b < samples_at)
    assert opened < state_at and "COMMIT" not in statements[opened:state_at], statements


async def test_a_new_level_is_still_recorded_once_and_a_known_one_skipped(tmp_path: Path) -> None:
    world = World(seed=4, stories=3, total_comments=100)
    async with SimulatorServer(world) as sim:
        config = parse_config(settings(sim, tmp_path / "fw.db"), "costs.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            dispatcher = app.dispatcher
            assert dispatcher is not None and app.store is not None
            one, two = make_event(story_id=1, level=10), make_event(story_id=1, level=20)
            assert [e.key for e in await dispatcher.publish(Evaluation(announce=[one]))] == [one.key]
            assert one.key in dispatcher.fired
            # The known key costs nothing; the new one beside it is recorded and announced as before.
            assert [e.key for e in await dispatcher.publish(Evaluation(announce=[one, two]))] == [two.key]
            assert await app.store.fired_keys([1]) == {one.key, two.key}
            # A second dispatcher on the same store (a restart) knows nothing yet: the store still refuses.
            dispatcher.fired = FiredKeys()
            assert await dispatcher.publish(Evaluation(announce=[one, two])) == []


def test_remembered_keys_are_bounded_and_the_oldest_go_first() -> None:
    keys = FiredKeys(limit=10)
    keys.add(f"k{i}" for i in range(8))
    keys.add(["k8", "k9", "k10"])
    assert len(keys) == 5 and "k10" in keys and "k6" in keys and "k5" not in keys


async def test_history_windows_kept_in_memory_equal_the_stores_own(tmp_path: Path) -> None:
    from flamewatch.crawl import CrawlResult
    from flamewatch.hn import Item
    from flamewatch.pipeline.history import HistoryWindows
    from flamewatch.store import CountSample, open_store

    span = 300.0
    async with await open_store(str(tmp_path / "fw.db")) as store:
        await store.add_snapshots([CountSample(1, 1000.0 + t, t, 0, t, False) for t in range(0, 600, 60)])
        windows = HistoryWindows(store)
        for cycle in range(12):
            now = 1600.0 + 60 * cycle
            watched = [1, 2] if cycle % 5 != 4 else [2]  # story 1 leaves the list for a cycle, then returns
            results = [CrawlResult(s, story=Item(s, type="story"), comments=cycle * s,
                                   failed=int(cycle % 3 == 2 and s == 2)) for s in watched]  # some partial
            await store.add_snapshots([CountSample(r.story_id, now, r.comments, 0, None, r.partial) for r in results])
            got = await windows.windows(results, now, span)
            complete = [r.story_id for r in results if not r.partial]
            expected = await store.histories(complete, now - span)
            assert got == {s: [(x.at, x.comments) for x in expected.get(s, [])] for s in complete}, cycle


async def test_history_windows_keep_time_order_when_a_cycle_lands_after_a_live_recount(tmp_path: Path) -> None:
    from flamewatch.crawl import CrawlResult
    from flamewatch.hn import Item
    from flamewatch.pipeline.history import HistoryWindows
    from flamewatch.store import open_store

    def counted(comments: int) -> list[CrawlResult]:
        return [CrawlResult(1, story=Item(1, type="story"), comments=comments)]

    async with await open_store(str(tmp_path / "fw.db")) as store:
        windows = HistoryWindows(store)
        await windows.windows(counted(10), 1000.0, 3600.0, stored=False)  # a cycle
        await windows.windows(counted(40), 1090.0, 3600.0, live=True, stored=False)  # a live recount
        # The next cycle started at 1060, before that recount, and finishes after it.
        got = await windows.windows(counted(30), 1060.0, 3600.0, stored=False)
    assert got == {1: [(1000.0, 10), (1060.0, 30), (1090.0, 40)]}


def test_an_unchanged_value_is_written_again_only_when_it_would_grow_stale() -> None:
    saved = SavedValue("core:stream", "cursor", refresh=3600.0)
    first = saved.write({"cursor": 10}, 1000.0)
    assert first == StateWrite("core:stream", "cursor", {"cursor": 10})  # never written yet
    saved.written(first, 1000.0)
    assert saved.write({"cursor": 10}, 2000.0) is None  # did not move
    assert saved.write({"cursor": 11}, 2000.0) is not None  # moved
    assert saved.write({"cursor": 10}, 4600.0) is not None  # an hour old: the store would prune it
