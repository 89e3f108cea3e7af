"""pytest fixtures for a notifier plugin's tests; import the ones you use into your ``conftest.py``::

    from flamewatch.testing.fixtures import no_implicit_event_loop, session

(An import, not ``pytest_plugins``: pytest accepts that only in the top-level conftest, and a plugin's
tests are often run from a checkout above them.) :data:`fake_clock` marks a test that runs flamewatch
itself on looptime's fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

__all__ = ["FAKE_START", "fake_clock", "no_implicit_event_loop", "session"]

#: Where :data:`fake_clock` starts: looptime counts integer microseconds, so a present-day Unix time would
#: lose precision.
FAKE_START = 1_000_000.0

#: looptime's fake clock for a test that runs flamewatch itself (:func:`flamewatch.testing.run_until_delivered`
#: with ``clock=asyncio.get_running_loop().time, timeout=None``): time jumps to the next timer whenever the
#: loop is idle, so retries and pacing take no real time. Many no-op cycles before a jump let the store's
#: SQLite thread answer first (its replies are I/O looptime cannot see coming); the guards are an end of
#: time a day on and 10 real seconds idle with no timer at all.
fake_clock = pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=2000)


@pytest.fixture(autouse=True, scope="session")
def no_implicit_event_loop() -> None:
    """No current event loop outside a test: looptime calls ``get_event_loop()`` for sync tests, which on
    Python 3.11 creates a loop that is never closed (a ResourceWarning, an error under ``-W error``)."""
    asyncio.set_event_loop(None)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A real aiohttp session, closed after the test (what :func:`flamewatch.testing.notifier_context` takes)."""
    async with aiohttp.ClientSession() as s:
        yield s
