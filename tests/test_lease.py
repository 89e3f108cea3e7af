"""The lease invariant (flamewatch.dispatch.lease): a row being sent is never claimed again, by anyone.

Both stores, real ones: SQLite files and a fresh PostgreSQL schema (skipped with a reason when no server
answers, a failure under CI=true). The race the invariant closes is made to happen every time by a store
wrapper that holds back a delivery's outcome write while the pump claims again, and hands that claim's
answer back only once the delivery has ended (the order a loaded machine produced by chance).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.dispatch import Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.rules import Evaluation
from flamewatch.store import Delivery, Store, open_store
from flamewatch.testing import RecordingNotifier, make_event, make_test_plugins, notifier_context

T0 = 1_000_000.0


class OutcomeHeldBack:
    """A real store whose first ``mark_sent`` waits until a pump's claim has run against the store.

    That claim's rows are handed back to the pump only after every delivery has ended, so the delivery
    has already forgotten the row in memory: only the store can keep it from being sent again.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.wake: Callable[[], None] = lambda: None  # wakes the pump (set once the dispatcher exists)
        self.idle: Callable[[], Any] = lambda: asyncio.sleep(0)  # waits until no delivery runs
        self._outcome_started = asyncio.Event()
        self._claimed = asyncio.Event()
        #: What the claim made while the outcome was unwritten returned (None: no such claim yet).
        self.claimed_meanwhile: list[int] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def mark_sent(self, ids: Sequence[int], now: float, **grouping: Any) -> None:
        if self._outcome_started.is_set():
            await self._store.mark_sent(ids, now, **grouping)
            return
        self._outcome_started.set()
        self.wake()
        await self._claimed.wait()
        await self._store.mark_sent(ids, now, **grouping)

    async def claim_due(self, now: float, **kwargs: Any) -> list[Delivery]:
        rows: list[Delivery] = await self._store.claim_due(now, **kwargs)
        if self._outcome_started.is_set() and not self._claimed.is_set():
            self.claimed_meanwhile = [r.id for r in rows]
            self._claimed.set()
            await self.idle()  # the outcome commits and the delivery ends before the pump sees the rows
        return rows


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_a_row_whose_outcome_is_not_yet_written_is_never_claimed_again(
    store_location: str, session: aiohttp.ClientSession
) -> None:
    async with await open_store(store_location) as real:
        store = OutcomeHeldBack(real)
        sink = RecordingNotifier(notifier_context(session, "sink"))
        # Two slots: the pump has room to claim while the first delivery writes its outcome.
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink, concurrency=2)],  # type: ignore[arg-type]
                                retry=RetryPolicy(base=0.01, cap=0.05, max_age=60.0))
        store.wake = dispatcher.instances["sink"].wake.set
        store.idle = dispatcher.deliveries.wait_idle
        await dispatcher.start()
        event = make_event()
        await dispatcher.publish(Evaluation(announce=[event]))
        await sink.wait_for(1)
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
        assert [e.key for e in sink.sent] == [event.key]  # sent once
        assert store.claimed_meanwhile == []  # the claim made during the outcome write left the row alone
        assert [(d.status, d.claimed_by) for d in await real.outbox()] == [("sent", None)]


async def test_an_owner_never_takes_back_its_own_live_lease(store_location: str) -> None:
    async with await open_store(store_location) as store:
        await store.record_events([make_event(story_id=1), make_event(story_id=2)],
                                  {make_event(story_id=1).key: ["hook"], make_event(story_id=2).key: ["hook"]}, T0)
        first = await store.claim_due(T0, claim_for=60, owner="one", limit=1)
        assert len(first) == 1
        # Same owner, lease live: only the other row.
        again = await store.claim_due(T0 + 1, claim_for=60, owner="one")
        assert [d.id for d in again] != [d.id for d in first] and len(again) == 1
        assert await store.claim_due(T0 + 59, claim_for=60, owner="one") == []
        # Lapsed (first claim at T0 + 60): free again, for anyone, and said to have had a claim with no outcome.
        taken = await store.claim_due(T0 + 60, claim_for=60, owner="two")
        assert [(d.id, d.reclaimed) for d in taken] == [(first[0].id, True)]
        # Everyone's leases ended at once (a SQLite lock holder starting after a crash): free to claim, and
        # the trace of a claim with no outcome stays.
        assert await store.release_claims(None) == 2
        assert [d.claimed_until for d in await store.pending()] == [None, None]
        assert {d.claimed_by for d in await store.pending()} == {"one", "two"}
        retaken = await store.claim_due(T0 + 61, claim_for=60, owner="three")
        assert [d.reclaimed for d in retaken] == [True, True]
        # An outcome clears the trace: a row retried after a recorded failure is claimed as a fresh one.
        await store.mark_retry([d.id for d in retaken], next_at=T0 + 62, error="boom")
        assert [d.reclaimed for d in await store.claim_due(T0 + 62, claim_for=60, owner="three")] == [False, False]


