"""Threads and people being watched: followed stories and ``[[watch.users]]``.

:class:`Watchlist` is the small state behind issue "Watch people and threads". It lives next to the
monitor: the monitor asks it each cycle which extra stories to count (:meth:`Watchlist.story_ids`) and tells
it what the counts were (:meth:`Watchlist.after_counts`); the stream hands it every new item
(:meth:`Watchlist.see_item`) so a watched user's new submissions are followed and their comments can be
replied to; the ``rank`` and ``reply`` rules read it (never write it) to decide what to fire.

Persistent state is two JSON values in ``store.state_for("core:follows")``:

* ``requests``: the threads followed by hand (``flamewatch follow``), ``{"<id>": {"until": ts|null}}``;
  written by the CLI and, for expiries and deletions only, by the daemon, which re-reads it every cycle;
* ``activity``: the daemon's own bookkeeping, ``{"<id>": [last change ts, comments]}`` for quiet times,
  the ids it stopped following (so a config id that expired is not followed again), and the users it has
  already seen (a user's first run records state silently).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .config.model import WatchSettings, WatchUser
from .errors import FetchError
from .hn import HNClient, Item
from .hn.item import is_item_id
from .notifier import PluginState, SavedValue, StateWrite

log = logging.getLogger("flamewatch.people")

#: The store namespace of followed threads (":" keeps it apart from every notifier's namespace).
FOLLOWS_STATE = "core:follows"

#: How many of a user's own item ids are remembered to recognise replies (per user).
USER_ITEMS = 2_000

#: How many of a user's ``submitted`` ids are looked at when a watch starts (newest first).
SUBMITTED_AT_START = 500

#: How many of those are fetched to find their recent stories.
STORIES_AT_START = 30

#: With ``--backfill``: the most existing replies per user announced on the first run.
BACKFILL_REPLIES = 50

#: How often values written rarely (hand-followed threads, users seen) are written again, so that the
#: store's pruning of old state values (``[store] history_days``) never drops them.
REFRESH_EVERY = 86400.0

#: The longest parent chain followed to find the story of a followed comment id.
MAX_CHAIN = 200


@dataclass
class WatchedUser:
    """One watched user at run time: settings, their known item ids and their stories."""

    settings: WatchUser
    items: OrderedDict[int, None] = field(default_factory=OrderedDict)  # bounded, oldest first
    stories: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)  # stories whose current levels are recorded, not announced
    #: The user's first run: every story of theirs counted in it is silent, not only those in ``silent``
    #: (one older than ``follow_quiet`` or beyond their newest items is counted when it is on a list).
    first_run: bool = False
    known: bool = True  # False when HN has no such user

    def add_item(self, item_id: int) -> None:
        """Remember one of this user's items (for replies), forgetting the oldest beyond the bound."""
        self.items[item_id] = None
        self.items.move_to_end(item_id)
        if len(self.items) > USER_ITEMS:
            self.items.popitem(last=False)


def follow_request(until: float | None) -> dict[str, Any]:
    """The JSON value the CLI stores for one followed thread."""
    return {"until": until}


async def read_requests(state: PluginState) -> dict[int, float | None]:
    """The hand-followed threads in ``state``: id -> until (None: no end); bad entries skipped."""
    raw = await state.get("requests")
    out: dict[int, float | None] = {}
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit() and is_item_id(int(key))):
            continue
        until = value.get("until") if isinstance(value, dict) else None
        out[int(key)] = float(until) if isinstance(until, (int, float)) and not isinstance(until, bool) else None
    return out


async def write_requests(state: PluginState, requests: dict[int, float | None]) -> None:
    """Store the hand-followed threads."""
    await state.set("requests", {str(k): follow_request(v) for k, v in sorted(requests.items())})


async def story_of(client: HNClient, item_id: int) -> Item | None:
    """The story ``item_id`` belongs to (itself for a story), walking up the parents; None if none."""
    seen: set[int] = set()
    current = await client.item(item_id)
    while current is not None and current.parent is not None and len(seen) < MAX_CHAIN:
        if current.parent in seen:
            return None
        seen.add(current.id)
        current = await client.item(current.parent)
    return current if current is not None and current.parent is None else None


