"""Delivery: outbox first, tracked tasks, retries, dead letters, digests, isolation and shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from flamewatch import Event, Notifier, hookimpl
from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.dispatch import DigestSchedule, Dispatcher, NotifierInstance, RetryPolicy, Route
from flamewatch.rules import Evaluation
from flamewatch.simulator import SimulatorServer, World
from flamewatch.store import Store
from flamewatch.tasks import TaskRegistry
from flamewatch.testing import RecordingNotifier, make_event, make_story, notifier_context, plugin_offering
from flamewatch.watch import Watcher

FAST_RETRY = RetryPolicy(base=0.01, cap=0.05, max_age=60.0)


def recorder(session: aiohttp.ClientSession, name: str, **options: object) -> RecordingNotifier:
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
    assert (await store.outbox_counts())["done"] == 1


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


async def test_retry_after_is_honoured(store: Store, session: aiohttp.ClientSession) -> None:
    limited = recorder(session, "limited", fail_times=1, retry_after=0.3)
    dispatcher = Dispatcher(store, [NotifierInstance.of(limited)], retry=FAST_RETRY)
    await dispatcher.start()
    started = time.monotonic()
    await dispatcher.publish(announce(make_event()))
    await limited.wait_for(1)
    waited = time.monotonic() - started
    await dispatcher.close(1.0)
    assert waited >= 0.3  # never sooner than the server asked (the backoff alone would be ~0.01 s)


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


async def test_retries_stop_at_max_age(store: Store, session: aiohttp.ClientSession) -> None:
    down = recorder(session, "down", fail_times=10**6)
    dispatcher = Dispatcher(store, [NotifierInstance.of(down)], retry=RetryPolicy(base=0.01, cap=0.02, max_age=0.1))
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    async with asyncio.timeout(5):
        await dispatcher.wait_for(lambda stats: stats.dead >= 1)
    await dispatcher.close(1.0)
    dead = await store.outbox("dead")
    assert "gave up after" in (dead[0].last_error or "")


async def test_digest_lane_sends_everything_due_in_one_batch(store: Store, session: aiohttp.ClientSession) -> None:
    digest = recorder(session, "digest")
    dispatcher = Dispatcher(store, [NotifierInstance.of(digest, digest=DigestSchedule(every=0.3))], retry=FAST_RETRY)
    await dispatcher.start()
    events = [make_event(make_story(i, comments=100 + i)) for i in range(1, 6)]
    await dispatcher.publish(announce(*events))
    await digest.wait_for(5)
    await dispatcher.close(1.0)
    assert len(digest.digests) == 1
    assert sorted(e.key for e in digest.digests[0]) == sorted(e.key for e in events)


async def test_shutdown_cancels_hung_deliveries_and_the_next_start_resumes_them(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "fw.db"
    async with await Store.open(path) as store:
        hung = recorder(session, "sink", delay=3600)
        dispatcher = Dispatcher(store, [NotifierInstance.of(hung)], retry=FAST_RETRY)
        await dispatcher.start()
        await dispatcher.publish(announce(make_event()))
        await hung.wait_for_attempts(1)
        report = await dispatcher.close(0.05)
        assert (report.finished, report.cancelled) == (0, 1)
        assert len(await store.pending()) == 1  # kept for the next start, not lost
    async with await Store.open(path) as store:
        healthy = recorder(session, "sink")
        dispatcher = Dispatcher(store, [NotifierInstance.of(healthy)], retry=FAST_RETRY)
        await dispatcher.start()
        await healthy.wait_for(1)
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


async def test_slow_notifier_does_not_move_the_next_cycle(tmp_path: Path) -> None:
    from flamewatch.plugins import make_plugin_manager

    world = World(seed=5, stories=5, total_comments=300)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 5, "shutdown_timeout": 0.2},
            "rules": {"comment_levels": [1]},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "sleepy", "concurrency": 2}],
        }, "test.toml")
        plugins = make_plugin_manager(extra=[plugin_offering(Sleepy)], defaults=False, load_entry_points=False)
        period = 0.25
        async with App(config, plugins=plugins) as app:
            assert app.monitor is not None
            watcher = Watcher(app.monitor.cycle, period, max_cycles=4)
            started = time.monotonic()
            await watcher.run()
            elapsed = time.monotonic() - started
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


def test_min_level_route_takes_only_high_levels_and_keywords() -> None:
    route = Route(min_level=500)
    story = make_story(comments=700)
    assert route.accepts(make_event(story, level=500))
    assert route.accepts(make_event(story, level=1000))
    assert not route.accepts(make_event(story, level=250))
    assert route.accepts(make_event(story, rule="keyword", level="python"))  # not a numeric level


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


def test_daily_digest_time_follows_dst(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime
    from datetime import time as dtime

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        schedule = DigestSchedule(at=dtime(9, 0))
        for evening in ("2026-03-28 20:00", "2026-10-24 20:00"):  # the evenings before the changes
            now = datetime.strptime(evening, "%Y-%m-%d %H:%M").timestamp()
            assert datetime.fromtimestamp(schedule.next_after(now)).strftime("%H:%M") == "09:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


async def test_a_store_error_does_not_stop_a_lane(
    store: Store, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flamewatch.dispatch as dispatch_module
    from flamewatch.store import StoreError

    monkeypatch.setattr("flamewatch.dispatch.runtime.STORE_ERROR_BACKOFF", 0.01)
    real_due = store.due
    failures = {"left": 1}

    async def flaky_due(*args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise StoreError("database is locked")
        return await real_due(*args, **kwargs)

    monkeypatch.setattr(store, "due", flaky_due)
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=FAST_RETRY)
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    await sink.wait_for(1)
    await dispatcher.close(1.0)
    assert failures["left"] == 0 and len(sink.sent) == 1


async def test_an_outcome_that_cannot_be_stored_is_held_back_not_resent_in_a_loop(
    store: Store, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flamewatch.store import StoreError

    async def broken_mark_done(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(store, "mark_done", broken_mark_done)
    real_due = store.due
    looks = {"n": 0}
    looked_again = asyncio.Event()

    async def counting_due(*args: object, **kwargs: object) -> object:
        rows = await real_due(*args, **kwargs)
        looks["n"] += 1
        if sink.attempts and looks["n"] >= 4:
            looked_again.set()
        return rows

    monkeypatch.setattr(store, "due", counting_due)
    sink = recorder(session, "sink")
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=RetryPolicy(base=60.0, cap=60.0))
    await dispatcher.start()
    await dispatcher.publish(announce(make_event()))
    await sink.wait_for(1)
    await asyncio.wait_for(looked_again.wait(), 5)  # the pump has looked at the outbox again since
    await dispatcher.close(1.0)
    assert sink.attempts == 1  # held for its backoff, not sent again and again


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
