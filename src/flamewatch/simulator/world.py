"""The simulator's world: a seeded, growing, synthetic Hacker News.

`World` holds every item exactly as the official API serves it (`World.items`, id -> dict) and the story
lists (`World.lists`), and grows: new comments (mostly in big, young threads), new stories, deletions,
moderator kills, score bumps (the policy is in `flamewatch.simulator.growth`). Shapes are calibrated on
real data (`flamewatch.simulator.model`), the starting front page is sampled by
`flamewatch.simulator.frontpage`, and every change is logged for ``updates.json``
(`flamewatch.simulator.updates`). The HTTP side is `flamewatch.simulator.server`.

Every new item gets an id above the previous ``maxitem``; a comment has ``parent`` set and is listed in its
parent's ``kids``, so a client can follow every new item from ``maxitem`` alone.

Cache rule: the server serves `World.item_bytes`, which caches each item's JSON. Every `World` method that
changes an item invalidates it; if you edit ``world.items[...]`` by hand, call `World.touch` afterwards.
"""

from __future__ import annotations

import random
import time
import zlib
from typing import Any

from .frontpage import build_front_page
from .growth import grow_step
from .items import (
    REMOVE, ItemTable, comment_item, delete_fields, encode, job_item, kill_fields, story_item, vouch_fields,
)
from .lists import LIST_LIMIT, LIST_NAMES, best_stories, insert_at, new_lists, place_job, place_story
from .model import DEAD, DELETED, DELETED_DEAD, VISIBLE, ThreadModel, load_shape
from .text import comment_text, username
from .threads import Threads
from .updates import ChangeLog, updates_body

__all__ = ["LIST_LIMIT", "LIST_NAMES", "REMOVE", "World"]

#: Simulated seconds that pass per `World.grow` step when the world runs on a fixed clock.
GROW_SECONDS = 60


