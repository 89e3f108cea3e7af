"""Outcome writes after a send (flamewatch.dispatch.outcomes): a cancelled delivery still records what it
sent, and an outcome the store refuses keeps its rows leased while the write is retried.

Both stores (a SQLite file, a fresh PostgreSQL schema; see ``store_location``). The long waits run on
looptime's fake loop clock, which the dispatchers read too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from flamewatch.dispatch import POLL_SECONDS, Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.dispatch.lease import CLAIM_MARGIN
from flamewatch.dispatch.outcomes import OutcomeBacklog, Unrecorded
from flamewatch.errors import StoreError
from flamewatch.rules import Evaluation
from flamewatch.store import Delivery, Store, open_store
from flamewatch.testing import RecordingNotifier, make_event, notifier_context

FAKE_START = 1_000_000.0
# Many no-op cycles before each jump of the fake clock: a jump while a renewal's reply is on its way (the
# PostgreSQL server is another process) would let a lease lapse that the real clock would not.
fake_clock = pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=10_000)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class FailsAfterTheCallerLeft:
    """A real store whose first ``mark_sent`` is still running when its caller is cancelled, then fails.

    As the stores do, the statement runs in a task of its own behind :func:`asyncio.shield`: cancelling the
    caller does not stop it, and its error then reaches nobody unless the dispatcher kept the write.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.entered = asyncio.Event()
        self.go_on = asyncio.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def mark_sent(self, ids: Sequence[int], now: float, **grouping: Any) -> None:
        self.calls += 1
        if self.calls > 1:
            await self._store.mark_sent(ids, now, **grouping)
            return
        self.entered.set()
        await asyncio.shield(self._first())

    async def _first(self) -> None:
        await self.go_on.wait()
        raise StoreError("store test: the connection was lost")


async def test_an_outcome_write_cut_off_by_shutdown_is_still_recorded(
    store_location: str, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with await open_store(store_location) as real:
        store = FailsAfterTheCallerLeft(real)
        sink = RecordingNotifier(notifier_context(session, "sink"))
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink)])  # type: ignore[arg-type]
        await dispatcher.start()
        await dispatcher.publish(Evaluation(announce=[make_event()]))
        await sink.wait_for(1)
        with caplog.at_level(logging.WARNING, logger="flamewatch.dispatch"):
            await store.entered.wait()
            closing = asyncio.create_task(dispatcher.close(0.0))  # no grace: the delivery is cancelled at once
            await dispatcher.deliveries.wait_idle()
            store.go_on.set()  # the write fails only now, with its delivery gone
            await closing
        assert [(str(d.status), d.claimed_by) for d in await real.outbox()] == [("sent", None)]
    assert store.calls == 2  # the failed write was kept and made again before stopping
    assert "the store cannot record it" in caplog.text
    assert "will be sent again at the next start" not in caplog.text


class RefusesOutcomes:
    """A real store whose first ``times`` outcome writes (``mark_sent``) fail; everything else works."""

    def __init__(self, store: Store, times: int) -> None:
        self._store = store
        self.times = times
        self.claims: list[tuple[float, list[int]]] = []
        self.written = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def mark_sent(self, ids: Sequence[int], now: float, **grouping: Any) -> None:
        if self.times > 0:
            self.times -= 1
            raise StoreError("store test: database is locked")
        await self._store.mark_sent(ids, now, **grouping)
        self.written.set()

    async def claim_due(self, now: float, **kwargs: Any) -> list[Delivery]:
        rows: list[Delivery] = await self._store.claim_due(now, **kwargs)
        self.claims.append((now, [r.id for r in rows]))
        return rows


@fake_clock
async def test_a_sent_row_whose_outcome_waits_for_the_store_stays_leased_to_its_sender(
    store_location: str, session: aiohttp.ClientSession
) -> None:
    clock = asyncio.get_running_loop().time
    timeout = 9.0  # a lease of 14 s: it would lapse long before the write works (after 35 s)
    async with await open_store(store_location) as store_a, await open_store(store_location) as store_b:
        refusing = RefusesOutcomes(store_a, times=3)  # the write works on its 4th try, after 5 + 10 + 20 s
        first_sink = RecordingNotifier(notifier_context(session, "sink"))
        first = Dispatcher(refusing, [NotifierInstance.of(first_sink, timeout=timeout)],  # type: ignore[arg-type]
                           retry=RetryPolicy(base=1.0, cap=1.0), clock=clock)
        await first.start()
        await first.publish(Evaluation(announce=[make_event()]))
        await first_sink.wait_for(1)
        (row,) = await store_a.pending()
        assert row.claimed_until is not None
        lapse = row.claimed_until

        watching = RefusesOutcomes(store_b, times=0)
        second_sink = RecordingNotifier(notifier_context(session, "sink"))
        second = Dispatcher(watching, [NotifierInstance.of(second_sink, timeout=timeout)],  # type: ignore[arg-type]
                            retry=RetryPolicy(base=1.0, cap=1.0), clock=clock)
        await second.start()
        await refusing.written.wait()
        await first.wait_idle()
        await second.wait_idle()
        await first.close(1.0)
        await second.close(1.0)
        assert [str(d.status) for d in await store_a.outbox()] == ["sent"]
    assert len(first_sink.sent) == 1 and second_sink.sent == []  # sent once: never taken by the second sender
    assert any(now > lapse for now, _ in watching.claims), watching.claims  # it looked after the first lease
    assert all(ids == [] for _, ids in watching.claims)
    # The sender's own pump does not wake for the lapses of the lease it keeps renewing on the held row:
    # it looks again only when its idle poll says so.
    assert not any(FAKE_START < now < FAKE_START + POLL_SECONDS for now, _ in refusing.claims), refusing.claims


@fake_clock
async def test_a_shorter_lease_kept_during_a_wait_is_renewed_before_it_lapses(session: aiohttp.ClientSession) -> None:
    # The backlog planned its renewals for the leases kept when its wait began: an outcome with a shorter
    # lease (another instance's timeout) kept meanwhile waited for the next try, past its lapse.
    loop = asyncio.get_running_loop()
    renewed: dict[str, list[float]] = {"slow": [], "fast": []}
    writable = asyncio.Event()

    async def write(item: Unrecorded) -> None:
        if not writable.is_set():
            raise StoreError("store test: database is locked")

    async def renew(item: Unrecorded) -> bool:
        renewed[item.instance.name].append(loop.time())
        return True

    backlog = OutcomeBacklog(write, first_delay=5.0, renew=renew, may_renew=lambda: True)
    slow = NotifierInstance.of(RecordingNotifier(notifier_context(session, "slow")), timeout=60.0)
    fast = NotifierInstance.of(RecordingNotifier(notifier_context(session, "fast")), timeout=1.0)
    backlog.add(Unrecorded(slow, [], None), StoreError("locked"), "slow")
    await asyncio.sleep(6.0)  # the second try comes 10 s after the first
    kept_at = loop.time()
    backlog.add(Unrecorded(fast, [], None), StoreError("locked"), "fast")
    await asyncio.sleep(60.0)
    writable.set()
    await backlog.close(1.0)
    times = [kept_at, *renewed["fast"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) > 3 and max(gaps) < fast.timeout + CLAIM_MARGIN, gaps  # never left to lapse while kept
