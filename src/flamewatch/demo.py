"""``flamewatch demo``: everything at once, offline, in under a minute.

Starts the simulator on loopback, points a fast watcher at it with low comment levels, lets the
simulated threads grow between cycles, prints alerts on the console and ends with a summary.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from .app import App
from .config import parse_config
from .simulator import Faults, SimulatorServer, World

log = logging.getLogger("flamewatch.demo")


def demo_config(api_url: str, period: float) -> dict[str, object]:
    """The config the demo runs with (the same keys a user writes in flamewatch.toml)."""
    return {
        "hn": {"api_url": api_url, "max_inflight": 16, "timeout": 5.0},
        "watch": {"top": 15, "period": period, "shutdown_timeout": 5.0},
        # Low levels so alerts fire within seconds. (No velocity rule: the demo's threads grow in seconds
        # what real ones grow in hours, so comments per hour would be absurd.)
        "rules": {"comment_levels": [10, 25, 50, 100, 250, 500]},
        "store": {"path": ":memory:"},
        "notifiers": [{"type": "console", "name": "console", "stream": "stdout"}],
    }


async def run_demo(*, duration: float = 20.0, period: float = 2.0, seed: int = 7) -> int:
    world = World(seed=seed, stories=20, total_comments=1500)
    # A little latency, as over a real network, so bounded concurrency is visible in the summary.
    logging.getLogger("flamewatch.watch").setLevel(logging.WARNING)  # the demo prints its own cycle lines
    async with SimulatorServer(world, Faults(latency=0.002)) as sim:
        print(f"flamewatch demo: simulated Hacker News at {sim.base_url}; watching the top 15 stories every "
              f"{period:g}s for {duration:g}s", flush=True)
        config = parse_config(demo_config(sim.base_url, period), "<demo config>")
        async with App(config, owner="demo") as app:
            assert app.monitor is not None and app.dispatcher is not None
            from .watch import Watcher

            cycles: list[str] = []

            def on_done(stats: object) -> None:
                from .events import CycleStats

                assert isinstance(stats, CycleStats)
                growth = world.grow(n_comments=120)  # threads grow between cycles, some faster than others
                cycles.append(f"cycle {stats.cycle}: {stats.stories} stories, {stats.requests} requests, "
                              f"{stats.events} alerts, {stats.elapsed:.2f}s")
                print(f"  {cycles[-1]} (then the simulated threads grew: {len(growth)} items changed)", flush=True)

            watcher = Watcher(app.monitor.cycle, period, cycle_timeout=period * 5, on_done=on_done)
            started = time.monotonic()
            runner = asyncio.create_task(watcher.run(finish_timeout=period))
            try:
                await asyncio.wait_for(asyncio.shield(runner), timeout=duration)
            except TimeoutError:
                watcher.stop()
                await runner
            await app.dispatcher.wait_idle()
            stats = app.dispatcher.stats
            print(
                f"\nsummary: {watcher.cycles_started} cycles in {time.monotonic() - started:.1f}s, "
                f"{sim.stats.requests} API requests (peak {sim.stats.max_inflight} in flight), "
                f"{stats.events} alerts fired, {stats.delivered} delivered, {watcher.skipped_ticks} ticks skipped",
                flush=True,
            )
    sys.stdout.flush()
    return 0
