"""The periodic watcher: fixed-rate ticks, one cycle at a time, per-cycle stats through a done callback.

The seed shows three ways to run something periodically, each flawed: ``work; sleep(period)`` stretches
the period by the work's duration, ``ensure_future(work); sleep`` lets runs overlap, and re-scheduling
with ``call_later`` drifts. Here tick *k* is due at ``t0 + k * period`` on the loop clock (absolute
deadlines: no drift). A tick that comes while the previous cycle is still running is skipped and
counted (no overlap, no backlog), as APScheduler does with ``max_instances=1, coalesce=True``.
Each cycle runs as a task with a timeout; its outcome, including an exception, is handled in the task's
done callback, so a failing cycle is logged and the watcher goes on. ``CancelledError`` always propagates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from .events import CycleStats
import contextlib

log = logging.getLogger("flamewatch.watch")

CycleFn = Callable[[int], Awaitable[CycleStats]]


class Watcher:
    """Runs ``cycle(n)`` every ``period`` seconds until :meth:`stop` is called."""

    def __init__(
        self,
        cycle: CycleFn,
        period: float,
        *,
        cycle_timeout: float | None = None,
        on_done: Callable[[CycleStats], None] | None = None,
        max_cycles: int | None = None,
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self._cycle = cycle
        self.period = period
        self.cycle_timeout = cycle_timeout
        self._on_done = on_done
        self.max_cycles = max_cycles
        self.cycles_started = 0
        self.cycles_failed = 0
        self.skipped_ticks = 0
        #: how late each recent cycle started after its tick deadline (loop-clock seconds); bounded, so a
        #: daemon running for months does not grow it forever
        self.tick_lateness: deque[float] = deque(maxlen=10_000)
        self._stop = asyncio.Event()
        self._current: asyncio.Task[CycleStats] | None = None

    def stop(self) -> None:
        """Stop ticking; :meth:`run` then returns after the current cycle is dealt with."""
        self._stop.set()

    @property
    def current(self) -> asyncio.Task[CycleStats] | None:
        """The running cycle's task, if any."""
        return self._current if self._current is not None and not self._current.done() else None

    async def run(self, *, finish_timeout: float = 0.0) -> None:
        """Tick until stopped (or ``max_cycles`` ran). On the way out, the running cycle gets
        ``finish_timeout`` seconds to finish before it is cancelled."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tick = 0
        try:
            while not self._stop.is_set():
                due = math.floor((loop.time() - t0) / self.period)
                if due > tick:
                    # The loop itself was stalled (suspend, a blocking plugin) past whole periods: skip
                    # the missed ticks instead of firing them in a burst.
                    self.skipped_ticks += due - tick
                    log.warning("event loop was stalled; %d missed tick(s) skipped", due - tick)
                    tick = due
                if self.current is not None:
                    self.skipped_ticks += 1
                    log.warning("cycle %d still running at tick %d: tick skipped (%d so far)",
                                self.cycles_started - 1, tick, self.skipped_ticks)
                elif self.max_cycles is not None and self.cycles_started >= self.max_cycles:
                    break
                else:
                    self.tick_lateness.append(loop.time() - (t0 + tick * self.period))
                    self._start_cycle()
                    if self.max_cycles is not None and self.cycles_started >= self.max_cycles:
                        break
                tick += 1
                deadline = t0 + tick * self.period
                await self._sleep_until(deadline)
            if self.max_cycles is not None and self._current is not None:
                await asyncio.wait({self._current})
        finally:
            await self._finish(finish_timeout)

    def _start_cycle(self) -> None:
        number = self.cycles_started
        self.cycles_started += 1
        task = asyncio.create_task(self._timed_cycle(number), name=f"cycle-{number}")
        started = (datetime.now(UTC), asyncio.get_running_loop().time())
        task.add_done_callback(lambda t: self._cycle_done(t, number, started))
        self._current = task

    async def _timed_cycle(self, number: int) -> CycleStats:
        async with asyncio.timeout(self.cycle_timeout):
            return await self._cycle(number)

    def _cycle_done(self, task: asyncio.Task[CycleStats], number: int, started: tuple[datetime, float]) -> None:
        if task.cancelled():
            log.warning("%s was cancelled", task.get_name())
            return
        exc = task.exception()
        if exc is not None:
            self.cycles_failed += 1
            if isinstance(exc, TimeoutError):
                failed = f"timed out after {self.cycle_timeout or 0:g}s"
                log.error("%s %s", task.get_name(), failed)
            else:
                failed = f"{type(exc).__name__}: {exc}"
                # One line per failed cycle (HN unreachable at boot would otherwise print a traceback every
                # period); the traceback is there with debug logging (-vv).
                log.error("%s failed: %s", task.get_name(), failed,
                          exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
            # Observers hear about failed cycles too (a health plugin needs exactly those).
            elapsed = asyncio.get_running_loop().time() - started[1]
            stats = CycleStats(cycle=number, started_at=started[0], elapsed=elapsed, stories=0, requests=0,
                               errors=0, partial=0, events=0, skipped_ticks=self.skipped_ticks, failed=failed)
        else:
            stats = dataclasses.replace(task.result(), skipped_ticks=self.skipped_ticks)
            log.info(
                "cycle %d: %d stories in %.2fs, %d requests, %d errors, %d partial, %d events "
                "(%d ticks skipped so far)",
                stats.cycle, stats.stories, stats.elapsed, stats.requests, stats.errors, stats.partial,
                stats.events, stats.skipped_ticks,
            )
        if self._on_done is not None:
            try:
                self._on_done(stats)
            except Exception as exc:
                log.error("cycle done callback raised %s: %s", type(exc).__name__, exc)

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - asyncio.get_running_loop().time()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def _finish(self, grace: float) -> None:
        task = self._current
        if task is None or task.done():
            return
        if grace > 0:
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            log.warning("cancelling %s at shutdown", task.get_name())
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
