"""Noise control in the dispatcher: quiet hours, grouping (group_wait), supersede and silences.

Time runs on looptime's fake clock (as in tests/test_dispatch.py): the loop starts at 1e6 s, which is
1970-01-12 13:46:40 UTC (14:46:40 in Berlin, UTC+1 in January).
"""

from __future__ import annotations

import asyncio
from datetime import time as dtime

import aiohttp
import pytest

from flamewatch import Event
from flamewatch.dispatch import Dispatcher, NotifierInstance
from flamewatch.dispatch.policies import DigestSchedule, QuietHours
from flamewatch.dispatch.skipping import skipped_rows
from flamewatch.events import Subject
from flamewatch.rules import Evaluation
from flamewatch.silences import Silence, SilenceList, parse_matcher
from flamewatch.store import Store
from flamewatch.testing import RecordingNotifier, make_event, make_story, notifier_context

FAKE_START = 1_000_000.0
fake_clock = pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=2000)
#: 15:00 in Berlin on the fake clock's day, in Unix seconds: 800 s after the start.
BERLIN_15H = FAKE_START + 800.0


def recorder(session: aiohttp.ClientSession, name: str) -> RecordingNotifier:
    return RecordingNotifier(notifier_context(session, name), RecordingNotifier.Options())


def comments_event(story_id: int, level: int, *, url: str | None = None) -> Event:
    story = make_story(story_id, comments=level + 3, url=url)
    return make_event(story, rule="comments", level=level)


async def open_dispatcher(store: Store, *instances: NotifierInstance) -> Dispatcher:
    dispatcher = Dispatcher(store, list(instances), clock=asyncio.get_running_loop().time)
    await dispatcher.start()
    return dispatcher


# --- the pure policies --------------------------------------------------------------------------


def test_quiet_hours_window_across_midnight_and_in_a_time_zone() -> None:
    night = QuietHours(dtime(22, 0), dtime(7, 0), "Europe/Berlin")
    # 2026-01-15 21:30 UTC is 22:30 in Berlin: inside, ends at 07:00 Berlin = 06:00 UTC the next day.
    at = 1768512600.0
    assert night.end_after(at) == 1768543200.0
    assert night.end_after(at - 3600) is None  # 21:30 Berlin: outside
    assert night.not_before(at - 3600) == at - 3600
    # A summer night: Berlin is UTC+2, so the same window ends an hour earlier in UTC.
    summer = 1784233800.0  # 2026-07-16 20:30 UTC = 22:30 Berlin
    assert night.end_after(summer) == 1784264400.0  # 2026-07-17 05:00 UTC = 07:00 Berlin
    day = QuietHours(dtime(12, 0), dtime(13, 0), "UTC")
    assert day.end_after(1768478400.0 + 1800) == 1768482000.0  # 12:30 UTC -> 13:00 UTC
    assert day.end_after(1768482000.0) is None  # the end itself is outside


def test_bad_silences_are_one_line() -> None:
    for text, message in [("stroy:1", "expected story:ID, domain:DOMAIN"), ("story:abc", "positive whole number"),
                          ("domain:nodot", "a domain such as"), ("term:", "expected story:ID")]:
        with pytest.raises(ValueError, match=message) as info:
            parse_matcher(text)
        assert "\n" not in str(info.value)
    assert parse_matcher("domain:WWW.GitHub.com") == ("domain", "github.com")


def test_silence_matching() -> None:
    event = make_event(make_story(7, title="Rust in the kernel", url="https://blog.example.com/x", by="pg"))
    mention = make_event(make_story(8, title="Other"), subject=Subject(id=9, by="dang", excerpt="about Rust"))

    def silence(matcher: str) -> Silence:
        kind, value = parse_matcher(matcher)
        return Silence("s1", kind, value, 0.0, 10.0)

    assert silence("story:7").matches(event) and not silence("story:8").matches(event)
    assert silence("domain:example.com").matches(event) and not silence("domain:ample.com").matches(event)
    assert silence("user:PG").matches(event) and silence("user:dang").matches(mention)
    assert silence("term:RUST").matches(event) and silence("term:rust").matches(mention)
    assert not silence("story:7").active(10.0)


# --- through the dispatcher, on the fake clock ------------------------------------------------------------


@fake_clock
async def test_quiet_hours_hold_events_until_the_window_ends(store: Store, session: aiohttp.ClientSession) -> None:
    sink = recorder(session, "sink")
    quiet = QuietHours(dtime(14, 0), dtime(15, 0), "Europe/Berlin")  # now is 14:46 in Berlin
    dispatcher = await open_dispatcher(store, NotifierInstance.of(sink, quiet=quiet))
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 100)]))
    await sink.wait_for(1, timeout=None)
    assert dispatcher.clock() == pytest.approx(BERLIN_15H, abs=1.0)  # held to 15:00 Berlin, then sent
    await dispatcher.publish(Evaluation(announce=[comments_event(2, 100)]))
    sent_at = dispatcher.clock()
    await sink.wait_for(2, timeout=None)
    assert dispatcher.clock() - sent_at < 1.0  # outside the window: at once
    await dispatcher.close(1.0)
    assert [e.story.id for e in sink.sent] == [1, 2] and sink.digests == []


