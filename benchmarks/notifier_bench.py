"""Benchmark 4: a notifier that takes 2 s per event must not slow the watcher's cycles down.

A real :class:`~flamewatch.app.App` is assembled from a config, with the slow notifier registered as a
plugin through ``make_plugin_manager(extra=[...])``, against a simulator process. Each trial opens a
fresh App (fresh SQLite store, so the thresholds fire again) and runs two cycles: the first fires the
events and starts their deliveries, the second runs while those deliveries are still sleeping. Trials
with and without the notifier alternate; the medians are compared.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flamewatch.app import App
from flamewatch.config import (
    Config,
    CrawlSettings,
    HNSettings,
    NotifierSettings,
    PluginSettings,
    StoreSettings,
    WatchSettings,
)
from flamewatch.events import Event
from flamewatch.notifier import Notifier
from flamewatch.plugins import make_plugin_manager
from flamewatch.testing import plugin_offering

from .report import Row, check
from .simserver import SimProcess


@dataclass(frozen=True)
class NotifierSizes:
    stories: int
    comments: int
    trials: int
    delay: float = 2.0


class SlowNotifier(Notifier):
    """Takes ``DELAY`` seconds to deliver each event (a slow SMTP server, a throttled webhook)."""

    type_name = "bench-slow"
    description = "sleeps before every send"
    DELAY = 2.0
    sends_started = 0

    async def send(self, event: Event) -> None:
        SlowNotifier.sends_started += 1
        await asyncio.sleep(self.DELAY)


def _config(api_url: str, store: Path, *, slow: bool) -> Config:
    notifiers = (NotifierSettings(name="slow", type=SlowNotifier.type_name, where="notifiers[0]", concurrency=4),)
    return Config(
        source="<benchmark>",
        hn=HNSettings(api_url=api_url, max_inflight=32),
        watch=WatchSettings(top=100, shutdown_timeout=0.05),
        crawl=CrawlSettings(incremental=False),  # every cycle does the same full crawl: comparable times
        store=StoreSettings(path=str(store)),
        plugins=PluginSettings(entry_points=False),
        notifiers=notifiers if slow else (),
    )


async def _trial(api_url: str, workdir: Path, number: int, *, slow: bool) -> tuple[list[float], int, int]:
    """Two cycles in a fresh App; (cycle times, events fired, deliveries still running at the end)."""
    plugins = make_plugin_manager(extra=[plugin_offering(SlowNotifier, name="bench-slow-plugin")],
                                  load_entry_points=False)
    config = _config(api_url, workdir / f"trial-{number}.db", slow=slow)
    times: list[float] = []
    events = 0
    async with App(config, plugins=plugins) as app:
        assert app.monitor is not None and app.dispatcher is not None
        for cycle in range(2):
            stats = await app.monitor.cycle(cycle)
            times.append(stats.elapsed)
            events += stats.events
        running = len(app.dispatcher.deliveries)
    return times, events, running


async def slow_notifier(sizes: NotifierSizes) -> list[Row]:
    section = "4 slow notifier"
    SlowNotifier.DELAY = sizes.delay
    SlowNotifier.sends_started = 0
    with_slow: list[float] = []
    without: list[float] = []
    events = running = 0
    async with SimProcess(stories=sizes.stories, comments=sizes.comments) as sim:
        with tempfile.TemporaryDirectory(prefix="flamewatch-bench-") as tmp:
            workdir = Path(tmp)
            await _trial(sim.base_url, workdir, -1, slow=False)  # warm-up
            for trial in range(sizes.trials):
                for slow in ((True, False) if trial % 2 else (False, True)):
                    times, fired, still = await _trial(sim.base_url, workdir, trial * 2 + slow, slow=slow)
                    (with_slow if slow else without).extend(times)
                    if slow:
                        events, running = fired, max(running, still)
    base, slowed = statistics.median(without), statistics.median(with_slow)
    return [
        Row(section, "cycle time, no notifier", base * 1000, "ms",
            note=f"median of {len(without)} cycles; {events} events fired per trial"),
        Row(section, "cycle time, 2 s/event notifier", slowed * 1000, "ms",
            note=f"{SlowNotifier.sends_started} sends started, up to {running} still running at trial end"),
        check(section, "slow / none", slowed / base, "x", at_most=1.05),
    ]
