"""``GET /feeds/<name>.atom`` and ``/feeds/<name>.json``: the feeds of ``type = "feed"`` notifier instances.

Feed readers send no headers, so a feed is not behind the HTTP face's bearer token: it is protected by
its own secret token in its URL (``?token=...``), compared in constant time. An unknown feed and a wrong
or missing token get the same 404, so names cannot be probed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ..errors import DeliveryError
from ..notifiers.feed import FeedNotifier
from ..notifiers.feed.render import ATOM_TYPE, JSON_FEED_TYPE, atom, json_feed
from .guard import FEED_PREFIX

if TYPE_CHECKING:
    from ..app import App

__all__ = ["FEED_PREFIX", "Feeds", "add_feed_routes", "feeds_of", "listing"]

#: The running feeds by instance name (a function: a reload may change them).
Feeds = Callable[[], dict[str, FeedNotifier]]

FEEDS: web.AppKey[Feeds] = web.AppKey("feeds", Feeds)  # type: ignore[arg-type]


def feeds_of(app: App) -> Feeds:
    """The open ``feed`` instances of ``app``, by name."""
    def current() -> dict[str, FeedNotifier]:
        return {instance.name: instance.notifier for instance in app.instances
                if instance.is_open and isinstance(instance.notifier, FeedNotifier)}

    return current


def listing(feeds: Feeds | None) -> list[dict[str, str]]:
    """The feeds for the status page: name and paths (never the token)."""
    if feeds is None:
        return []
    return [{"name": name, "atom": f"{FEED_PREFIX}{name}.atom", "json": f"{FEED_PREFIX}{name}.json"}
            for name in sorted(feeds())]


def _not_found() -> web.Response:
    return web.Response(status=404, text="no such feed (or a wrong token)\n")


async def _feed(request: web.Request) -> web.Response:
    name, kind = request.match_info["name"], request.match_info["kind"]
    feed = request.app[FEEDS]().get(name)
    given = request.query.get("token", "")
    if feed is None:
        return _not_found()
    try:
        expected = feed.token()
    except DeliveryError:
        return _not_found()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return _not_found()
    events = await feed.entries()
    title = feed.options.title
    body, content_type = (atom(name, title, events), ATOM_TYPE) if kind == "atom" else (
        json_feed(name, title, events), JSON_FEED_TYPE)
    # Private: the URL holds a token, so no shared cache should keep the answer.
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "private, max-age=60"})


def add_feed_routes(app: web.Application, feeds: Feeds) -> None:
    """Serve ``feeds`` at ``/feeds/<name>.atom`` and ``.json``."""
    app[FEEDS] = feeds
    app.router.add_get(FEED_PREFIX + "{name}.{kind:atom|json}", _feed)
