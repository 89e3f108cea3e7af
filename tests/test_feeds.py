"""Feeds: ``type = "feed"`` instances served as Atom and JSON Feed by the HTTP face, read with feedparser.

A real App counts a simulated front page (one story with a hostile title), its events go through the
outbox into two feeds with different routes, and a feed reader's view of each is checked: entries,
stable ids, working links, the token in the URL, and the status page listing the feeds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
import pytest

from flamewatch.app import App
from flamewatch.config import load_config
from flamewatch.http.server import HttpServer, start_http, stop_http
from flamewatch.notifiers.feed import FeedNotifier
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import make_event, notifier_context

FEED_TOKEN = "feed-token-0123456789abcdef"
OTHER_TOKEN = "other-token-0123456789abcdef"
PAGE_TOKEN = "page-token-0123456789abcdef"
HOSTILE = "<b>Ask HN</b> & <script>alert(1)</script> \u202egnp.exe\u202c \x1b[2J\x07 ]]> end"


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[App, HttpServer, World]]:
    monkeypatch.setenv("FW_FEED_TOKEN", FEED_TOKEN)
    monkeypatch.setenv("FW_OTHER_TOKEN", OTHER_TOKEN)
    monkeypatch.setenv("FW_PAGE_TOKEN", PAGE_TOKEN)
    world = World(seed=5, stories=0)
    hostile = world.add_story(HOSTILE, url="javascript:alert(1)")
    world.add_replies(hostile, 12)
    calm = world.add_story("A calm story", url="https://example.com/calm?a=1&b=2")
    world.add_replies(calm, 6)
    async with SimulatorServer(world) as sim:
        config = tmp_path / "fw.toml"
        config.write_text(f"""
[hn]
api_url = "{sim.base_url}"
[rules]
comment_levels = [5, 10]
[store]
path = "{tmp_path / 'fw.db'}"
[http]
listen = "127.0.0.1:0"
token = {{ env = "FW_PAGE_TOKEN" }}
[[notifiers]]
name = "all-hn"
type = "feed"
title = "Everything that heats up"
token = {{ env = "FW_FEED_TOKEN" }}
[[notifiers]]
name = "big-only"
type = "feed"
min_comments = 10
token = {{ env = "FW_OTHER_TOKEN" }}
""")
        async with App(load_config(config)) as app:
            server = await start_http(app)
            assert server is not None and app.monitor is not None and app.dispatcher is not None
            try:
                await app.monitor.cycle(0)
                await app.dispatcher.wait_idle()
                yield app, server, world
            finally:
                await stop_http(app, server)


async def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def test_a_feed_reader_sees_the_events_with_working_links(running: tuple[App, HttpServer, World]) -> None:
    _, server, world = running
    status, content_type, body = await fetch(f"{server.url}feeds/all-hn.atom?token={FEED_TOKEN}")
    assert status == 200 and content_type.startswith("application/atom+xml")
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception  # well-formed XML, even with the hostile title
    assert feed.feed.title == "Everything that heats up"
    titles = sorted(e.title for e in feed.entries)
    assert len(titles) == 2  # the highest level each story crossed: 10 and 5
    hostile = next(e for e in feed.entries if "reached 10" in e.title)
    # Shown as the text it is (markup, "]]>" and all), without the bidi override and control characters.
    assert hostile.title == "<b>Ask HN</b> & <script>alert(1)</script> gnp.exe [2J ]]> end reached 10 comments (12 now)"
    story_ids = {i for i, item in world.items.items() if item.get("type") == "story"}
    for entry in feed.entries:
        assert entry.link.startswith("https://news.ycombinator.com/item?id=")
        assert int(entry.link.rsplit("=", 1)[1]) in story_ids  # the discussion of a real story
        assert entry.id.startswith("tag:flamewatch.invalid,2026:event/")
    related = {link.href for e in feed.entries for link in e.links if link.rel == "related"}
    assert related == {"https://example.com/calm?a=1&b=2"}  # the javascript: URL never became a link


async def test_each_feed_has_its_own_route_and_token(running: tuple[App, HttpServer, World]) -> None:
    _, server, _ = running
    status, content_type, body = await fetch(f"{server.url}feeds/big-only.json?token={OTHER_TOKEN}")
    assert status == 200 and content_type.startswith("application/feed+json")
    document = json.loads(body)
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert [item["title"].split(" reached ")[1] for item in document["items"]] == ["10 comments (12 now)"]
    # feedparser 6.0 reads no JSON Feed: the spec's required fields are checked here instead.
    [item] = document["items"]
    assert item["id"].startswith("tag:flamewatch.invalid,2026:event/") and item["date_published"]
    assert item["url"].startswith("https://news.ycombinator.com/item?id=")
    assert document["title"] == "flamewatch: big-only"
    for url in (f"feeds/big-only.json?token={FEED_TOKEN}", "feeds/big-only.json", "feeds/nope.atom?token=x"):
        assert (await fetch(server.url + url))[0] == 404  # a wrong token looks like no feed at all
    # The feeds need no bearer token; everything else on the face still does.
    assert (await fetch(server.url + "api/events"))[0] == 401


async def test_the_status_page_lists_the_feeds_without_their_tokens(running: tuple[App, HttpServer, World]) -> None:
    _, server, _ = running
    status, _, body = await fetch(server.url, {"Authorization": f"Bearer {PAGE_TOKEN}"})
    page = body.decode()
    assert status == 200
    assert 'href="/feeds/all-hn.atom"' in page and 'href="/feeds/big-only.json"' in page
    assert FEED_TOKEN not in page and OTHER_TOKEN not in page


async def test_entry_ids_are_stable_and_a_resent_event_is_not_doubled(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch.notifiers.feed import FeedOptions
    from flamewatch.notifiers.feed.render import atom
    from flamewatch import Secret

    monkeypatch.setenv("FW_FEED_TOKEN", FEED_TOKEN)
    async with aiohttp.ClientSession() as session:
        feed = FeedNotifier(notifier_context(session, "f"), FeedOptions(token=Secret(env="FW_FEED_TOKEN"), keep=3))
        events = [make_event(story_id=i, comments=120) for i in range(5)]
        for event in events:
            await feed.send(event)
        await feed.send(events[4])  # a retried delivery
        kept = await feed.entries()
    assert [e.story.id for e in kept] == [4, 3, 2]  # newest first, at most keep
    first = feedparser.parse(atom("f", "", kept))
    again = feedparser.parse(atom("f", "", kept))
    assert [e.id for e in first.entries] == [e.id for e in again.entries]
    assert len({e.id for e in first.entries}) == 3


async def test_a_short_token_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch import PermanentDeliveryError, Secret
    from flamewatch.notifiers.feed import FeedOptions

    monkeypatch.setenv("FW_FEED_TOKEN", "short")
    async with aiohttp.ClientSession() as session:
        feed = FeedNotifier(notifier_context(session, "f"), FeedOptions(token=Secret(env="FW_FEED_TOKEN")))
        with pytest.raises(PermanentDeliveryError, match=r"^token: the secret must be at least 16"):
            await feed.start()
