"""Leases renewed while a delivery runs (flamewatch.dispatch.lease): a notifier's pacing wait, which the
attempt timeout does not count, can outlast a lease; another sender must still never get the row.

Both stores (a SQLite file, a fresh PostgreSQL schema; see ``store_location``), two dispatchers with
different owners on one store, as after a failover. Time runs on looptime's fake loop clock (the
dispatchers read it too), so a minute's wait for one's turn takes no real time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from flamewatch import Event, Notifier, not_timed
from flamewatch.dispatch import Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.dispatch.lease import CLAIM_MARGIN
from flamewatch.errors import StoreError
from flamewatch.rules import Evaluation
from flamewatch.store import Delivery, Store, open_store
from flamewatch.testing import make_event, notifier_context

FAKE_START = 1_000_000.0
# No-op cycles before each jump of the fake clock: the stores' replies (SQLite's thread, the PostgreSQL
# socket) are I/O the fake clock cannot see coming; a jump while a renewal's reply is on its way would
# let a lease lapse that the real clock would not (or reach the cut), on a loaded machine especially.
fake_clock = pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=10_000)

TIMEOUT = 20.0  #: the attempt timeout: a lease is TIMEOUT + CLAIM_MARGIN
PACE = 60.0  #: the notifier's wait for its turn, as long as Slack's longest hold-off


@dataclass
class Journal:
    """What the paced notifiers did, shared by both dispatchers' instances."""

    sent: list[tuple[str, str]] = field(default_factory=list)  #: (owner tag, event key)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)  #: set while a send waits its turn


class Paced(Notifier):
    """Waits its turn (not counted by the attempt timeout, as Slack's pacer does) for PACE s, then sends."""

    type_name = "paced"

    @dataclass(frozen=True)
    class Options:
        journal: Journal
        tag: str

    async def send(self, event: Event) -> None:
        journal = self.options.journal
        journal.waiting.set()
        try:
            async with not_timed():
                await asyncio.sleep(PACE)
        finally:
            journal.waiting.clear()
        journal.sent.append((self.options.tag, event.key))


class Watched:
    """A real store; every claim is noted with its time, what it returned and whether a send was waiting."""

    def __init__(self, store: Store, journal: Journal) -> None:
        self._store = store
        self._journal = journal
        self.claims: list[tuple[float, list[int], bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def claim_due(self, now: float, **kwargs: Any) -> list[Delivery]:
        rows: list[Delivery] = await self._store.claim_due(now, **kwargs)
        self.claims.append((now, [r.id for r in rows], self._journal.waiting.is_set()))
        return rows


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def dispatcher(store: Store | Watched | RenewalRefused, session: aiohttp.ClientSession, journal: Journal,
               tag: str) -> Dispatcher:
    notifier = Paced(notifier_context(session, "paced"), Paced.Options(journal, tag))
    return Dispatcher(store, [NotifierInstance.of(notifier, timeout=TIMEOUT)],  # type: ignore[arg-type]
                      retry=RetryPolicy(base=1.0, cap=1.0, max_age=3600.0), clock=asyncio.get_running_loop().time)


def stamps(rows: Sequence[Delivery]) -> list[tuple[str, str | None]]:
    return [(str(d.status), d.claimed_by) for d in rows]


@fake_clock
async def test_a_pacing_wait_longer_than_the_lease_keeps_the_row_from_another_sender(
    store_location: str, session: aiohttp.ClientSession
) -> None:
    journal = Journal()
    async with await open_store(store_location) as store_a, await open_store(store_location) as store_b:
        first = dispatcher(store_a, session, journal, "first")
        await first.start()
        event = make_event()
        await first.publish(Evaluation(announce=[event]))
        await journal.waiting.wait()  # the first sender took the row and waits its turn
        (row,) = await store_a.pending()
        assert row.claimed_until is not None
        lapse = row.claimed_until  # when its lease would lapse without renewal
        assert lapse - first.clock() <= TIMEOUT + CLAIM_MARGIN < PACE

        watched = Watched(store_b, journal)
        second = dispatcher(watched, session, journal, "second")  # another owner on the same store
        await second.start()
        await first.wait_for(lambda stats: stats.delivered > 0)
        await second.wait_idle()
        await first.close(1.0)
        await second.close(1.0)
        assert stamps(await store_a.outbox()) == [("sent", None)]

    assert journal.sent == [("first", event.key)]  # sent once, by the sender that waited
    while_waiting = [(now, ids) for now, ids, waiting in watched.claims if waiting]
    assert all(ids == [] for _, ids in while_waiting), watched.claims  # never handed to the second sender
    # The second sender did look after the first lease would have lapsed, while the first still waited.
    assert any(now >= lapse for now, _ in while_waiting), (lapse, watched.claims)


class RenewalRefused:
    """A real store whose next ``renew_claims`` calls fail, as a locked or unreachable database's would."""

    def __init__(self, store: Store, times: int) -> None:
        self._store = store
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def renew_claims(self, *args: Any, **kwargs: Any) -> list[int]:
        if self.times > 0:
            self.times -= 1
            raise StoreError("store test.db: database is locked")
        result: list[int] = await self._store.renew_claims(*args, **kwargs)
        return result


@fake_clock
async def test_a_send_waiting_its_turn_does_not_start_when_its_lease_cannot_be_renewed(
    store: Store, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal()
    refusing = RenewalRefused(store, times=1)
    sender = dispatcher(refusing, session, journal, "only")
    await sender.start()
    event = make_event()
    with caplog.at_level(logging.WARNING, logger="flamewatch.dispatch"):
        await sender.publish(Evaluation(announce=[event]))
        await sender.wait_for(lambda stats: stats.retried == 1)  # abandoned while it waited its turn
        assert journal.sent == []
        await sender.wait_for(lambda stats: stats.delivered == 1)  # the next attempt's lease is renewed
        await sender.close(1.0)
    assert journal.sent == [("only", event.key)]
    (row,) = await store.outbox()
    assert (row.status, row.attempts) == ("sent", 1)
    assert "abandoned: its lease on the outbox row could not be kept: the store did not renew it" in caplog.text


@fake_clock
async def test_a_row_dropped_while_its_send_waits_is_not_sent_and_nothing_is_written_for_it(
    store: Store, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal()
    sender = dispatcher(store, session, journal, "only")
    await sender.start()
    event = make_event()
    with caplog.at_level(logging.WARNING, logger="flamewatch.dispatch"):
        await sender.publish(Evaluation(announce=[event]))
        await journal.waiting.wait()
        assert await store.drop([d.id for d in await store.pending()]) == 1  # `flamewatch outbox drop`
        await sender.wait_idle()
        await sender.close(1.0)
    assert journal.sent == [] and await store.outbox() == []
    assert sender.stats.retried == 0 and sender.stats.delivered == 0
    assert "abandoned: the row was released, closed or taken by another sender meanwhile" in caplog.text