class Watchlist:
    """Followed threads and watched users (see the module docstring)."""

    def __init__(self, settings: WatchSettings, state: PluginState, *, backfill: bool = False) -> None:
        self.settings = settings
        self.state = state
        self.backfill = backfill
        self.users: dict[str, WatchedUser] = {u.name: WatchedUser(u) for u in settings.users}
        self.followed: dict[int, float | None] = {}  # story id -> until, as of this cycle
        self._resolved: dict[int, int] = {}  # a followed id -> its story's id (comment ids follow their story)
        self._activity: dict[int, tuple[float, int]] = {}  # story id -> (last change, comments)
        self._ended: set[int] = set()
        self._loaded = False
        self._backfill_items: list[Item] = []  # existing replies to announce once (--backfill)
        self._refreshed = 0.0  # when the values written rarely were last written again
        self._saved = SavedValue(FOLLOWS_STATE, "activity", refresh=REFRESH_EVERY)  # unchanged: not written

    # --- the users ---------------------------------------------------------------------------------

    def user_of_story(self, story_id: int, by: str | None) -> WatchedUser | None:
        """The watched user who submitted ``story_id`` (by its ``by``), or None."""
        user = self.users.get(by) if by is not None else None
        return user if user is not None and user.known else None

    def owner_of(self, item_id: int) -> WatchedUser | None:
        """The watched user (with replies on) whose item ``item_id`` is, or None."""
        for user in self.users.values():
            if user.settings.replies and item_id in user.items:
                return user
        return None

    def is_silent(self, story_id: int, by: str | None = None) -> bool:
        """Whether this story's levels this cycle are to be recorded only: it is one of a watched user's
        stories (``by`` them) and this is that user's first run."""
        return any(
            story_id in user.silent or (user.first_run and by is not None and by == user.settings.name)
            for user in self.users.values()
        )

    def see_item(self, item: Item) -> None:
        """A new item from the stream: a watched user's comment is remembered, their story followed."""
        user = self.users.get(item.by) if item.by is not None else None
        if user is None or not user.known or item.deleted:
            return
        user.add_item(item.id)
        if item.parent is None and item.type in (None, "story") and follows_stories(user.settings):
            user.stories.add(item.id)
            log.info("following %s's new story %d", user.settings.name, item.id)

    async def start(self, client: HNClient, now: float) -> None:
        """Load the state and read every watched user's profile (``submitted``) once."""
        await self._load()
        seen = await self._seen_users()
        for user in self.users.values():
            await self._start_user(client, user, now, first=user.settings.name not in seen and not self.backfill)
        await self._save_seen(seen | set(self.users))

    async def _start_user(self, client: HNClient, user: WatchedUser, now: float, *, first: bool) -> None:
        name = user.settings.name
        user.first_run = first
        try:
            profile = await client.user(name)
        except FetchError as exc:
            log.warning("user %s: profile unavailable (%s); only their new items are watched", name, exc)
            return
        if profile is None:
            user.known = False
            log.warning("user %s: no such user on Hacker News (check [[watch.users]] name)", name)
            return
        submitted = profile.get("submitted")
        ids = [i for i in submitted[:SUBMITTED_AT_START] if is_item_id(i)] if isinstance(submitted, list) else []
        for item_id in reversed(ids):  # oldest first, so the bound forgets the oldest
            user.add_item(item_id)
        replies: list[int] = []
        for item in await _fetch_all(client, ids[:STORIES_AT_START]):
            if item is not None and self.backfill and user.settings.replies:
                replies += item.kids
            if item is None or item.parent is not None or item.type not in (None, "story") or item.deleted:
                continue
            if item.time is not None and now - item.time > self.settings.follow_quiet:
                continue  # an old story: not followed (its replies still are, from the stream)
            user.stories.add(item.id)
            if first:
                user.silent.add(item.id)
        log.info("user %s: %d recent items known, %d recent stories followed", name, len(ids), len(user.stories))
        if replies:
            await self._fetch_backfill(client, sorted(replies)[-BACKFILL_REPLIES:])

    async def _fetch_backfill(self, client: HNClient, ids: list[int]) -> None:
        """Fetch existing replies to announce on the first cycle (``--backfill``)."""
        self._backfill_items += [item for item in await _fetch_all(client, ids) if item is not None]

    def take_backfill(self) -> list[Item]:
        """The existing replies fetched for ``--backfill`` (once; then empty), oldest first."""
        items, self._backfill_items = sorted(self._backfill_items, key=lambda i: i.id), []
        return items

    # --- followed threads ---------------------------------------------------------------------------

    async def story_ids(self, client: HNClient, now: float) -> list[int]:
        """Every story to count this cycle besides the lists: followed threads and watched users' stories."""
        await self._load()
        requests = await read_requests(self.state)
        if now - self._refreshed >= REFRESH_EVERY:
            # Store values not written within the history window are pruned: write these again now and then
            # (right after reading them, so a concurrent `flamewatch follow` is hardly ever lost).
            self._refreshed = now
            if requests:
                await write_requests(self.state, requests)
            await self._save_seen(await self._seen_users() | set(self.users))
        wanted: dict[int, float | None] = {i: None for i in self.settings.follow if i not in self._ended}
        for item_id, until in requests.items():
            if until is not None and until <= now:
                log.info("thread %d: followed until %s, no longer followed", item_id, _ts(until))
                await self._end(item_id, None)
                continue
            wanted[item_id] = until
            self._ended.discard(item_id)
        out: dict[int, None] = {}
        self.followed = {}  # rebuilt each cycle: `flamewatch unfollow` takes effect at once
        for item_id, until in wanted.items():
            story = await self._resolve(client, item_id)
            if story is not None:
                self.followed[story] = until
                out[story] = None
        for user in self.users.values():
            if follows_stories(user.settings):
                for story_id in user.stories:
                    out[story_id] = None
        return list(out)

    async def _resolve(self, client: HNClient, item_id: int) -> int | None:
        if item_id in self._resolved:
            return self._resolved[item_id]
        try:
            story = await story_of(client, item_id)
        except FetchError as exc:
            log.warning("thread %d: cannot be fetched (%s); tried again next cycle", item_id, exc)
            return None
        if story is None:
            log.warning("thread %d: not found on Hacker News (no such item, or no story above it); not followed",
                        item_id)
            await self._end(item_id, None)
            return None
        if story.id != item_id:
            log.info("item %d is a comment: following its story %d", item_id, story.id)
        self._resolved[item_id] = story.id
        return story.id

    async def after_counts(
        self, counted: Iterable[tuple[int, Item | None, int]], now: float, *, save: bool = True
    ) -> None:
        """What this cycle counted, as (story id, story item or None, comments): drops deleted and quiet threads.

        ``save=False`` leaves the activity's write to the caller (:meth:`unsaved`: a cycle writes it with
        its samples, in one transaction)."""
        quiet = self.settings.follow_quiet
        for story_id, story, comments in counted:
            followed = story_id in self.followed or any(story_id in u.stories for u in self.users.values())
            if not followed:
                continue
            if story is None or story.deleted or story.dead:
                log.warning("thread %d was deleted (or is dead) on Hacker News: no longer followed", story_id)
                await self._end(story_id, story)
                continue
            last = self._activity.get(story_id)
            if last is None or comments != last[1]:
                self._activity[story_id] = (now, comments)
            elif now - last[0] >= quiet:
                log.info("thread %d: no new comments for %s, no longer followed", story_id, _span(quiet))
                await self._end(story_id, story)
        for user in self.users.values():
            user.silent.clear()  # only a user's first cycle is silent
            user.first_run = False
        if save:
            await self._save_activity(now)

    async def _end(self, item_id: int, story: Item | None) -> None:
        """Stop following ``item_id`` (and every id that resolved to it)."""
        ids = {item_id} | {k for k, v in self._resolved.items() if v == item_id}
        self._ended |= ids
        for k in ids:
            self._resolved.pop(k, None)
            self.followed.pop(k, None)
            self._activity.pop(k, None)
        for user in self.users.values():
            user.stories.discard(item_id)
        requests = await read_requests(self.state)
        if ids & set(requests):
            await write_requests(self.state, {k: v for k, v in requests.items() if k not in ids})

    # --- persistence ---------------------------------------------------------------------------------

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        raw = await self.state.get("activity")
        if not isinstance(raw, dict):
            return
        for key, value in (raw.get("threads") or {}).items():
            if key.isdigit() and isinstance(value, list) and len(value) == 2:
                self._activity[int(key)] = (float(value[0]), int(value[1]))
        self._ended = {i for i in raw.get("ended") or [] if is_item_id(i)}

    async def _seen_users(self) -> set[str]:
        raw = await self.state.get("users")
        return {u for u in raw if isinstance(u, str)} if isinstance(raw, list) else set()

    async def _save_seen(self, users: set[str]) -> None:
        await self.state.set("users", sorted(users))

    def unsaved(self, now: float) -> StateWrite | None:
        """The write the followed threads' activity needs, or None when the store holds it already."""
        return self._saved.write({
            "threads": {str(k): [t, c] for k, (t, c) in self._activity.items()},
            "ended": sorted(self._ended)[-10_000:],
        }, now)

    def saved(self, write: StateWrite, now: float) -> None:
        """``write`` (from :meth:`unsaved`) is in the store now."""
        self._saved.written(write, now)

    async def _save_activity(self, now: float) -> None:
        if (write := self.unsaved(now)) is not None:
            await self.state.set("activity", write.value)
            self.saved(write, now)


async def _fetch_all(client: HNClient, ids: list[int]) -> list[Item | None]:
    """The items ``ids``, fetched together (the client bounds the requests in flight); None where one failed."""

    async def one(item_id: int) -> Item | None:
        try:
            return await client.item(item_id)
        except FetchError:
            return None

    return list(await asyncio.gather(*(one(i) for i in ids)))


def follows_stories(user: WatchUser) -> bool:
    """Whether a watched user's stories are counted every cycle (for their ranks or their levels)."""
    return user.levels or user.front_page or bool(user.rank_levels)


def _ts(when: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g}d"
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    return f"{seconds:g}s"