@fake_clock
async def test_a_digest_due_in_quiet_hours_goes_out_when_they_end(store: Store, session: aiohttp.ClientSession) -> None:
    sink = recorder(session, "digest")
    quiet = QuietHours(dtime(14, 0), dtime(15, 0), "Europe/Berlin")
    schedule = DigestSchedule(every=600.0)  # next send at 1,000,200: inside the window
    dispatcher = await open_dispatcher(store, NotifierInstance.of(sink, digest=schedule, quiet=quiet))
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 100)]))
    await asyncio.sleep(300)  # the fake clock: 5 minutes later, another event joins the digest
    await dispatcher.publish(Evaluation(announce=[comments_event(2, 100)]))
    await sink.wait_for(2, timeout=None)
    await dispatcher.close(1.0)
    assert dispatcher.clock() >= BERLIN_15H
    assert [sorted(e.story.id for e in digest) for digest in sink.digests] == [[1, 2]]


@fake_clock
async def test_group_wait_sends_what_arrives_within_the_window_as_one_message(
    store: Store, session: aiohttp.ClientSession
) -> None:
    sink = recorder(session, "grouped")
    dispatcher = await open_dispatcher(store, NotifierInstance.of(sink, group_wait=30.0))
    opened = dispatcher.clock()
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 100)]))
    await asyncio.sleep(10)
    await dispatcher.publish(Evaluation(announce=[comments_event(2, 100), comments_event(3, 50)]))
    await sink.wait_for(3, timeout=None)
    assert dispatcher.clock() == pytest.approx(opened + 30.0, abs=1.0)  # when the first event's window closed
    assert [sorted(e.story.id for e in group) for group in sink.digests] == [[1, 2, 3]]
    # A later lone event opens a new group and goes out alone, as an ordinary message.
    await dispatcher.publish(Evaluation(announce=[comments_event(4, 100)]))
    await sink.wait_for(4, timeout=None)
    await dispatcher.close(1.0)
    assert len(sink.digests) == 1 and sink.sent[-1].story.id == 4


@fake_clock
async def test_only_the_highest_level_of_a_held_story_is_sent(store: Store, session: aiohttp.ClientSession) -> None:
    sink = recorder(session, "grouped")
    dispatcher = await open_dispatcher(store, NotifierInstance.of(sink, group_wait=60.0))
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 100), comments_event(2, 100)]))
    await asyncio.sleep(20)
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 250)]))
    await asyncio.sleep(20)
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 500)]))
    await sink.wait_for(2, timeout=None)
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert sorted(e.key for e in sink.sent) == ["1:comments:500", "2:comments:100"]
    shown = {row.event.key: (row.status, row.ref, row.last_error) for row in await store.outbox()}
    assert shown["1:comments:100"] == ("superseded", "1:comments:500", None)
    assert shown["1:comments:250"] == ("superseded", "1:comments:500", None)
    # The two left went out as one message: the first row is sent, the other grouped into it.
    assert shown["2:comments:100"] == ("sent", None, None)
    assert shown["1:comments:500"] == ("grouped", "2:comments:100", None) and dispatcher.stats.skipped == 2


def test_words_as_levels_and_item_events_never_supersede() -> None:
    from flamewatch.store import Delivery, DeliveryStatus

    def row(i: int, event: Event) -> Delivery:
        return Delivery(i, event, "x", DeliveryStatus.PENDING, 0, 0.0, 0.0, None)

    keyword = [make_event(make_story(1), rule="keyword", level=w) for w in ("a", "b")]
    replies = [make_event(make_story(1), rule="replies", level=i, subject=Subject(id=i)) for i in (5, 6)]
    assert skipped_rows([row(i, e) for i, e in enumerate(keyword + replies)], [], 0.0) == []


@fake_clock
async def test_a_silence_read_at_the_next_refresh_stops_held_and_new_deliveries(
    store: Store, session: aiohttp.ClientSession
) -> None:
    sink = recorder(session, "sink")
    quiet = QuietHours(dtime(14, 0), dtime(15, 0), "Europe/Berlin")
    dispatcher = await open_dispatcher(store, NotifierInstance.of(sink, quiet=quiet))
    await dispatcher.publish(Evaluation(announce=[comments_event(1, 100, url="https://noisy.example.com/a"),
                                                  comments_event(2, 100)]))
    # Another process (`flamewatch silence add domain:example.com`) writes to the store meanwhile.
    book = await SilenceList.load(store)
    book.add("domain:example.com", 6 * 3600.0, "too noisy", dispatcher.clock())
    await book.save(store, dispatcher.clock())
    await dispatcher.refresh_silences()  # the monitor does this at the start of every cycle
    await sink.wait_for(1, timeout=None)
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert [e.story.id for e in sink.sent] == [2]
    rows = {row.event.story.id: row for row in await store.outbox()}
    assert rows[1].status == "silenced" and rows[1].ref == "s1 domain:example.com (too noisy)"
    assert rows[1].describe_state() == "silenced by s1 domain:example.com (too noisy)" and rows[2].status == "sent"
