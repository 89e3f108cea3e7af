"""People and lists in the simulated world: replies growing under a chosen user's items, and stories
entering and leaving the lists (what ``[[watch.users]]`` and ``[[watch.lists]]`` watch)."""

from __future__ import annotations

import random

from .lists import LIST_NAMES
from .world import World

__all__ = ["drop_from_list", "place_on_list", "reply_to_user"]


def reply_to_user(world: World, name: str, n: int = 1, *, rng: random.Random | None = None,
                  text: str | None = None) -> list[int]:
    """Add ``n`` replies (by other users) under items of ``name`` picked at random; returns their ids.

    ``name`` must have submitted something in this world (``World.submitted``).
    """
    mine = [i for i in world.submitted.get(name, []) if world.items.get(i, {}).get("type") in ("story", "comment")
            and not world.items[i].get("deleted")]
    if not mine:
        raise ValueError(f"reply_to_user: {name!r} has no story or comment to reply to")
    pick = rng or random.Random(world.seed ^ len(world.items))
    return [world.add_comment(pick.choice(mine), text=text) for _ in range(n)]


def place_on_list(world: World, story_id: int, rank: int, list_name: str = "topstories") -> None:
    """Put ``story_id`` at ``rank`` (1 is the top) of ``list_name``, moving it if it is already there."""
    if list_name not in LIST_NAMES:
        raise ValueError(f"place_on_list: no list {list_name!r}")
    ids = world.lists[list_name]
    if story_id in ids:
        ids.remove(story_id)
    ids.insert(max(0, rank - 1), story_id)


def drop_from_list(world: World, story_id: int, list_name: str = "topstories") -> None:
    """Take ``story_id`` off ``list_name`` (it fell off the front page)."""
    ids = world.lists[list_name]
    if story_id in ids:
        ids.remove(story_id)
