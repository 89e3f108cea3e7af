"""The fixed-rate watcher, on a fake loop clock (looptime): exact tick times, skips, failures, shutdown."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from flamewatch.events import CycleStats
from flamewatch.watch import Watcher

pytestmark = pytest.mark.looptime(start=0)


def stats(n: int) -> CycleStats:
    return CycleStats(cycle=n, started_at=datetime.now(UTC), elapsed=0.0, stories=0, requests=0, errors=0,
                      partial=0, events=0)


class Recorder:
    """A cycle function that records its start time on the loop clock and takes ``duration`` seconds."""

    def __init__(self, duration: float = 0.0, *, fail_on: set[int] = frozenset()) -> None:
        self.duration = duration
        self.fail_on = fail_on
        self.starts: list[float] = []

    async def __call__(self, n: int) -> CycleStats:
        self.starts.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.duration)
        if n in self.fail_on:
            raise RuntimeError(f"cycle {n} exploded")
        return stats(n)


async def test_ticks_are_on_absolute_deadlines_without_drift() -> None:
    cycle = Recorder(duration=3.0)  # a cycle that takes 30% of the period must not stretch it
    watcher = Watcher(cycle, 10.0, max_cycles=6)
    await watcher.run()
    assert cycle.starts == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert watcher.skipped_ticks == 0
    assert list(watcher.tick_lateness) == [0.0] * 6


async def test_overrunning_cycle_skips_ticks_and_never_overlaps(caplog: pytest.LogCaptureFixture) -> None:
    cycle = Recorder(duration=25.0)  # longer than two periods
    done: list[CycleStats] = []
    watcher = Watcher(cycle, 10.0, max_cycles=3, on_done=done.append)
    with caplog.at_level(logging.INFO, logger="flamewatch.watch"):
        await watcher.run()
    # Ticks at 10 and 20 come while cycle 0 runs: skipped, and the next cycle starts on the grid at 30.
    assert cycle.starts == [0.0, 30.0, 60.0]
    assert watcher.skipped_ticks == 4
    assert [s.skipped_ticks for s in done] == [2, 4, 4]
    # A running total: the cycle line says so rather than reading as this cycle's own skips.
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cycle 2: ")]
    assert len(lines) == 1 and lines[0].endswith("(4 ticks skipped so far)"), lines


async def test_failing_cycle_is_logged_and_the_watcher_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    cycle = Recorder(fail_on={1})
    done: list[CycleStats] = []
    watcher = Watcher(cycle, 5.0, max_cycles=3, on_done=done.append)
    with caplog.at_level(logging.ERROR, logger="flamewatch.watch"):
        await watcher.run()
    assert cycle.starts == [0.0, 5.0, 10.0]
    assert watcher.cycles_failed == 1
    assert [(s.cycle, s.failed) for s in done] == [(0, None), (1, "RuntimeError: cycle 1 exploded"), (2, None)]
    assert "cycle-1 failed: RuntimeError: cycle 1 exploded" in caplog.text


async def test_cycle_timeout_cancels_a_stuck_cycle(caplog: pytest.LogCaptureFixture) -> None:
    cycle = Recorder(duration=1000.0)
    watcher = Watcher(cycle, 10.0, cycle_timeout=15.0, max_cycles=2)
    with caplog.at_level(logging.ERROR, logger="flamewatch.watch"):
        await watcher.run()
    assert cycle.starts == [0.0, 20.0]  # timed out at 15, next tick on the grid at 20
    assert watcher.cycles_failed == 2
    assert "timed out after 15s" in caplog.text


async def test_stop_lets_the_current_cycle_finish_within_the_deadline() -> None:
    cycle = Recorder(duration=4.0)
    watcher = Watcher(cycle, 10.0)
    runner = asyncio.create_task(watcher.run(finish_timeout=5.0))
    await asyncio.sleep(1.0)
    watcher.stop()
    await runner
    loop = asyncio.get_running_loop()
    assert loop.time() == pytest.approx(4.0)  # waited for the cycle, not for the next tick
    assert watcher.cycles_started == 1 and watcher.cycles_failed == 0


async def test_stop_cancels_a_cycle_that_outlives_the_deadline() -> None:
    cycle = Recorder(duration=100.0)
    watcher = Watcher(cycle, 10.0)
    runner = asyncio.create_task(watcher.run(finish_timeout=2.0))
    await asyncio.sleep(1.0)
    watcher.stop()
    await runner
    assert asyncio.get_running_loop().time() == pytest.approx(3.0)
    assert watcher.current is None


async def test_stalled_loop_skips_missed_ticks_instead_of_bursting() -> None:
    starts: list[float] = []

    async def cycle(n: int) -> CycleStats:
        starts.append(asyncio.get_running_loop().time())
        return stats(n)

    watcher = Watcher(cycle, 1.0, max_cycles=3)

    original = watcher._sleep_until
    stalled = {"done": False}

    async def stall_once(deadline: float) -> None:
        if not stalled["done"]:
            stalled["done"] = True
            await asyncio.sleep(5.5)  # as if a blocking call held the loop for 5.5 periods
        await original(deadline)

    watcher._sleep_until = stall_once  # type: ignore[method-assign]
    await watcher.run()
    assert starts[0] == 0.0
    # One late cycle when the loop wakes up, then back on the grid; not a burst of five late ticks.
    assert starts == [0.0, 5.5, 6.0]
    assert watcher.skipped_ticks == 4


def test_period_must_be_positive() -> None:
    async def cycle(n: int) -> CycleStats:
        return stats(n)

    with pytest.raises(ValueError, match="period must be positive"):
        Watcher(cycle, 0)
