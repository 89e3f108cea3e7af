"""Benchmark 3: steady-state cost of IncrementalCounter when about 1% of items change per cycle.

Each cycle: the simulator grows one step (about 1% of the items change), the incremental counter runs
a cycle as the monitor would (topstories, updates.json, every story), and then -- outside the figures --
a plain full crawl and the simulator's ground truth check that the incremental counts are exact.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from dataclasses import dataclass

from flamewatch.crawl import count_story
from flamewatch.incremental import IncrementalCounter
from flamewatch.hn import HNClient, make_session

from .report import Row, check
from .simserver import SimProcess


@dataclass(frozen=True)
class IncrementalSizes:
    stories: int
    comments: int
    cycles: int  # steady-state cycles after the priming one (kept below RECHECK_EVERY)
    change_share: float = 0.01
    max_inflight: int = 32


# World.grow(n) changes each new comment, usually its parent, and its story: about 2.5 items per comment.
ITEMS_CHANGED_PER_COMMENT = 2.5


async def incremental(sizes: IncrementalSizes) -> list[Row]:
    section = "3 incremental"
    top = sizes.stories + 5  # the whole front page, including stories that grow() may add
    async with SimProcess(stories=sizes.stories, comments=sizes.comments) as sim, \
            make_session(limit=100) as session:
        inc_client = HNClient(session, sim.base_url, max_inflight=sizes.max_inflight)
        full_client = HNClient(session, sim.base_url, max_inflight=sizes.max_inflight)
        counter = IncrementalCounter(inc_client)
        items = len(await sim.control("ids"))
        per_step = max(1, math.ceil(items * sizes.change_share / ITEMS_CHANGED_PER_COMMENT))

        shares: list[float] = []  # incremental requests / full-crawl requests, per steady cycle
        changed_shares: list[float] = []
        inc_requests: list[int] = []
        mismatches = 0
        unchanged_item_requests = 0
        unchanged_stories = 0
        for cycle in range(sizes.cycles + 1):
            if cycle:
                grown = await sim.control("grow", n=per_step)
                changed_shares.append(grown["changed"] / grown["items"])
            await sim.control("reset")
            before = inc_client.stats.requests
            ids = (await inc_client.story_ids())[:top]
            await counter.begin_cycle(ids)
            results = await asyncio.gather(*(counter.count(s) for s in ids))
            spent = inc_client.stats.requests - before
            stats = await sim.control("stats", per_story=1)

            # Correctness, outside the figures: a full crawl and the simulator's truth must agree.
            full_before = full_client.stats.requests
            full = await asyncio.gather(*(count_story(full_client, s) for s in ids))
            full_cost = full_client.stats.requests - full_before + 1  # + the topstories request
            truth = await sim.control("truth")
            for inc, ref in zip(results, full, strict=True):
                expected = truth.get(str(ref.story_id), ref.comments)
                if inc.comments != ref.comments or ref.comments != expected:
                    mismatches += 1
            if cycle == 0:
                continue  # the priming cycle is a full crawl by design
            inc_requests.append(spent)
            shares.append(spent / full_cost)
            named = {str(s) for s in stats["named_in_updates"]}
            for sid, n in stats["per_story"].items():
                if sid not in named and int(sid) in ids:
                    unchanged_stories += 1
                    unchanged_item_requests += n

    mean_share = statistics.mean(shares) * 100
    return [
        Row(section, "world: items", items, "items",
            note=f"{sizes.cycles} steady cycles, grow({per_step}) each: "
                 f"{statistics.mean(changed_shares) * 100:.2f}% of items changed per cycle"),
        Row(section, "requests per steady cycle", statistics.mean(inc_requests), "req",
            note=f"min {min(inc_requests)}, max {max(inc_requests)}; full crawl {full_cost}"),
        check(section, "steady cycle / full crawl", mean_share, "%", at_most=2.0,
              note=f"worst cycle {max(shares) * 100:.2f}%"),
        check(section, "item requests, unchanged stories", unchanged_item_requests, "req", at_most=0,
              note=f"over {unchanged_stories} story-cycles not named in updates.json"),
        check(section, "count mismatches vs full crawl", mismatches, "", at_most=0,
              note=f"{(sizes.cycles + 1) * len(ids)} story counts checked against a full crawl and the truth"),
        Row(section, "heals / full crawls by the counter", counter.heals, "",
            note=f"{counter.full_crawls} full crawls (the priming cycle's included)"),
    ]
