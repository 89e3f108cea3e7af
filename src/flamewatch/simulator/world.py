"""The simulator's world: a seeded, growing, synthetic Hacker News.

`World` holds every item exactly as the official API serves it (`items`, id -> dict) and the story lists
(`lists`). Its shapes are calibrated on real data (see ``data/hn_shape.json`` and ``data/README.md``):
front-page comment counts and points come from a real 300-story front page, and comment trees grow by a
small attachment model fitted to a real 2,170-comment thread (top-level share, depth profile, branching,
deleted/dead fractions).

The HTTP side lives in `flamewatch.simulator`; this module has no I/O besides reading the packaged table.

Cache rule: the server serves `item_bytes()`, which caches each item's JSON. Every `World` method that
changes an item invalidates it; if you edit ``world.items[...]`` by hand, call `touch(item_id)` afterwards.
"""

from __future__ import annotations

import functools
import json
import math
import random
import time
import zlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["LIST_NAMES", "REMOVE", "ThreadModel", "World", "grow_tree", "load_shape"]

#: The list endpoints, as served under ``/v0/<name>.json``.
LIST_NAMES = ("topstories", "newstories", "beststories", "askstories", "showstories", "jobstories")
#: HN serves at most this many ids in a list.
LIST_LIMIT = 500
#: First id of a new world; arbitrary, but large like real HN ids.
FIRST_ID = 30_000_000
#: Simulated seconds that pass per `World.grow` step when the world runs on a fixed clock.
GROW_SECONDS = 60


class _Remove:
    """Sentinel type for `REMOVE`."""

    def __repr__(self) -> str:
        return "REMOVE"


#: Pass as a value to `World.corrupt` to delete that field from the item.
REMOVE: Any = _Remove()

_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)


def _encode(value: Any) -> bytes:
    """Encode like the Firebase API: compact, keys sorted, UTF-8."""
    return _ENCODER.encode(value).encode("utf-8")


