"""A story's first count from one request: its whole tree as HN's search API gives it (``items/<id>``).

The official API answers one item per request, so the first exact count of a 300-comment story costs
300 round trips. HN's search API (hn.algolia.com, which hnrss and others rely on) answers a story's
whole tree, nested, in one. It is another service, so nothing it says is trusted on its own: the tree
is accepted only when its visible comments equal the official story item's ``descendants``, and the
stream of new items and the cross-checks heal the cache from there as after any walk. Anything else (off,
unreachable, an error, too large, malformed, a count that disagrees) leaves the story to the ordinary
walk. Off unless ``[crawl] tree_bootstrap`` is true (``tree_url`` names the API).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .crawl import DELETED, VISIBLE, CrawlResult, Node, cache_node, status_of
from .hn import FetchError, HNClient, Item
from .hn.item import is_item_id

__all__ = ["MAX_TREE_BYTES", "Tree", "TreeSource", "parse_tree"]

log = logging.getLogger("flamewatch.bootstrap")

#: The largest tree answer read (HN's biggest threads, a few thousand comments, are a few MB).
MAX_TREE_BYTES = 32 * 1024 * 1024

#: How many comments of a story the search API lists at once (its own cap), and the most parents a
#: mend fetches (a thread with more dead comments than this is walked instead).
MAX_LISTED = 1000
MAX_MENDED = 200
MAX_PAGES = 20


@dataclass
class Tree:
    """A parsed tree: the cache's nodes (the story's included) and what they count."""

    nodes: dict[int, Node]
    comments: int
    deleted: int
    max_depth: int

    def result(self, story: Item) -> CrawlResult:
        return CrawlResult(story.id, story=story, comments=self.comments, deleted=self.deleted,
                           max_depth_seen=self.max_depth)


def parse_tree(data: Any, story_id: int, max_items: int) -> Tree | None:
    """The tree in ``data`` (the search API's nested shape), or None when it is not a sound one.

    Iterative (a chain can be 50,000 deep); a repeated id, an id that is not an HN id, a root that is
    not the story, or more than ``max_items`` items make it unsound: the walk knows how to count those.
    """
    if not isinstance(data, dict) or data.get("id") != story_id:
        return None
    nodes: dict[int, Node] = {}
    seen = {story_id}
    comments = deleted = deepest = 0
    stack: list[tuple[dict[str, Any], int]] = [(data, 0)]
    while stack:
        entry, depth = stack.pop()
        children = entry.get("children") or []
        if not isinstance(children, list):
            return None
        kids: list[int] = []
        for child in children:
            kid = child.get("id") if isinstance(child, dict) else None
            if not isinstance(kid, int) or not is_item_id(kid) or kid in seen:
                return None
            seen.add(kid)
            kids.append(kid)
            stack.append((child, depth + 1))
        item_id = entry["id"]
        if depth == 0:
            nodes[item_id] = Node(VISIBLE, tuple(kids))
            continue
        gone = entry.get("author") is None and entry.get("text") is None
        status = DELETED if gone else VISIBLE
        nodes[item_id] = cache_node(status, tuple(kids))
        deleted += gone
        comments += not gone
        deepest = max(deepest, depth)
        if len(nodes) > max_items:
            return None
    return Tree(nodes, comments, deleted, deepest)


class TreeSource:
    """Fetches trees from a search API at ``base_url`` (``<base_url>/items/<id>``) on the client's session."""

    def __init__(self, client: HNClient, base_url: str, *, max_items: int) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.max_items = max_items
        self.accepted = 0  # trees the counter kept (their count agreed with descendants)
        self.refused = 0

    async def tree(self, story: Item) -> Tree | None:
        """The story's tree, when the search API gives a sound one (the counter checks it against
        ``descendants`` once it has fetched what the tree lacks); None sends the story to the walk."""
        if story.descendants is None:
            return None
        url = f"{self.base_url}/items/{story.id}"
        self.client.stats.requests += 1
        try:
            async with self.client.session.get(url, timeout=self.client.timeout, allow_redirects=False) as resp:
                if resp.status != 200 or (resp.content_length or 0) > MAX_TREE_BYTES:
                    return self._refuse(story, f"HTTP {resp.status}, {resp.content_length} bytes")
                body = await _read_capped(resp)
            tree = parse_tree(orjson.loads(body), story.id, self.max_items) if body is not None else None
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, RecursionError) as exc:
            return self._refuse(story, type(exc).__name__)
        if tree is None:
            return self._refuse(story, "not a sound tree")
        return tree

    async def mend(self, story: Item, nodes: dict[int, Node]) -> list[int]:
        """Hang back into ``nodes`` the dead comments the tree left out together with their live replies.

        The search API's per-story comment list (``search_by_date?tags=comment,story_<id>``) still holds
        those replies, with their ``parent_id``: each parent the
        tree lacks is fetched from the official API (and its own parents, up to one the tree holds) and
        listed under that one. A walk over ``nodes`` then fetches the replies themselves. Returns the ids
        added (empty: nothing to mend, or the list could not be read).
        """
        hits = await self._comments(story)
        if hits is None:
            return []
        missing = {h.get("parent_id") for h in hits if isinstance(h, dict)} - nodes.keys()
        added: list[int] = []
        for parent in sorted(p for p in missing if isinstance(p, int) and is_item_id(p))[:MAX_MENDED]:
            added += await self._hang(parent, nodes)
        return added

    async def _comments(self, story: Item) -> list[dict[str, Any]] | None:
        """Every comment the search API lists for ``story``, newest first, a page of :data:`MAX_LISTED`
        at a time (it lists no more than that for one query, so each page asks for older ones)."""
        url = f"{self.base_url}/search_by_date"
        found: dict[str, dict[str, Any]] = {}
        before: int | None = None
        for _ in range(MAX_PAGES):
            params = {"tags": f"comment,story_{story.id}", "hitsPerPage": str(MAX_LISTED)}
            if before is not None:  # "<=": comments made in the same second as the last page's oldest
                params["numericFilters"] = f"created_at_i<={before}"
            self.client.stats.requests += 1
            try:
                async with self.client.session.get(url, params=params, timeout=self.client.timeout,
                                                   allow_redirects=False) as resp:
                    body = await _read_capped(resp) if resp.status == 200 else None
                hits = orjson.loads(body).get("hits") if body is not None else None
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, AttributeError) as exc:
                log.debug("story %d: no comment list (%s)", story.id, type(exc).__name__)
                return None
            if not isinstance(hits, list):
                return None
            fresh = [h for h in hits if isinstance(h, dict) and str(h.get("objectID")) not in found]
            found.update((str(h.get("objectID")), h) for h in fresh)
            times = [h.get("created_at_i") for h in hits if isinstance(h, dict)]
            if len(hits) < MAX_LISTED or not fresh or not all(isinstance(t, int) for t in times):
                break
            before = min(t for t in times if isinstance(t, int))
        return list(found.values())

    async def _hang(self, item_id: int, nodes: dict[int, Node]) -> list[int]:
        """Fetch ``item_id`` and the ancestors the tree lacks, and list each under its parent."""
        added: list[int] = []
        for _ in range(MAX_MENDED):
            if item_id in nodes:
                break
            try:
                item = await self.client.item(item_id)
            except FetchError:
                return added
            if item is None or item.parent is None:
                return added
            nodes[item_id] = cache_node(status_of(item), item.kids)
            added.append(item_id)
            parent = nodes.get(item.parent)
            if parent is not None:
                if item_id not in parent.kids:
                    nodes[item.parent] = Node(parent.status, (*parent.kids, item_id))
                break
            item_id = item.parent
        return added

    def _refuse(self, story: Item, why: str) -> Tree | None:
        """Count and log a refusal; always None (the story is walked)."""
        self.refused += 1
        log.debug("story %d: no tree from %s (%s): walking it", story.id, self.base_url, why)
        return None


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes | None:
    """The whole body, or None once it grows past :data:`MAX_TREE_BYTES` (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_TREE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
