"""Benchmarks 1 and 2: full-crawl throughput against the baselines, and throughput under latency.

Every contender crawls the same world in a simulator process of its own, one after another, in
alternating order over several rounds; the figure kept for each is its median rate. Rates are item
requests per second as the *server* counted them, so nobody grades their own homework.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import orjson

from flamewatch.crawl import count_story
from flamewatch.hn import HNClient, make_session

from .baselines import bare_workers, seed_count
from .report import Row, check, spread
from .simserver import SimProcess


@dataclass(frozen=True)
class CrawlSizes:
    stories: int
    comments: int
    rounds: int
    max_inflight: int = 32
    #: Watched-set sizes for the CPU-per-item scaling rows (about 60 comments a story, as on HN).
    scaling: tuple[int, ...] = ()


@dataclass
class Run:
    rate: float  # item requests per second, counted by the server
    server_max_inflight: int
    cpu_per_item_us: float  # client CPU time per item request


async def _measure(sim: SimProcess, work: Callable[[], Awaitable[object]]) -> Run:
    await sim.control("reset")
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = await sim.control("stats")
    items = stats["item_requests"]
    return Run(items / wall, stats["max_inflight"], cpu / max(1, items) * 1e6)


async def flamewatch_crawl(base_url: str, story_ids: list[int], max_inflight: int) -> tuple[int, int]:
    """Count every story with ``count_story`` as the monitor does (all at once, one client); (comments, client max)."""
    async with make_session(limit=max(100, max_inflight * 2)) as session:
        client = HNClient(session, base_url, max_inflight=max_inflight)
        results = await asyncio.gather(*(count_story(client, s) for s in story_ids))
        return sum(r.comments for r in results), client.stats.max_inflight_seen


async def throughput(sizes: CrawlSizes) -> list[Row]:
    """Benchmark 1: flamewatch vs a bare flat fetch vs the seed's unbounded recursion, same world."""
    section = "1 full crawl"
    n = sizes.max_inflight
    async with SimProcess(stories=sizes.stories, comments=sizes.comments) as sim:
        ids = await sim.control("ids")
        truth = await sim.control("truth")
        story_ids = [int(s) for s in truth]
        true_total = sum(truth.values())
        client_max = 0
        counted = 0

        async def fw() -> None:
            nonlocal client_max, counted
            counted, client_max = await flamewatch_crawl(sim.base_url, story_ids, n)

        async def bare() -> None:
            async with aiohttp.ClientSession() as session:
                await bare_workers(session, sim.base_url, ids, n)

        async def bare_orjson() -> None:
            async with aiohttp.ClientSession() as session:
                await bare_workers(session, sim.base_url, ids, n, loads=orjson.loads)

        async def seed() -> None:
            async with aiohttp.ClientSession() as session:
                await seed_count(session, sim.base_url, story_ids)

        contenders = {"flamewatch": fw, "bare": bare, "bare_orjson": bare_orjson, "seed": seed}
        runs: dict[str, list[Run]] = {name: [] for name in contenders}
        await bare()  # warm-up: first connections, the server's JSON cache, the client's imports
        for round_no in range(sizes.rounds):
            order = list(contenders)
            if round_no % 2:
                order.reverse()
            for name in order:
                runs[name].append(await _measure(sim, contenders[name]))

    def med(name: str) -> float:
        return statistics.median(r.rate for r in runs[name])

    def cpu(name: str) -> float:
        return statistics.median(r.cpu_per_item_us for r in runs[name])

    fw_rate, bare_rate, seed_rate = med("flamewatch"), med("bare"), med("seed")
    spread = ", ".join(f"{r.rate:,.0f}" for r in runs["flamewatch"])
    return [
        Row(section, "world: items (stories + comments)", len(ids), "items",
            note=f"{len(story_ids)} stories, {sizes.rounds} round(s), median kept, {n} in flight"),
        Row(section, "flamewatch count_story", fw_rate, "items/s",
            note=f"{cpu('flamewatch'):.0f} us CPU/item; runs: {spread}"),
        Row(section, f"bare {n}-worker read + json.loads", bare_rate, "items/s",
            note=f"{cpu('bare'):.0f} us CPU/item"),
        Row(section, "bare loop decoding with orjson", med("bare_orjson"), "items/s",
            note=f"{cpu('bare_orjson'):.0f} us CPU/item: the yardstick for flamewatch's own decoder"),
        Row(section, "seed unbounded gather", seed_rate, "items/s", note=f"{cpu('seed'):.0f} us CPU/item"),
        check(section, "flamewatch / bare", fw_rate / bare_rate, "x", at_least=0.9),
        check(section, "flamewatch / seed", fw_rate / seed_rate, "x", at_least=1.0),
        Row(section, "client CPU per item, flamewatch / bare", cpu("flamewatch") / cpu("bare"), "x",
            note="the rate ratio to expect when the client's core, not the server, is the limit"),
        Row(section, "client CPU per item, flamewatch / bare orjson", cpu("flamewatch") / cpu("bare_orjson"), "x",
            note="stricter still: the bare loop with flamewatch's decoder"),
        check(section, "count == simulator truth", abs(counted - true_total), "off", at_most=0,
              note=f"{counted} counted, {true_total} true"),
        check(section, "client max in flight", client_max, "", at_most=n,
              note="server sees 1 here: with no latency the simulator answers each request without yielding"),
        *[await _cpu_at(section, stories, sizes) for stories in sizes.scaling],
    ]