@functools.cache
def load_shape() -> dict[str, Any]:
    """Return the packaged calibration table (``flamewatch/data/hn_shape.json``)."""
    text = (resources.files("flamewatch") / "data" / "hn_shape.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class ThreadModel:
    """Parameters of the comment-tree growth model (fitted in ``data/derive_hn_shape.py``).

    A new comment is top-level with probability ``top_exponent * n ** (top_exponent - 1)`` (so a thread of
    n comments has about ``n ** top_exponent`` top-level ones); otherwise it replies to an existing comment
    picked preferentially (by how many replies it already has) with probability ``preferential`` and
    uniformly otherwise, then kept with probability ``accept_by_depth[depth - 1]`` (deeper comments draw
    fewer replies) times a status factor (dead and deleted comments draw fewer replies).
    """

    top_exponent: float = 0.71
    preferential: float = 0.5
    accept_by_depth: tuple[float, ...] = (1.0, 0.8, 0.4, 0.15, 0.135, 0.12)
    deleted_fraction: float = 0.045
    dead_fraction: float = 0.058
    deleted_and_dead_fraction: float = 0.0097
    dead_reply_factor: float = 0.55
    deleted_reply_factor: float = 0.15

    @classmethod
    def from_shape(cls, shape: dict[str, Any]) -> ThreadModel:
        """Build the model from the ``model`` section of the calibration table."""
        m = shape["model"]
        return cls(
            top_exponent=m["top_exponent"],
            preferential=m["preferential"],
            accept_by_depth=tuple(m["accept_by_depth"]),
            deleted_fraction=m["deleted_fraction"],
            dead_fraction=m["dead_fraction"],
            deleted_and_dead_fraction=m["deleted_and_dead_fraction"],
            dead_reply_factor=m["dead_reply_factor"],
            deleted_reply_factor=m["deleted_reply_factor"],
        )

    def p_top(self, n: int) -> float:
        """Probability that the next comment of an n-comment thread is top-level."""
        if n <= 0:
            return 1.0
        return min(1.0, self.top_exponent * n ** (self.top_exponent - 1.0))

    def accept(self, depth: int, status: int) -> float:
        """Probability of keeping a comment at `depth` (1 = top-level) with `status` as a reply target."""
        table = self.accept_by_depth
        p = table[depth - 1] if depth <= len(table) else table[-1]
        if status == VISIBLE:
            return p
        if status == DEAD:
            return p * self.dead_reply_factor
        return p * self.deleted_reply_factor

    def draw_status(self, rng: random.Random) -> int:
        """Draw a new comment's status with the calibrated deleted/dead fractions."""
        u = rng.random()
        both = self.deleted_and_dead_fraction
        if u < both:
            return DELETED_DEAD
        if u < self.deleted_fraction:
            return DELETED
        if u < self.deleted_fraction + self.dead_fraction - both:
            return DEAD
        return VISIBLE


# Comment statuses, internal to the generator.
VISIBLE, DELETED, DEAD, DELETED_DEAD = 0, 1, 2, 3


def grow_tree(n: int, rng: random.Random, model: ThreadModel) -> tuple[list[int], list[int], list[int]]:
    """Generate the shape of an n-comment thread.

    Returns ``(parent, depth, status)`` lists indexed by comment in creation order; ``parent[i]`` is the
    index of the parent comment or -1 for a top-level comment. Creation order is also time order, so a
    parent always precedes its replies. O(n) expected.
    """
    parent: list[int] = []
    depth: list[int] = []
    status: list[int] = []
    pool: list[int] = []  # each comment once, plus once per reply it has: preferential attachment
    for i in range(n):
        st = model.draw_status(rng)
        if i == 0 or rng.random() < model.p_top(i):
            p, d = -1, 1
        else:
            p = _pick(rng, model, i, pool, depth, status)
            d = depth[p] + 1
            pool.append(p)
        parent.append(p)
        depth.append(d)
        status.append(st)
        pool.append(i)
    return parent, depth, status


def _pick(rng: random.Random, model: ThreadModel, n: int, pool: list[int], depth: list[int], status: list[int]) -> int:
    """Pick a reply target among the first n comments (indices into depth/status)."""
    j = 0
    for _ in range(64):  # the acceptance is >= ~2%, so this practically always ends early
        j = pool[rng.randrange(len(pool))] if rng.random() < model.preferential else rng.randrange(n)
        if rng.random() < model.accept(depth[j], status[j]):
            return j
    return j


# --- synthetic text -----------------------------------------------------------------------------------

_SUBJECTS = (
    "SQLite",
    "Rust",
    "Postgres",
    "the Linux kernel",
    "WebAssembly",
    "a 1970s minicomputer",
    "Kubernetes",
    "Python's asyncio",
    "a tiny Forth",
    "the B-52",
    "open-source maintainers",
    "remote work",
    "Emacs",
    "the M1 chip",
    "a $5 microcontroller",
    "C++ & Rust interop",
    "Redis",
    "TCP congestion control",
    "GPU drivers",
    "the printing press",
    "type systems",
    "home-cooked software",
    "the US patent system",
)
_ANGLES = (
    "How we rewrote {s} in a weekend",
    "Why {s} is slower than you think",
    "{s}: a retrospective",
    "The hidden cost of {s}",
    "I built a search engine on {s}",
    "What I learned running {s} for 10 years",
    "{s} is not what you need",
    "A visual guide to {s}",
    "Lessons from debugging {s} in production",
    "{s} turns 25",
    "Reverse-engineering {s}",
    "The surprising history of {s}",
)
_ASK = ("Ask HN: How do you learn {s}?", "Ask HN: Is {s} worth it in 2024?", "Ask HN: Who uses {s}?")
_SHOW = ("Show HN: A toy {s} in 500 lines", "Show HN: I made a tool for {s}", "Show HN: {s} in the browser")
_SENTENCES = (
    "I&#x27;ve been doing this for years and it still surprises me.",
    "This matches my experience, mostly.",
    "Citation needed &mdash; the benchmark in the article is flawed.",
    "We tried exactly this at my last job. It did not go well.",
    "The real problem is incentives, not technology.",
    "Has anyone measured this on real hardware?",
    "<i>Everything</i> is a trade-off; the post ignores the other side.",
    'Previous discussion: <a href="https:&#x2F;&#x2F;example.com&#x2F;item">link</a>',
    "Strongly disagree.",
    "This is the best thing I&#x27;ve read all week.",
    "The comments here are missing the point of the article.",
    "Fun fact: the original implementation fit in 4 KB.",
)
_NAME_A = ("quiet", "amber", "rapid", "lazy", "clever", "rusty", "misty", "brave", "odd", "pale", "grim", "wry")
_NAME_B = ("fox", "otter", "lambda", "kernel", "heron", "cache", "pixel", "mole", "finch", "monad", "yak")


def _username(rng: random.Random) -> str:
    return f"{rng.choice(_NAME_A)}{rng.choice(_NAME_B)}{rng.randrange(1000)}"


def _comment_text(rng: random.Random, n: int) -> str:
    return f"<p>{_SENTENCES[rng.randrange(len(_SENTENCES))]}<p>(comment {n})"


# --- the world ----------------------------------------------------------------------------------------


@dataclass
class _Thread:
    """Per-story growth state: comment ids, an attachment pool, and the true visible count."""

    comments: list[int] = field(default_factory=list)
    pool: list[int] = field(default_factory=list)
    visible: int = 0


class World:
    """A seeded synthetic Hacker News whose threads keep growing.

    Args:
        seed: makes the world (and its growth) reproducible.
        stories: how many ids ``topstories`` holds (a job ad is among them when there are 10 or more).
            0 builds an empty world for hand-built tests.
        total_comments: scale the sampled comment counts so the front page holds about this many visible
            comments (the real 300-story front page held 20,038).
        start_time: the world's clock (unix seconds). None means a live clock: items get the current time.
    """

    def __init__(
        self,
        seed: int = 1,
        stories: int = 30,
        total_comments: int | None = None,
        start_time: int | None = None,
    ) -> None:
        if stories < 0:
            raise ValueError(f"World: stories must be >= 0, got {stories}")
        if total_comments is not None and total_comments < 0:
            raise ValueError(f"World: total_comments must be >= 0, got {total_comments}")
        self.seed = seed
        self._rng = random.Random(seed)
        self._shape = load_shape()
        self.model = ThreadModel.from_shape(self._shape)
        self._live_clock = start_time is None
        self.now: int = int(time.time()) if start_time is None else int(start_time)
        self.items: dict[int, dict[str, Any]] = {}
        self.lists: dict[str, list[int]] = {name: [] for name in LIST_NAMES}
        #: How many grow steps a change stays listed in ``updates.json``.
        self.updates_window = 3
        self._next_id = FIRST_ID
        self._cache: dict[int, bytes] = {}
        self._raw: dict[int, bytes] = {}
        self._root: dict[int, int] = {}  # comment id -> story id
        self._depth: dict[int, int] = {}  # comment id -> depth (top-level = 1)
        self._threads: dict[int, _Thread] = {}
        self._users: dict[str, int] = {}  # name -> created
        self._step = 0
        self._changes: dict[int, int] = {}  # id -> step of its last change, oldest first
        self._lag = 0
        self._desc_history: list[dict[int, int]] = []
        self._build(stories, total_comments)

    # --- serving ---------------------------------------------------------------------------------------

    @property
    def maxitem(self) -> int:
        """The largest id handed out so far (reserved missing ids included)."""
        return self._next_id - 1

    def item_bytes(self, item_id: int) -> bytes:
        """The JSON body served for ``/v0/item/<item_id>.json`` (cached until the item changes)."""
        body = self._cache.get(item_id)
        if body is None:
            raw = self._raw.get(item_id)
            if raw is not None:
                return raw
            item = self.items.get(item_id)
            if item is None:
                return b"null"  # not cached: a client probing random ids must not grow the cache
            body = self._cache[item_id] = _encode(item)
        return body

    def list_bytes(self, name: str) -> bytes | None:
        """The JSON body of a list endpoint, or None if there is no such list."""
        ids = self.lists.get(name)
        return None if ids is None else _encode(ids[:LIST_LIMIT])

    def updates(self) -> dict[str, list[Any]]:
        """``/v0/updates.json``: items changed in the last `updates_window` steps, newest change first."""
        oldest = self._step - self.updates_window + 1
        ids = [i for i, step in reversed(self._changes.items()) if step >= oldest]
        profiles: dict[str, None] = {}
        for i in ids:
            item = self.items.get(i)
            by = item.get("by") if isinstance(item, dict) else None
            if isinstance(by, str):
                profiles[by] = None
        return {"items": ids, "profiles": list(profiles)[:100]}

    def user(self, name: str) -> dict[str, Any] | None:
        """A minimal user profile for an author in this world, else None."""
        created = self._users.get(name)
        if created is None:
            return None
        karma = 1 + zlib.crc32(f"{self.seed}:{name}".encode()) % 20_000  # stable across processes
        return {"created": created, "id": name, "karma": karma}

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
        sid = self._new_id()
        story = self._make_story(sid, title or f"Story {sid}", score, url, by or _username(self._rng), text)
        self._add_story_item(story, top=top, rank=rank)
        return sid

    def add_job(self, title: str | None = None, *, top: bool = False, rank: int | None = None) -> int:
        """Add a job ad (type ``job``, never has comments) to ``jobstories`` (and ``topstories`` if `top`)."""
        jid = self._add_job(title, self._time())
        if top:
            self._insert(self.lists["topstories"], jid, rank)
        return jid

    def _add_job(self, title: str | None, time_: int) -> int:
        jid = self._new_id()
        job = {
            "by": _username(self._rng),
            "id": jid,
            "score": 1,
            "time": time_,
            "title": title or f"Acme (YC S{jid % 30:02d}) is hiring engineers",
            "type": "job",
            "url": f"https://example.com/jobs/{jid}",
        }
        self._register_user(job["by"])
        self.items[jid] = job
        self.lists["jobstories"].insert(0, jid)
        self.touch(jid)
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
        item = self._existing(parent, "add_missing_kid")
        kid = self._new_id()
        self._kids_of(item, parent, "add_missing_kid").append(kid)
        self.touch(parent)
        return kid

    def add_cycle(self, parent: int) -> int:
        """Add a visible reply to `parent` whose own ``kids`` point back at `parent` (a cycle); return it."""
        cid = self._add_comment(parent, VISIBLE)
        self.items[cid]["kids"] = [parent]
        self.touch(cid)
        return cid

    def delete_comment(self, item_id: int) -> None:
        """Turn a comment into a deleted one (drops ``by``/``text``, keeps ``kids``)."""
        item = self._comment(item_id, "delete_comment")
        if item.get("deleted") is True:
            return
        was_visible = item.get("dead") is not True
        for key in ("by", "text"):
            item.pop(key, None)
        item["deleted"] = True
        self.touch(item_id)
        if was_visible:
            self._count(item_id, -1)

    def kill_comment(self, item_id: int) -> None:
        """Mark a comment dead (keeps ``by``/``text``)."""
        item = self._comment(item_id, "kill_comment")
        if item.get("dead") is True:
            return
        was_visible = item.get("deleted") is not True
        item["dead"] = True
        self.touch(item_id)
        if was_visible:
            self._count(item_id, -1)

    def corrupt(self, item_id: int, **fields: Any) -> None:
        """Set arbitrary fields on an item (created if absent); a value of `REMOVE` deletes the field.

        Nothing is validated or kept consistent (``descendants`` is not recomputed): this is for serving
        hostile or wrongly typed data. The values must be JSON-encodable.
        """
        item = self.items.setdefault(item_id, {})
        for key, value in fields.items():
            if value is REMOVE:
                item.pop(key, None)
            else:
                item[key] = value
        try:
            _encode(item)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"corrupt: item {item_id} is not JSON-encodable: {exc}") from None
        self.touch(item_id)

    def serve_raw(self, item_id: int, body: bytes | str) -> None:
        """Serve `body` verbatim for this item (e.g. a JSON list or a bare string). Counts as missing."""
        self._raw[item_id] = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.touch(item_id)

    def touch(self, item_id: int) -> None:
        """Record that an item changed: drop its cached JSON and list it in ``updates.json``."""
        self._cache.pop(item_id, None)
        self._changes.pop(item_id, None)
        self._changes[item_id] = self._step

    def set_descendants_lag(self, steps: int = 1) -> None:
        """Let a story's ``descendants`` report the count of `steps` grow steps ago, as HN's lags.

        With a lag, `add_comment` and friends no longer update ``descendants`` at once; `grow` refreshes
        them. ``steps=0`` (the default state) syncs every story now.
        """
        if steps < 0:
            raise ValueError(f"set_descendants_lag: steps must be >= 0, got {steps}")
        self._lag = steps
        self._desc_history.clear()
        if steps == 0:
            for sid, thread in self._threads.items():
                self._serve_descendants(sid, thread.visible)

    # --- growth -------------------------------------------------------------------------------------------

    def grow(self, n_comments: int = 50, *, bump_scores: bool = True) -> list[int]:
        """One growth step; return the ids that changed (sorted).

        Adds about `n_comments` comments, mostly to big and young threads (a few born deleted or dead),
        sometimes deletes or kills a recent comment, sometimes posts a new story (which may land on the
        front page), and with `bump_scores` raises the points of threads that got comments. Every changed
        id (new items, their parents, stories whose score or descendants moved) is listed in
        ``updates.json`` for the next `updates_window` steps.
        """
        if n_comments < 0:
            raise ValueError(f"grow: n_comments must be >= 0, got {n_comments}")
        self._step += 1
        self._advance_clock()
        step = self._step
        rng = self._rng
        candidates = [  # front-page stories, minus any a test has corrupted beyond replying to
            sid
            for sid in self.lists["topstories"][:LIST_LIMIT]
            if sid in self._threads and isinstance(self.items.get(sid, {}).get("kids", []), list)
        ]
        new_per_story: dict[int, int] = {}
        if candidates and n_comments:
            weights = [self._heat(sid) for sid in candidates]
            for sid in rng.choices(candidates, weights, k=n_comments):
                parent = self._pick_parent(sid)
                kids = self.items[parent].get("kids")
                pos = None if not kids else len(kids) - int(len(kids) * rng.random() ** 2)
                self._add_comment(parent, self.model.draw_status(rng), position=pos)
                new_per_story[sid] = new_per_story.get(sid, 0) + 1
            if rng.random() < 0.3:
                self._retract_one(rng.choice(candidates))
        if rng.random() < 0.15:
            top = self.lists["topstories"]
            self.add_story(self._title(rng, "story"), score=rng.randint(1, 4), rank=rng.randint(0, len(top)), top=True)
        if bump_scores:
            for sid, n in new_per_story.items():
                self._bump(sid, max(0, round(n * rng.uniform(0.3, 1.5))))
            self._refresh_best()
        if self._lag:
            self._desc_history.append({sid: t.visible for sid, t in self._threads.items()})
            if len(self._desc_history) > self._lag:
                for sid, value in self._desc_history.pop(0).items():
                    self._serve_descendants(sid, value)
        self._prune_changes()
        return sorted(i for i, s in self._changes.items() if s == step)

    # --- ground truth -------------------------------------------------------------------------------------

    def visible_count(self, story_id: int) -> int:
        """Comments in the story's tree that are neither deleted nor dead (walks what is served)."""
        return self.tree_stats(story_id)["visible"]

    def tree_stats(self, story_id: int) -> dict[str, int]:
        """Walk the served tree under `story_id`, cycle-safe and iteratively.

        Returns ``visible``, ``deleted`` (deleted ones, including those also dead), ``dead`` (dead, not
        deleted), ``missing`` (kids served as null or unusable) and ``items`` (comment items reached).
        """
        root = self.items.get(story_id)
        if root is None or story_id in self._raw:
            raise ValueError(f"tree_stats: story {story_id} does not exist")
        stats = {"visible": 0, "deleted": 0, "dead": 0, "missing": 0, "items": 0}
        seen = {story_id}
        stack = [root]
        while stack:
            kids = stack.pop().get("kids")
            if not isinstance(kids, list):
                continue
            for kid in kids:
                is_id = isinstance(kid, int) and not isinstance(kid, bool)
                if is_id and kid in seen:
                    continue  # a cycle or a repeated kid: count each item once
                item = self.items.get(kid) if is_id else None
                if not isinstance(item, dict) or kid in self._raw:
                    stats["missing"] += 1
                    continue
                seen.add(kid)
                stats["items"] += 1
                if item.get("deleted") is True:
                    stats["deleted"] += 1
                elif item.get("dead") is True:
                    stats["dead"] += 1
                else:
                    stats["visible"] += 1
                stack.append(item)
        return stats

    # --- internals: building --------------------------------------------------------------------------------

    def _build(self, stories: int, total_comments: int | None) -> None:
        """Build a calibrated front page of `stories` ids in one pass (ids follow creation time)."""
        if stories == 0:
            return
        rng = self._rng
        rows = [r for r in self._shape["front_page"]["rows"] if r[0] != "job"]
        n_jobs = 1 if stories >= 10 else 0
        n_stories = stories - n_jobs
        picks = sorted(rng.sample(range(len(rows)), min(n_stories, len(rows))))
        while len(picks) < n_stories:  # more stories than the snapshot: resample, ranked after
            picks.append(rng.randrange(len(rows)))
        sampled = [rows[i] for i in picks]
        counts = [r[1] for r in sampled]
        if total_comments is not None:
            total = sum(counts)
            if total == 0:
                counts = [total_comments // max(1, n_stories)] * n_stories
            else:
                counts = [round(c * total_comments / total) for c in counts]
        visible_share = self._shape["thread"]["visible"] / self._shape["thread"]["comments"]

        # Records to sort by time: (time, story index, local index); local index -1 is the story.
        records: list[tuple[int, int, int]] = []
        trees: list[tuple[list[int], list[int], list[int]]] = []
        now = self.now
        for s, (_kind, _c, _points, age) in enumerate(sampled):
            t0 = now - max(60, int(age))
            records.append((t0, s, -1))
            n = round(counts[s] / visible_share) if counts[s] else 0
            trees.append(grow_tree(n, rng, self.model))
            span = max(1, now - t0 - 1)
            times = sorted(rng.random() for _ in range(n))
            records.extend((t0 + 1 + int(span * u), s, i) for i, u in enumerate(times))
        records.sort()

        # Jobs first: their ids come before the front page's, newest job first on jobstories.
        job_ages = [rng.randrange(3_600, 86_400 * 7) for _ in range(min(30, max(1, stories // 10)) * n_jobs)]
        for age in sorted(job_ages, reverse=True):
            self._add_job(None, now - age)

        story_ids = [0] * n_stories
        comment_ids: list[list[int]] = [[0] * len(t[0]) for t in trees]
        for t, s, i in records:
            new_id = self._new_id()
            if i < 0:
                story_ids[s] = new_id
            else:
                comment_ids[s][i] = new_id
        times_by_id = {(story_ids[s] if i < 0 else comment_ids[s][i]): t for t, s, i in records}

        authors = [_username(rng) for _ in range(max(50, n_stories * 20))]
        for name in authors:
            self._users[name] = now - rng.randrange(86_400, 86_400 * 4000)
        for s, (kind, _c, points, _age) in enumerate(sampled):
            sid = story_ids[s]
            title_kind = "ask" if kind == "ask" else ("show" if rng.random() < 0.06 else "story")
            text = f"<p>{_SENTENCES[rng.randrange(len(_SENTENCES))]}" if kind == "ask" else None
            story = self._make_story(
                sid, self._title(rng, title_kind), points or 1, None, rng.choice(authors), text, time_=times_by_id[sid]
            )
            self._fill_thread(story, trees[s], comment_ids[s], times_by_id, authors)
            self._add_story_item(story, top=True, rank=None, record=False)

        # A job ad on the front page (like HN's, rarely in the top five), plus a few more on jobstories.
        if n_jobs:
            top = self.lists["topstories"]
            rank = rng.randrange(min(5, len(top)), min(30, len(top)) + 1)
            top.insert(rank, self.lists["jobstories"][0])
        self.lists["newstories"].sort(reverse=True)
        for name in ("askstories", "showstories"):
            self.lists[name].sort(reverse=True)
        self._refresh_best()
        self._changes.clear()

    def _fill_thread(
        self,
        story: dict[str, Any],
        tree: tuple[list[int], list[int], list[int]],
        ids: list[int],
        times: dict[int, int],
        authors: list[str],
    ) -> None:
        """Create the comment items of one generated tree under `story`."""
        rng = self._rng
        sid = story["id"]
        parents, depths, statuses = tree
        thread = _Thread()
        self._threads[sid] = thread
        kids: dict[int, list[int]] = {}
        items = self.items
        for i, cid in enumerate(ids):
            pid = sid if parents[i] < 0 else ids[parents[i]]
            kids.setdefault(pid, []).append(cid)
            status = statuses[i]
            if status == VISIBLE or status == DEAD:
                item = {
                    "by": rng.choice(authors),
                    "id": cid,
                    "parent": pid,
                    "text": _comment_text(rng, cid),
                    "time": times[cid],
                    "type": "comment",
                }
                if status == DEAD:
                    item["dead"] = True
                else:
                    thread.visible += 1
            else:
                item = {"deleted": True, "id": cid, "parent": pid, "time": times[cid], "type": "comment"}
                if status == DELETED_DEAD:
                    item["dead"] = True
            items[cid] = item
            self._root[cid] = sid
            self._depth[cid] = depths[i]
            thread.comments.append(cid)
            thread.pool.append(cid)
            if pid != sid:
                thread.pool.append(pid)
        for pid, kid_ids in kids.items():
            rng.shuffle(kid_ids)  # HN ranks kids by votes: about as often out of time order as in it
            (story if pid == sid else items[pid])["kids"] = kid_ids
        story["descendants"] = thread.visible

    def _make_story(
        self,
        sid: int,
        title: str,
        score: int,
        url: str | None,
        by: str,
        text: str | None,
        time_: int | None = None,
    ) -> dict[str, Any]:
        story: dict[str, Any] = {
            "by": by,
            "descendants": 0,
            "id": sid,
            "score": score,
            "time": self._time() if time_ is None else time_,
            "title": title,
            "type": "story",
        }
        if text is not None and url is None:
            story["text"] = text
        else:
            story["url"] = url or f"https://example.com/{sid}"
        return story

    def _add_story_item(self, story: dict[str, Any], *, top: bool, rank: int | None, record: bool = True) -> None:
        sid = story["id"]
        self.items[sid] = story
        self._register_user(story["by"])
        self._threads.setdefault(sid, _Thread())
        self.lists["newstories"].insert(0, sid)
        title = story["title"]
        if "text" in story or title.startswith("Ask HN"):
            self.lists["askstories"].insert(0, sid)
        if title.startswith("Show HN"):
            self.lists["showstories"].insert(0, sid)
        if top:
            self._insert(self.lists["topstories"], sid, rank)
        if record:
            self._refresh_best()
            self.touch(sid)

    @staticmethod
    def _title(rng: random.Random, kind: str) -> str:
        templates = {"ask": _ASK, "show": _SHOW}.get(kind, _ANGLES)
        return rng.choice(templates).format(s=rng.choice(_SUBJECTS))

    # --- internals: mutation ----------------------------------------------------------------------------------

    def _new_id(self) -> int:
        new_id = self._next_id
        self._next_id += 1
        return new_id

    def _time(self) -> int:
        if self._live_clock:
            self.now = max(self.now, int(time.time()))
        return self.now

    def _advance_clock(self) -> None:
        if self._live_clock:
            self.now = max(self.now + 1, int(time.time()))
        else:
            self.now += GROW_SECONDS

    def _register_user(self, name: Any) -> None:
        if isinstance(name, str) and name not in self._users:
            self._users[name] = self.now

    @staticmethod
    def _insert(ids: list[int], item_id: int, rank: int | None) -> None:
        if rank is None:
            ids.append(item_id)
        else:
            ids.insert(max(0, rank), item_id)

    def _existing(self, item_id: int, what: str) -> dict[str, Any]:
        item = self.items.get(item_id)
        if item is None:
            raise ValueError(f"{what}: item {item_id} does not exist")
        return item

    def _comment(self, item_id: int, what: str) -> dict[str, Any]:
        item = self._existing(item_id, what)
        if item.get("type") != "comment":
            raise ValueError(f"{what}: item {item_id} is not a comment")
        return item

    @staticmethod
    def _kids_of(item: dict[str, Any], item_id: int, what: str) -> list[Any]:
        kids = item.setdefault("kids", [])
        if not isinstance(kids, list):
            raise ValueError(f"{what}: item {item_id} has non-list kids ({type(kids).__name__})")  # noqa: TRY004
        return kids

    def _add_comment(
        self,
        parent: int,
        status: int,
        *,
        text: str | None = None,
        by: str | None = None,
        position: int | None = None,
    ) -> int:
        pitem = self._existing(parent, "add_comment")
        if pitem.get("type") == "job":
            raise ValueError(f"add_comment: item {parent} is a job; jobs have no comments")
        kids = self._kids_of(pitem, parent, "add_comment")
        cid = self._new_id()
        now = self._time()
        if status == VISIBLE or status == DEAD:
            author = by or _username(self._rng)
            item: dict[str, Any] = {
                "by": author,
                "id": cid,
                "parent": parent,
                "text": text if text is not None else _comment_text(self._rng, cid),
                "time": now,
                "type": "comment",
            }
            if status == DEAD:
                item["dead"] = True
            self._register_user(author)
        else:
            item = {"deleted": True, "id": cid, "parent": parent, "time": now, "type": "comment"}
            if status == DELETED_DEAD:
                item["dead"] = True
        self.items[cid] = item
        if position is None:
            kids.append(cid)
        else:
            kids.insert(position, cid)
        self.touch(cid)
        self.touch(parent)
        root = parent if parent in self._threads else self._root.get(parent)
        if root is not None:
            self._root[cid] = root
            self._depth[cid] = self._depth.get(parent, 0) + 1
            thread = self._threads[root]
            thread.comments.append(cid)
            thread.pool.append(cid)
            if parent != root:
                thread.pool.append(parent)
            if status == VISIBLE:
                self._count(cid, +1)
        return cid

    def _count(self, comment_id: int, delta: int) -> None:
        """Move the true visible count of the comment's story, and serve it unless descendants lag."""
        root = self._root.get(comment_id)
        if root is None:
            return
        thread = self._threads[root]
        thread.visible += delta
        if not self._lag:
            self._serve_descendants(root, thread.visible)

    def _serve_descendants(self, story_id: int, value: int) -> None:
        story = self.items.get(story_id)
        if story is not None and story.get("descendants") != value:
            story["descendants"] = value
            self.touch(story_id)

    def _heat(self, story_id: int) -> float:
        """Growth weight: big threads attract comments, and young ones more (about a 6-hour half-life)."""
        posted = self.items[story_id].get("time")
        age_h = max(0.0, (self.now - posted) / 3600) if isinstance(posted, int) else 0.0
        return (self._threads[story_id].visible + 3) * max(1e-6, math.exp(-age_h / 8.6))

    def _pick_parent(self, story_id: int) -> int:
        """Pick a reply target in a story with the calibrated attachment model."""
        thread = self._threads[story_id]
        n = len(thread.comments)
        if n == 0 or self._rng.random() < self.model.p_top(n):
            return story_id
        rng = self._rng
        j = story_id
        for _ in range(64):
            j = (
                thread.pool[rng.randrange(len(thread.pool))]
                if rng.random() < self.model.preferential
                else thread.comments[rng.randrange(n)]
            )
            item = self.items.get(j)
            if item is None or not isinstance(item.get("kids", []), list):
                continue  # corrupted by a test: never reply there
            status = DELETED if item.get("deleted") is True else (DEAD if item.get("dead") is True else VISIBLE)
            if rng.random() < self.model.accept(self._depth.get(j, 1), status):
                return j
        return story_id

    def _retract_one(self, story_id: int) -> None:
        """Delete or kill one recent visible comment of a story (authors delete, moderators kill)."""
        recent = self._threads[story_id].comments[-50:]
        if not recent:
            return
        cid = self._rng.choice(recent)
        item = self.items.get(cid)
        if item is None or item.get("deleted") is True or item.get("dead") is True:
            return
        if self._rng.random() < 0.45:
            self.delete_comment(cid)
        else:
            self.kill_comment(cid)

    def _bump(self, story_id: int, points: int) -> None:
        story = self.items[story_id]
        if points and isinstance(story.get("score"), int):
            story["score"] += points
            self.touch(story_id)

    def _refresh_best(self) -> None:
        scored = [
            (item.get("score"), sid)
            for sid in self.lists["newstories"]
            if isinstance((item := self.items.get(sid)), dict) and isinstance(item.get("score"), int)
        ]
        scored.sort(reverse=True)
        self.lists["beststories"] = [sid for _score, sid in scored[:200]]

    def _prune_changes(self) -> None:
        oldest = self._step - self.updates_window + 1
        for item_id in [i for i, s in self._changes.items() if s < oldest]:
            del self._changes[item_id]
