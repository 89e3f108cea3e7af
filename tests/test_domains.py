"""``[[watch.domains]]`` against the simulator: a story from a watched domain (or a subdomain) gives an
event when it is posted (from the stream of new items) and when it enters a watched list, each once; a
story from another site gives none."""

from __future__ import annotations

from pathlib import Path

import pytest

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.errors import ConfigError
from flamewatch.eventkeys import EventKind, parse_key
from flamewatch.events import Event
from flamewatch.simulator import SimulatorServer, World, place_on_list
from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering


async def run_cycle(app: App, number: int) -> list[Event]:
    assert app.monitor is not None and app.dispatcher is not None
    (sink,) = [i.notifier for i in app.instances]
    assert isinstance(sink, RecordingNotifier)
    before = len(sink.sent)
    await app.monitor.cycle(number)
    await app.dispatcher.wait_idle()
    return list(sink.sent[before:])


async def test_a_watched_domain_is_news_when_posted_and_when_it_enters_a_list(tmp_path: Path) -> None:
    world = World(seed=3, stories=0)
    for i in range(5):
        world.add_story(f"Filler {i}")
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 10, "domains": [{"name": "mysite.dev"}, {"name": "quiet.org", "posted": False}]},
            "rules": {"comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink", "rules": ["domain"]}],
        }, "domains.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert await run_cycle(app, 0) == []
            ours = world.add_story("Our launch", url="https://blog.mysite.dev/launch", by="pg", top=False)
            world.add_story("Elsewhere", url="https://notmysite.dev/x", top=False)
            world.add_story("Quiet one", url="https://quiet.org/x", top=False)
            (posted,) = await run_cycle(app, 1)
            assert await run_cycle(app, 2) == []
            place_on_list(world, ours, 3)
            (entered,) = await run_cycle(app, 3)
            assert await run_cycle(app, 4) == []  # still on the list: once
    assert posted.key == f"domain:{ours}:posted" and posted.rule == "domain" and posted.level == "mysite.dev"
    assert posted.describe() == "Our launch was posted from blog.mysite.dev by pg" and posted.subject is None
    assert entered.key == f"domain:{ours}:topstories:entered"
    assert entered.describe() == "Our launch (blog.mysite.dev) entered the front page at #3"
    assert parse_key(entered.key).kind is EventKind.DOMAIN and entered.label() == "domain entered topstories"
    assert posted.label() == "domain posted"


@pytest.mark.parametrize("name", ["https://example.com", "Example.com", "localhost", ""])
def test_a_domain_that_is_not_a_domain_name_is_one_line(name: str) -> None:
    with pytest.raises(ConfigError, match=r"d\.toml: watch\.domains\[0\]\.name: "):
        parse_config({"watch": {"domains": [{"name": name}]}}, "d.toml")
