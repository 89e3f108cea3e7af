"""Wait out a simulated latency to within a fraction of a millisecond.

An event loop's timers are coarse: asyncio rounds the wait for its next timer up to a whole millisecond
and uvloop keeps time in whole milliseconds, so a 20 ms answer left the simulator after about 20.5 to 21
ms, and every client looked 3-5% slower than the latency allows. Here one thread keeps the deadlines in
a heap and sleeps on a condition (the kernel's timers, microseconds), then hands each due waiter back
to the loop with ``call_soon_threadsafe``, which wakes it at once.

The thread needs the GIL to do that, and a busy loop gives it up only every ``sys.getswitchinterval()``
(5 ms by default): :meth:`PreciseWait.start` shortens the interval for the simulator's process. What is
left, the hand-over from the thread to the loop (0.2-0.3 ms on a busy 2-core machine), is measured as
it happens and taken off later deadlines, so waits last what was asked on average (the benchmark shows
the mean it really gave).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sys
import threading
import time

#: The GIL switch interval while a PreciseWait runs: short enough not to delay a due wake-up noticeably.
SWITCH_INTERVAL = 0.0002
#: The most a wait is shortened to make up for the hand-over, and the largest error that teaches it.
MAX_CORRECTION = 0.001


class PreciseWait:
    """``await wait(seconds)``, precise to well under a millisecond; start it inside the running loop."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._late = 0.0  # how much earlier than asked to wake a waiter, so it resumes on time

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._run, name="precise-wait", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()

    async def __call__(self, seconds: float) -> None:
        assert self._loop is not None, "PreciseWait.start() was not called"
        waiter = self._loop.create_future()
        now = time.perf_counter()
        due = now + max(0.0, seconds - self._late)
        with self._changed:
            heapq.heappush(self._due, (due, next(self._order), waiter))
            self._changed.notify()
        await waiter
        # Still late (or early) by this much after the correction: nudge the correction. Small steps, so one
        # busy moment does not swing it; it settles within a few hundred waits, a fraction of a second.
        # Bounded: it is for the hand-over, not for a loop that is overloaded (which would otherwise run
        # it up until every wait returned at once, and "pay back" a stall with impossibly early answers).
        error = time.perf_counter() - (now + seconds)
        if seconds > self._late and abs(error) < MAX_CORRECTION:
            self._late = min(MAX_CORRECTION, max(0.0, self._late + 0.02 * error))

    def _run(self) -> None:
        assert self._loop is not None
        with self._changed:
            while not self._stopping:
                if not self._due:
                    self._changed.wait()
                    continue
                left = self._due[0][0] - time.perf_counter()
                if left > 0:
                    self._changed.wait(left)
                    continue
                _, _, waiter = heapq.heappop(self._due)
                self._loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # the request may have been cancelled meanwhile
        waiter.set_result(None)
