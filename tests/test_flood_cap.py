"""The flood cap (``max_per_hour``): past it, the rest of the hour's events go out as one digest.

On looptime's fake loop clock (the dispatcher reads the loop's clock), so an hour takes no real time;
the store is a real SQLite file, as in the dispatcher's own tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from flamewatch.config import ConfigError, load_config
from flamewatch.app import load_plugins, resolve_notifiers
from flamewatch.dispatch import Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.rules import Evaluation
from flamewatch.store import open_store
from flamewatch.testing import RecordingNotifier, make_event, notifier_context

FAKE_START = 1_000_000.0
fake_clock = pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=2000)


@fake_clock
async def test_past_the_cap_the_rest_of_the_hour_is_one_digest(tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session, await open_store(tmp_path / "fw.db") as store:
        sink = RecordingNotifier(notifier_context(session, "pager"))
        instance = NotifierInstance.of(sink)
        instance.max_per_hour = 3
        clock = asyncio.get_running_loop().time
        dispatcher = Dispatcher(store, [instance], retry=RetryPolicy(base=1.0, cap=10.0), clock=clock)
        await dispatcher.start()
        started = clock()
        await dispatcher.publish(Evaluation(announce=[make_event(story_id=i) for i in range(10)]))
        await sink.wait_for(3, timeout=None)
        await dispatcher.wait_idle()
        assert [e.story.id for e in sink.sent] == [0, 1, 2] and sink.digests == []
        held = await store.pending("pager")
        assert len(held) == 7 and all("flood cap" in (r.last_error or "") for r in held)
        # More events within the hour join the held ones.
        await dispatcher.publish(Evaluation(announce=[make_event(story_id=i) for i in range(10, 12)]))
        await sink.wait_for(12, timeout=None)  # ...when the hour's first message is an hour old
        assert clock() - started >= 3600.0
        [digest] = sink.digests
        assert sorted(e.story.id for e in digest) == list(range(3, 12))
        # A new hour: single messages again.
        await dispatcher.publish(Evaluation(announce=[make_event(story_id=99)]))
        await sink.wait_for(13, timeout=None)
        assert sink.sent[-1].story.id == 99 and len(sink.digests) == 1
        await dispatcher.close(1.0)
    assert [e.story.id for e in sink.sent].count(5) == 1  # nothing twice


@pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=10_000)
async def test_a_restart_does_not_reset_the_hours_count(store_location: str) -> None:
    clock = asyncio.get_running_loop().time
    async with aiohttp.ClientSession() as session, await open_store(store_location) as store:
        sent: list[int] = []
        for run in range(3):  # a process restarted over and over within the hour
            sink = RecordingNotifier(notifier_context(session, "pager"))
            instance = NotifierInstance.of(sink)
            instance.max_per_hour = 3
            dispatcher = Dispatcher(store, [instance], retry=RetryPolicy(base=1.0, cap=10.0), clock=clock)
            await dispatcher.start()
            await dispatcher.publish(Evaluation(announce=[make_event(story_id=10 * run + i) for i in range(3)]))
            await dispatcher.wait_idle()
            await dispatcher.close(1.0)
            sent += [e.story.id for e in sink.sent]
        # Three in the hour, all from the first run; the later runs' events wait for the digest.
        assert sent == [0, 1, 2]
        assert len(await store.sent_since("pager", clock() - 3600.0)) == 3
        held = await store.pending("pager")
        assert sorted(r.event.story.id for r in held) == [10, 11, 12, 20, 21, 22]
        assert all("flood cap" in (r.last_error or "") for r in held)


def test_the_cap_is_checked_and_described(tmp_path: Path) -> None:
    path = tmp_path / "fw.toml"
    path.write_text('[[notifiers]]\nname = "out"\ntype = "console"\nmax_per_hour = 10\ndigest = "1h"\n')
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"notifiers\[0\] \(out\)\.max_per_hour: not with digest"):
        resolve_notifiers(config, load_plugins(config))
    path.write_text('[[notifiers]]\nname = "out"\ntype = "console"\nmax_per_hour = 10\n')
    config = load_config(path)
    [instance] = resolve_notifiers(config, load_plugins(config))
    assert instance.max_per_hour == 10 and "at most 10 an hour, then one digest" in instance.describe()


@pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=10_000)
async def test_a_standby_that_takes_over_counts_the_old_leaders_hour(store_location: str) -> None:
    # A standby starts (and would count the hour) before the leader sends; it leads later: its count must
    # be the store's at that moment, or each takeover would send max_per_hour more within the hour.
    clock = asyncio.get_running_loop().time
    async with aiohttp.ClientSession() as session, await open_store(store_location) as store:
        sinks, dispatchers, leads = [], [], [False, True]
        for n in range(2):  # 0: the standby, 1: the leader
            sink = RecordingNotifier(notifier_context(session, "pager"))
            instance = NotifierInstance.of(sink)
            instance.max_per_hour = 3
            dispatcher = Dispatcher(store, [instance], retry=RetryPolicy(base=1.0, cap=10.0), clock=clock,
                                    may_send=lambda n=n: leads[n])  # type: ignore[misc]
            await dispatcher.start()
            sinks.append(sink)
            dispatchers.append(dispatcher)
        standby, leader = dispatchers
        await leader.publish(Evaluation(announce=[make_event(story_id=i) for i in range(3)]))
        await sinks[1].wait_for(3, timeout=None)
        await leader.wait_idle()
        await leader.close(1.0)
        leads[:] = [True, False]  # the leader is gone; the standby takes over
        standby.resume()
        await standby.publish(Evaluation(announce=[make_event(story_id=i) for i in range(10, 13)]))
        await standby.wait_idle()
        await standby.close(1.0)
        assert sinks[0].sent == []  # three already went out this hour
        held = await store.pending("pager")
        assert sorted(r.event.story.id for r in held) == [10, 11, 12]
