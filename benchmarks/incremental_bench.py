"""Benchmark 3: counting at churn far above what ``updates.json`` holds, against the request floor.

The simulator runs in its own process with an *honest* updates list: only the ``updates_limit`` most
recent changes, as HN's is. Each churn cycle the world grows by ten times that many comments (so the list
overflows every cycle), then the counter runs a cycle as the monitor does: topstories, the stream of new
items from ``maxitem``, ``updates.json``, and every watched story. Every count is checked against the
simulator's truth each cycle. The floor a cycle cannot beat is one request per new item and per changed
item the world created (not what the counter chose to re-fetch), plus the watched story items and the
three lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from flamewatch import MemoryState
from flamewatch.hn import HNClient, make_session
from flamewatch.incremental import IncrementalCounter
from flamewatch.stream import ItemStream

from .report import Row, check, spread
from .simserver import SimProcess


@dataclass(frozen=True)
class IncrementalSizes:
    stories: int
    comments: int
    cycles: int  # churn cycles after the priming one
    updates_limit: int = 100
    quiet_cycles: int = 3
    max_inflight: int = 32


async def incremental(sizes: IncrementalSizes) -> list[Row]:
    section = "3 incremental"
    top = sizes.stories + 5  # the whole front page, including stories that grow() may add
    churn = 10 * sizes.updates_limit
    async with SimProcess(stories=sizes.stories, comments=sizes.comments, updates_limit=sizes.updates_limit) as sim, \
            make_session(limit=100) as session:
        client = HNClient(session, sim.base_url, max_inflight=sizes.max_inflight)
        counter = IncrementalCounter(client)
        stream = ItemStream(client, MemoryState(), max_gap=100 * churn)
        stream.subscribe(counter.attach)

        async def cycle() -> tuple[int, int, int, int]:
            """One monitor-like cycle: (requests, new items, re-fetched items, count mismatches)."""
            before, refetched = client.stats.requests, counter.stats.refetched
            ids = (await client.story_ids())[:top]
            batch = await stream.poll()
            if batch.gap:
                counter.forget_all()
            await counter.begin_cycle(ids)
            results = [await counter.count(s) for s in ids]
            spent = client.stats.requests - before
            truth = await sim.control("truth")
            wrong = sum(1 for r in results if r.comments != truth.get(str(r.story_id), r.comments))
            return spent, len(batch.new), counter.stats.refetched - refetched, wrong

        priming = await cycle()
        ratios: list[float] = []
        over_floor: list[int] = []
        mismatches = priming[3]
        first_lag = 0
        within_bound = 0
        streamed = refetches = 0  # new items the stream took, items updates.json made the counter re-fetch
        async def maxitem() -> int:  # read beside the client, so its own request counts stay the cycle's
            async with session.get(f"{sim.base_url}/maxitem.json") as resp:
                return int(await resp.json())

        for n in range(sizes.cycles):
            before = await maxitem()
            await sim.control("grow", n=churn)
            created = await maxitem() - before
            spent, new, refetched, wrong = await cycle()
            mismatches += wrong
            streamed, refetches = streamed + new, refetches + refetched
            if n == 0:
                first_lag = wrong
            # The floor counts what the world changed, the items it created (each must be fetched once),
            # never the counter's own re-fetches, so re-fetching more raises the ratio. (The few deletions
            # and kills a step makes are left out: the floor is, if anything, too low.)
            floor = created + top + 3
            ratios.append(spent / floor)
            over_floor.append(spent - floor)
            if spent <= 1.2 * created + top + 3:
                within_bound += 1
        quiet = [(await cycle())[0] for _ in range(sizes.quiet_cycles)]

    return [
        Row(section, "churn per cycle", churn, "comments",
            note=f"updates.json keeps {sizes.updates_limit}: it overflows every cycle; {sizes.cycles} cycles"),
        check(section, "count mismatches vs truth", mismatches, "", at_most=0,
              note=f"{(sizes.cycles + 1) * top} story counts checked; first churn cycle: {first_lag} behind"),
        check(section, "cycles within 1.2x floor + stories + 3", sizes.cycles - within_bound, "missed", at_most=0,
              note=f"requests / floor: {spread(ratios)}; extra requests: {spread([float(x) for x in over_floor])}; "
                   f"{streamed:,} streamed, {refetches:,} re-fetched in all"),
        check(section, "quiet cycle requests", max(quiet), "req", at_most=top + 3,
              note=f"{top} story items + topstories, maxitem, updates.json"),
        Row(section, "heals / overflows seen", counter.heals, "",
            note=f"{counter.stats.overflows} cycles flagged as overflowed; {counter.full_crawls} full crawls "
                 f"(the priming cycle's included)"),
    ]
