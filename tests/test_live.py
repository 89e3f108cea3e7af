"""Live mode's stream: Firebase's event-stream protocol, parsed with bounds, against the simulator's stream.

The stream tests run the real client against the simulator over loopback; those about time (a stall, a
refusal's retry, a flood's pacing) run on looptime's fake loop clock, so a 45-second keep-alive window
passes at once and is measured on the loop's clock.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from flamewatch.hn import HNClient
from flamewatch.hn.live import PathStream, Refused, _redirect_target
from flamewatch.hn.livesource import LiveSource
from flamewatch.hn.sse import EventParser, FirebaseEvent, ServerEvent, apply_event, decode
from flamewatch.simulator import SimulatorServer, World
from flamewatch.store import open_store
from flamewatch.stream import STREAM_STATE, ItemStream

#: A fake loop clock for the tests about time; the guards end a hung test, they are not waits.
fake_clock = pytest.mark.looptime(start=0, end=3600.0, idle_timeout=10.0, noop_cycles=200)

# --- the protocol, parsed ------------------------------------------------------------------------------


def test_events_split_anywhere_across_chunks_come_out_whole() -> None:
    stream = b'event: put\r\ndata: {"path": "/", "data": 42}\r\n\r\n: a comment\nevent: keep-alive\ndata: null\n\n'
    for cut in range(1, len(stream)):
        parser = EventParser()
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert events == [ServerEvent("put", '{"path": "/", "data": 42}'), ServerEvent("keep-alive", "null")]
        assert parser.malformed == 0


def test_malformed_lines_are_skipped_and_counted() -> None:
    parser = EventParser()
    events = parser.feed(b"garbage here\nbogus: 1\nevent: put\ndata: \xff\xfe\n\nevent: put\ndata: 1\n\n")
    assert events == [ServerEvent("put", "1")]
    assert parser.malformed == 3  # two unknown fields, one event that is not UTF-8


def test_an_oversized_line_is_dropped_unheld_and_the_stream_recovers() -> None:
    parser = EventParser(max_event_bytes=1000)
    assert parser.feed(b"event: put\ndata: " + b"9" * 600) == []
    for _ in range(1000):  # a megabyte with no end of line is never held
        assert parser.feed(b"9" * 1000) == []
        assert len(parser._partial) <= 1000
    assert parser.feed(b'\n\nevent: put\ndata: {"path":"/","data":7}\n\n') == [
        ServerEvent("put", '{"path":"/","data":7}')
    ]
    assert parser.oversized == 1


def test_an_event_whose_data_lines_add_up_over_the_bound_is_dropped() -> None:
    parser = EventParser(max_event_bytes=100)
    lines = b"".join(b"data: " + b"x" * 40 + b"\n" for _ in range(5))
    assert parser.feed(b"event: put\n" + lines + b"\nevent: put\ndata: 1\n\n") == [ServerEvent("put", "1")]
    assert parser.oversized == 1


def test_decode_knows_firebase_events_and_refuses_the_rest() -> None:
    assert decode(ServerEvent("put", '{"path":"/3","data":5}')) == FirebaseEvent("put", ("3",), 5)
    assert decode(ServerEvent("keep-alive", "null")) == FirebaseEvent("keep-alive")
    assert decode(ServerEvent("auth_revoked", '"credential is no longer valid"')) == FirebaseEvent("auth_revoked")
    assert decode(ServerEvent("cancel", "null")) == FirebaseEvent("cancel")
    for bad in (ServerEvent("put", "{nope"), ServerEvent("put", '{"data":1}'), ServerEvent("rumour", "1"),
                ServerEvent("patch", '{"path":"/","data":[1]}')):
        assert decode(bad) is None


def test_put_and_patch_change_a_list_as_firebase_addresses_it() -> None:
    value = apply_event(None, FirebaseEvent("put", (), [10, 20, 30]))
    assert apply_event(value, FirebaseEvent("put", ("1",), 21)) == [10, 21, 30]
    assert apply_event(value, FirebaseEvent("patch", (), {"0": 11, "2": 31})) == [11, 20, 31]
    assert apply_event(value, FirebaseEvent("put", ("2",), None)) == [10, 20]
    assert apply_event(value, FirebaseEvent("patch", (), {"3": 40})) == [10, 20, 30, 40]


def test_redirects_stay_within_the_api_domain() -> None:
    here = URL("https://hacker-news.firebaseio.com/v0/maxitem.json")
    assert _redirect_target(here, "https://s-usc1.firebaseio.com/v0/maxitem.json?ns=x").host == "s-usc1.firebaseio.com"
    for elsewhere in ("https://evil.example/v0/maxitem.json", "http://s-usc1.firebaseio.com/v0/maxitem.json"):
        with pytest.raises(Refused):
            _redirect_target(here, elsewhere)


# --- the stream, against the simulator -----------------------------------------------------------------


async def wait_mode(source: LiveSource, mode: str) -> None:
    while source.mode != mode:
        await source.changes()


async def test_maxitem_and_a_list_follow_the_world(sim: SimulatorServer, world: World,
                                                   session: aiohttp.ClientSession) -> None:
    source = LiveSource(session, sim.base_url, lists=["topstories"])
    source.start()
    try:
        async with asyncio.timeout(10):
            await wait_mode(source, "live")
            while source.maxitem != world.maxitem or source.lists.get("topstories") != world.lists["topstories"]:
                await source.changes()
            world.grow(n_comments=30)
            top = world.lists["topstories"]
            top[0], top[1] = top[1], top[0]  # a swap: the stream sends a patch of two places
            sim.streams.poke()
            while source.maxitem != world.maxitem or source.lists["topstories"] != world.lists["topstories"]:
                await source.changes()
    finally:
        await source.close()
    assert source.status()["mode"] == "polling"  # closed
    assert sim.streams.stats.events >= 4


async def test_a_drop_in_the_middle_of_a_burst_leaves_no_gap_and_no_repeat(
    sim: SimulatorServer, world: World, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    sim.faults.stream.burst = True  # every step of maxitem is an event of its own
    client = HNClient(session, sim.base_url, timeout=2.0, retries=2, backoff=0.01)
    source = LiveSource(session, sim.base_url, backoff=0.01, max_backoff=0.02)
    seen: list[int] = []
    async with await open_store(tmp_path / "fw.db") as store:
        stream = ItemStream(client, store.state_for(STREAM_STATE))
        stream.subscribe(lambda item: seen.append(item.id))
        await stream.poll()
        start = stream.cursor
        assert start is not None
        source.start()
        try:
            async with asyncio.timeout(20):
                await wait_mode(source, "live")
                for step in range(12):
                    world.grow(n_comments=25)
                    sim.streams.poke()
                    if step in (3, 7):
                        assert sim.streams.drop_all() == 1
                    if step == 7:  # the consumer restarts too, from the cursor in the store
                        stream = ItemStream(client, store.state_for(STREAM_STATE))
                        stream.subscribe(lambda item: seen.append(item.id))
                    changed = await source.changes()
                    if "maxitem" in changed:
                        await stream.poll()
                while stream.cursor != world.maxitem:
                    if "maxitem" in await source.changes():
                        await stream.poll()
        finally:
            await source.close()
    assert seen == list(range(start + 1, world.maxitem + 1))  # every new item once, in order
    assert source.maxitem_stream.stats.drops == 2 and source.maxitem_stream.stats.connects == 3


@fake_clock
async def test_refused_falls_back_to_polling_and_returns_to_live(
    sim: SimulatorServer, world: World, session: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    source = LiveSource(session, sim.base_url, refused_retry=300.0, backoff=0.5)
    source.start()
    try:
        async with asyncio.timeout(1200):
            await wait_mode(source, "live")
            live_since = source.since
            sim.faults.stream.refuse = True  # as a server without streaming answers: plain JSON
            sim.streams.drop_all()
            await wait_mode(source, "polling")
            assert source.since >= live_since
            dropped_at = loop.time()
            await source.maxitem_stream.wait_until(lambda: source.maxitem_stream.stats.refusals > 0)
            assert "not an event stream" in source.maxitem_stream.last_error
            sim.faults.stream.refuse = False
            world.grow(n_comments=5)
            await wait_mode(source, "live")
            back_after = loop.time() - dropped_at
            while source.maxitem != world.maxitem:
                await source.changes()
    finally:
        await source.close()
    assert 150.0 <= back_after <= 301.0  # a refusal waits out refused_retry (with jitter), not the short backoff
    assert source.maxitem_stream.stats.refusals == 1 and sim.streams.stats.refused == 1


@fake_clock
async def test_a_stalled_stream_is_noticed_within_its_keepalive_window(
    sim: SimulatorServer, world: World, session: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    sim.streams.check_every = 1.0
    source = LiveSource(session, sim.base_url, keepalive_window=45.0)
    source.start()
    try:
        async with asyncio.timeout(600):
            await wait_mode(source, "live")
            sim.faults.stream.stall = True  # the connection stays open and says nothing, not even keep-alives
            stalled_at = loop.time()
            await wait_mode(source, "polling")
            noticed_after = loop.time() - stalled_at
            sim.faults.stream.stall = False
            await wait_mode(source, "live")
    finally:
        await source.close()
    assert 44.0 <= noticed_after <= 46.0
    assert source.maxitem_stream.stats.stalls == 1 and source.maxitem_stream.stats.connects == 2


@fake_clock
async def test_keepalives_keep_a_quiet_stream_live(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    sim.faults.stream.keepalive = 30.0
    sim.streams.check_every = 5.0
    source = LiveSource(session, sim.base_url, keepalive_window=45.0)
    source.start()
    try:
        async with asyncio.timeout(600):
            await wait_mode(source, "live")
            await asyncio.sleep(300.0)  # fake time: ten keep-alive periods with nothing new
    finally:
        await source.close()
    stats = source.maxitem_stream.stats
    assert stats.stalls == 0 and stats.connects == 1 and stats.keepalives >= 9


@fake_clock
async def test_a_hostile_stream_is_bounded(
    sim: SimulatorServer, world: World, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    sim.faults.stream.hostile = True  # junk lines, bad JSON and a 300 KB event before every real one
    sim.faults.stream.flood = 300  # and each real one sent 301 times
    sim.streams.check_every = 5.0
    sim.faults.stream.keepalive = 3600.0  # no keep-alives: every event counted below is a put
    stream = PathStream(session, f"{sim.base_url}/maxitem.json", lambda value: None,
                        max_events_per_second=100)
    started = loop.time()
    stream.start()
    try:
        async with asyncio.timeout(600):
            with caplog.at_level(logging.WARNING, logger="flamewatch.hn.live"):
                for _ in range(3):
                    world.grow(n_comments=5)
                    sim.streams.poke()
                    await stream.wait_until(lambda: stream.value == world.maxitem)
                sent = sim.streams.stats.events
                await stream.wait_until(lambda: stream.stats.events == sent)
                elapsed = loop.time() - started
                sim.streams.drop_all()
                await stream.wait_until(lambda: stream.stats.malformed > 0)
    finally:
        await stream.close()
    stats = stream.stats
    sends = sent // 301
    assert sends >= 3 and sent == sends * 301
    assert stats.oversized == sends and stats.malformed == 3 * sends  # each: a junk line, bad JSON, 300 KB
    assert elapsed >= sent / 100 - 1  # paced to 100 events a second of loop time, none dropped
    assert stats.throttled >= sent // 100 - 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
