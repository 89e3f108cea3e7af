"""Decline events of watched stories, against the simulator: leaving a list after a grace period (a glitch
gives nothing, a restart in between neither loses nor repeats it), a sharp drop, flagged, dead, deleted and
retitled, each once; their keys and how they read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.eventkeys import EventKind, parse_key
from flamewatch.events import Event
from flamewatch.simulator import (
    SimulatorServer,
    World,
    delete_story,
    drop_from_list,
    flag_story,
    kill_story,
    place_on_list,
    retitle_story,
)
from flamewatch.testing import HOSTILE_TITLE, RecordingNotifier, make_test_plugins, plugin_offering


def config_for(sim: SimulatorServer, tmp_path: Path, *, rules: dict[str, Any] | None = None,
               **watch: Any) -> Any:
    return parse_config({
        "hn": {"api_url": sim.base_url},
        "watch": {"top": 30, **watch},
        "rules": {"decline": True, "decline_grace": 2, **(rules or {})},
        "store": {"path": str(tmp_path / "fw.db")},
        "notifiers": [{"type": "recording", "name": "sink", "rules": ["decline"]}],
    }, "decline.toml")


async def run_cycle(app: App, number: int) -> list[Event]:
    """One cycle; the events delivered during it."""
    assert app.monitor is not None and app.dispatcher is not None
    (sink,) = [i.notifier for i in app.instances]
    assert isinstance(sink, RecordingNotifier)
    before = len(sink.sent)
    await app.monitor.cycle(number)
    await app.dispatcher.wait_idle()
    return list(sink.sent[before:])


def plugins() -> Any:
    return make_test_plugins(plugin_offering(RecordingNotifier))


def world_with(n: int = 25) -> World:
    world = World(seed=7, stories=0)
    for i in range(n):
        world.add_story(f"Filler {i}")
    return world


async def test_leaving_a_list_needs_the_grace_period_and_survives_a_restart(tmp_path: Path) -> None:
    world = world_with()
    mine = world.add_story("My story", by="you", top=False)
    place_on_list(world, mine, 20)
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, users=[{"name": "you", "rank_levels": []}],
                            rules={"decline_grace": 3})
        async with App(config, plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []
            drop_from_list(world, mine)  # a one-cycle glitch of the list...
            assert await run_cycle(app, 1) == []
            place_on_list(world, mine, 22)  # ...is forgotten when the story is back
            assert await run_cycle(app, 2) == []
            drop_from_list(world, mine)
            assert await run_cycle(app, 3) == []
            assert await run_cycle(app, 4) == []
        # A restart two cycles into the grace period: the count is in the store, not lost and not restarted.
        async with App(config, plugins=plugins()) as app:
            (left,) = await run_cycle(app, 0)
            assert await run_cycle(app, 1) == []
        async with App(config, plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []  # and not repeated after another restart
    assert left.rule == "decline" and left.level == "topstories" and left.story.id == mine
    assert parse_key(left.key).kind is EventKind.LEFT and parse_key(left.key).story == mine
    assert left.describe() == "My story left the front page, after reaching #20 (last seen at #22)"
    assert left.story.by == "you" and left.label() == "left topstories"


async def test_a_failed_cycle_after_deciding_neither_loses_nor_repeats_the_event(tmp_path: Path) -> None:
    world = world_with()
    mine = world.add_story("Mine", by="you", top=False)
    place_on_list(world, mine, 25)
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, users=[{"name": "you", "rank_levels": []}], rules={"decline_grace": 1})
        async with App(config, plugins=plugins()) as app:
            assert app.monitor is not None and app.store is not None
            assert await run_cycle(app, 0) == []
            drop_from_list(world, mine)
            state = app.store.state_for("core:decline")
            before = await state.get("stories")
            (left,) = await run_cycle(app, 1)
            # The state write is lost (the process died right after publishing): the next cycle decides
            # again from the old state and makes the same key, which the store has as fired.
            await state.set("stories", before)
            assert await run_cycle(app, 2) == []
            assert left.key in await app.store.fired_keys([mine])


async def test_flagged_dead_deleted_retitled_and_a_sharp_drop_each_give_one_event(tmp_path: Path) -> None:
    world = world_with(40)
    flagged, dead, gone, renamed, dropping = (world.add_story(t, by="you", top=False) for t in (
        "Flagged one", "Dead one", "Deleted one", "Old title", "Dropping one"))
    for rank, sid in enumerate((flagged, dead, gone, renamed, dropping), 1):
        place_on_list(world, sid, rank)
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, users=[{"name": "you", "rank_levels": []}],
                            rules={"decline_grace": 2, "decline_rank_drop": 15, "decline_flag_rank": 10})
        async with App(config, plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []
            flag_story(world, flagged)
            kill_story(world, dead)
            delete_story(world, gone)
            retitle_story(world, renamed, HOSTILE_TITLE)
            place_on_list(world, dropping, 28)
            first = {parse_key(e.key).kind: e for e in await run_cycle(app, 1)}
            assert set(first) == {EventKind.DEAD, EventKind.DELETED, EventKind.RETITLED, EventKind.DROPPED}
            second = await run_cycle(app, 2)
            assert [parse_key(e.key).kind for e in second] == [EventKind.FLAGGED]  # after the grace period
            for n in range(3, 6):  # nothing repeats, and the dead and deleted stories do not "leave"
                assert await run_cycle(app, n) == []
    assert first[EventKind.DEAD].describe() == "Dead one is dead now (killed by flags or a moderator)"
    assert first[EventKind.DELETED].story.title == "Deleted one" and first[EventKind.DELETED].story.by == "you"
    retitled = first[EventKind.RETITLED]
    assert retitled.wording.summary.startswith("Retitled (was \u201cOld title\u201d)")
    assert "\n" not in retitled.wording.detail and "\u202e" not in retitled.wording.detail
    drop = first[EventKind.DROPPED]
    assert drop.describe() == "Dropping one dropped from #5 to #28 on the front page within 60 minutes"
    assert second[0].wording.summary == "Vanished from #1 on the front page: likely flagged"
    assert {e.label() for e in first.values()} == {"dead", "deleted", "retitled", "dropped topstories"}


async def test_followed_threads_are_watched_and_the_rule_is_off_by_default(tmp_path: Path) -> None:
    world = world_with(5)
    thread = world.add_story("A followed thread", top=False)
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, follow=[thread])
        async with App(config, plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []
            retitle_story(world, thread, "A new title")
            (event,) = await run_cycle(app, 1)
            assert event.key.startswith(f"retitled:{thread}:")
        (tmp_path / "off").mkdir()
        off = parse_config({"hn": {"api_url": sim.base_url}, "watch": {"top": 30, "follow": [thread]},
                            "store": {"path": str(tmp_path / "off" / "fw.db")},
                            "notifiers": [{"type": "recording", "name": "sink"}]}, "off.toml")
        async with App(off, plugins=plugins()) as app:
            assert app.monitor is not None
            assert await run_cycle(app, 0) == []
            retitle_story(world, thread, "Yet another title")
            assert await run_cycle(app, 1) == []

