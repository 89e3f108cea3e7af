"""One event model: one key factory for every kind of event, and each rule's declared level order used by
supersede, ``min_level``, "announce only the best level", digests and the page."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from flamewatch import Event, LevelOrder
from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.dispatch import Route
from flamewatch.eventkeys import (
    EventKind, entered_key, item_key, parse_key, rank_key, story_key, sample_key,
)
from flamewatch.events import EVENT_SCHEMA_VERSION, Subject, Wording, superseding
from flamewatch.http.api import levels_fired
from flamewatch.simulator import SimulatorServer, World, place_on_list
from flamewatch.store import Store
from flamewatch.testing import RecordingNotifier, make_event, make_story, make_test_plugins, plugin_offering


def test_every_kind_of_key_keeps_its_shape_and_parses_back() -> None:
    # The shapes are what users' stores already hold: a changed shape would fire every event again.
    cases = {
        story_key(42, "comments", 100): (EventKind.STORY, "comments", "100", 42, None),
        story_key(42, "keyword", "rust"): (EventKind.STORY, "keyword", "rust", 42, None),
        rank_key(42, 10): (EventKind.RANK, "rank", "10", 42, None),
        entered_key(42, "showstories"): (EventKind.ENTERED, "rank", "showstories", 42, None),
        item_key("reply", 777): (EventKind.REPLY, "reply", "", None, 777),
        item_key("mention", 777, "python"): (EventKind.MENTION, "mention", "python", None, 777),
        item_key("praise", 777): (EventKind.ITEM, "praise", "", None, 777),
        sample_key(1700000000.9): (EventKind.TEST, "test", "1700000000", None, None),
    }
    assert list(cases) == ["42:comments:100", "42:keyword:rust", "rank:42:10", "rank:42:showstories:entered",
                           "reply:777", "mention:python:777", "praise:777", "test:1700000000"]
    for key, (kind, rule, level, story, item) in cases.items():
        parsed = parse_key(key)
        assert (parsed.kind, parsed.rule, parsed.level, parsed.story, parsed.item) == (kind, rule, level, story, item)
    assert parse_key("garbage").kind is EventKind.ITEM  # never raises: an unknown shape still shows somewhere


def test_level_orders() -> None:
    assert LevelOrder.HIGHER.better(500, 100) and not LevelOrder.HIGHER.better(100, 500)
    assert LevelOrder.LOWER.better(1, 10) and not LevelOrder.LOWER.better(10, 1)
    assert not LevelOrder.NONE.better(1, 10) and not LevelOrder.HIGHER.better("b", "a")
    assert LevelOrder.LOWER.crossed([10, 3, 1], 2) == [10, 3]  # worst first, best last
    assert LevelOrder.HIGHER.crossed([100, 10, 50], 60) == [10, 50]
    assert LevelOrder.LOWER.at_least(1, 10) and not LevelOrder.LOWER.at_least(30, 10)
    assert LevelOrder.HIGHER.at_least(100, 10) and LevelOrder.NONE.at_least(1, 10)


def _rank_event(story_id: int, level: int) -> Event:
    story = make_story(story_id, rank=level)
    return Event(key=rank_key(story_id, level), rule="rank", level=level, value=float(level), story=story,
                 level_order=LevelOrder.LOWER)


def test_supersede_and_min_level_follow_the_rules_order() -> None:
    top10, first, other = _rank_event(1, 10), _rank_event(1, 1), _rank_event(2, 10)
    assert superseding([top10, first, other]) == [first, None, None]
    low, high = make_event(story_id=1, level=100), make_event(story_id=1, level=500)
    assert superseding([high, low]) == [None, high]
    replies = [make_event(story_id=1, rule="reply", level=n, subject=Subject(id=n)) for n in (1, 2)]
    assert superseding(replies) == [None, None]  # item events never supersede
    route = Route(min_level=10)
    assert route.accepts(first) and route.accepts(top10) and not route.accepts(_rank_event(1, 30))
    assert route.accepts(high) and not route.accepts(make_event(story_id=1, level=5))


def test_to_dict_is_asdict_with_the_json_extras_in_the_same_order() -> None:
    story = replace(make_story(5), lists={"topstories": 3, "beststories": 9}, url="https://example.com/a")
    wording = Wording("Mentioned python", "mentioned python", snippet="I like python", marks=((7, 13),))
    events = [make_event(story, level=100),
              Event(key=item_key("mention", 8, "python"), rule="mention", level="python", value=0.0, story=story,
                    subject=Subject(id=8, by="ann", excerpt="I like python", parent=5, time=1_700_000_000),
                    wording=wording, level_order=LevelOrder.NONE)]
    for event in events:
        expected = asdict(event)
        expected["at"] = event.at.isoformat()
        expected["schema_version"] = EVENT_SCHEMA_VERSION
        expected["story"]["hn_url"] = event.story.hn_url
        if event.subject is not None:
            expected["subject"]["hn_url"] = event.subject.hn_url
        data = event.to_dict()
        assert data == expected and json.dumps(data) == json.dumps(expected)
        assert Event.from_dict(json.loads(json.dumps(data))) == event
        data["story"]["lists"]["newstories"] = 1  # a copy: the event's own lists are left alone
        assert "newstories" not in event.story.lists


def test_old_outbox_rows_get_the_order_their_rule_had() -> None:
    data = _rank_event(1, 10).to_dict()
    assert data["level_order"] == "lower"
    del data["level_order"]  # a row written before events carried their order
    assert Event.from_dict(data).level_order is LevelOrder.LOWER
    plain = make_event(story_id=1).to_dict()
    del plain["level_order"]
    assert Event.from_dict(plain).level_order is LevelOrder.HIGHER


def test_levels_fired_shows_every_kind_in_each_rules_order() -> None:
    story = make_story(5)
    events = [
        make_event(story, level=500), make_event(story, level=100), _rank_event(5, 1), _rank_event(5, 10),
        Event(key=entered_key(5, "topstories"), rule="rank", level="topstories", value=12.0, story=story,
              level_order=LevelOrder.LOWER),
        Event(key=item_key("reply", 9), rule="reply", level="you", value=0.0, story=story, subject=Subject(id=9),
              level_order=LevelOrder.NONE),
        Event(key=item_key("mention", 8, "python"), rule="mention", level="python", value=0.0, story=story,
              subject=Subject(id=8), level_order=LevelOrder.NONE),
    ]
    assert levels_fired(events) == ["comments 100", "comments 500", "mention python", "entered topstories",
                                    "rank top 10", "rank #1", "reply to you"]


@pytest.mark.parametrize("batch", ["digest", "group_wait"])
async def test_top_10_then_1_in_one_batch_sends_1_and_supersedes_top_10(tmp_path: Path, batch: str) -> None:
    world = World(seed=5, stories=0)
    for i in range(12):
        world.add_story(f"Filler {i}")
    mine = world.add_story("Show HN: my project", by="you", top=False)
    holding = {"digest": "1h"} if batch == "digest" else {"group_wait": "1h"}
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 30, "users": [{"name": "you", "rank_levels": [10, 1], "front_page": False}]},
            "rules": {"comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink", **holding}],
        }, "rank.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            place_on_list(world, mine, 7)
            await app.monitor.cycle(1)  # the top 10: held by the digest / the open group
            place_on_list(world, mine, 1)
            await app.monitor.cycle(2)  # #1, before the held row went out
            await app.dispatcher.flush_digests() if batch == "digest" else await _close_groups(app.store)
            app.dispatcher.resume()
            await app.dispatcher.wait_idle()
            (sink,) = [i.notifier for i in app.instances]
            assert isinstance(sink, RecordingNotifier)
            rows = {row.event.key: row for row in await app.store.outbox()}
    assert [e.key for e in sink.sent] == [rank_key(mine, 1)]
    assert rows[rank_key(mine, 1)].status == "sent"
    assert (rows[rank_key(mine, 10)].status, rows[rank_key(mine, 10)].ref) == ("superseded", rank_key(mine, 1))


async def _close_groups(store: Store) -> None:
    """The open group's window ends now (as if an hour went by): both held rows fall due together."""
    held = [row.id for row in await store.pending()]
    assert len(held) == 2
    await store.requeue(held, 0.0)


