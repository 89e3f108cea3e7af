"""The six story lists (``topstories``, ``newstories`` ...) and how a new story or job ad joins them."""

from __future__ import annotations

from typing import Any

__all__ = ["LIST_LIMIT", "LIST_NAMES", "best_stories", "new_lists", "place_job", "place_story"]

#: The list endpoints, as served under ``/v0/<name>.json``.
LIST_NAMES = ("topstories", "newstories", "beststories", "askstories", "showstories", "jobstories")
#: HN serves at most this many ids in a list.
LIST_LIMIT = 500
#: ``beststories`` holds the best-scored of the stories on ``newstories``.
BEST_LIMIT = 200


def new_lists() -> dict[str, list[int]]:
    """Every list, empty."""
    return {name: [] for name in LIST_NAMES}


def insert_at(ids: list[int], item_id: int, rank: int | None) -> None:
    """Insert `item_id` at index `rank` (None: append)."""
    if rank is None:
        ids.append(item_id)
    else:
        ids.insert(max(0, rank), item_id)


def place_story(lists: dict[str, list[int]], story: dict[str, Any], *, top: bool, rank: int | None) -> None:
    """Put a new story at the front of ``newstories`` (and Ask/Show HN lists), and on ``topstories`` if `top`."""
    sid = story["id"]
    lists["newstories"].insert(0, sid)
    title = story["title"]
    if "text" in story or title.startswith("Ask HN"):
        lists["askstories"].insert(0, sid)
    if title.startswith("Show HN"):
        lists["showstories"].insert(0, sid)
    if top:
        insert_at(lists["topstories"], sid, rank)


def place_job(lists: dict[str, list[int]], job_id: int) -> None:
    """Put a new job ad at the front of ``jobstories``."""
    lists["jobstories"].insert(0, job_id)


def best_stories(lists: dict[str, list[int]], items: dict[int, dict[str, Any]]) -> list[int]:
    """``beststories``: the stories on ``newstories`` by score, best first (hostile scores left out)."""
    scored = [
        (item.get("score"), sid)
        for sid in lists["newstories"]
        if isinstance((item := items.get(sid)), dict) and isinstance(item.get("score"), int)
    ]
    scored.sort(reverse=True)
    return [sid for _score, sid in scored[:BEST_LIMIT]]
