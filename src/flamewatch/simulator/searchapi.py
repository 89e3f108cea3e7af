"""The simulator's side of HN's search API (hn.algolia.com): ``/api/v1/search_by_date?tags=comment,story_<id>``,
a story's live comments as a flat list with their ``parent_id`` (what flamewatch's first counts read,
``[crawl] tree_url``), and ``/api/v1/items/<id>``, its whole tree in one answer.

Like that API the list holds only live comments (the replies under a dead one included), newest first,
at most 1,000 an answer; the tree nests ``children`` under each item, gives a deleted comment with
``author`` and ``text`` null, and leaves out dead comments with everything under them. The official
API's ``descendants`` is what a client must check either against.
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


def comments_of(world: World, story_id: int, limit: int) -> list[dict[str, Any]]:
    """The search API's hits for ``tags=comment,story_<id>``: every live comment of the story, the
    replies under a dead one included (they are ordinary comments), newest first, at most ``limit``."""
    hits = []
    stack = [story_id]
    seen = {story_id}
    while stack:
        item = world.items.get(stack.pop())
        for kid in (item.get("kids") or ()) if isinstance(item, dict) else ():
            child = world.items.get(kid) if isinstance(kid, int) else None
            if not isinstance(child, dict) or kid in seen:
                continue
            seen.add(kid)
            stack.append(kid)
            if not child.get("dead") and not child.get("deleted"):
                hits.append({"objectID": str(kid), "parent_id": child.get("parent"), "story_id": story_id,
                             "author": child.get("by"), "comment_text": child.get("text"),
                             "created_at_i": child.get("time")})
    hits.sort(key=lambda h: (h["created_at_i"] or 0, str(h["objectID"]).zfill(20)), reverse=True)
    return hits[:limit]


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    deleted = bool(item.get("deleted"))
    return {"id": item["id"], "type": item.get("type"), "author": None if deleted else item.get("by"),
            "text": None if deleted else item.get("text"), "title": item.get("title"),
            "points": item.get("score"), "parent_id": item.get("parent"), "created_at_i": item.get("time"),
            "children": []}


def add_search_api(app: web.Application, world_of: Any) -> None:
    """Serve ``GET /api/v1/items/<id>`` and ``/api/v1/search_by_date`` from the world ``world_of(app)`` returns."""

    async def items(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        tree = tree_of(world_of(app), int(raw)) if raw.isascii() and raw.isdigit() else None
        if tree is None:
            return web.json_response({"status": 404, "error": "Not Found"}, status=404)
        return web.Response(body=json.dumps(tree, separators=(",", ":")).encode(), content_type="application/json")

    async def search_by_date(request: web.Request) -> web.Response:
        tags = request.query.get("tags", "").split(",")
        story = next((t[6:] for t in tags if t.startswith("story_")), "")
        if "comment" not in tags or not story.isascii() or not story.isdigit():
            return web.json_response({"status": 400, "error": "only tags=comment,story_<id> is simulated"}, status=400)
        limit = min(1000, int(request.query.get("hitsPerPage", "20") or 20))
        hits = comments_of(world_of(app), int(story), 1_000_000)
        numeric = request.query.get("numericFilters", "")
        if numeric.startswith("created_at_i<="):
            before = int(numeric.removeprefix("created_at_i<="))
            hits = [h for h in hits if (h["created_at_i"] or 0) <= before]
        hits = hits[:limit]
        return web.json_response({"hits": hits, "nbHits": len(hits), "page": 0, "nbPages": 1, "hitsPerPage": limit})

    app.router.add_get("/api/v1/items/{id}", items)
    app.router.add_get("/api/v1/search_by_date", search_by_date)