class World:
    """A seeded synthetic Hacker News whose threads keep growing.

    Args:
        seed: makes the world (and its growth) reproducible.
        stories: how many ids ``topstories`` holds (a job ad is among them when there are 10 or more).
            0 builds an empty world for hand-built tests.
        total_comments: scale the sampled comment counts so the front page holds about this many visible
            comments (the real 300-story front page held 20,038).
        start_time: the world's clock (unix seconds). None means a live clock: items get the current time.
        updates_limit: serve an honest ``updates.json`` holding only this many most recently changed ids,
            as HN does (older changes fall off when more items change between two reads). None keeps
            every change listed for `updates_window` growth steps instead, so the list never overflows.
    """

    def __init__(
        self,
        seed: int = 1,
        stories: int = 30,
        total_comments: int | None = None,
        start_time: int | None = None,
        *,
        updates_limit: int | None = None,
    ) -> None:
        if stories < 0:
            raise ValueError(f"World: stories must be >= 0, got {stories}")
        if total_comments is not None and total_comments < 0:
            raise ValueError(f"World: total_comments must be >= 0, got {total_comments}")
        if updates_limit is not None and updates_limit < 1:
            raise ValueError(f"World: updates_limit must be >= 1, got {updates_limit}")
        self.seed = seed
        self._rng = random.Random(seed)
        self._shape = load_shape()
        self.model = ThreadModel.from_shape(self._shape)
        self._live_clock = start_time is None
        self.now: int = int(time.time()) if start_time is None else int(start_time)
        self._log = ChangeLog(window_steps=3, limit=updates_limit)
        self._table = ItemTable(self._log)
        self.lists: dict[str, list[int]] = new_lists()
        self._threads = Threads()
        self._users: dict[str, int] = {}  # name -> created
        self.submitted: dict[str, list[int]] = {}  # name -> their items added by hand or grown, newest first
        self._build(stories, total_comments)

    # --- serving ---------------------------------------------------------------------------------------

    @property
    def items(self) -> dict[int, dict[str, Any]]:
        """Every item as served, by id (call `touch` after editing one by hand)."""
        return self._table.items

    @property
    def maxitem(self) -> int:
        """The largest id handed out so far (reserved missing ids included)."""
        return self._table.maxitem

    @property
    def updates_window(self) -> int:
        """Without `updates_limit`: how many grow steps a change stays listed in ``updates.json``."""
        return self._log.window_steps

    @updates_window.setter
    def updates_window(self, steps: int) -> None:
        self._log.window_steps = steps

    @property
    def updates_limit(self) -> int | None:
        """How many ids ``updates.json`` holds at most (None: no bound, see `updates_window`)."""
        return self._log.limit

    @property
    def _changes(self) -> dict[int, int]:
        # id -> growth step of its last change, oldest first; tests pop from it to simulate a missed update
        return self._log.changes

    def item_bytes(self, item_id: int) -> bytes:
        """The JSON body served for ``/v0/item/<item_id>.json`` (cached until the item changes)."""
        return self._table.item_bytes(item_id)

    def list_bytes(self, name: str) -> bytes | None:
        """The JSON body of a list endpoint, or None if there is no such list."""
        ids = self.lists.get(name)
        return None if ids is None else encode(ids[:LIST_LIMIT])

    def updates(self) -> dict[str, list[Any]]:
        """``/v0/updates.json``: recently changed items, most recent change first, and their authors."""
        return updates_body(self._log.listed(), self.items)

    def user(self, name: str) -> dict[str, Any] | None:
        """A minimal user profile for an author in this world, else None."""
        created = self._users.get(name)
        if created is None:
            return None
        karma = 1 + zlib.crc32(f"{self.seed}:{name}".encode()) % 20_000  # stable across processes
        profile: dict[str, Any] = {"created": created, "id": name, "karma": karma}
        if name in self.submitted:
            profile["submitted"] = list(self.submitted[name])
        return profile

    # --- hand-building (tests) --------------------------------------------------------------------------

    def add_story(
        self,
        title: str | None = None,
        *,
        score: int = 1,
        url: str | None = None,
        by: str | None = None,
        top: bool = True,
        text: str | None = None,
        rank: int | None = None,
    ) -> int:
        """Add a story with no comments; return its id.

        With `text` and no `url` it is an Ask HN story (``text``, no ``url``). `top` puts it on
        ``topstories`` (appended, or inserted at index `rank`); it always goes to the front of
        ``newstories``.
        """
        sid = self._table.new_id()
        author = by or username(self._rng)
        story = story_item(sid, title or f"Story {sid}", score=score, by=author, time=self._time(), url=url, text=text)
        self.items[sid] = story
        self._register_user(author)
        self._submit(author, sid)
        self._threads.open(sid)
        place_story(self.lists, story, top=top, rank=rank)
        self.lists["beststories"] = best_stories(self.lists, self.items)
        self.touch(sid)
        return sid

    def add_job(self, title: str | None = None, *, top: bool = False, rank: int | None = None) -> int:
        """Add a job ad (type ``job``, never has comments) to ``jobstories`` (and ``topstories`` if `top`)."""
        jid = self._table.new_id()
        job = job_item(jid, title, by=username(self._rng), time=self._time())
        self.items[jid] = job
        self._register_user(job["by"])
        place_job(self.lists, jid)
        self.touch(jid)
        if top:
            insert_at(self.lists["topstories"], jid, rank)
        return jid

    def add_comment(
        self,
        parent: int,
        *,
        deleted: bool = False,
        dead: bool = False,
        text: str | None = None,
        by: str | None = None,
        position: int | None = None,
    ) -> int:
        """Add a reply to `parent` (a story or comment); return its id.

        The reply goes last in the parent's ``kids`` unless `position` is given. A deleted comment has no
        ``by``/``text``; a dead one keeps them and has ``"dead": true``.
        """
        status = (DELETED_DEAD if dead else DELETED) if deleted else (DEAD if dead else VISIBLE)
        return self._add_comment(parent, status, text=text, by=by, position=position)

    def add_chain(self, parent: int, depth: int) -> int:
        """Add a chain of `depth` nested replies under `parent`; return the deepest id."""
        if depth < 1:
            raise ValueError(f"add_chain: depth must be >= 1, got {depth}")
        current = parent
        for _ in range(depth):
            current = self._add_comment(current, VISIBLE)
        return current

    def add_replies(self, parent: int, n: int) -> list[int]:
        """Add `n` direct replies to `parent`; return their ids in order."""
        return [self._add_comment(parent, VISIBLE) for _ in range(n)]

    def add_missing_kid(self, parent: int) -> int:
        """Append to `parent`'s kids an id that is never created, so it is served as ``null``."""
        kids = self._table.kids_of(parent, "add_missing_kid")
        kid = self._table.new_id()
        kids.append(kid)
        self.touch(parent)
        return kid

    def add_cycle(self, parent: int) -> int:
        """Add a visible reply to `parent` whose own ``kids`` point back at `parent` (a cycle); return it."""
        cid = self._add_comment(parent, VISIBLE)
        self.items[cid]["kids"] = [parent]
        self.touch(cid)
        return cid

    def delete_comment(self, item_id: int) -> None:
        """Turn a comment into a deleted one (drops ``by``/``text``, keeps ``kids``); listed in updates."""
        self._moderated(item_id, delete_fields(self._table.comment(item_id, "delete_comment")))

    def kill_comment(self, item_id: int) -> None:
        """Mark a comment dead (keeps ``by``/``text``); listed in updates."""
        self._moderated(item_id, kill_fields(self._table.comment(item_id, "kill_comment")))

    def vouch_comment(self, item_id: int) -> None:
        """Bring a dead comment back to life, as HN's vouching does; listed in updates."""
        self._moderated(item_id, vouch_fields(self._table.comment(item_id, "vouch_comment")))

    def edit_comment(self, item_id: int, text: str) -> None:
        """Replace a comment's ``text``, as its author may for a while after posting; listed in updates.

        The visible count does not move. A deleted comment has no text left to edit (ValueError).
        """
        item = self._table.comment(item_id, "edit_comment")
        if item.get("deleted") is True:
            raise ValueError(f"edit_comment: item {item_id} is deleted")
        if item.get("text") != text:
            item["text"] = text
            self.touch(item_id)

    def corrupt(self, item_id: int, **fields: Any) -> None:
        """Set arbitrary fields on an item (created if absent); a value of `REMOVE` deletes the field.

        Nothing is validated or kept consistent (``descendants`` is not recomputed): this is for serving
        hostile or wrongly typed data. The values must be JSON-encodable.
        """
        self._table.corrupt(item_id, fields)

    def serve_raw(self, item_id: int, body: bytes | str) -> None:
        """Serve `body` verbatim for this item (e.g. a JSON list or a bare string). Counts as missing."""
        self._table.serve_raw(item_id, body)

    def touch(self, item_id: int) -> None:
        """Record that an item changed: drop its cached JSON and list it in ``updates.json``."""
        self._table.touch(item_id)

    def set_descendants_lag(self, steps: int = 1) -> None:
        """Let a story's ``descendants`` report the count of `steps` grow steps ago, as HN's lags.

        With a lag, `add_comment` and friends no longer update ``descendants`` at once; `grow` refreshes
        them. ``steps=0`` (the default state) syncs every story now.
        """
        if steps < 0:
            raise ValueError(f"set_descendants_lag: steps must be >= 0, got {steps}")
        self._threads.set_lag(steps)
        if steps == 0:
            for sid, thread in self._threads.by_story.items():
                self._serve_descendants(sid, thread.visible)

    # --- growth -------------------------------------------------------------------------------------------

    def grow(self, n_comments: int = 50, *, bump_scores: bool = True) -> list[int]:
        """One growth step; return the ids that changed (sorted).

        Adds about `n_comments` comments, mostly to big and young threads (a few born deleted or dead),
        sometimes deletes or kills a recent comment, sometimes posts a new story (which may land on the
        front page), and with `bump_scores` raises the points of threads that got comments. Every changed
        id (new items, their parents, stories whose score or descendants moved) is listed in
        ``updates.json`` (for the next `updates_window` steps, or until `updates_limit` newer changes
        push it out).
        """
        if n_comments < 0:
            raise ValueError(f"grow: n_comments must be >= 0, got {n_comments}")
        self._log.begin_step()
        self._advance_clock()
        grow_step(self, self._threads, self._rng, n_comments, bump_scores=bump_scores)
        for sid, value in self._threads.end_step().items():
            self._serve_descendants(sid, value)
        return self._log.end_step()

    # --- ground truth -------------------------------------------------------------------------------------

    def visible_count(self, story_id: int) -> int:
        """Comments in the story's tree that are neither deleted nor dead (walks what is served)."""
        return self.tree_stats(story_id)["visible"]

    def tree_stats(self, story_id: int) -> dict[str, int]:
        """Walk the served tree under `story_id`, cycle-safe and iteratively.

        Returns ``visible``, ``deleted`` (deleted ones, including those also dead), ``dead`` (dead, not
        deleted), ``missing`` (kids served as null or unusable) and ``items`` (comment items reached).
        """
        return self._table.tree_stats(story_id)

    # --- internals ---------------------------------------------------------------------------------------

    def _build(self, stories: int, total_comments: int | None) -> None:
        """Start from a calibrated front page of `stories` ids (nothing listed in ``updates.json`` yet)."""
        if stories == 0:
            return
        page = build_front_page(self._shape, self.model, self._rng, stories=stories, total_comments=total_comments,
                                now=self.now, new_id=self._table.new_id)
        self.items.update(page.items)
        self.lists.update(page.lists)
        self._users.update(page.users)
        self._threads = page.threads
        self.lists["beststories"] = best_stories(self.lists, self.items)
        self._log.clear()

    def _time(self) -> int:
        if self._live_clock:
            self.now = max(self.now, int(time.time()))
        return self.now

    def _advance_clock(self) -> None:
        if self._live_clock:
            self.now = max(self.now + 1, int(time.time()))
        else:
            self.now += GROW_SECONDS

    def _submit(self, name: str, item_id: int) -> None:
        self.submitted.setdefault(name, []).insert(0, item_id)

    def _register_user(self, name: Any) -> None:
        if isinstance(name, str) and name not in self._users:
            self._users[name] = self.now

    def _add_comment(
        self, parent: int, status: int, *, text: str | None = None, by: str | None = None, position: int | None = None
    ) -> int:
        """Create a comment under `parent` with the model's `status`; keep kids, thread and counts right."""
        if self._table.existing(parent, "add_comment").get("type") == "job":
            raise ValueError(f"add_comment: item {parent} is a job; jobs have no comments")
        kids = self._table.kids_of(parent, "add_comment")
        cid = self._table.new_id()
        author = body = None
        if status in (VISIBLE, DEAD):
            author = by or username(self._rng)
            body = text if text is not None else comment_text(self._rng, cid)
            self._register_user(author)
            self._submit(author, cid)
        self.items[cid] = comment_item(cid, parent, self._time(), status, author, body)
        insert_at(kids, cid, position)
        self.touch(cid)
        self.touch(parent)
        story_id = self._threads.story_of(parent)
        if story_id is not None:
            depth = self._threads.depth(parent) + 1
            self._threads.add(story_id, cid, parent, depth, visible=False)
            if status == VISIBLE:
                self._count(cid, +1)
        return cid

    def _moderated(self, item_id: int, delta: int | None) -> None:
        """After a moderation change (``delta``: how the visible count moved; None: nothing changed)."""
        if delta is not None:
            self.touch(item_id)
            if delta:
                self._count(item_id, delta)

    def _count(self, comment_id: int, delta: int) -> None:
        """Move the true visible count of the comment's story, and serve it unless descendants lag."""
        story_id = self._threads.story_of(comment_id)
        if story_id is None:
            return
        thread = self._threads.by_story[story_id]
        thread.visible += delta
        if not self._threads.lag:
            self._serve_descendants(story_id, thread.visible)

    def _serve_descendants(self, story_id: int, value: int) -> None:
        story = self.items.get(story_id)
        if story is not None and story.get("descendants") != value:
            story["descendants"] = value
            self.touch(story_id)
