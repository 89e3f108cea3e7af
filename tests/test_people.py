"""Watching people and threads, end to end through the simulator: several lists, followed threads (config
and ``flamewatch follow``), a watched user's ranks, levels and replies, the silent first run, routing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from flamewatch.app import App
from flamewatch.cli import main
from flamewatch.config import load_config, parse_config
from flamewatch.dispatch import Route
from flamewatch.events import Event
from flamewatch.simulator import SimulatorServer, World, drop_from_list, place_on_list, reply_to_user
from flamewatch.testing import RecordingNotifier, make_event, make_test_plugins, plugin_offering


def config_for(sim: SimulatorServer, tmp_path: Path, **watch: Any) -> Any:
    return parse_config({
        "hn": {"api_url": sim.base_url},
        "watch": watch,
        "rules": {"comment_levels": [3, 6]},
        "store": {"path": str(tmp_path / "fw.db")},
        "notifiers": [{"type": "recording", "name": "sink"}],
    }, "people.toml")


async def cli(*argv: str) -> int:
    """The command line, as a user runs it next to the daemon (its own thread and event loop)."""
    return await asyncio.to_thread(main, list(argv))


def plugins() -> Any:
    return make_test_plugins(plugin_offering(RecordingNotifier))


async def run_cycle(app: App, number: int) -> list[Event]:
    """One cycle; the events delivered during it (read back from the outbox)."""
    assert app.monitor is not None and app.dispatcher is not None
    (sink,) = [i.notifier for i in app.instances]
    assert isinstance(sink, RecordingNotifier)
    before = len(sink.sent)
    await app.monitor.cycle(number)
    await app.dispatcher.wait_idle()
    return list(sink.sent[before:])


async def test_several_lists_count_a_story_once_and_say_where_it_ranks(tmp_path: Path) -> None:
    world = World(seed=5, stories=0)
    both = world.add_story("Show HN: on both lists")
    only_top = world.add_story("Only on the front page")
    place_on_list(world, both, 1, "showstories")
    world.add_replies(both, 4)
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, lists=[{"name": "topstories", "top": 5},
                                                   {"name": "showstories", "top": 5}])
        async with App(config, plugins=plugins()) as app:
            assert app.monitor is not None
            stats = await app.monitor.cycle(0)
            (event,) = [e async for e in _delivered(app)]
    ids = [s.id for s in stats.counted]
    assert sorted(ids) == sorted({both, only_top}) and len(ids) == 2  # counted once
    snap = {s.id: s for s in stats.counted}
    assert snap[both].lists == {"topstories": 1, "showstories": 1} and snap[both].rank == 1
    assert snap[only_top].lists == {"topstories": 2}
    assert event.key == f"{both}:comments:3" and event.story.lists == {"topstories": 1, "showstories": 1}


async def _delivered(app: App) -> Any:
    assert app.dispatcher is not None
    await app.dispatcher.wait_idle()
    (sink,) = [i.notifier for i in app.instances]
    assert isinstance(sink, RecordingNotifier)
    for event in sink.sent:
        yield event


async def test_follow_from_the_cli_is_picked_up_at_the_next_cycle_and_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    world = World(seed=5, stories=0)
    world.add_story("On the front page")
    hidden = world.add_story("Not on any list", top=False)
    comment = world.add_comment(hidden)
    other = world.add_story("Another hidden thread", top=False)
    other_comment = world.add_comment(other)
    world.add_replies(hidden, 3)
    async with SimulatorServer(world) as sim:
        store = str(tmp_path / "fw.db")
        # A comment id in the config follows its story too.
        config = config_for(sim, tmp_path, follow_quiet="1h", follow=[other_comment])
        async with App(config, plugins=plugins()) as app:
            assert app.monitor is not None
            first = await app.monitor.cycle(0)
            assert {s.id for s in first.counted} == {world.lists["topstories"][0], other}  # config follow
            # A comment id follows its story, for two days; a running daemon sees it at its next cycle.
            assert await cli("follow", str(comment), "--for", "2d", "--store", store, "--api-url", sim.base_url) == 0
            assert f"item {comment} is a comment: following its story {hidden}" in capsys.readouterr().out
            events = await run_cycle(app, 1)
            assert [e.key for e in events] == [f"{hidden}:comments:3"]
            assert events[0].source_list == "followed" and events[0].story.lists == {}
            toml = tmp_path / "fw.toml"
            toml.write_text(f"[watch]\nfollow = [{other_comment}]\n[store]\npath = '{store}'\n")
            assert await cli("-c", str(toml), "follow", "--list") == 0
            listing = capsys.readouterr().out
            assert str(hidden) in listing and str(other_comment) in listing
            # Quiet for the configured time: no longer followed (an injected clock, no sleeping).
            now = app.monitor.clock()
            app.monitor.clock = lambda: now + 7200
            with caplog.at_level(logging.INFO, logger="flamewatch.people"):
                await app.monitor.cycle(2)
            stats = await app.monitor.cycle(3)
            assert hidden not in {s.id for s in stats.counted} and other not in {s.id for s in stats.counted}
            assert any("no new comments" in r.getMessage() for r in caplog.records)
            assert await cli("unfollow", str(hidden), "--store", store) == 1  # already dropped
    # Bad input is one line.
    assert await cli("follow", "not-an-id", "--store", store) == 2
    assert "not an item id or an HN item URL" in capsys.readouterr().err


async def test_unfollow_takes_effect_at_the_next_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = World(seed=5, stories=0)
    world.add_story("On the front page")
    hidden = world.add_story("Not on any list", top=False)
    async with SimulatorServer(world) as sim:
        store = str(tmp_path / "fw.db")
        async with App(config_for(sim, tmp_path), plugins=plugins()) as app:
            assert app.monitor is not None
            url = f"https://news.ycombinator.com/item?id={hidden}"
            assert await cli("follow", url, "--store", store, "--api-url", sim.base_url) == 0
            assert hidden in {s.id for s in (await app.monitor.cycle(0)).counted}
            assert await cli("unfollow", str(hidden), "--store", store) == 0
            assert f"no longer following {hidden}" in capsys.readouterr().out
            assert hidden not in {s.id for s in (await app.monitor.cycle(1)).counted}


async def test_a_deleted_followed_story_stops_being_followed_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(seed=5, stories=0)
    story = world.add_story("Soon gone", top=False)
    async with SimulatorServer(world) as sim, App(config_for(sim, tmp_path, follow=[story]), plugins=plugins()) as app:
        assert app.monitor is not None
        assert story in {s.id for s in (await app.monitor.cycle(0)).counted}
        world.corrupt(story, deleted=True)
        with caplog.at_level(logging.WARNING, logger="flamewatch.people"):
            await app.monitor.cycle(1)
        assert any(f"thread {story} was deleted" in r.getMessage() for r in caplog.records)
        assert story not in {s.id for s in (await app.monitor.cycle(2)).counted}


async def test_a_watched_user_story_climbing_the_front_page_and_getting_replies(tmp_path: Path) -> None:
    world = World(seed=5, stories=0)
    for i in range(12):
        world.add_story(f"Filler {i}")
    old = world.add_story("My older story", by="you", top=False)
    mine = world.add_comment(old, by="you", text="my comment")
    world.add_replies(old, 7)  # past both comment levels already
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, top=30, users=[{"name": "you", "rank_levels": [10, 3, 1]}])
        async with App(config, plugins=plugins()) as app:
            # First run: the old story is followed from `submitted`, its levels recorded silently.
            assert await run_cycle(app, 0) == []
            # A reply to the user's comment, from the stream.
            reply = world.add_comment(mine, by="critic", text="<p>I <i>disagree</i> &amp; here's why</p>")
            world.add_comment(mine, by="you", text="answering myself")  # not a reply to notify
            (event,) = await run_cycle(app, 1)
            assert event.key == f"reply:{reply}" and event.rule == "reply" and event.level == "you"
            assert event.subject is not None and event.subject.by == "critic"
            assert event.subject.excerpt == "I disagree & here's why" and event.subject.parent == mine
            assert event.story.id == old and event.subject.hn_url.endswith(f"?id={reply}")
            # A new story by the user: followed from the stream; it enters the front page, then climbs.
            new = world.add_story("Show HN: my project", by="you", top=False)
            assert await run_cycle(app, 2) == []
            place_on_list(world, new, 12)
            (entered,) = await run_cycle(app, 3)
            assert entered.key == f"rank:{new}:topstories:entered"
            assert entered.describe() == "Show HN: my project by you entered the front page at #12"
            place_on_list(world, new, 2)
            (climbed,) = await run_cycle(app, 4)
            assert climbed.key == f"rank:{new}:3" and climbed.value == 2  # the top 10 was passed on the way
            place_on_list(world, new, 1)
            drop_from_list(world, old)
            assert [e.key for e in await run_cycle(app, 5)] == [f"rank:{new}:1"]
            # A reply to the new story itself, and its comment levels.
            reply_to_user(world, "you", 1)
            world.add_replies(new, 3)
            keys = {e.key for e in await run_cycle(app, 6)}
            assert f"{new}:comments:3" in keys and any(k.startswith("reply:") for k in keys)


async def test_people_events_reach_observer_hooks_and_a_digest(tmp_path: Path) -> None:
    from flamewatch import hookimpl

    fired: list[Event] = []

    class Observer:
        @hookimpl
        def flamewatch_event_fired(self, event: Event) -> None:
            fired.append(event)

    world = World(seed=5, stories=0)
    story = world.add_story("Mine", by="you", top=False)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"users": [{"name": "you"}]},
            "rules": {"comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "digest", "digest": "1h", "users": ["you"]}],
        }, "people.toml")
        async with App(config, plugins=make_test_plugins(Observer(), plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            reply = world.add_comment(story, by="fan", text="congrats")
            place_on_list(world, story, 1)
            await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
            assert await app.dispatcher.flush_digests() == 3
            await app.dispatcher.wait_idle()
            (sink,) = [i.notifier for i in app.instances]
            assert isinstance(sink, RecordingNotifier)
            digested = [e.key for batch in sink.digests for e in batch]
    keys = {f"reply:{reply}", f"rank:{story}:topstories:entered", f"rank:{story}:1"}
    assert {e.key for e in fired} == keys and set(digested) == keys


async def test_backfill_announces_the_first_run(tmp_path: Path) -> None:
    world = World(seed=5, stories=0)
    story = world.add_story("Already popular", by="you")
    world.add_replies(story, 3)
    mine = world.add_comment(story, by="you")
    old_reply = world.add_comment(mine, by="someone", text="an old reply")
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, users=[{"name": "you"}])
        async with App(config, plugins=plugins(), backfill=True) as app:
            keys = {e.key for e in await run_cycle(app, 0)}
    # The story's current rank and levels, and the existing replies (to the story and to the comment).
    assert {f"rank:{story}:topstories:entered", f"rank:{story}:1", f"{story}:comments:3",
            f"reply:{old_reply}"} <= keys
    assert len([k for k in keys if k.startswith("reply:")]) == 4  # 3 answers to the story, 1 to the comment


async def test_an_unknown_user_is_one_line_at_start_and_at_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(seed=5, stories=0)
    world.add_story("Something")
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, users=[{"name": "nobody_here"}])
        with caplog.at_level(logging.WARNING, logger="flamewatch.people"):
            async with App(config, plugins=plugins()) as app:
                await run_cycle(app, 0)
        lines = [r.getMessage() for r in caplog.records if "nobody_here" in r.getMessage()]
        assert lines == ["user nobody_here: no such user on Hacker News (check [[watch.users]] name)"]
        toml = tmp_path / "fw.toml"
        toml.write_text(f'[hn]\napi_url = "{sim.base_url}"\n[[watch.users]]\nname = "nobody_here"\n')
        assert await cli("-c", str(toml), "check") == 0
    out = capsys.readouterr().out
    assert "warning: user nobody_here: no such user on Hacker News" in out


def test_a_route_naming_an_unwatched_user_is_one_line() -> None:
    from flamewatch.config import ConfigError

    with pytest.raises(ConfigError, match=r"^r\.toml: notifiers\[0\]\.users: 'yuo' is not a watched user "
                                          r"\(watched: you\)$"):
        parse_config({"watch": {"users": [{"name": "you"}]},
                      "notifiers": [{"type": "console", "users": ["yuo"]}]}, "r.toml")


def test_the_users_route_takes_replies_to_them_and_their_stories_only() -> None:
    route = Route(users=frozenset({"you"}))
    assert route.accepts(make_event(rule="reply", level="you", by="someone"))
    assert not route.accepts(make_event(rule="reply", level="other", by="you"))
    assert route.accepts(make_event(rule="rank", level=3, by="you"))
    assert not route.accepts(make_event(rule="comments", level=50, by="pg"))
    assert Route(lists=frozenset({"showstories"})).accepts(
        make_event(source_list="topstories", lists={"topstories": 3, "showstories": 1}))


async def test_the_simulator_serves_submitted_lists_and_moves_stories_between_lists() -> None:
    from flamewatch.hn import HNClient, make_session

    world = World(seed=5, stories=0)
    story = world.add_story("Mine", by="you", top=False)
    comment = world.add_comment(story, by="you")
    place_on_list(world, story, 1, "showstories")
    (reply,) = reply_to_user(world, "you", 1)
    async with SimulatorServer(world) as sim, make_session() as session:
        client = HNClient(session, sim.base_url)
        profile = await client.user("you")
        assert profile is not None and profile["submitted"] == [comment, story]  # newest first
        assert await client.user("nobody") is None
        assert (await client.story_ids("showstories"))[0] == story
        drop_from_list(world, story, "showstories")
        assert story not in await client.story_ids("showstories")
        item = await client.item(reply)
        assert item is not None and item.parent in (story, comment) and item.by != "you"


async def test_the_demo_shows_every_kind_of_people_event(capsys: pytest.CaptureFixture[str]) -> None:
    from flamewatch.demo import run_demo

    assert await run_demo(duration=4.0, period=0.4) == 0
    out = capsys.readouterr().out
    assert "by you entered the front page at #14" in out
    assert "by you reached the top 10 on the front page" in out
    assert "has a new reply to you from" in out and "      > " in out  # quoted
    assert "Ask HN: What are you following this week? reached 10 comments" in out  # the followed thread


async def test_people_rules_still_fire_after_a_config_reload(tmp_path: Path) -> None:
    # The reloaded rule objects must read the same watched users: unbound, rank and reply count as inactive
    # and drop out of the engine without a word.
    world = World(seed=5, stories=0)
    for i in range(5):
        world.add_story(f"Filler {i}")
    mine = world.add_story("My story", by="you", top=False)
    async with SimulatorServer(world) as sim:
        path = tmp_path / "people.toml"
        table = ('[hn]\napi_url = "{url}"\n[watch]\ntop = 30\n[[watch.users]]\nname = "you"\n'
                 'rank_levels = [{levels}]\n[rules]\ncomment_levels = [{comments}]\n[store]\npath = "{db}"\n'
                 '[[notifiers]]\ntype = "recording"\nname = "sink"\n')
        path.write_text(table.format(url=sim.base_url, levels="10", comments="50", db=tmp_path / "fw.db"))
        async with App(load_config(path), plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []
            path.write_text(table.format(url=sim.base_url, levels="10", comments="60", db=tmp_path / "fw.db"))
            assert await app.reload() is None
            reply = world.add_comment(mine, by="critic", text="a reply")
            place_on_list(world, mine, 1)
            keys = {e.key for e in await run_cycle(app, 1)}
    assert keys == {f"reply:{reply}", f"rank:{mine}:topstories:entered", f"rank:{mine}:10"}


async def test_the_first_run_is_silent_for_old_and_not_recent_stories_already_listed(tmp_path: Path) -> None:
    # Issue 22 item 7: a watched user's story older than follow_quiet, or beyond their 30 newest items, is
    # not followed from `submitted`, but it is counted anyway when it is on a watched list: its rank and
    # levels at the first run are what it already reached, recorded, not announced.
    import time

    world = World(seed=5, stories=0, start_time=int(time.time()) - 5 * 86400)
    old = world.add_story("My story from last week", by="you", rank=0)
    world.add_replies(old, 4)
    world.now = int(time.time())
    buried = world.add_story("My story buried under my comments", by="you", rank=1)
    world.add_replies(buried, 4)
    elsewhere = world.add_story("Someone else's thread", top=False)
    for _ in range(31):
        world.add_comment(elsewhere, by="you")
    async with SimulatorServer(world) as sim:
        config = config_for(sim, tmp_path, top=30, users=[{"name": "you", "rank_levels": [10, 1]}])
        async with App(config, plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []
            assert await run_cycle(app, 1) == []
            # What happens after the first run is news again.
            place_on_list(world, buried, 1)
            assert [e.key for e in await run_cycle(app, 2)] == [f"rank:{buried}:1"]


async def test_unfollow_takes_the_comment_id_that_follow_took(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(seed=5, stories=0)
    story = world.add_story("Not on any list", top=False)
    comment = world.add_comment(world.add_comment(story))
    async with SimulatorServer(world) as sim:
        store = str(tmp_path / "fw.db")
        assert await cli("follow", str(comment), "--store", store, "--api-url", sim.base_url) == 0
        capsys.readouterr()
        assert await cli("unfollow", str(comment), "--store", store, "--api-url", sim.base_url) == 0
        assert f"item {comment} is a comment: no longer following its story {story}" in capsys.readouterr().out
        assert await cli("follow", "--list", "--store", store) == 0
        assert capsys.readouterr().out.strip() == "no threads followed"
        assert await cli("unfollow", str(comment), "--store", store, "--api-url", sim.base_url) == 1
        assert f"{comment} is not followed" in capsys.readouterr().err


async def test_a_reply_inside_a_gap_over_the_stream_cap_is_alerted_over_the_next_cycles(tmp_path: Path) -> None:
    # Issue 22 item 5: maxitem jumped past the stream's cap (a long downtime): the gap is walked in pages.
    world = World(seed=5, stories=0)
    mine = world.add_story("My story", by="you", top=False)
    elsewhere = world.add_story("Busy thread elsewhere")
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"users": [{"name": "you"}]},
            "stream": {"max_gap": 40},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink"}],
        }, "people.toml")
        async with App(config, plugins=plugins()) as app:
            assert await run_cycle(app, 0) == []
            for _ in range(30):
                world.add_comment(elsewhere)
            reply = world.add_comment(mine, by="critic", text="late but here")
            for _ in range(100):
                world.add_comment(elsewhere)
            keys = [e.key for n in range(1, 5) for e in await run_cycle(app, n)]
    assert f"reply:{reply}" in keys and keys.count(f"reply:{reply}") == 1
