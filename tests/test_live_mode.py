"""Live mode end to end: a mention, a reply and a comment level reach a signed webhook with no cycle run.

One cycle establishes the watched trees; after that every alert below comes from HN's event stream alone
(the simulator's), fetched and evaluated on arrival. The health endpoint data says live, then polling when
the stream is refused.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from fakes.webhook_receiver import FakeWebhookReceiver

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.http import api
from flamewatch.http.recorder import StatusRecorder
from flamewatch.live import LiveDriver
from flamewatch.simulator import SimulatorServer, World


def live_config(sim: SimulatorServer, receiver: FakeWebhookReceiver, tmp_path: Path, *, live: bool = True,
                user: dict[str, Any] | None = None) -> Any:
    return parse_config({
        "hn": {"api_url": sim.base_url, "timeout": 5.0},
        "watch": {"top": 5, "users": [user or {"name": "you", "front_page": False}], "live": live},
        "rules": {"comment_levels": [10], "points_levels": [],
                  "mentions": [{"name": "rust", "terms": ["rustacean"]}]},
        "store": {"path": str(tmp_path / "fw.db")},
        "delivery": {"retry_base": 0.01},
        "notifiers": [{"name": "hook", "type": "webhook", "url": receiver.url, "secret": {"env": "FW_LIVE_SECRET"}}],
    }, "live.toml")


async def wait_mode(driver: LiveDriver, mode: str) -> None:
    """Wait for the source's mode (through its maxitem stream: the driver is the one reading changes())."""
    await driver.source.maxitem_stream.wait_until(lambda: driver.source.mode == mode)


async def test_alerts_arrive_from_the_stream_alone(tmp_path: Path, secret: str, receiver: FakeWebhookReceiver,
                                                  monkeypatch: Any) -> None:
    monkeypatch.setenv("FW_LIVE_SECRET", secret)
    world = World(seed=3, stories=0)
    story = world.add_story("A quiet thread", score=5)
    mine = world.add_story("Show HN: my project", by="you", score=3)
    world.add_replies(story, 8)
    async with SimulatorServer(world) as sim, App(live_config(sim, receiver, tmp_path), live=True) as app:
        assert app.monitor is not None and app.live_driver is not None
        await app.monitor.cycle(0)  # the watched trees, once; no cycle runs after this one
        await wait_mode(app.live_driver, "live")
        health = api.health(api.Source.of_app(app, StatusRecorder()))
        assert health["mode"] == "live" and health["mode_since"]

        mention = world.add_comment(story, text="Any rustacean here?")
        reply = world.add_comment(mine, by="fan", text="Nice work")
        sim.streams.poke()
        await receiver.wait_for_deliveries(2, timeout=10)
        world.add_replies(story, 2)  # the 9th and 10th comments: the level of 10 is crossed now
        sim.streams.poke()
        await receiver.wait_for_deliveries(3, timeout=10)

        sim.faults.stream.refuse = True
        sim.streams.drop_all()
        await wait_mode(app.live_driver, "polling")
        health = api.health(api.Source.of_app(app, StatusRecorder()))
        assert health["mode"] == "polling"
        await app.dispatcher.wait_idle()  # type: ignore[union-attr]
    keys = sorted(d.body["data"]["key"] for d in receiver.deliveries)
    assert keys == sorted([f"{story}:comments:10", f"mention:rust:{mention}", f"reply:{reply}"])


