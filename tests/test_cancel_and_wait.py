"""flamewatch.tasks.cancel_and_wait: stops a task, and never swallows the caller's own cancellation."""

from __future__ import annotations

import asyncio

from flamewatch.tasks import cancel_and_wait


async def test_it_stops_the_task_and_returns() -> None:
    task = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()
    await cancel_and_wait(None)  # nothing to stop


async def test_a_cancellation_of_the_caller_while_it_waits_is_raised_again() -> None:
    started = asyncio.Event()

    async def stubborn() -> None:  # takes a while to stop once cancelled
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            started.set()
            await asyncio.Event().wait()

    inner = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    caller = asyncio.create_task(cancel_and_wait(inner))
    await started.wait()
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert caller.cancelled()
    inner.cancel()
    await asyncio.gather(inner, return_exceptions=True)
