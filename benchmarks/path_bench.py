"""Benchmark 10: the path users run (``flamewatch once`` and ``run``), against the strictest fair baseline.

Benchmarks 1 and 2 time ``count_story`` alone; a user's cycle also runs the ``App``: the incremental
counter, the stream of new items, the store (samples, fired keys, the outbox) and the events. Here:

* **CPU per item, once / bare loop** at 30, 100 and 500 stories (about 60 comments each): one cycle of a
  real ``App`` with default settings and a fresh store (every level fires, as on a first run), against
  the bare 32-worker loop (read + ``orjson.loads``, the App's decoder; no tree, no store) over the same
  items, in the same process, as A B B A rounds; the median ratio of the sums, with its spread. The simulator serves
  ``updates.json`` bounded as HN's is, and the App is opened and closed outside the measured span.
* **Instructions per item, once / bare loop** (callgrind, which repeats within 0.1% where CPU time
  drifts by 10-30% on a shared VM): each contender runs in a process of its own under
  ``valgrind --tool=callgrind``, once doing the work and once doing everything but the work (imports,
  App or session opened and closed, ``benchmarks.pathprobe --idle``); the difference, per item request
  the server counted, is the work's own. Skipped when valgrind is not installed. At the first size, the
  same bare loop decoding with the standard library's ``json.loads`` (the softer baseline used before) is
  shown for reference.
* **Long life**: 30 stories watched by one App. Quiet cycles (nothing changed) are timed on a fresh
  store, then the store is filled with 7 days of samples at a 60 s period (what a week-old daemon holds)
  and the same cycles are timed again: the ratio must stay near 1 (the per-cycle work must not grow with
  the history). A quiet cycle is also compared with the bare cost of its own requests (the story items,
  the list, ``maxitem``, ``updates.json``, fetched by the bare loop): everything a quiet cycle does
  beyond fetching is in that ratio. CPU time is informational there; the ratio that decides the target is
  in instructions (``pathprobe quiet`` / ``paths`` under callgrind, each less its run with 0 cycles or passes).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.store import CountSample

from .baselines import bare_workers
from .report import Row, check, spread
from .simserver import SimProcess

SECTION = "10 users' path"


@dataclass(frozen=True)
class PathSizes:
    scaling: tuple[int, ...] = (30, 100, 500)
    comments_per_story: int = 60
    rounds: int = 5
    quiet_cycles: int = 15
    days: float = 7.0
    period: float = 60.0
    updates_limit: int = 500
    # Watched-set sizes measured in instructions. Each size runs four probes under callgrind (about 50 times
    # slower than natively): 500 stories (33,614 items) take about 15 minutes on the shared 2-core VM, so
    # --quick keeps 30 only.
    callgrind: tuple[int, ...] = (30, 100, 500)
    quiet_callgrind_cycles: int = 10  # quiet cycles measured in instructions (0: none)
    first_count_comments: int = 300  # a story's comments for the first-count rows (HN's top 30: ~300)


def app_config(base_url: str, top: int, home: Path, **crawl: Any) -> Any:
    """The defaults a user gets, with no notifier (delivery is benchmark 4's subject)."""
    return parse_config({"hn": {"api_url": base_url}, "watch": {"top": top}, "crawl": crawl,
                         "store": {"path": str(home / "fw.db")}, "notifiers": []}, "benchmark")


async def _cpu(work: Callable[[], Awaitable[object]]) -> float:
    started = time.process_time()
    await work()
    return time.process_time() - started


async def once_cpu(sim: SimProcess, top: int) -> tuple[float, int]:
    """CPU seconds of one cycle of a fresh App (store included), and the item requests it made."""
    with tempfile.TemporaryDirectory() as home:
        async with App(app_config(sim.base_url, top, Path(home))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            monitor, dispatcher = app.monitor, app.dispatcher

            async def cycle() -> None:
                await monitor.cycle(1)  # not a housekeeping cycle (0): a user's `once` prunes first
                await dispatcher.wait_idle()

            await sim.control("reset")
            cpu = await _cpu(cycle)
            items = (await sim.control("stats"))["item_requests"]
    return cpu, items


async def bare_cpu(sim: SimProcess, ids: list[int]) -> tuple[float, int]:
    async with aiohttp.ClientSession() as session:
        await sim.control("reset")
        cpu = await _cpu(lambda: bare_workers(session, sim.base_url, ids, 32, orjson.loads))
        items = (await sim.control("stats"))["item_requests"]
    return cpu, items


async def _scaling_row(sizes: PathSizes, stories: int) -> Row:
    async with SimProcess(stories=stories, comments=stories * sizes.comments_per_story,
                          updates_limit=sizes.updates_limit) as sim:
        ids = await sim.control("ids")
        ratios = []
        for _ in range(sizes.rounds):
            a1, n1 = await once_cpu(sim, stories)
            b1, m1 = await bare_cpu(sim, ids)
            b2, m2 = await bare_cpu(sim, ids)
            a2, n2 = await once_cpu(sim, stories)
            ratios.append(((a1 + a2) / (n1 + n2)) / ((b1 + b2) / (m1 + m2)))
    return check(SECTION, f"once CPU per item / bare loop, {stories} stories", statistics.median(ratios), "x",
                 at_most=1.05, note=f"{len(ids):,} items; A B B A x {sizes.rounds}: {spread(ratios)}")


async def bare_requests(session: aiohttp.ClientSession, base_url: str, paths: list[str], workers: int = 32) -> None:
    """The bare loop over arbitrary API paths (read + ``orjson.loads``, the App's decoder) on an open session."""
    base = base_url.rstrip("/")
    queue = iter(paths)

    async def worker() -> None:
        for path in queue:
            async with session.get(f"{base}/{path}") as resp:
                orjson.loads(await resp.read())

    await asyncio.gather(*(worker() for _ in range(workers)))


async def _fill(app: App, story_ids: list[int], sizes: PathSizes) -> int:
    """Samples every ``period`` seconds for ``days`` before now, for every story; returns how many."""
    assert app.store is not None
    now = time.time()
    steps = int(sizes.days * 86400 / sizes.period)
    batch: list[CountSample] = []
    written = 0
    for step in range(steps, 0, -1):
        at = now - step * sizes.period
        batch.extend(CountSample(s, at, step, step, step, False) for s in story_ids)
        if len(batch) >= 20_000:
            await app.store.add_snapshots(batch)
            written, batch = written + len(batch), []
    await app.store.add_snapshots(batch)
    return written + len(batch)


async def long_life(sizes: PathSizes) -> list[Row]:
    top = 30
    async with SimProcess(stories=top, comments=top * sizes.comments_per_story,
                          updates_limit=sizes.updates_limit) as sim:
        with tempfile.TemporaryDirectory() as home:
            async with App(app_config(sim.base_url, top, Path(home))) as app:
                assert app.monitor is not None and app.dispatcher is not None
                monitor = app.monitor
                await monitor.cycle(1)  # the first count and its events
                await app.dispatcher.wait_idle()
                story_ids = [r.story_id for r in monitor.last_results]
                number = 2

                async def quiet() -> list[float]:
                    nonlocal number
                    times = []
                    for _ in range(sizes.quiet_cycles):
                        number += 2 if (number + 1) % 60 == 0 else 1  # not a housekeeping cycle
                        times.append(await _cpu(lambda n=number: monitor.cycle(n)) * 1000)
                    return times

                fresh = await quiet()
                samples = await _fill(app, story_ids, sizes)
                aged = await quiet()
                await sim.control("reset")
                await monitor.cycle(number + 1)
                quiet_requests = (await sim.control("stats"))["requests"]
        paths = ["topstories.json", "maxitem.json", "updates.json"] + [f"item/{s}.json" for s in story_ids]
        async with aiohttp.ClientSession() as session:  # warm, as the App's is
            await bare_requests(session, sim.base_url, paths)
            bare = [await _cpu(lambda: bare_requests(session, sim.base_url, paths)) * 1000
                    for _ in range(sizes.quiet_cycles)]
    fresh_ms, aged_ms, bare_ms = (statistics.median(x) for x in (fresh, aged, bare))
    return [
        Row(SECTION, "quiet cycle CPU, fresh store", fresh_ms, "ms",
            note=f"{top} stories, {quiet_requests} requests; {spread(fresh)}"),
        check(SECTION, f"quiet cycle CPU after {sizes.days:g} days of samples / fresh", aged_ms / fresh_ms, "x",
              at_most=1.1, note=f"{samples:,} samples ({sizes.period:g} s period); {aged_ms:.1f} ms: {spread(aged)}"),
        check(SECTION, "quiet cycle CPU / bare loop over its requests", fresh_ms / bare_ms, "x", at_most=2.0,
              note=f"bare {bare_ms:.1f} ms for the same {len(paths)} paths: {spread(bare)}"),
    ]


async def _probe(sim: SimProcess, *args: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(instructions, the server's stats, the probe's JSON line) of ``python -m benchmarks.pathprobe *args`` under
    callgrind. The stats request is counted by the server as it answers it: ``requests`` here leaves it out."""
    await sim.control("reset")
    proc = await asyncio.create_subprocess_exec(
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "benchmarks.pathprobe",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    found = re.search(rb"Collected : (\d+)", err)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"pathprobe {' '.join(args)} under callgrind failed: {err.decode(errors='replace')[-500:]}")
    stats = await sim.control("stats")
    stats["requests"] -= 1
    return int(found.group(1)), stats, json.loads(out)


async def _instructions(sim: SimProcess, *args: str) -> tuple[int, int]:
    """(instructions, item requests the server saw) of ``python -m benchmarks.pathprobe *args`` under callgrind."""
    instructions, stats, _ = await _probe(sim, *args)
    return instructions, stats["item_requests"]


async def quiet_instruction_row(sizes: PathSizes) -> list[Row]:
    """Instructions a quiet cycle (30 stories, nothing changed) against the bare loop over the same paths: K quiet
    cycles after a first cycle, less the same process with none; K passes of the bare loop on a warm session, less
    its warm-up alone."""
    cycles, top = sizes.quiet_callgrind_cycles, 30
    if not cycles or shutil.which("valgrind") is None:
        return []
    async with SimProcess(stories=top, comments=top * sizes.comments_per_story,
                          updates_limit=sizes.updates_limit) as sim:
        quiet, quiet_stats, out = await _probe(sim, "quiet", sim.base_url, str(top), str(cycles))
        idle, idle_stats, _ = await _probe(sim, "quiet", sim.base_url, str(top), "0")
        paths = ["topstories.json", "maxitem.json", "updates.json"] + [f"item/{s}.json" for s in out["story_ids"]]
        with tempfile.TemporaryDirectory() as home:
            paths_file = Path(home) / "paths.json"
            paths_file.write_text(json.dumps(paths))
            bare, _, _ = await _probe(sim, "paths", sim.base_url, str(paths_file), str(cycles))
            bare_idle, _, _ = await _probe(sim, "paths", sim.base_url, str(paths_file), "0")
    per_quiet, per_bare = (quiet - idle) / cycles, (bare - bare_idle) / cycles
    requests = (quiet_stats["requests"] - idle_stats["requests"]) / cycles
    note = (f"{per_quiet / 1e6:.2f}M vs {per_bare / 1e6:.2f}M instructions a cycle ({cycles} cycles, {requests:g} "
            f"requests each; bare: the same {len(paths)} paths; callgrind)")
    return [check(SECTION, "quiet cycle instructions / bare loop over its requests", per_quiet / per_bare, "x",
                  at_most=2.0, note=note)]


async def instruction_rows(sizes: PathSizes) -> list[Row]:
    if not sizes.callgrind or shutil.which("valgrind") is None:
        return []
    rows = []
    for stories in sizes.callgrind:
        async with SimProcess(stories=stories, comments=stories * sizes.comments_per_story,
                              updates_limit=sizes.updates_limit) as sim:
            with tempfile.TemporaryDirectory() as home:
                ids_file = Path(home) / "ids.json"
                ids_file.write_text(json.dumps(await sim.control("ids")))
                once, items = await _instructions(sim, "once", sim.base_url, str(stories))
                once_idle, _ = await _instructions(sim, "once", sim.base_url, str(stories), "--idle")
                bare, bare_items = await _instructions(sim, "bare", sim.base_url, str(ids_file))
                bare_idle, _ = await _instructions(sim, "bare", sim.base_url, str(ids_file), "--idle")
                per_once, per_bare = (once - once_idle) / items, (bare - bare_idle) / bare_items
                rows.append(check(SECTION, f"once instructions per item / bare loop, {stories} stories",
                                  per_once / per_bare, "x", at_most=1.05,
                                  note=f"{per_once / 1000:.1f}k vs {per_bare / 1000:.1f}k instructions an item over "
                                       f"{items:,} items (callgrind; the bare loop decodes with orjson)"))
                if stories == sizes.callgrind[0]:
                    rows.append(await _stdlib_row(sim, ids_file, stories, per_once))
    return rows


async def _stdlib_row(sim: SimProcess, ids_file: Path, stories: int, per_once: float) -> Row:
    """For reference: the once path against the softer bare loop that decodes with ``json.loads``."""
    bare, items = await _instructions(sim, "bare", sim.base_url, str(ids_file), "--json")
    idle, _ = await _instructions(sim, "bare", sim.base_url, str(ids_file), "--json", "--idle")
    per_bare = (bare - idle) / items
    return Row(SECTION, f"once instructions per item / json.loads bare loop, {stories} stories", per_once / per_bare,
               "x", note=f"{per_bare / 1000:.1f}k instructions an item (reference only: the App decodes with orjson)")


async def _first_counts(sim: SimProcess, top: int, **crawl: Any) -> tuple[float, dict[str, int], int, dict[int, int]]:
    """Wall seconds, requests (server-counted: all, to the search API) and lists kept of a fresh App's first
    cycle; its counts."""
    with tempfile.TemporaryDirectory() as home:
        async with App(app_config(sim.base_url, top, Path(home), **crawl)) as app:
            assert app.monitor is not None
            await sim.control("reset")
            started = time.perf_counter()
            await app.monitor.cycle(1)
            elapsed = time.perf_counter() - started
            counter = app.monitor.parts.counter
            kept = counter.stats.bootstrapped if counter is not None else 0
            counts = {r.story_id: r.comments for r in app.monitor.last_results}
    stats = await sim.control("stats")
    # The server counts the stats request itself as it answers it.
    return elapsed, {"all": stats["requests"] - 1, "search": stats["search_requests"]}, kept, counts


async def first_counts(sizes: PathSizes) -> list[Row]:
    """The first exact counts of an HN-sized front page (30 stories, ~300 comments each), walked and from
    the search API's comment lists (``[crawl] tree_bootstrap``; the simulator's lists hold live comments
    only, as HN's do, so a dead comment's live replies name a parent the list lacks). The world's dead
    comments are HN's shape (the calibrated model: ~6% dead, ~1% of comments dead with live replies, most
    of them below the top level), checked in its own row."""
    top = 30
    async with SimProcess(stories=top, comments=top * sizes.first_count_comments,
                          updates_limit=sizes.updates_limit) as sim:
        truth = {int(k): v for k, v in (await sim.control("truth")).items()}
        dead = await sim.control("dead")
        walk_s, walk_req, _, walked = await _first_counts(sim, top)
        tree_s, tree_req, kept, treed = await _first_counts(
            sim, top, tree_bootstrap=True, tree_url=sim.base_url.removesuffix("/v0") + "/api/v1")
    wrong = sum(walked.get(s) != n for s, n in truth.items()) + sum(treed.get(s) != n for s, n in truth.items())
    with_comments = sum(n > 0 for n in truth.values())
    comments = dead["comments"]
    return [
        check(SECTION, "first counts' world: comments dead with live replies", 100 * dead["hiding_live_replies"] /
              comments, "%", at_least=0.5,
              note=f"{dead['hiding_live_replies']} of {comments:,} ({dead['hiding_below_top']} below the top level); "
                   f"dead: {100 * dead['dead'] / comments:.1f}% (the real 2,170-comment thread: 21, 1.0%, 12 below "
                   f"the top level; 5.8% dead)"),
        check(SECTION, f"first counts of {top} stories, lists on: requests", tree_req["all"], "req", at_most=60,
              note=f"{tree_req['search']} to the search API; {kept} of the {with_comments} stories with comments "
                   f"from their lists ({with_comments - kept} walked); walking all: {walk_req['all']:,}"),
        check(SECTION, f"first counts of {top} stories, lists on: time", tree_s, "s", at_most=1.0,
              note=f"loopback; walking all: {walk_s:.2f} s"),
        check(SECTION, "first counts, both ways: mismatches vs truth", wrong, "", at_most=0,
              note=f"{sum(truth.values()):,} comments"),
    ]


async def users_path(sizes: PathSizes) -> list[Row]:
    rows = [await _scaling_row(sizes, stories) for stories in sizes.scaling]
    rows += await instruction_rows(sizes) + await long_life(sizes) + await quiet_instruction_row(sizes)
    return rows + await first_counts(sizes)
