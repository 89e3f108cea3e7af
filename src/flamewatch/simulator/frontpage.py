"""Build a new world's calibrated front page: its stories, threads, job ads, authors and lists.

Stories are sampled from the real 300-story front page in the calibration table (comment count, points,
age); each thread's shape comes from the `ThreadModel`. `plan_front_page` draws that plan as pure data;
`build_front_page` turns it into items, handing out ids in time order as HN does. Both only draw from the
given random generator, so a seed always builds the same page.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .items import comment_item, job_item, story_item
from .lists import new_lists, place_job, place_story
from .model import DEAD, VISIBLE, ThreadModel, grow_tree
from .text import ask_text, comment_text, story_title, username
from .threads import Threads

__all__ = ["FrontPage", "FrontPagePlan", "PlannedStory", "build_front_page", "plan_front_page"]

#: A comment tree as `grow_tree` returns it: (parent index, depth, status) per comment.
Tree = tuple[list[int], list[int], list[int]]


@dataclass(frozen=True)
class PlannedStory:
    """One sampled story: its kind in the table (``"story"`` or ``"ask"``), its points and its thread."""

    kind: str
    points: int
    tree: Tree


@dataclass(frozen=True)
class FrontPagePlan:
    """Stories, their posting order and the job ads of a new front page.

    `timeline` holds ``(time, story index, comment index)`` in time order, comment index -1 being the story
    itself: handing out ids along it makes ids follow time. `job_times` are the job ads' posting times,
    oldest first (their ids come before the front page's).
    """

    stories: list[PlannedStory]
    timeline: list[tuple[int, int, int]]
    job_times: list[int]


def plan_front_page(
    shape: dict[str, Any],
    model: ThreadModel,
    rng: random.Random,
    *,
    stories: int,
    total_comments: int | None,
    now: int,
) -> FrontPagePlan:
    """Sample a front page of `stories` ids (one a job ad when there are 10 or more).

    With `total_comments`, the sampled comment counts are scaled so the visible comments add up to about
    that many.
    """
    rows = [r for r in shape["front_page"]["rows"] if r[0] != "job"]
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
    # The table counts visible comments; the tree also holds deleted and dead ones.
    visible_share = shape["thread"]["visible"] / shape["thread"]["comments"]

    planned: list[PlannedStory] = []
    timeline: list[tuple[int, int, int]] = []
    for s, (kind, _count, points, age) in enumerate(sampled):
        posted = now - max(60, int(age))
        timeline.append((posted, s, -1))
        n = round(counts[s] / visible_share) if counts[s] else 0
        planned.append(PlannedStory(kind, points, grow_tree(n, rng, model)))
        span = max(1, now - posted - 1)
        times = sorted(rng.random() for _ in range(n))
        timeline.extend((posted + 1 + int(span * u), s, i) for i, u in enumerate(times))
    timeline.sort()

    n_ads = min(30, max(1, stories // 10)) * n_jobs
    job_ages = [rng.randrange(3_600, 86_400 * 7) for _ in range(n_ads)]
    return FrontPagePlan(planned, timeline, [now - age for age in sorted(job_ages, reverse=True)])


@dataclass
class FrontPage:
    """A built front page: items by id, the lists (all but ``beststories``), authors and threads."""

    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    lists: dict[str, list[int]] = field(default_factory=new_lists)
    users: dict[str, int] = field(default_factory=dict)  # name -> created
    threads: Threads = field(default_factory=Threads)


def build_front_page(
    shape: dict[str, Any],
    model: ThreadModel,
    rng: random.Random,
    *,
    stories: int,
    total_comments: int | None,
    now: int,
    new_id: Callable[[], int],
) -> FrontPage:
    """Build a front page of `stories` ids (see `plan_front_page`), taking ids from `new_id`."""
    plan = plan_front_page(shape, model, rng, stories=stories, total_comments=total_comments, now=now)
    page = FrontPage()
    for posted in plan.job_times:  # the job ads' ids come before the front page's
        job = job_item(new_id(), None, by=username(rng), time=posted)
        page.users.setdefault(job["by"], now)
        page.items[job["id"]] = job
        place_job(page.lists, job["id"])

    story_ids = [0] * len(plan.stories)
    comment_ids = [[0] * len(planned.tree[0]) for planned in plan.stories]
    times: dict[int, int] = {}
    for posted, s, i in plan.timeline:
        new = new_id()
        if i < 0:
            story_ids[s] = new
        else:
            comment_ids[s][i] = new
        times[new] = posted

    authors = [username(rng) for _ in range(max(50, len(plan.stories) * 20))]
    for name in authors:
        page.users[name] = now - rng.randrange(86_400, 86_400 * 4000)
    for s, planned in enumerate(plan.stories):
        sid = story_ids[s]
        is_ask = planned.kind == "ask"
        title_kind = "ask" if is_ask else ("show" if rng.random() < 0.06 else "story")
        body = ask_text(rng) if is_ask else None
        title = story_title(rng, title_kind)
        story = story_item(sid, title, score=planned.points or 1, by=rng.choice(authors), time=times[sid], text=body)
        _fill_thread(page, story, planned.tree, comment_ids[s], times, authors, rng)
        page.items[sid] = story
        place_story(page.lists, story, top=True, rank=None)

    lists = page.lists
    if plan.job_times:  # a job ad on the front page, like HN's: rarely in the top five
        top = lists["topstories"]
        rank = rng.randrange(min(5, len(top)), min(30, len(top)) + 1)
        top.insert(rank, lists["jobstories"][0])
    for name in ("newstories", "askstories", "showstories"):
        lists[name].sort(reverse=True)
    return page


def _fill_thread(
    page: FrontPage,
    story: dict[str, Any],
    tree: Tree,
    ids: list[int],
    times: dict[int, int],
    authors: list[str],
    rng: random.Random,
) -> None:
    """Create the comment items of one planned tree under `story`, with ids `ids`."""
    sid = story["id"]
    parents, depths, statuses = tree
    thread = page.threads.open(sid)
    kids: dict[int, list[int]] = {}
    items = page.items
    for i, cid in enumerate(ids):
        pid = sid if parents[i] < 0 else ids[parents[i]]
        kids.setdefault(pid, []).append(cid)
        status = statuses[i]
        by = body = None
        if status in (VISIBLE, DEAD):
            by = rng.choice(authors)
            body = comment_text(rng, cid)
        items[cid] = comment_item(cid, pid, times[cid], status, by, body)
        page.threads.add(sid, cid, pid, depths[i], visible=status == VISIBLE)
    for pid, kid_ids in kids.items():
        rng.shuffle(kid_ids)  # HN ranks kids by votes: about as often out of time order as in it
        (story if pid == sid else items[pid])["kids"] = kid_ids
    story["descendants"] = thread.visible
