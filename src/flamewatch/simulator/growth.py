"""What happens to the simulated HN in one growth step: who comments where, what is retracted, what is new.

The policy lives here; `World.grow` runs it and keeps the step bookkeeping (clock, ``updates.json``,
lagging ``descendants``). Items change through `World`'s editing methods, or (score bumps) by hand
followed by `World.touch`, so the cache and change-log rules hold for growth as for hand-built worlds.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .lists import LIST_LIMIT, best_stories
from .model import DEAD, DELETED, DELETED_DEAD
from .text import story_title
from .threads import Threads

if TYPE_CHECKING:
    from .world import World

__all__ = ["grow_step"]

#: Chance per step that an author deletes, or a moderator kills, one recent comment.
RETRACT_CHANCE = 0.3
#: Of retractions, the share that are deletions (the rest are kills).
DELETE_SHARE = 0.45
#: Chance per step that a new story is posted (it lands somewhere on the front page).
NEW_STORY_CHANCE = 0.15


def grow_step(world: World, threads: Threads, rng: random.Random, n_comments: int, *, bump_scores: bool) -> None:
    """Add about `n_comments` comments, mostly to big and young threads, and the odd retraction and story.

    A few new comments are born deleted or dead, as the model draws them. With `bump_scores`, threads
    that got comments gain points and ``beststories`` is re-ranked.
    """
    items = world.items
    candidates = [  # front-page stories, minus any a test has corrupted beyond replying to
        sid
        for sid in world.lists["topstories"][:LIST_LIMIT]
        if sid in threads.by_story and isinstance(items.get(sid, {}).get("kids", []), list)
    ]
    new_per_story: dict[int, int] = {}
    if candidates and n_comments:
        weights = [threads.heat(sid, _age_hours(world, sid)) for sid in candidates]
        for sid in rng.choices(candidates, weights, k=n_comments):
            parent = threads.pick_parent(sid, items, rng, world.model)
            kids = items[parent].get("kids")
            # Newer replies mostly land near the end of kids (HN ranks by votes, which take time to come).
            position = None if not kids else len(kids) - int(len(kids) * rng.random() ** 2)
            status = world.model.draw_status(rng)
            world.add_comment(
                parent,
                deleted=status in (DELETED, DELETED_DEAD),
                dead=status in (DEAD, DELETED_DEAD),
                position=position,
            )
            new_per_story[sid] = new_per_story.get(sid, 0) + 1
        if rng.random() < RETRACT_CHANCE:
            _retract_one(world, threads, rng, rng.choice(candidates))
    if rng.random() < NEW_STORY_CHANCE:
        top = world.lists["topstories"]
        title = story_title(rng)
        world.add_story(title, score=rng.randint(1, 4), rank=rng.randint(0, len(top)), top=True)
    if bump_scores:
        for sid, n in new_per_story.items():
            _bump(world, sid, max(0, round(n * rng.uniform(0.3, 1.5))))
        world.lists["beststories"] = best_stories(world.lists, items)


def _age_hours(world: World, story_id: int) -> float:
    posted = world.items[story_id].get("time")
    return max(0.0, (world.now - posted) / 3600) if isinstance(posted, int) else 0.0


def _retract_one(world: World, threads: Threads, rng: random.Random, story_id: int) -> None:
    """Delete or kill one recent visible comment of a story (authors delete, moderators kill)."""
    recent = threads.by_story[story_id].comments[-50:]
    if not recent:
        return
    cid = rng.choice(recent)
    item = world.items.get(cid)
    if item is None or item.get("deleted") is True or item.get("dead") is True:
        return
    if rng.random() < DELETE_SHARE:
        world.delete_comment(cid)
    else:
        world.kill_comment(cid)


def _bump(world: World, story_id: int, points: int) -> None:
    story = world.items[story_id]
    if points and isinstance(story.get("score"), int):
        story["score"] += points
        world.touch(story_id)
