"""Commands about followed threads: ``flamewatch follow ID|URL [--for 3d]``, ``follow --list``, ``unfollow ID``.

They write the ``requests`` value of the store's ``core:follows`` state; a running daemon reads it again at
its next cycle, so nothing needs restarting. Following a comment follows its story (resolved here when the
API answers, else by the daemon).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from urllib.parse import parse_qs, urlparse

from ..config import Config
from ..config.values import Where, parse_duration
from ..errors import FetchError
from ..hn import HNClient, make_session
from ..people import FOLLOWS_STATE, read_requests, story_of, write_requests
from ..store.factory import configured_location
from ..store import open_store
from .common import EXIT_CONFIG, CliError, config_from_args


def item_id_of(text: str) -> int:
    """An item id from ``"8863"`` or an HN item URL; CliError otherwise."""
    if text.isdigit() and int(text) > 0:
        return int(text)
    values = parse_qs(urlparse(text).query).get("id")
    if values and values[0].isdigit() and int(values[0]) > 0:
        return int(values[0])
    raise CliError(f"{text!r}: not an item id or an HN item URL (e.g. https://news.ycombinator.com/item?id=8863)",
                   EXIT_CONFIG)


def _store_path(config: Config, args: argparse.Namespace) -> str:
    """The daemon's store: ``--store``, else ``[store] url``, else ``[store] path``, else the default file."""
    return configured_location(config.store, args.store)


async def cmd_follow(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.list:
        return await _list(config, args)
    if args.target is None:
        raise CliError("follow: give an item id or URL, or --list", EXIT_CONFIG)
    item_id = item_id_of(args.target)
    now = time.time()
    until = now + parse_duration(args.duration, Where("--for")) if args.duration is not None else None
    title = ""
    async with make_session() as session:
        client = HNClient(session, args.api_url or config.hn.api_url, timeout=config.hn.timeout, retries=1)
        try:
            story = await story_of(client, item_id)
        except FetchError as exc:
            story = None
            print(f"note: item {item_id} could not be fetched now ({exc}); the watcher resolves it")
        else:
            if story is None:
                raise CliError(f"item {item_id}: not found on Hacker News (or no story above it)")
    if story is not None:
        if story.id != item_id:
            print(f"item {item_id} is a comment: following its story {story.id}")
        item_id = story.id
        title = "".join(ch if ch.isprintable() else " " for ch in story.title or "")[:80]
    async with await open_store(_store_path(config, args)) as store:
        state = store.state_for(FOLLOWS_STATE)
        requests = await read_requests(state)
        requests[item_id] = until
        await write_requests(state, requests)
    end = f" until {_when(until)}" if until is not None else f" until quiet for {config.watch.follow_quiet:g}s"
    print(f"following {item_id}{': ' + title if title else ''}{end}")
    return 0


async def cmd_unfollow(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    item_id = item_id_of(args.target)
    async with await open_store(_store_path(config, args)) as store:
        state = store.state_for(FOLLOWS_STATE)
        requests = await read_requests(state)
        followed = item_id
        if item_id not in requests:
            # `follow COMMENT_ID` stored the comment's story: find it the same way.
            followed = await _story_followed(config, args, item_id, requests)
        del requests[followed]
        await write_requests(state, requests)
    if followed != item_id:
        print(f"item {item_id} is a comment: no longer following its story {followed}")
    else:
        print(f"no longer following {item_id}")
    return 0


async def _story_followed(config: Config, args: argparse.Namespace, item_id: int,
                          requests: dict[int, float | None]) -> int:
    """The followed story ``item_id`` (a comment) belongs to; CliError naming why when there is none."""
    extra = " (it is in the config's [watch] follow: remove it there)" if item_id in config.watch.follow else ""
    if not requests:
        raise CliError(f"{item_id} is not followed{extra}")
    async with make_session() as session:
        client = HNClient(session, args.api_url or config.hn.api_url, timeout=config.hn.timeout, retries=1)
        try:
            story = await story_of(client, item_id)
        except FetchError as exc:
            raise CliError(f"{item_id} is not followed, and its story could not be looked up now ({exc})") from None
    if story is None or story.id == item_id or story.id not in requests:
        raise CliError(f"{item_id} is not followed{extra}")
    return story.id


async def _list(config: Config, args: argparse.Namespace) -> int:
    async with await open_store(_store_path(config, args)) as store:
        requests = await read_requests(store.state_for(FOLLOWS_STATE))
    rows = [(i, "config", None) for i in config.watch.follow] + [(i, "follow", u) for i, u in requests.items()]
    if not rows:
        print("no threads followed")
    for item_id, source, until in rows:
        end = f"until {_when(until)}" if until is not None else "until quiet"
        print(f"  {item_id:>10}  {source:7} {end}")
    return 0


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


async def check_people(config: Config) -> None:
    """``flamewatch check``'s lines about watched lists, followed threads and users (each user looked up once)."""
    watch = config.watch
    if watch.lists:
        print("lists: " + ", ".join(f"{w.name} top {w.top}" for w in watch.lists))
    if watch.follow:
        print(f"follow: {', '.join(map(str, watch.follow))} (until quiet for {watch.follow_quiet:g}s)")
    if not watch.users:
        return
    async with make_session() as session:
        client = HNClient(session, config.hn.api_url, timeout=config.hn.timeout, retries=1)
        for user in watch.users:
            try:
                profile = await client.user(user.name)
            except FetchError as exc:
                print(f"user {user.name}: could not be looked up now ({exc})")
                continue
            if profile is None:
                print(f"warning: user {user.name}: no such user on Hacker News (check [[watch.users]] name)")
            else:
                submitted = profile.get("submitted")
                count = len(submitted) if isinstance(submitted, list) else 0
                alerts = [what for what, on in (("front page", user.front_page), ("replies", user.replies),
                                                 ("comment/points levels", user.levels)) if on]
                if user.rank_levels:
                    alerts.append(f"rank levels {list(user.rank_levels)}")
                print(f"user {user.name}: OK ({count} submitted items); alerts on {', '.join(alerts) or 'nothing'}")
