"""Benchmark 6: how late the Watcher's ticks fire over a run of short-period ticks with a trivial cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flamewatch.events import CycleStats
from flamewatch.watch import Watcher

from .report import Row, check, percentile


@dataclass(frozen=True)
class TickSizes:
    ticks: int
    period: float = 0.02


async def _trivial(number: int) -> CycleStats:
    return CycleStats(cycle=number, started_at=datetime.now(UTC), elapsed=0.0, stories=0, requests=0,
                      errors=0, partial=0, events=0)


async def ticks(sizes: TickSizes) -> list[Row]:
    section = "6 ticks"
    watcher = Watcher(_trivial, sizes.period, max_cycles=sizes.ticks)
    await watcher.run()
    late_ms = [x * 1000 for x in watcher.tick_lateness]
    return [
        Row(section, "ticks run", len(late_ms), "",
            note=f"period {sizes.period * 1000:g} ms, {watcher.skipped_ticks} skipped"),
        Row(section, "lateness p50", percentile(late_ms, 50), "ms"),
        check(section, "lateness p99", percentile(late_ms, 99), "ms", at_most=5.0,
              note=f"max {max(late_ms):.2f} ms"),
    ]
