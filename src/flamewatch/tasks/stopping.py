"""Stopping a background task from the code that owns it."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has ended; nothing when it is None.

    The task's own CancelledError is swallowed (stopping it was the point), but a cancellation of the
    caller while it waits is raised again: swallowing that one would leave the caller running after its
    own owner asked it to stop.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if (current := asyncio.current_task()) is not None and current.cancelling():
            raise
