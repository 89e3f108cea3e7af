"""Delivery: outbox first, tracked tasks, retries, dead letters, digests, isolation and shutdown.

Tests about time run on a fake loop clock (looptime): a 30-second backoff or an hourly digest takes no
real time, and the dispatcher is given the loop's clock so the outbox's timestamps agree with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flamewatch import Event, Notifier, hookimpl
from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.dispatch import (
    STORE_ERROR_BACKOFF,
    DigestSchedule,
    Dispatcher,
    NotifierInstance,
    RetryPolicy,
    Route,
)
from flamewatch.errors import StoreError
from flamewatch.rules import Evaluation
from flamewatch.simulator import SimulatorServer, World
from flamewatch.store import Store, open_store
from flamewatch.tasks import TaskRegistry
from flamewatch.testing import (
    RecordingNotifier,
    make_event,
    make_story,
    make_test_plugins,
    notifier_context,
    plugin_offering,
)
from flamewatch.watch import Watcher

FAST_RETRY = RetryPolicy(base=0.01, cap=0.05, max_age=60.0)

#: Fake time, fast: the loop clock jumps to the next timer whenever the loop is idle. It starts at 1e6 s
#: (looptime counts integer microseconds; a present-day Unix time would lose precision). Many no-op cycles
#: before a jump let the store's SQLite thread answer first: its replies are I/O that looptime cannot see
#: coming. Waits in these tests set no deadline of their own, because time would jump straight to a lone
#: deadline while a query runs; the guards are looptime's: an end of time a day on, and 10 real seconds
#: idle with no timer at all.
FAKE_START = 1_000_000.0
fake_clock = pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=2000)


def loop_clock() -> Callable[[], float]:
    """The running loop's clock, for ``Dispatcher(clock=...)`` under looptime."""
    return asyncio.get_running_loop().time


