"""A story's first count from one request: its comment list as HN's search API gives it.

The official API answers one item per request, so the first exact count of a 300-comment story costs
300 round trips. HN's search API (hn.algolia.com, which hnrss and others rely on) lists a story's live
comments, each with its ``parent_id``, up to 1,000 in one answer (``search_by_date?tags=comment,story_<id>``;
a bigger story takes a page per 1,000). That is all a count needs: the live comments are the count, and
their parents place them. A parent the list lacks is a dead or deleted comment (the list holds only live
ones, while HN's ``descendants`` counts the live replies under a dead comment too): one of the story's own
kids hangs there, any other is kept as an *orphan*, a root of its own whose place in the tree is unknown
(the counter walks it with the tree, so recounts from the cache still count its replies). The story's kids
the list does not mention are dead or deleted leaves.

It is another service, so nothing it says is trusted on its own: the tree is kept only when its count
equals the official story item's ``descendants``, and the stream of new items and the cross-checks heal
the cache from there as after any walk (the first full walk puts the orphans in their place). Anything
else (off, unreachable, an error, too large, malformed, hostile, a count that disagrees) leaves the story
to the ordinary walk. Off unless ``[crawl] tree_bootstrap`` is true (``tree_url`` names the API).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .crawl import GONE, VISIBLE, Node, cache_node
from .hn import HNClient, Item
from .hn.item import is_item_id

__all__ = ["MAX_TREE_BYTES", "Tree", "TreeSource", "Unusable", "build_tree", "take_page"]

log = logging.getLogger("flamewatch.bootstrap")

#: The most read of one story's comment list, all its pages together (HN's biggest threads, a few
#: thousand comments, are a few MB).
MAX_TREE_BYTES = 32 * 1024 * 1024

#: How many comments of a story the search API lists at once (its own cap), and the most pages read.
MAX_LISTED = 1000
MAX_PAGES = 20


class Unusable(Exception):
    """Why a story's comment list cannot give its first count (one line, for the log)."""


@dataclass
class Tree:
    """The cache's nodes built from a comment list (the story's own node included), the roots whose place
    is unknown, how many live comments it lists and how many requests it took."""

    nodes: dict[int, Node]
    orphans: tuple[int, ...]
    listed: int
    pages: int = 0


