"""The stale source alert, against the simulator on the App's fake clock (no sleeps): maxitem that stops
changing gives one start event, /-/ready names it and the page says so, one end event when it moves
again; a restart in between neither loses nor repeats them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from email.headerregistry import Address
from pathlib import Path
from typing import Any

import aiohttp

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.events import Event
from flamewatch.notifiers.console import ConsoleNotifier
from flamewatch.notifiers.email.compose import MailSettings, build_digest_message, build_event_message
from flamewatch.notifiers.feed.render import atom, json_feed
from flamewatch.notifiers.slack.format import digest_messages, event_message
from flamewatch.notifiers.webhook.payload import alertmanager_document, digest_document, event_document
from flamewatch.http.server import start_http, stop_http
from flamewatch.simulator import SimulatorServer, World, place_on_list
from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering


class Clock:
    def __init__(self) -> None:
        self.t = 3_000_000.0

    def __call__(self) -> float:
        return self.t


async def cycle(app: App, number: int, clock: Clock) -> list[Event]:
    """One cycle as the watcher runs it (observers told), the events sent in it; then a minute passes."""
    assert app.monitor is not None and app.dispatcher is not None
    (sink,) = [i.notifier for i in app.instances]
    assert isinstance(sink, RecordingNotifier)
    before = len(sink.sent)
    stats = await app.monitor.cycle(number)
    app.plugins.notify("flamewatch_cycle_done", stats=stats)
    await app.dispatcher.wait_idle()
    clock.t += 60
    return list(sink.sent[before:])


def renderings(events: Sequence[Event]) -> dict[str, str]:
    """What every built-in channel makes of ``events``, one at a time and as a digest."""
    mail = MailSettings(sender=Address(addr_spec="alerts@flamewatch.example"), to=[Address(addr_spec="a@b.c")])
    out = {
        "console": "\n".join(ConsoleNotifier.format(e) for e in events),
        "slack": json.dumps([event_message(e).__dict__ for e in events], default=str),
        "slack digest": json.dumps([m.__dict__ for m in digest_messages(events)], default=str),
        "email": "\n".join(build_event_message(e, mail).as_string() for e in events),
        "email digest": build_digest_message(events, mail).as_string(),
        "webhook": json.dumps([event_document(e) for e in events] + [digest_document(events)]),
        "alertmanager": json.dumps(alertmanager_document(events, "r", "g")),
        "atom": atom("f", "F", events).decode(),
        "json feed": json_feed("f", "F", events).decode(),
    }
    return out


def assert_about_no_story(events: Sequence[Event]) -> None:
    """Stale events name no story: no channel links item 0, says "story 0" or counts its comments."""
    assert events and all(not e.about_story for e in events)
    for channel, text in renderings(events).items():
        assert "item?id=0" not in text and "item%3Fid%3D0" not in text, channel
        assert "news.ycombinator.com" in text, channel  # the site itself is linked instead
        assert "story-0" not in text and '"story_id": "0"' not in text, channel
        assert "0 comments" not in text, channel


async def test_a_stale_maxitem_gives_one_start_and_one_end_event(tmp_path: Path) -> None:
    world = World(seed=2, stories=0)
    ids = [world.add_story(f"Story {i}") for i in range(4)]
    clock = Clock()
    async with SimulatorServer(world) as sim:
        config: Any = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 4, "period": 60},
            "rules": {"stale_after": "5m", "comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "http": {"listen": "127.0.0.1:0"},
            "notifiers": [{"type": "recording", "name": "sink", "rules": ["stale"]}],
        }, "stale.toml")
        plugins = make_test_plugins(plugin_offering(RecordingNotifier))
        sent: list[Event] = []
        async with App(config, plugins=plugins, clock=clock) as app:
            server = await start_http(app)
            assert server is not None
            try:
                for n in range(3):  # live: a new item and a new order every minute
                    world.add_comment(ids[0])
                    place_on_list(world, ids[n % 4], 1)
                    sent += await cycle(app, n, clock)
                assert sent == []
                for n in range(3, 8):  # HN goes quiet: nothing changes for five minutes...
                    sent += await cycle(app, n, clock)
                assert sent == []
                sent += await cycle(app, 8, clock)  # ...and then some
                assert len(sent) == 2  # maxitem and the list
                async with aiohttp.ClientSession() as http:
                    async with http.get(server.url + "-/ready") as response:
                        assert response.status == 503
                        reason = await response.text()
                    async with http.get(server.url) as response:
                        page = await response.text()
                assert "stale source: maxitem (new items on HN) unchanged for 6 minutes" in reason
                assert "the topstories list unchanged" in reason and "stale source" in page
                assert "item?id=0" not in page
                async with aiohttp.ClientSession() as http, http.get(server.url + "api/events") as response:
                    shown = await response.json()
                assert {e["rule"] for e in shown} == {"stale"} and all(e["story"] is None for e in shown)
                sent += await cycle(app, 9, clock)
            finally:
                await stop_http(app, server)
        # A restart while stale: nothing repeats; the end comes once HN moves again.
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier)), clock=clock) as app:
            assert await cycle(app, 0, clock) == []
            world.add_comment(ids[1])
            place_on_list(world, ids[3], 1)
            ended = await cycle(app, 1, clock)
            assert await cycle(app, 2, clock) == []
            assert app.monitor is not None
            stats = await app.monitor.cycle(3)
            assert stats.stale == ()
    start = {e.level: e for e in sent}
    assert set(start) == {"maxitem start", "topstories start"} and len(sent) == 2
    m = start["maxitem start"]
    assert m.rule == "stale" and m.key.startswith("stale:maxitem:") and m.key.endswith(":start")
    assert m.describe().startswith("Hacker News looks stale: maxitem (new items on HN) has not changed for 6 minutes")
    assert m.label() == "stale maxitem start"
    assert sorted(e.level for e in ended) == ["maxitem end", "topstories end"]
    (end,) = [e for e in ended if e.level == "maxitem end"]
    assert end.key == m.key.replace(":start", ":end")
    assert end.describe() == "Hacker News is live again: maxitem (new items on HN) changes again, after 9 minutes"
    assert_about_no_story([*sent, *ended])