async def _cpu_at(section: str, stories: int, sizes: CrawlSizes) -> Row:
    """Client CPU per item, flamewatch / the bare worker loop, counting ``stories`` stories at once.

    Each round runs the two in the order A B B A and compares the sums, so a machine that slows down or
    speeds up during the round (a shared VM does, by 10-30%) weighs on both alike.
    """
    n = sizes.max_inflight
    async with SimProcess(stories=stories, comments=60 * stories) as sim:
        ids = await sim.control("ids")
        story_ids = [int(s) for s in await sim.control("truth")]

        async def bare() -> None:
            async with aiohttp.ClientSession() as session:
                await bare_workers(session, sim.base_url, ids, n)

        async def fw() -> None:
            await flamewatch_crawl(sim.base_url, story_ids, n)

        await bare()  # warm-up
        ratios = []
        for round_no in range(max(5, sizes.rounds)):
            first, second = (("bare", bare), ("fw", fw)) if round_no % 2 else (("fw", fw), ("bare", bare))
            cpu = {"fw": 0.0, "bare": 0.0}
            for name, work in (first, second, second, first):
                cpu[name] += (await _measure(sim, work)).cpu_per_item_us
            ratios.append(cpu["fw"] / cpu["bare"])
    return check(section, f"CPU per item vs bare, {stories} stories", statistics.median(ratios), "x",
                 at_most=1.1, note=f"{len(ids):,} items; {spread(ratios)} over {len(ratios)} rounds of A B B A")


async def under_latency(sizes: CrawlSizes, latency: float) -> list[Row]:
    """Benchmark 2: requests/s with ``latency`` per request, as a share of max_inflight / latency.

    The simulator answers each request ``latency`` after it arrived (its own work inside that time, as a
    real server's is inside a real round trip) and reports the mean time it actually held them: timers
    fire a little late, so that mean is shown beside the nominal figure. The bare worker loop runs in the
    same rounds as the strictest yardstick: it keeps every slot busy all the time, which a tree walk can
    only approach.
    """
    section = "2 latency"
    n = sizes.max_inflight
    async with SimProcess(stories=sizes.stories, comments=sizes.comments) as sim:
        story_ids = [int(s) for s in await sim.control("truth")]
        ids = await sim.control("ids")
        await sim.control("latency", seconds=latency)

        async def bare() -> None:
            async with aiohttp.ClientSession() as session:
                await bare_workers(session, sim.base_url, ids, n)

        async def fw() -> None:
            await flamewatch_crawl(sim.base_url, story_ids, n)

        runs: dict[str, list[Run]] = {"fw": [], "bare": []}
        held: list[float] = []
        for round_no in range(max(3, sizes.rounds)):
            order = ["fw", "bare"] if round_no % 2 == 0 else ["bare", "fw"]
            for name in order:
                runs[name].append(await _measure(sim, fw if name == "fw" else bare))
                if name == "fw":
                    held.append((await sim.control("stats"))["mean_latency"] or latency)

        async def seed() -> None:
            async with aiohttp.ClientSession() as session:
                await seed_count(session, sim.base_url, story_ids)

        seed_run = await _measure(sim, seed)
    ceiling = n / latency
    fw_shares = [r.rate / ceiling for r in runs["fw"]]
    bare_shares = [r.rate / ceiling for r in runs["bare"]]
    mean_held = statistics.median(held)
    return [
        Row(section, "world: items", len(ids), "items",
            note=f"{latency * 1000:g} ms per request, {n} in flight, {len(fw_shares)} rounds, median kept"),
        Row(section, "flamewatch requests/s", statistics.median(r.rate for r in runs["fw"]), "req/s",
            note=f"ceiling {ceiling:,.0f} = {n} / {latency:g}s"),
        check(section, "flamewatch / ceiling", statistics.median(fw_shares), "x", at_least=0.95,
              note=spread(fw_shares)),
        Row(section, "bare worker loop / ceiling", statistics.median(bare_shares), "x", note=spread(bare_shares)),
        Row(section, "latency the server really gave", mean_held * 1000, "ms",
            note=f"mean arrival-to-answer; the ceiling at it is {n / mean_held:,.0f} req/s"),
        check(section, "server max in flight", max(r.server_max_inflight for r in runs["fw"]), "", at_most=n),
        Row(section, "seed: server max in flight", seed_run.server_max_inflight, "",
            note=f"unbounded fan-out, capped only by aiohttp's 100 connections; {seed_run.rate:,.0f} req/s"),
    ]