def _hn_id(value: object) -> int | None:
    """An id as the search API writes it (``objectID`` is a string of digits), or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    return value if is_item_id(value) else None


def take_page(hits: Any, story_id: int, found: dict[int, int]) -> tuple[int, int | None]:
    """Add one page of hits to ``found`` (comment id -> parent id): how many were new, and the oldest
    ``created_at_i`` on the page (None when a hit lacks one). Raises :class:`Unusable` on a hit that is not
    an HN comment of ``story_id``, one listed twice on a page, or one listed again under another parent."""
    if not isinstance(hits, list):
        raise Unusable("no list of hits")
    page: set[int] = set()
    fresh, oldest, timed = 0, 0, True
    for hit in hits:
        if not isinstance(hit, dict):
            raise Unusable("a hit that is not an object")
        item_id, parent = _hn_id(hit.get("objectID")), hit.get("parent_id")
        if item_id is None or not is_item_id(parent) or item_id == story_id:
            raise Unusable(f"hit {str(hit.get('objectID'))[:20]!r}: not a comment id and a parent id")
        if hit.get("story_id") != story_id:
            raise Unusable(f"comment {item_id} is listed for story {str(hit.get('story_id'))[:20]}")
        if item_id in page:
            raise Unusable(f"comment {item_id} listed twice")
        page.add(item_id)
        known = found.get(item_id)
        if known is None:
            found[item_id] = parent
            fresh += 1
        elif known != parent:  # pages overlap by the second they meet at: the same comment, the same parent
            raise Unusable(f"comment {item_id} listed under parents {known} and {parent}")
        created = hit.get("created_at_i")
        if not isinstance(created, int) or isinstance(created, bool):
            timed = False
        elif oldest == 0 or created < oldest:
            oldest = created
    return fresh, oldest if timed and hits else None


def build_tree(parents: dict[int, int], story_id: int, top: Sequence[int], max_items: int) -> Tree:
    """The cache's nodes for ``story_id`` (whose official kids are ``top``) from its live comments'
    ``parents``. Raises :class:`Unusable` when more than ``max_items`` items would be cached, or when a
    listed comment hangs under neither the story nor an orphan (a cycle of parents) or is reached twice."""
    if len(parents) > max_items:
        raise Unusable(f"more than {max_items} comments")
    kids: dict[int, list[int]] = {}
    for item_id, parent in parents.items():
        kids.setdefault(parent, []).append(item_id)
    nodes: dict[int, Node] = {story_id: Node(VISIBLE, tuple(top))}
    for item_id in parents:
        nodes[item_id] = cache_node(VISIBLE, tuple(kids.get(item_id, ())))
    placed = set(top)
    orphans: list[int] = []
    for parent, under in kids.items():
        if parent not in nodes:  # neither the story nor listed: a dead or deleted comment
            nodes[parent] = Node(GONE, tuple(under))
            if parent not in placed:
                orphans.append(parent)
    for kid in top:
        if kid not in nodes:  # dead or deleted, and nothing live under it
            nodes[kid] = cache_node(GONE, ())
    if len(nodes) > max_items + 1:
        raise Unusable(f"more than {max_items} items")
    _check_reach(nodes, [story_id, *orphans])
    return Tree(nodes, tuple(orphans), len(parents))


def _check_reach(nodes: dict[int, Node], roots: list[int]) -> None:
    """Every node is reached exactly once from ``roots`` (iteratively: a chain can be 50,000 deep)."""
    seen = set(roots)
    stack = list(roots)
    while stack:
        for kid in nodes[stack.pop()].kids:
            if kid in seen:
                raise Unusable(f"comment {kid} is reached twice")
            seen.add(kid)
            stack.append(kid)
    if len(seen) != len(nodes):
        raise Unusable(f"{len(nodes) - len(seen)} comment(s) under neither the story nor a dead comment")


class TreeSource:
    """Builds first-count trees from the search API at ``base_url`` (``<base_url>/search_by_date``), on the
    client's session."""

    def __init__(self, client: HNClient, base_url: str, *, max_items: int) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.max_items = max_items
        self.accepted = 0  # trees the counter kept (their count agreed with descendants)
        self.refused = 0

    async def tree(self, story: Item) -> Tree | None:
        """The story's tree from its comment list, when the list is sound (the counter checks its count
        against ``descendants``); None sends the story to the walk (as does a story with no kids: the walk
        costs nothing then)."""
        if story.descendants is None or not story.kids:
            return None
        try:
            parents, pages = await self._comments(story)
            tree = build_tree(parents, story.id, story.kids, self.max_items)
        except Unusable as exc:
            self.refuse(story, str(exc))
            return None
        tree.pages = pages
        log.debug("story %d: %d comments listed, %d dead or deleted parents of unknown place", story.id,
                  tree.listed, len(tree.orphans))
        return tree

    def refuse(self, story: Item, why: str) -> None:
        """Count and log a refusal (the story is walked)."""
        self.refused += 1
        log.debug("story %d: no first count from %s (%s): walking it", story.id, self.base_url, why)

    async def _comments(self, story: Item) -> tuple[dict[int, int], int]:
        """Every comment the search API lists for ``story`` (id -> parent id) and the pages read: newest
        first, :data:`MAX_LISTED` a page (it lists no more for one query, so each page asks for older ones)."""
        url = f"{self.base_url}/search_by_date"
        found: dict[int, int] = {}
        budget = MAX_TREE_BYTES
        before: int | None = None
        for page in range(1, MAX_PAGES + 1):
            params = {"tags": f"comment,story_{story.id}", "hitsPerPage": str(MAX_LISTED)}
            if before is not None:  # "<=": comments made in the same second as the last page's oldest
                params["numericFilters"] = f"created_at_i<={before}"
            body = await self._get(url, params, budget)
            budget -= len(body)
            try:
                hits = orjson.loads(body).get("hits")
            except (orjson.JSONDecodeError, AttributeError):
                raise Unusable("not a JSON object") from None
            fresh, oldest = take_page(hits, story.id, found)
            if len(found) > self.max_items:
                raise Unusable(f"more than {self.max_items} comments")
            if len(hits) < MAX_LISTED:
                return found, page
            if not fresh or oldest is None:
                raise Unusable("a full page with nothing new or no times: cannot ask for older ones")
            before = oldest
        raise Unusable(f"more than {MAX_PAGES} pages")

    async def _get(self, url: str, params: dict[str, str], budget: int) -> bytes:
        self.client.stats.requests += 1
        try:
            async with self.client.session.get(url, params=params, timeout=self.client.timeout,
                                               allow_redirects=False) as resp:
                if resp.status != 200 or (resp.content_length or 0) > budget:
                    raise Unusable(f"HTTP {resp.status}, {resp.content_length} bytes")
                body = await _read_capped(resp, budget)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unusable(type(exc).__name__) from None
        if body is None:
            raise Unusable(f"over {MAX_TREE_BYTES} bytes")
        return body


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None once it grows past ``limit`` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
