"""The benchmark suite's entry point: ``python -m benchmarks [--quick | --tiny] [--only N,...] [--json PATH]``.

Runs every benchmark against simulator processes on loopback (never in the measured process), prints
one table of figures and ratios measured in this run, and exits 0 whether or not targets were met
(exit 1 only if a correctness check failed: an exact count that was not, or a bound that was broken).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from flamewatch.gctune import tune_for_daemon

from .budget_bench import BudgetSizes, budgets
from .crawl_bench import CrawlSizes, throughput, under_latency
from .incremental_bench import IncrementalSizes, incremental
from .live_bench import LiveSizes, live_mode
from .memory_bench import MemorySizes, memory
from .mention_bench import MentionSizes, mention_matching
from .notifier_bench import NotifierSizes, slow_notifier
from .path_bench import PathSizes, users_path
from .report import Row, machine, render, to_json
from .store_bench import StoreSizes, store_paths
from .tick_bench import TickSizes, ticks


@dataclass(frozen=True)
class Sizes:
    crawl: CrawlSizes
    latency_world: CrawlSizes
    latency: float
    incremental: IncrementalSizes
    notifier: NotifierSizes
    memory: MemorySizes
    ticks: TickSizes
    store: StoreSizes
    mentions: MentionSizes = field(default_factory=lambda: MentionSizes(items=2_000, rounds=5))
    budgets: BudgetSizes = field(default_factory=BudgetSizes)
    path: PathSizes = field(default_factory=PathSizes)
    live: LiveSizes = field(default_factory=lambda: LiveSizes(samples=40, idle=600.0))


MODES = {
    "full": Sizes(
        crawl=CrawlSizes(stories=60, comments=30_000, rounds=5, scaling=(30, 100, 500)),
        latency_world=CrawlSizes(stories=30, comments=15_000, rounds=1),
        latency=0.02,
        incremental=IncrementalSizes(stories=30, comments=20_000, cycles=30),
        notifier=NotifierSizes(stories=30, comments=5_000, trials=4),
        memory=MemorySizes(comments=50_000, chain_depth=50_000),
        ticks=TickSizes(ticks=200),
        store=StoreSizes(batch=50, rounds=40),
    ),
    "quick": Sizes(
        crawl=CrawlSizes(stories=30, comments=8_000, rounds=3, scaling=(30, 100, 500)),
        latency_world=CrawlSizes(stories=30, comments=5_000, rounds=1),
        latency=0.02,
        incremental=IncrementalSizes(stories=30, comments=8_000, cycles=8),
        notifier=NotifierSizes(stories=30, comments=2_000, trials=2),
        memory=MemorySizes(comments=50_000, chain_depth=50_000),
        ticks=TickSizes(ticks=100),
        store=StoreSizes(batch=50, rounds=15),
        path=PathSizes(scaling=(30, 100, 500), rounds=3, quiet_cycles=9, callgrind=(30,)),
        live=LiveSizes(samples=10, idle=30.0),
    ),
    # For the smoke test: every code path, tiny worlds, a few seconds. The figures mean nothing.
    "tiny": Sizes(
        crawl=CrawlSizes(stories=5, comments=300, rounds=1),
        latency_world=CrawlSizes(stories=5, comments=200, rounds=1),
        latency=0.005,
        incremental=IncrementalSizes(stories=5, comments=400, cycles=2, updates_limit=10),
        notifier=NotifierSizes(stories=3, comments=200, trials=1, delay=0.5),
        memory=MemorySizes(comments=1_000, chain_depth=300),
        ticks=TickSizes(ticks=20, period=0.01),
        mentions=MentionSizes(items=200, rounds=2),
        store=StoreSizes(batch=5, rounds=3),
        budgets=BudgetSizes(rounds=1, bomb_bytes=5_000_000),
        path=PathSizes(scaling=(5,), comments_per_story=20, rounds=1, quiet_cycles=2, days=0.05, callgrind=(),
                      quiet_callgrind_cycles=0,
                      first_count_comments=20),
        live=LiveSizes(samples=2, pool=10, idle=2.0, burst=200, burst_stories=5, latencies=(0.0,), poll_wait=5.0),
    ),
}

BENCHMARKS: dict[str, Callable[[Sizes], Awaitable[list[Row]]]] = {
    "1": lambda s: throughput(s.crawl),
    "2": lambda s: under_latency(s.latency_world, s.latency),
    "3": lambda s: incremental(s.incremental),
    "4": lambda s: slow_notifier(s.notifier),
    "5": lambda s: memory(s.memory),
    "6": lambda s: ticks(s.ticks),
    "8": lambda s: mention_matching(s.mentions),
    "7": lambda s: store_paths(s.store),
    "9": lambda s: budgets(s.budgets),
    "10": lambda s: users_path(s.path),
    "11": lambda s: live_mode(s.live),
}

# Rows that check correctness (exactness, bounds) rather than speed: any miss among them is a bug.
CORRECTNESS = ("count ==", "max in flight", "mismatches", "unchanged stories", "fully counted")


async def run(mode: str, only: list[str]) -> list[Row]:
    sizes = MODES[mode]
    rows: list[Row] = []
    for key in only:
        print(f"running benchmark {key} ...", file=sys.stderr, flush=True)
        rows.extend(await BENCHMARKS[key](sizes))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="mode",
                      help="smaller worlds, well under a minute")
    size.add_argument("--tiny", action="store_const", const="tiny", dest="mode",
                      help="a few seconds; for the smoke test")
    parser.add_argument("--only", default=",".join(BENCHMARKS), metavar="N,...",
                        help="run only these benchmarks (default: all, 1-11)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args(argv)
    mode = args.mode or "full"
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in only if k not in BENCHMARKS]
    if unknown or not only:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown) or '(none given)'}; choose from 1-11")
    # Deliveries cancelled at shutdown and similar warnings are expected here; keep the table readable.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    # Measure the way `flamewatch run` runs: same collector settings for every contender in this process.
    tune_for_daemon()
    rows = asyncio.run(run(mode, only))
    elapsed = time.perf_counter() - started
    info = machine()
    print(render(rows, info, mode, elapsed))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(rows, info, mode, elapsed), indent=2) + "\n")
    broken = [r for r in rows if r.ok is False and any(c in r.name for c in CORRECTNESS)]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