def test_status_shows_the_levels_of_every_kind() -> None:
    from flamewatch.cli.status import render

    status = {
        "store": "fw.db", "held_by": None, "last_sample_at": None, "last_sample_age": None,
        "daemon": {"answering": False, "error": "off"},
        "outbox": {"pending": 0, "dead": 0, "sent": 2, "by_instance": {}},
        "stories": [{"rank": 1, "id": 5, "title": "Mine", "comments": 3, "points": 9, "partial": False,
                     "per_hour": None, "levels": ["rank top 10", "rank #1", "reply to you", "mention python"]}],
    }
    shown = render(status)
    assert "levels fired: rank top 10, rank #1, reply to you, mention python" in shown
    assert "outbox: 0 pending, 2 sent, 0 dead" in shown


@pytest.mark.looptime(start=1_000_000.0, end=1_000_000.0 + 3600.0, idle_timeout=10.0, noop_cycles=2000)
async def test_top_10_retrying_after_an_outage_is_superseded_by_1(store: Store) -> None:
    import asyncio

    import aiohttp

    from flamewatch.dispatch import Dispatcher, NotifierInstance
    from flamewatch.rules import Evaluation
    from flamewatch.testing import notifier_context

    async with aiohttp.ClientSession() as session:
        sink = RecordingNotifier(notifier_context(session, "sink"), RecordingNotifier.Options(fail_times=1))
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], clock=asyncio.get_running_loop().time)
        await dispatcher.start()
        await dispatcher.publish(Evaluation(announce=[_rank_event(1, 10)]))
        await dispatcher.wait_for(lambda stats: stats.retried == 1)  # the endpoint is down: top 10 waits
        await dispatcher.publish(Evaluation(announce=[_rank_event(1, 1)]))  # #1 before the retry is due
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
    rows = {row.event.key: row for row in await store.outbox()}
    assert [e.key for e in sink.sent] == [rank_key(1, 1)]
    assert (rows[rank_key(1, 10)].status, rows[rank_key(1, 10)].ref) == ("superseded", rank_key(1, 1))