async def test_renewal_extends_only_the_owners_own_leases(store_location: str) -> None:
    async with await open_store(store_location) as store:
        events = [make_event(story_id=i) for i in (1, 2, 3)]
        await store.record_events(events, {e.key: ["hook"] for e in events}, T0)
        mine = [d.id for d in await store.claim_due(T0, claim_for=10, owner="one", limit=2)]
        theirs = [d.id for d in await store.claim_due(T0, claim_for=10, owner="two")]
        assert sorted(await store.renew_claims("one", [*mine, *theirs], T0 + 5, claim_for=10)) == sorted(mine)
        until = {d.id: d.claimed_until for d in await store.pending()}
        assert [until[i] for i in mine] == [T0 + 15, T0 + 15] and until[theirs[0]] == T0 + 10
        # Renewed, the rows are nobody else's at T0 + 12, when their first lease would have lapsed.
        assert [d.id for d in await store.claim_due(T0 + 12, claim_for=10, owner="two")] == theirs
        # Never shortened; a lapsed lease nobody took is renewed; a closed or released row is not.
        assert sorted(await store.renew_claims("one", mine, T0 + 1, claim_for=1)) == sorted(mine)
        assert {d.id: d.claimed_until for d in await store.pending()}[mine[0]] == T0 + 15
        await store.mark_sent(mine[:1], T0 + 20)
        assert await store.renew_claims("one", mine, T0 + 30, claim_for=10) == mine[1:]
        await store.release_claims("one")
        assert await store.renew_claims("one", mine, T0 + 31, claim_for=10) == []
        assert await store.renew_claims("one", [], T0 + 31, claim_for=10) == []


async def test_dispatchers_never_share_an_owner(store_location: str) -> None:
    async with await open_store(store_location) as store:
        owners = {Dispatcher(store, []).owner for _ in range(3)}
    assert len(owners) == 3


async def test_a_sqlite_sender_takes_back_the_rows_a_crashed_one_left_claimed(tmp_path: Path) -> None:
    path = tmp_path / "fw.db"
    async with await open_store(path) as store:
        event = make_event()
        await store.record_events([event], {event.key: ["sink"]}, T0)
        # A sender killed mid-send: its lease would keep the row for the attempt timeout and more.
        await store.claim_due(T0, claim_for=1e9, owner="host:1:dead")
        store._claim_owners.clear()  # type: ignore[attr-defined]  # it died: nothing gives its claims back
    config = parse_config({"store": {"path": str(path)}, "watch": {"period": 1.0}, "notifiers": []}, "fw.toml")
    async with App(config, plugins=make_test_plugins()) as app:
        assert app.store is not None
        # Free to claim; the dead sender's name stays as the trace of a send that may have happened.
        assert [(d.claimed_by, d.claimed_until) for d in await app.store.pending()] == [("host:1:dead", None)]


@pytest.mark.parametrize("ended", ["released", "lapsed"])
async def test_a_row_whose_last_claim_left_no_outcome_is_sent_not_superseded(
    store_location: str, session: aiohttp.ClientSession, ended: str
) -> None:
    lower, higher = make_event(story_id=7, level=100), make_event(story_id=7, level=250)
    async with await open_store(store_location) as store:
        now = time.time()
        await store.record_events([lower], {lower.key: ["sink"]}, now - 60)
        # A sender took the lower level and stopped (lead lost, shut down, killed) with no outcome written:
        # the receiver may have it. Its lease was released at its stop, or lapsed.
        await store.claim_due(now - 60, claim_for=30, owner="host:1:gone")
        if ended == "released":
            await store.release_claims("host:1:gone")
        await store.record_events([higher], {higher.key: ["sink"]}, now)
        sink = RecordingNotifier(notifier_context(session, "sink"))
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=RetryPolicy(base=0.01, cap=0.05))
        await dispatcher.start()  # one slot: the first pass takes the lower level alone; the higher one waits
        await sink.wait_for(2)
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
        states = {d.event.key: d.describe_state() for d in await store.outbox()}
    # Sent (again, with the same key), not shown as "superseded" (closed unsent) when it may have gone out.
    assert states == {lower.key: "sent", higher.key: "sent"}
    assert [e.key for e in sink.sent] == [lower.key, higher.key]


async def test_a_lower_level_never_claimed_is_still_superseded(
    store_location: str, session: aiohttp.ClientSession
) -> None:
    lower, higher = make_event(story_id=7, level=100), make_event(story_id=7, level=250)
    async with await open_store(store_location) as store:
        now = time.time()
        await store.record_events([lower], {lower.key: ["sink"]}, now - 60)
        await store.record_events([higher], {higher.key: ["sink"]}, now)
        sink = RecordingNotifier(notifier_context(session, "sink"))
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=RetryPolicy(base=0.01, cap=0.05))
        await dispatcher.start()
        await sink.wait_for(1)
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
        states = {d.event.key: d.describe_state() for d in await store.outbox()}
    assert states == {lower.key: f"superseded by {higher.key}", higher.key: "sent"}
    assert [e.key for e in sink.sent] == [higher.key]
