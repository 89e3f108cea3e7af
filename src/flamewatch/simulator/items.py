"""The items exactly as the API serves them: ids, JSON bodies, hostile overrides and the change log.

Cache rule: `ItemTable.item_bytes` caches each item's JSON. Every change must go through `ItemTable.touch`
(the `World` methods do); if you edit ``items[...]`` by hand, call ``touch(item_id)`` afterwards.
"""

from __future__ import annotations

import json
from typing import Any

from .model import DEAD, DELETED_DEAD, VISIBLE
from .updates import ChangeLog

__all__ = ["FIRST_ID", "REMOVE", "ItemTable", "comment_item", "encode", "job_item", "story_item"]

#: First id of a new world; arbitrary, but large like real HN ids.
FIRST_ID = 30_000_000


class _Remove:
    """Sentinel type for `REMOVE`."""

    def __repr__(self) -> str:
        return "REMOVE"


#: Pass as a value to `World.corrupt` to delete that field from the item.
REMOVE: Any = _Remove()

_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)


def encode(value: Any) -> bytes:
    """Encode like the Firebase API: compact, keys sorted, UTF-8."""
    return _ENCODER.encode(value).encode("utf-8")


def comment_item(
    item_id: int, parent: int, time: int, status: int, by: str | None = None, text: str | None = None
) -> dict[str, Any]:
    """A comment as HN serves it: a deleted one has no ``by``/``text``; a dead one keeps them.

    `by` and `text` are required for a comment that is not deleted.
    """
    if status in (VISIBLE, DEAD):
        item: dict[str, Any] = {"by": by, "id": item_id, "parent": parent, "text": text, "time": time}
        item["type"] = "comment"
        if status == DEAD:
            item["dead"] = True
        return item
    item = {"deleted": True, "id": item_id, "parent": parent, "time": time, "type": "comment"}
    if status == DELETED_DEAD:
        item["dead"] = True
    return item


def story_item(
    item_id: int, title: str, *, score: int, by: str, time: int, url: str | None = None, text: str | None = None
) -> dict[str, Any]:
    """A story with no comments yet: an Ask HN one (``text``, no ``url``) when given `text` and no `url`."""
    story: dict[str, Any] = {
        "by": by,
        "descendants": 0,
        "id": item_id,
        "score": score,
        "time": time,
        "title": title,
        "type": "story",
    }
    if text is not None and url is None:
        story["text"] = text
    else:
        story["url"] = url or f"https://example.com/{item_id}"
    return story


def job_item(item_id: int, title: str | None, *, by: str, time: int) -> dict[str, Any]:
    """A job ad: a titled link with a score of 1 that never has comments."""
    return {
        "by": by,
        "id": item_id,
        "score": 1,
        "time": time,
        "title": title or f"Acme (YC S{item_id % 30:02d}) is hiring engineers",
        "type": "job",
        "url": f"https://example.com/jobs/{item_id}",
    }


# Moderation, on a served comment's fields. Each returns how the story's visible count moves (-1, 0 or +1),
# or None when the comment already was in that state (nothing changed, nothing to list in updates).


def delete_fields(item: dict[str, Any]) -> int | None:
    """Delete a comment: ``by`` and ``text`` go, ``kids`` stay; a dead comment was not counted anyway."""
    if item.get("deleted") is True:
        return None
    for key in ("by", "text"):
        item.pop(key, None)
    item["deleted"] = True
    return 0 if item.get("dead") is True else -1


def kill_fields(item: dict[str, Any]) -> int | None:
    """Mark a comment dead (``by`` and ``text`` stay); a deleted comment was not counted anyway."""
    if item.get("dead") is True:
        return None
    item["dead"] = True
    return 0 if item.get("deleted") is True else -1


def vouch_fields(item: dict[str, Any]) -> int | None:
    """Bring a dead comment back; it counts again unless it is also deleted."""
    if item.get("dead") is not True:
        return None
    del item["dead"]
    return 0 if item.get("deleted") is True else 1


class ItemTable:
    """Served items by id, their cached JSON, raw-body overrides, id allocation and the change log."""

    def __init__(self, changes: ChangeLog) -> None:
        self.items: dict[int, dict[str, Any]] = {}
        self.changes = changes
        self._next_id = FIRST_ID
        self._cache: dict[int, bytes] = {}
        self._raw: dict[int, bytes] = {}

    @property
    def maxitem(self) -> int:
        """The largest id handed out so far (reserved missing ids included)."""
        return self._next_id - 1

    def new_id(self) -> int:
        """Hand out the next id: always above every id handed out before."""
        new_id = self._next_id
        self._next_id += 1
        return new_id

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
            body = self._cache[item_id] = encode(item)
        return body

    def touch(self, item_id: int) -> None:
        """Record that an item changed: drop its cached JSON and list it in ``updates.json``."""
        self._cache.pop(item_id, None)
        self.changes.record(item_id)

    def is_raw(self, item_id: int) -> bool:
        """Whether the item is served as a raw body (and so is not a usable item)."""
        return item_id in self._raw

    def serve_raw(self, item_id: int, body: bytes | str) -> None:
        """Serve `body` verbatim for this item."""
        self._raw[item_id] = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.touch(item_id)

    def corrupt(self, item_id: int, fields: dict[str, Any]) -> None:
        """Set arbitrary fields on an item (created if absent); a value of `REMOVE` deletes the field."""
        item = self.items.setdefault(item_id, {})
        for key, value in fields.items():
            if value is REMOVE:
                item.pop(key, None)
            else:
                item[key] = value
        try:
            encode(item)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"corrupt: item {item_id} is not JSON-encodable: {exc}") from exc
        self.touch(item_id)

    def existing(self, item_id: int, what: str) -> dict[str, Any]:
        """The item, or a ValueError naming the caller `what`."""
        item = self.items.get(item_id)
        if item is None:
            raise ValueError(f"{what}: item {item_id} does not exist")
        return item

    def comment(self, item_id: int, what: str) -> dict[str, Any]:
        """The comment, or a ValueError naming the caller `what`."""
        item = self.existing(item_id, what)
        if item.get("type") != "comment":
            raise ValueError(f"{what}: item {item_id} is not a comment")
        return item

    def kids_of(self, item_id: int, what: str) -> list[Any]:
        """The item's ``kids`` list, created empty if absent (a hostile non-list is a ValueError)."""
        kids = self.existing(item_id, what).setdefault("kids", [])
        if not isinstance(kids, list):
            raise ValueError(f"{what}: item {item_id} has non-list kids ({type(kids).__name__})")
        return kids

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
