"""A progress line on the terminal for long waits (a big story's count, the first cycle).

Only when stderr is a terminal: a log file or a pipe gets nothing, not a stream of carriage returns.
The line shows items fetched, the rate, and the time left when the total is known (from ``descendants``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Nothing is shown for waits shorter than this: a quick count stays one clean line of output.
SHOW_AFTER = 1.0
REFRESH = 0.25


class Progress:
    """``async with Progress("counting 8863", done=lambda: n, total=39000):`` shows a line while inside."""

    def __init__(self, label: str, done: Callable[[], int], total: int | None = None, *,
                 stream: TextIO | None = None, show_after: float = SHOW_AFTER) -> None:
        self.label = label
        self.done = done
        self.total = total
        self.stream = stream or sys.stderr
        self.show_after = show_after
        self.enabled = self.stream.isatty()
        self._task: asyncio.Task[None] | None = None
        self._shown = False

    def line(self, elapsed: float) -> str:
        """The text of the progress line after ``elapsed`` seconds."""
        done = self.done()
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label}: {done:,} items, {rate:,.0f}/s"
        if self.total:
            text = f"{self.label}: {done:,} of ~{self.total:,} items, {rate:,.0f}/s"
            if rate > 0 and done < self.total:
                text += f", about {max(1, round((self.total - done) / rate))}s left"
        return text

    async def _run(self) -> None:
        started = time.monotonic()
        await asyncio.sleep(self.show_after)
        while True:
            self.stream.write("\r\033[K" + self.line(time.monotonic() - started))
            self.stream.flush()
            self._shown = True
            await asyncio.sleep(REFRESH)

    async def __aenter__(self) -> Progress:
        if self.enabled:
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._shown:
            self.stream.write("\r\033[K")  # leave the terminal as it was: the result follows on a clean line
            self.stream.flush()
