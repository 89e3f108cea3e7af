"""The simulator's ``/api/v1/items/<id>``: a story's whole tree in one answer, in the shape of HN's
search API (hn.algolia.com), which flamewatch can use to bootstrap a first count (``[crawl] tree_url``).

Like that API it nests ``children`` under each item, gives a deleted comment with ``author`` and
``text`` null, and leaves out dead comments with everything under them; the official API's
``descendants`` is what a client must check the tree against.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .world import World

__all__ = ["add_search_api"]


def tree_of(world: World, story_id: int) -> dict[str, Any] | None:
    """The nested tree of ``story_id`` as the search API gives it (no recursion: chains can be deep)."""
    story = world.items.get(story_id)
    if not isinstance(story, dict):
        return None
    root = _entry(story)
    stack = [(root, story)]
    seen = {story_id}
    while stack:
        entry, item = stack.pop()
        for kid in item.get("kids") or ():
            child = world.items.get(kid) if isinstance(kid, int) else None
            if not isinstance(child, dict) or child.get("dead") or kid in seen:
                continue
            seen.add(kid)
            node = _entry(child)
            entry["children"].append(node)
            stack.append((node, child))
    return root


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    deleted = bool(item.get("deleted"))
    return {"id": item["id"], "type": item.get("type"), "author": None if deleted else item.get("by"),
            "text": None if deleted else item.get("text"), "title": item.get("title"),
            "points": item.get("score"), "parent_id": item.get("parent"), "created_at_i": item.get("time"),
            "children": []}


def add_search_api(app: web.Application, world_of: Any) -> None:
    """Serve ``GET /api/v1/items/<id>`` from the world ``world_of(app)`` returns."""

    async def items(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        tree = tree_of(world_of(app), int(raw)) if raw.isascii() and raw.isdigit() else None
        if tree is None:
            return web.json_response({"status": 404, "error": "Not Found"}, status=404)
        return web.Response(body=json.dumps(tree, separators=(",", ":")).encode(), content_type="application/json")

    app.router.add_get("/api/v1/items/{id}", items)