class FaultyStore:
    """The store's interface over a real store; chosen operations fail with an error on demand.

    A test double of the interface, not a patch of the store: the dispatcher sees exactly what it would
    see from a store whose disk is full or whose database is locked. It also counts calls.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._failures: dict[str, tuple[float, Exception]] = {}
        self.calls: Counter[str] = Counter()
        self._called = asyncio.Condition()

    def fail(self, operation: str, error: Exception, times: float = math.inf) -> None:
        """Make the next ``times`` calls of ``operation`` raise ``error`` instead of reaching the store."""
        self._failures[operation] = (times, error)

    async def wait_for_calls(self, operation: str, count: int) -> None:
        async with self._called:
            await self._called.wait_for(lambda: self.calls[operation] >= count)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if not asyncio.iscoroutinefunction(real):
            return real

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                left, error = self._failures.get(name, (0, None))
                if left > 0 and error is not None:
                    self._failures[name] = (left - 1, error)
                    raise error
                return await real(*args, **kwargs)
            finally:
                self.calls[name] += 1
                async with self._called:
                    self._called.notify_all()

        return call


def recorder(session: aiohttp.ClientSession, name: str, **options: Any) -> RecordingNotifier:
    return RecordingNotifier(notifier_context(session, name), RecordingNotifier.Options(**options))


def announce(*events: Event) -> Evaluation:
    return Evaluation(announce=list(events))


async def test_event_is_delivered_once_even_when_published_again(store: Store, session: aiohttp.ClientSession) -> None:
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=FAST_RETRY)
    await dispatcher.start()
    event = make_event()
    assert await dispatcher.publish(announce(event)) == [event]
    assert await dispatcher.publish(announce(event)) == []  # same key: already fired
    await sink.wait_for(1)
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert [e.key for e in sink.sent] == [event.key]
    assert (await store.outbox_counts())["sent"] == 1


async def test_lower_levels_passed_together_are_recorded_but_not_announced(
    store: Store, session: aiohttp.ClientSession
) -> None:
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=FAST_RETRY)
    await dispatcher.start()
    story = make_story(comments=600)
    top, lower = make_event(story, level=500), make_event(story, level=250)
    await dispatcher.publish(Evaluation(announce=[top], passed=[lower]))
    await dispatcher.wait_idle()
    # Later the lower level is "reached" again (e.g. after a restart): it must stay silent.
    assert await dispatcher.publish(announce(lower)) == []
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert [e.level for e in sink.sent] == [500]


async def test_routes_filter_by_rule_comments_and_keyword(store: Store, session: aiohttp.ClientSession) -> None:
    everything = recorder(session, "everything")
    big_only = recorder(session, "big")
    rust_points = recorder(session, "rust")
    dispatcher = Dispatcher(store, [
        NotifierInstance.of(everything),
        NotifierInstance.of(big_only, Route(min_comments=500)),
        NotifierInstance.of(rust_points, Route(rules=frozenset({"points"}), keywords=("rust",))),
    ], retry=FAST_RETRY)
    await dispatcher.start()
    small = make_event(make_story(1, title="Why Rust?", comments=120, score=300), level=100)
    big = make_event(make_story(2, title="Python 4", comments=700), level=500)
    points = make_event(make_story(1, title="Why Rust?", comments=120, score=300), rule="points", level=250)
    await dispatcher.publish(announce(small, big, points))
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert {e.key for e in everything.sent} == {small.key, big.key, points.key}
    assert [e.key for e in big_only.sent] == [big.key]
    assert [e.key for e in rust_points.sent] == [points.key]


async def test_retryable_failures_are_retried_until_delivered(store: Store, session: aiohttp.ClientSession) -> None:
    flaky = recorder(session, "flaky", fail_times=2)
    dispatcher = Dispatcher(store, [NotifierInstance.of(flaky)], retry=FAST_RETRY)
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    await flaky.wait_for(1)
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert flaky.attempts == 3 and len(flaky.sent) == 1
    assert dispatcher.stats.retried == 2 and dispatcher.stats.delivered == 1


@fake_clock
async def test_retry_after_is_honoured(store: Store, session: aiohttp.ClientSession) -> None:
    limited = recorder(session, "limited", fail_times=1, retry_after=30.0)
    dispatcher = Dispatcher(store, [NotifierInstance.of(limited)], retry=FAST_RETRY, clock=loop_clock())
    await dispatcher.start()
    started = dispatcher.clock()
    await dispatcher.publish(announce(make_event()))
    await limited.wait_for(1, timeout=None)
    waited = dispatcher.clock() - started
    await dispatcher.close(1.0)
    assert waited >= 30.0  # never sooner than the server asked (the backoff alone would be ~0.01 s)


@fake_clock
async def test_wait_idle_waits_for_deliveries_without_polling_the_outbox(
    store: Store, session: aiohttp.ClientSession
) -> None:
    faulty = FaultyStore(store)
    slow = recorder(session, "slow", delay=60.0)
    dispatcher = Dispatcher(faulty, [NotifierInstance.of(slow, timeout=120.0)],  # type: ignore[arg-type]
                            retry=FAST_RETRY, clock=loop_clock())
    await dispatcher.start()
    started = dispatcher.clock()
    await dispatcher.publish(announce(make_event()))
    await dispatcher.wait_idle()
    assert len(slow.sent) == 1 and dispatcher.clock() - started >= 60.0
    # Woken by the delivery's end, not by reading the outbox every few milliseconds for a minute.
    assert faulty.calls["due"] < 10
    await dispatcher.close(1.0)


@fake_clock
async def test_wait_idle_does_not_wait_for_rows_due_later(store: Store, session: aiohttp.ClientSession) -> None:
    digest = recorder(session, "digest")
    dispatcher = Dispatcher(store, [NotifierInstance.of(digest, digest=DigestSchedule(every=3600.0))],
                            retry=FAST_RETRY, clock=loop_clock())
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    started = dispatcher.clock()
    await dispatcher.wait_idle()
    assert dispatcher.clock() == started and digest.sent == []  # the digest is due on the hour, not now
    assert await dispatcher.flush_digests() == 1
    await dispatcher.wait_idle()  # now it is due: wait_idle sees it through
    assert len(digest.sent) == 1
    await dispatcher.close(1.0)


async def test_permanent_failure_goes_to_dead_letters_with_the_reason(
    store: Store, session: aiohttp.ClientSession
) -> None:
    refused = recorder(session, "refused", fail_times=99, permanent=True)
    dispatcher = Dispatcher(store, [NotifierInstance.of(refused)], retry=FAST_RETRY)
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    dead = await store.outbox("dead")
    assert refused.attempts == 1
    assert len(dead) == 1 and "refused on purpose" in (dead[0].last_error or "")


@fake_clock
async def test_retries_stop_at_max_age(store: Store, session: aiohttp.ClientSession) -> None:
    down = recorder(session, "down", fail_times=10**6)
    retry = RetryPolicy(base=60.0, cap=600.0, max_age=3600.0)
    dispatcher = Dispatcher(store, [NotifierInstance.of(down)], retry=retry, clock=loop_clock())
    await dispatcher.start()
    published = dispatcher.clock()
    await dispatcher.publish(announce(make_event()))
    await dispatcher.wait_for(lambda stats: stats.dead >= 1)
    await dispatcher.close(1.0)
    dead = await store.outbox("dead")
    assert "gave up after" in (dead[0].last_error or "")
    assert dispatcher.clock() - published <= retry.max_age  # given up when the next try would be too late


@fake_clock
async def test_digest_instance_sends_everything_due_in_one_batch(store: Store, session: aiohttp.ClientSession) -> None:
    digest = recorder(session, "digest")
    schedule = DigestSchedule(every=3600.0)
    dispatcher = Dispatcher(store, [NotifierInstance.of(digest, digest=schedule)], retry=FAST_RETRY,
                            clock=loop_clock())
    await dispatcher.start()
    send_time = schedule.next_after(dispatcher.clock())
    events = [make_event(make_story(i, comments=100 + i)) for i in range(1, 6)]
    await dispatcher.publish(announce(*events))
    await digest.wait_for(5, timeout=None)
    await dispatcher.close(1.0)
    assert dispatcher.clock() >= send_time  # sent on the hour, not as the events came
    assert len(digest.digests) == 1
    assert sorted(e.key for e in digest.digests[0]) == sorted(e.key for e in events)


@fake_clock
async def test_shutdown_cancels_hung_deliveries_and_the_next_start_resumes_them(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "fw.db"
    async with await open_store(path) as store:
        hung = recorder(session, "sink", delay=10**6)
        dispatcher = Dispatcher(store, [NotifierInstance.of(hung, timeout=10**6)], retry=FAST_RETRY,
                                clock=loop_clock())
        await dispatcher.start()
        await dispatcher.publish(announce(make_event()))
        await hung.wait_for_attempts(1, timeout=None)
        report = await dispatcher.close(5.0)
        assert (report.finished, report.cancelled) == (0, 1)
        assert len(await store.pending()) == 1  # kept for the next start, not lost
    async with await open_store(path) as store:
        healthy = recorder(session, "sink")
        dispatcher = Dispatcher(store, [NotifierInstance.of(healthy)], retry=FAST_RETRY, clock=loop_clock())
        await dispatcher.start()
        await healthy.wait_for(1, timeout=None)
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
        assert await store.pending() == []


class Exploding(Notifier):
    type_name = "exploding"

    async def send(self, event: Event) -> None:
        raise RuntimeError("kaboom")


class ObserverThatRaises:
    __name__ = "observer-that-raises"

    @hookimpl
    def flamewatch_event_fired(self, event: Event) -> None:
        raise ValueError("observer bug")


async def test_raising_plugins_do_not_stop_the_console_notifier(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from flamewatch.plugins import make_plugin_manager

    world = World(seed=5, stories=3, total_comments=400)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [1]},
            "delivery": {"retry_base": 0.01},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "exploding"}, {"type": "console"}],
        }, "test.toml")
        plugins = make_plugin_manager(extra=[plugin_offering(Exploding), ObserverThatRaises()])
        with caplog.at_level(logging.WARNING):
            async with App(config, plugins=plugins) as app:
                assert app.monitor is not None and app.dispatcher is not None
                await app.monitor.cycle(0)
                async with asyncio.timeout(10):
                    await app.dispatcher.wait_for(lambda stats: stats.delivered >= 3)
    err = capfd.readouterr().err
    assert err.count("ALERT ") == 3  # the console notifier delivered every event
    assert "plugin observer-that-raises: hook flamewatch_event_fired raised ValueError: observer bug" in caplog.text
    assert "notifier exploding" in caplog.text and "unexpected RuntimeError: kaboom" in caplog.text


class Sleepy(Notifier):
    """Takes 5 seconds per event, like a very slow webhook."""

    type_name = "sleepy"
    started = 0

    async def send(self, event: Event) -> None:
        type(self).started += 1
        await asyncio.sleep(5)


# More no-op cycles here: a time jump during one of the cycle's queries would look like a late tick.
@pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=50_000)
async def test_slow_notifier_does_not_move_the_next_cycle(tmp_path: Path) -> None:

    world = World(seed=5, stories=5, total_comments=300)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 5, "shutdown_timeout": 0.2},
            "rules": {"comment_levels": [1]},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "sleepy", "concurrency": 2}],
        }, "test.toml")
        plugins = make_test_plugins(plugin_offering(Sleepy))
        period = 0.25
        async with App(config, plugins=plugins) as app:
            assert app.monitor is not None
            watcher = Watcher(app.monitor.cycle, period, max_cycles=4)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await watcher.run()
            elapsed = loop.time() - started
        assert Sleepy.started >= 1  # deliveries were under way during the cycles
        assert watcher.skipped_ticks == 0
        assert max(watcher.tick_lateness) < period  # every cycle started before its next tick was due
        assert elapsed < 5  # four cycles did not wait for a single 5-second delivery
        assert app.close_report is not None and app.close_report.cancelled >= 1


async def test_task_registry_logs_failures_and_refuses_work_after_close(caplog: pytest.LogCaptureFixture) -> None:
    registry = TaskRegistry("test")

    async def boom() -> None:
        raise KeyError("lost")

    with caplog.at_level(logging.ERROR, logger="flamewatch.tasks"):
        registry.spawn(boom(), name="boom")
        await registry.wait_idle()
    assert "task boom failed" in caplog.text
    report = await registry.close(0.1)
    assert (report.finished, report.cancelled) == (0, 0)

    async def never_run() -> None:  # pragma: no cover - must not start
        raise AssertionError

    with pytest.raises(RuntimeError, match="registry is closed"):
        registry.spawn(never_run(), name="late")


async def test_rows_of_a_notifier_no_longer_configured_wait_and_are_reported(
    store: Store, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    gone = make_event(make_story(1))
    await store.record_events([gone], {gone.key: ["old-slack"]}, time.time())
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=FAST_RETRY)
    with caplog.at_level(logging.WARNING, logger="flamewatch.dispatch"):
        await dispatcher.start()
    await dispatcher.publish(announce(make_event(make_story(2))))
    async with asyncio.timeout(5):
        await dispatcher.wait_idle()  # does not wait for the orphaned row
    await dispatcher.close(1.0)
    assert "1 deliveries are queued for notifier 'old-slack'" in caplog.text
    assert [r.instance for r in await store.pending()] == ["old-slack"]  # kept, not lost


@fake_clock
async def test_a_store_error_does_not_stop_an_instance(store: Store, session: aiohttp.ClientSession) -> None:
    faulty = FaultyStore(store)
    faulty.fail("claim_due", StoreError(f"store {store.path}: database is locked"), times=1)
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(faulty, [NotifierInstance.of(sink)], retry=FAST_RETRY,  # type: ignore[arg-type]
                            clock=loop_clock())
    started = dispatcher.clock()
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    await sink.wait_for(1, timeout=None)
    await dispatcher.close(1.0)
    assert faulty.calls["claim_due"] >= 2 and len(sink.sent) == 1
    assert dispatcher.clock() - started >= STORE_ERROR_BACKOFF  # read again after the backoff, not in a tight loop


@fake_clock
async def test_a_bug_in_the_pump_is_logged_once_with_its_traceback_and_the_pump_goes_on(
    store: Store, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyStore(store)
    faulty.fail("claim_due", KeyError("not a store error"), times=3)
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(faulty, [NotifierInstance.of(sink)], retry=FAST_RETRY,  # type: ignore[arg-type]
                            clock=loop_clock())
    with caplog.at_level(logging.ERROR, logger="flamewatch.dispatch"):
        await dispatcher.start()
        await dispatcher.publish(announce(make_event()))
        await sink.wait_for(1, timeout=None)
        await dispatcher.close(1.0)
    bugs = [r for r in caplog.records if "bug in the dispatcher's pump" in r.getMessage()]
    assert len(bugs) == 1  # the same bug three times in a row is one traceback, not three
    assert "notifier sink" in bugs[0].getMessage() and bugs[0].exc_info is not None
    assert "cannot read the outbox" not in caplog.text  # a bug is not reported as a store problem
    assert len(sink.sent) == 1


# More no-op cycles than fake_clock: the kept row's lease is renewed during the waits, and a jump of the
# clock while a renewal's reply is on its way (a loaded machine) would land on the pump's poll instead.
@pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=20_000)
async def test_an_outcome_that_cannot_be_stored_is_kept_and_never_sent_again(
    store: Store, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyStore(store)
    faulty.fail("mark_sent", StoreError(f"store {store.path}: database or disk is full"), times=4)
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(faulty, [NotifierInstance.of(sink)],  # type: ignore[arg-type]
                            retry=RetryPolicy(base=60.0, cap=60.0), clock=loop_clock())
    with caplog.at_level(logging.INFO, logger="flamewatch.dispatch"):
        await dispatcher.start()
        await dispatcher.publish(announce(make_event()))
        await sink.wait_for(1, timeout=None)
        sent_at = dispatcher.clock()
        await faulty.wait_for_calls("mark_sent", 5)  # the send's own write, then 3 failed retries, then one that works
        took = dispatcher.clock() - sent_at
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
    assert sink.attempts == 1  # sent once: only the store write was tried again
    assert (await store.outbox_counts())["sent"] == 1
    # The write was retried after 5, 10, 20 and 40 s: a growing delay, not every 5 s.
    assert 5 + 10 + 20 + 40 <= took < 5 + 10 + 20 + 40 + 1
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([m for m in said if "the store cannot record it" in m]) == 1, said
    assert len([m for m in said if "the store records again" in m]) == 1, said


@fake_clock
async def test_outcomes_still_unrecorded_at_shutdown_are_named(
    store: Store, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyStore(store)
    faulty.fail("mark_sent", StoreError(f"store {store.path}: database is locked"))
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(faulty, [NotifierInstance.of(sink)], retry=FAST_RETRY,  # type: ignore[arg-type]
                            clock=loop_clock())
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    await faulty.wait_for_calls("mark_sent", 1)
    await dispatcher.wait_idle()  # the held row does not count as due: once-style callers are not stuck
    with caplog.at_level(logging.ERROR, logger="flamewatch.dispatch"):
        await dispatcher.close(1.0)
    assert sink.attempts == 1
    assert "will be sent again at the next start" in caplog.text
    assert [r.attempts for r in await store.pending()] == [0]


async def test_publish_cancelled_during_its_write_still_wakes_the_lane(
    store: Store, session: aiohttp.ClientSession
) -> None:
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=FAST_RETRY)
    await dispatcher.start()
    await dispatcher.wait_idle()
    publishing = asyncio.create_task(dispatcher.publish(announce(make_event())))
    await asyncio.sleep(0)  # the write is under way in the store's thread
    publishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await publishing
    await sink.wait_for(1, timeout=5)  # delivered at once, not after an unrelated event or a restart
    await dispatcher.close(1.0)