async def test_a_list_change_on_the_stream_ranks_and_counts_before_any_cycle(
        tmp_path: Path, secret: str, receiver: FakeWebhookReceiver, monkeypatch: Any) -> None:
    monkeypatch.setenv("FW_LIVE_SECRET", secret)
    world = World(seed=5, stories=0)
    for title in ("Already there", "Second", "Third"):
        world.add_story(title, score=5)
    world.add_story("An older one", by="you", top=False)  # so the first cycle knows the user
    async with SimulatorServer(world) as sim:
        user = {"name": "you", "front_page": True, "rank_levels": [3], "replies": False}
        async with App(live_config(sim, receiver, tmp_path, user=user), live=True) as app:
            assert app.monitor is not None and app.live_driver is not None
            driver = app.live_driver
            await app.monitor.cycle(0)  # the only cycle: it remembers topstories as [the first story]
            lists = driver.source.streams[1]
            assert lists.url.path == "/v0/topstories.json"
            await wait_mode(driver, "live")
            await lists.wait_until(lambda: lists.live)
            before = driver.list_steps

            mine = world.add_story("Show HN: my project", by="you", score=3, rank=0)
            world.add_replies(mine, 9)  # a story new to flamewatch, one comment short of the level
            sim.streams.poke()
            await receiver.wait_for_deliveries(2, timeout=10)  # entered the front page, and reached the top 3
            assert driver.list_steps > before
            world.add_comment(mine, by="fan")  # counted live: the tree was cached when the story came in
            sim.streams.poke()
            await receiver.wait_for_deliveries(3, timeout=10)
            climber = world.add_story("Ask HN: a slow starter", by="you")  # #5 of the 5 watched
            sim.streams.poke()
            await receiver.wait_for_deliveries(4, timeout=10)
            top = world.lists["topstories"]
            top.insert(0, top.pop(top.index(climber)))  # it climbs to #1: a watched user's, so counted now
            sim.streams.poke()
            await receiver.wait_for_deliveries(5, timeout=10)
            await app.dispatcher.wait_idle()  # type: ignore[union-attr]
    keys = [d.body["data"]["key"] for d in receiver.deliveries]
    assert sorted(keys[:2]) == sorted([f"rank:{mine}:topstories:entered", f"rank:{mine}:3"])
    assert keys[2:] == [f"{mine}:comments:10", f"rank:{climber}:topstories:entered", f"rank:{climber}:3"]


async def test_live_off_runs_no_stream(tmp_path: Path, secret: str, receiver: FakeWebhookReceiver,
                                       monkeypatch: Any) -> None:
    monkeypatch.setenv("FW_LIVE_SECRET", secret)
    world = World(seed=3, stories=2)
    async with SimulatorServer(world) as sim:
        async with App(live_config(sim, receiver, tmp_path, live=False), live=True) as app:
            assert app.live_driver is None
            health = api.health(api.Source.of_app(app, StatusRecorder()))
            assert health["mode"] == "polling"
        assert sim.streams.stats.connections == 0


def test_the_alert_latency_histogram_counts_from_seen_and_from_hn_time() -> None:
    from datetime import UTC, datetime

    from flamewatch.events import Event, StorySnapshot, Subject
    from flamewatch.http.metrics import Metrics

    metrics = Metrics()
    story = StorySnapshot(id=1, title="t", comments=3, score=1)
    seen = datetime.fromtimestamp(1_000.0, UTC)
    metrics.alert_delivered(Event(key="reply:2", rule="reply", level=1, value=1, story=story, at=seen,
                                  subject=Subject(id=2, type="comment", time=999)), now=1_000.5)
    metrics.alert_delivered(Event(key="1:comments:3", rule="comments", level=3, value=3, story=story, at=seen),
                            now=1_001.5)
    text = metrics.exposition().decode()
    assert 'flamewatch_alert_latency_seconds_bucket{le="0.5",rule="reply",since="seen"} 1.0' in text
    assert 'flamewatch_alert_latency_seconds_bucket{le="1.0",rule="reply",since="hn"} 0.0' in text
    assert 'flamewatch_alert_latency_seconds_bucket{le="2.0",rule="reply",since="hn"} 1.0' in text
    assert 'flamewatch_alert_latency_seconds_count{rule="comments",since="seen"} 1.0' in text
    assert 'rule="comments",since="hn"' not in text  # a level has no HN time of its own


def test_the_status_page_says_live_or_polling_and_since_when() -> None:
    from flamewatch.http.page import _health

    health = {"ready": True, "reason": "ok", "last_success": None, "period": 60.0, "uptime": 5.0, "role": "single",
              "mode": "live", "mode_since": "2026-12-06T11:00:00+00:00"}
    html = _health(health)
    assert '<span id="mode">live since <time datetime="2026-12-06T11:00:00+00:00"' in html
    assert ">11:00:00</time> (UTC)</span>" in html
    assert 'id="mode">polling since' in _health({**health, "mode": "polling"})


