"""What moderators, flags and authors do to a story in the simulated world: kill it, flag it off the front
page, delete it, retitle it (what the ``decline`` events watch). Each change is listed in ``updates.json``,
as HN lists an edited item."""

from __future__ import annotations

from typing import Any

from .lists import LIST_NAMES
from .world import World

__all__ = ["delete_story", "flag_story", "kill_story", "retitle_story"]


def _story(world: World, story_id: int, what: str) -> dict[str, Any]:
    item = world.items.get(story_id)
    if not isinstance(item, dict) or item.get("type") != "story":
        raise ValueError(f"{what}: item {story_id} is not a story")
    return item


def _off_every_list(world: World, story_id: int) -> None:
    for name in LIST_NAMES:
        if story_id in world.lists[name]:
            world.lists[name].remove(story_id)


def kill_story(world: World, story_id: int) -> None:
    """Mark a story dead (it keeps ``by``, ``title``): HN takes it off every list."""
    _story(world, story_id, "kill_story")["dead"] = True
    _off_every_list(world, story_id)
    world.touch(story_id)


def flag_story(world: World, story_id: int) -> None:
    """Flags take a story off the front page (and Ask/Show HN) without killing it; it stays on ``new``."""
    _story(world, story_id, "flag_story")
    for name in LIST_NAMES:
        if name != "newstories" and story_id in world.lists[name]:
            world.lists[name].remove(story_id)


def delete_story(world: World, story_id: int) -> None:
    """Delete a story: it keeps its id, kids and time, loses ``by``, ``title``, ``url`` and ``text``."""
    item = _story(world, story_id, "delete_story")
    for key in ("by", "title", "url", "text", "score"):
        item.pop(key, None)
    item["deleted"] = True
    _off_every_list(world, story_id)
    world.touch(story_id)


def retitle_story(world: World, story_id: int, title: str) -> None:
    """Give a story a new title, as a moderator (or its author, for a while) does."""
    _story(world, story_id, "retitle_story")["title"] = title
    world.touch(story_id)
