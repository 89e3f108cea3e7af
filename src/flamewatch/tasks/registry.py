"""Tracked fire-and-forget tasks: the seed's task registry, with the lessons of its sequel built in.

A task created with ``asyncio.create_task`` and forgotten can vanish mid-flight (the loop keeps only a
weak reference), its exception is never seen ("Task exception was never retrieved"), and closing the
loop while it is pending prints "Task was destroyed but it is pending!". A :class:`TaskRegistry`
keeps a strong reference to each task until it finishes, logs its exception by name, and on
:meth:`close` waits for the unfinished ones up to a deadline, then cancels and *awaits* the rest, so
no task outlives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("flamewatch.tasks")


@dataclass(frozen=True)
class CloseReport:
    """How :meth:`TaskRegistry.close` ended: tasks that finished by themselves, and tasks it cancelled."""

    finished: int
    cancelled: int


class TaskRegistry:
    """A set of running tasks with a strong reference, an exception logger and a bounded drain."""

    def __init__(self, name: str = "tasks") -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a tracked task called ``name`` (used in logs)."""
        if self._closed:
            coro.close()  # never started, so nothing is lost; avoids "coroutine was never awaited"
            raise RuntimeError(f"{self.name}: registry is closed, cannot start {name}")
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
        if task.cancelled():
            return
        exc = task.exception()  # retrieving it is what silences "never retrieved"
        if exc is not None:
            log.error("%s: task %s failed: %s", self.name, task.get_name(), exc, exc_info=exc)

    def cancel_all(self) -> int:
        """Cancel every running task (they end at their next await); returns how many were cancelled."""
        for task in self._tasks:
            task.cancel()
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Wait until no task is running (new ones may start afterwards)."""
        await self._idle.wait()

    async def close(self, grace: float) -> CloseReport:
        """Refuse new tasks, wait up to ``grace`` seconds for running ones, then cancel and await the rest."""
        self._closed = True
        pending = set(self._tasks)
        if not pending:
            return CloseReport(0, 0)
        done, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            # Await the cancelled tasks so each one has really ended before we return.
            await asyncio.gather(*still, return_exceptions=True)
            for task in still:
                log.warning("%s: %s did not finish within %.1fs and was cancelled", self.name, task.get_name(), grace)
        return CloseReport(finished=len(done), cancelled=len(still))