async def test_a_live_app_counts_a_burst_exactly_through_stream_drops(tmp_path: Path) -> None:
    world = World(seed=4, stories=0)
    stories = [world.add_story(f"Story {i}") for i in range(10)]
    for story in stories:
        world.add_replies(story, 3)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url}, "watch": {"top": 10},
            "rules": {"comment_levels": [], "points_levels": []},
            "store": {"path": str(tmp_path / "fw.db")}, "notifiers": [],
        }, "burst.toml")
        async with App(config, live=True) as app:
            assert app.monitor is not None and app.stream is not None and app.store is not None
            driver = app.live_driver
            assert driver is not None
            seen: Counter[int] = Counter()
            app.stream.subscribe(lambda item: seen.update((item.id,)))
            await app.monitor.cycle(0)  # the only cycle: everything after it comes over the stream
            await wait_mode(driver, "live")
            first = world.maxitem + 1
            stream = driver.source.maxitem_stream
            for step in range(20):
                for k in range(25):
                    world.add_comment(stories[(step * 25 + k) % len(stories)])
                sim.streams.poke()
                if step in (5, 10, 15):  # three drops in the middle of the burst, each of a new connection
                    connected = step // 5  # the first connection, then one per drop so far
                    await stream.wait_until(lambda n=connected: stream.stats.connects == n)  # type: ignore[misc]
                    assert sim.streams.drop_all() >= 1  # maxitem's (and topstories' when it is connected)
                await asyncio.sleep(0)  # the burst leaves the loop a turn between its steps
            async with asyncio.timeout(30):  # a guard against a hang, not a wait
                await driver.settled(world.maxitem)
            counts = {s: c.comments for s, c in (await app.store.latest(stories)).items()}
    assert [i for i in range(first, world.maxitem + 1) if seen[i] != 1] == []  # no gap, no repeat
    assert counts == {s: world.visible_count(s) for s in stories}
    assert driver.source.maxitem_stream.stats.drops == 3


async def test_a_live_recount_waits_for_its_own_story_only_not_for_the_cycles_other_counts(tmp_path: Path) -> None:
    world = World(seed=6, stories=0)
    busy, other = world.add_story("Counted by a cycle"), world.add_story("Touched by a live comment")
    world.add_replies(other, 4)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url}, "watch": {"top": 5},
            "rules": {"comment_levels": [], "points_levels": []},
            "store": {"path": str(tmp_path / "fw.db")}, "notifiers": [],
        }, "guards.toml")
        async with App(config) as app:
            monitor = app.monitor
            assert monitor is not None and app.store is not None
            await monitor.cycle(0)
            guards = monitor._guards
            world.add_replies(other, 2)
            async with guards.story(busy):  # as while a cycle counts `busy`
                await monitor.live_recount([other])  # does not wait for it
                assert (await app.store.latest([other]))[other].comments == 6
                blocked = asyncio.ensure_future(monitor.live_recount([busy]))  # ...a recount of `busy` waits
                await asyncio.sleep(0)  # one turn: the recount asks for no I/O before it waits for the guard
                assert guards.count.locked() and guards._stories[busy][1] == 2 and not blocked.done()
            assert await blocked == 0
            assert guards.stories_guarded == 0  # idle stories keep no lock


async def test_a_list_change_counts_the_stories_that_came_in_not_those_a_departure_moved_up(tmp_path: Path) -> None:
    world = World(seed=7, stories=0)
    stories = [world.add_story(f"Story {i}", score=5) for i in range(4)]
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url}, "watch": {"top": 4},
            "rules": {"comment_levels": [], "points_levels": []},
            "store": {"path": str(tmp_path / "fw.db")}, "notifiers": [],
        }, "lists.toml")
        async with App(config) as app:
            monitor = app.monitor
            assert monitor is not None and app.store is not None
            await monitor.cycle(0)
            newcomer = world.add_story("Just in", top=False)
            world.add_replies(newcomer, 3)
            before = monitor.client.stats.requests
            await monitor.live_lists({"topstories": stories[1:]})  # the first left: the rest moved up
            assert monitor.client.stats.requests == before  # nobody's rank rule reads those moves
            await monitor.live_lists({"topstories": [newcomer, *stories[1:], 99_999_999]})  # over `top`: unread
            assert monitor.client.stats.requests > before
            assert (await app.store.latest([newcomer]))[newcomer].comments == 3
            assert app.monitor._last_lists["topstories"] == [newcomer, *stories[1:]]
