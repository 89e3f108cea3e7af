"""The two yardsticks flamewatch's crawler is measured against.

* :func:`bare_workers` -- the ceiling for one Python process: a flat list of known item ids fetched by
  a fixed set of worker loops, with no tree logic at all (it cannot count anything; it only shows what
  aiohttp and ``json.loads`` cost per item at that concurrency). :func:`bare_fetch` is the older, softer
  yardstick (a task per item behind one semaphore).
* :func:`seed_count` -- the seed article's algorithm, re-implemented: fetch an item, then ``gather`` the
  same coroutine over its kids and add ``len(kids)``. No bound on fan-out, no cycle guard, no error
  handling, and (like the article) it counts every kid, deleted and dead ones included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp


async def bare_fetch(session: aiohttp.ClientSession, base_url: str, ids: list[int], concurrency: int) -> int:
    """Fetch and decode every item in ``ids`` with at most ``concurrency`` requests in flight; items fetched."""
    permits = asyncio.Semaphore(concurrency)
    base = base_url.rstrip("/")

    async def one(item_id: int) -> None:
        async with permits, session.get(f"{base}/item/{item_id}.json") as resp:
            body = await resp.read()
        json.loads(body)

    await asyncio.gather(*(one(i) for i in ids))
    return len(ids)


async def bare_workers(
    session: aiohttp.ClientSession, base_url: str, ids: list[int], workers: int,
    loads: Callable[[bytes], Any] = json.loads,
) -> int:
    """The strictest fair baseline: ``workers`` loops each doing read + ``json.loads`` over a shared id list.

    No task per item, no semaphore, no tree: the least CPU per item one asyncio process can spend on
    fetching and decoding at that concurrency. ``loads=orjson.loads`` gives the yardstick for a client
    that decodes with orjson, as flamewatch does.
    """
    base = base_url.rstrip("/")
    queue = iter(ids)

    async def worker() -> None:
        for item_id in queue:
            async with session.get(f"{base}/item/{item_id}.json") as resp:
                body = await resp.read()
            loads(body)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(ids)


class SeedCounter:
    """The seed's recursive fan-out / fan-in, with its fetch counter made per-object."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.fetches = 0

    async def fetch(self, item_id: int) -> dict[str, Any]:
        self.fetches += 1
        async with self.session.get(f"{self.base}/item/{item_id}.json") as resp:
            return json.loads(await resp.read())

    async def count(self, item_id: int) -> int:
        """Comments under ``item_id``: ``len(kids)`` plus, recursively, each kid's own count."""
        item = await self.fetch(item_id)
        kids = item.get("kids") or []
        if not kids:
            return 0
        counts = await asyncio.gather(*(self.count(kid) for kid in kids))
        return len(kids) + sum(counts)


async def seed_count(session: aiohttp.ClientSession, base_url: str, story_ids: list[int]) -> tuple[int, int]:
    """Count every story the seed's way, all stories at once; (comments incl. deleted/dead, fetches)."""
    counter = SeedCounter(session, base_url)
    totals = await asyncio.gather(*(counter.count(s) for s in story_ids))
    return sum(totals), counter.fetches
