"""The crawl's request slots: a bound that is never exceeded, served deepest first, safe under cancellation."""

from __future__ import annotations

import asyncio

from flamewatch.hn.slots import Slots


async def test_waiters_are_served_by_priority_then_in_order() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[str] = []

    async def wait(name: str, priority: int) -> None:
        await slots.acquire(priority)
        served.append(name)

    waiters = [asyncio.create_task(wait(name, p)) for name, p in [("a", 1), ("b", 5), ("c", 1), ("d", 3)]]
    await asyncio.sleep(0)  # every waiter is queued
    for _ in waiters:
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert served == ["b", "d", "a", "c"]


async def test_a_cancelled_waiter_never_loses_a_slot() -> None:
    slots = Slots(1)
    await slots.acquire()
    doomed = asyncio.create_task(slots.acquire(9))
    patient = asyncio.create_task(slots.acquire(1))
    await asyncio.sleep(0)
    slots.release()  # handed to the doomed waiter...
    doomed.cancel()  # ...which is cancelled before it runs: the slot must pass on
    await asyncio.gather(doomed, return_exceptions=True)
    await asyncio.wait_for(patient, timeout=1)
    slots.release()
    await asyncio.wait_for(slots.acquire(), timeout=1)  # and the pool is whole again
