"""Counting one story's comments against the simulator: exact on every awkward shape, bounded, never hanging."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from conftest import FLAMEWATCH
from flamewatch.crawl import StoryCrawl, count_story
from flamewatch.simulator import Faults, SimulatorServer, World
from flamewatch.hn import HNClient, Item
from flamewatch.hn.item import Walked
from flamewatch.walkpool import WalkPool, pool_for


def empty_world() -> World:
    return World(seed=3, stories=0)


async def counted(world: World, story: int, *, max_inflight: int = 32) -> dict[str, Any]:
    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, timeout=2.0, retries=1, backoff=0.01, max_inflight=max_inflight)
        result = await count_story(client, story)
        assert sim.stats.max_inflight <= client.max_inflight
        return result.to_json() | {"cycles": result.cycles, "max_depth": result.max_depth_seen}


async def test_deep_reply_chain_has_no_recursion_limit() -> None:
    world = empty_world()
    story = world.add_story("deep")
    world.add_chain(story, 3000)
    result = await counted(world, story)
    assert result["comments"] == 3000 == world.visible_count(story)
    assert result["max_depth"] == 3000 and result["partial"] is False


def test_by_default_depth_is_bounded_only_by_the_item_cap() -> None:
    # A 50,000-deep chain is exact with the defaults (benchmark 5 counts one and measures its memory).
    from flamewatch.config.model import CrawlSettings

    settings = CrawlSettings()
    assert settings.max_depth >= settings.max_items >= 50_000


async def test_wide_story_with_4000_direct_replies() -> None:
    world = empty_world()
    story = world.add_story("wide")
    world.add_replies(story, 4000)
    result = await counted(world, story, max_inflight=16)
    assert result["comments"] == 4000
    assert result["fetches"] == 4001


async def test_deleted_and_dead_comments_with_live_replies_under_them() -> None:
    world = empty_world()
    story = world.add_story("graveyard")
    deleted = world.add_comment(story, deleted=True)
    dead = world.add_comment(story, dead=True)
    for parent in (deleted, dead):
        live = world.add_comment(parent)
        world.add_comment(live)
    world.add_comment(story)
    result = await counted(world, story)
    assert (result["comments"], result["deleted"], result["dead"]) == (5, 1, 1)
    assert result["comments"] == world.visible_count(story)


async def test_kids_pointing_at_missing_items_are_unreachable_not_errors() -> None:
    world = empty_world()
    story = world.add_story("holes")
    world.add_replies(story, 3)
    world.add_missing_kid(story)
    world.add_missing_kid(story)
    result = await counted(world, story)
    assert result["comments"] == 3
    assert result["unreachable"] == 2 and result["missing"] == 2
    assert result["partial"] is False  # a null item is a fact, not a failure


async def test_reply_cycle_terminates_and_counts_each_item_once() -> None:
    world = empty_world()
    story = world.add_story("loop")
    top = world.add_comment(story)
    world.add_cycle(top)
    result = await counted(world, story)
    assert result["cycles"] >= 1
    assert result["comments"] == world.visible_count(story)


async def test_story_without_comments() -> None:
    world = empty_world()
    story = world.add_story("quiet")
    result = await counted(world, story)
    assert result["comments"] == 0 and result["fetches"] == 1 and result["partial"] is False


async def test_failed_subtree_gives_a_partial_count_not_a_failed_story() -> None:
    world = empty_world()
    story = world.add_story("flaky")
    good = world.add_replies(story, 3)
    bad = world.add_comment(story)
    world.add_replies(bad, 5)
    async with SimulatorServer(world, Faults(fail_ids={bad})) as sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, retries=1, backoff=0.0)
        result = await count_story(client, story)
    assert result.comments == len(good)
    assert result.failed == 1 and result.partial
    assert f"item/{bad}.json" in result.errors[0]


async def test_hostile_fields_are_counted_around_not_crashed_on() -> None:
    world = empty_world()
    story = world.add_story("hostile")
    a = world.add_comment(story)
    b = world.add_comment(story)
    world.add_comment(story)
    world.corrupt(a, kids="not a list", deleted="yes")
    world.corrupt(b, kids=[None, "12", 1.5, True, -4])
    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        result = await count_story(HNClient(session, sim.base_url), story)
    assert result.comments == 3  # deleted="yes" is not True: the comment is visible
    assert result.invalid == 6
    assert not result.partial


async def test_wrongly_typed_fields_are_dropped_counted_and_the_items_still_counted() -> None:
    world = empty_world()
    story = world.add_story("hostile fields")
    a = world.add_comment(story)
    b = world.add_comment(story)
    world.corrupt(a, time=10**14, by=["x"])
    world.corrupt(b, parent="up", dead="no")
    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url)
        result = await count_story(client, story)
    assert result.comments == 2 and not result.partial and result.invalid == 0
    assert client.stats.dropped_fields == 4
    assert result.story is not None and result.story.title == "hostile fields" and result.story.dropped == ()


async def test_live_tasks_are_bounded_by_max_inflight_not_by_the_tree(aiohttp_server: Any) -> None:
    # One slow kid among 200: the walk must not hold a task per kid (at 500 stories that kept ~200,000
    # tasks alive), and once the fast kids are counted only the slow kid's worker is left.
    kids = list(range(2, 202))
    slow_kid, release = kids[0], asyncio.Event()

    async def item(request: web.Request) -> web.Response:
        item_id = int(request.match_info["id"])
        if item_id == 1:
            return web.json_response({"id": 1, "type": "story", "kids": kids})
        if item_id == slow_kid:
            await release.wait()
        return web.json_response({"id": item_id, "type": "comment", "parent": 1})

    app = web.Application()
    app.router.add_get("/v0/item/{id}.json", item)
    server = await aiohttp_server(app)
    fast_kids_done = asyncio.Event()

    class Watched(StoryCrawl):
        def arrived(self, item_id: int, depth: int, item: Item | Walked | None) -> None:
            super().arrived(item_id, depth, item)
            if self.result.comments == len(kids) - 1:
                fast_kids_done.set()

    loop = asyncio.get_running_loop()
    created: list[str] = []

    def count_tasks(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
        created.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop)

    loop.set_task_factory(count_tasks)
    try:
        async with aiohttp.ClientSession() as session:
            client = HNClient(session, str(server.make_url("/v0")), max_inflight=8)
            crawl = Watched(client, 1)
            running = asyncio.create_task(crawl.run())
            async with asyncio.timeout(10):
                await fast_kids_done.wait()
            assert pool_for(client).workers == 1  # the slow kid's; the others ended with the work
            release.set()
            result = await running
            assert pool_for(client).workers == 0
    finally:
        loop.set_task_factory(None)
    assert result.comments == len(kids) and not result.partial
    assert created.count("WalkPool._work") <= client.max_inflight
    assert sum(1 for name in created if "Crawl" in name or "visit" in name) == 1  # only the test's own


async def test_cancelling_a_crawl_cancels_and_awaits_its_fetches_and_gives_back_every_slot(
    aiohttp_server: Any,
) -> None:
    kids = list(range(2, 42))
    started = 0
    all_started = asyncio.Event()

    async def item(request: web.Request) -> web.Response:
        nonlocal started
        item_id = int(request.match_info["id"])
        if item_id == 1:
            return web.json_response({"id": 1, "type": "story", "kids": kids})
        started += 1
        if started == 8:
            all_started.set()
        await asyncio.Event().wait()  # every kid hangs
        raise AssertionError("unreachable")

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/v0/item/{id}.json", item)
    app.router.add_get("/v0/ping.json", ping)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = HNClient(session, str(server.make_url("/v0")), max_inflight=8)
        running = asyncio.create_task(count_story(client, 1))
        async with asyncio.timeout(10):
            await all_started.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert client.stats.inflight == 0 and pool_for(client).workers == 0
        # Every request slot was given back: max_inflight requests at once do not wait for one.
        async with asyncio.timeout(5):
            answers = await asyncio.gather(*(client.get_json("ping.json") for _ in range(client.max_inflight)))
        assert answers == [{"ok": True}] * client.max_inflight


async def test_cancelling_one_crawl_frees_the_shared_workers_for_the_others(aiohttp_server: Any) -> None:
    # Story 1's kids all hang and take every worker; story 100 waits behind them. Cancelling the first
    # crawl must end its fetches and hand the workers to the second, which then counts exactly.
    stuck_kids, fine_kids = list(range(2, 12)), list(range(101, 131))
    hanging = 0
    all_hanging = asyncio.Event()

    async def item(request: web.Request) -> web.Response:
        nonlocal hanging
        item_id = int(request.match_info["id"])
        if item_id == 1:
            return web.json_response({"id": 1, "type": "story", "kids": stuck_kids})
        if item_id == 100:
            return web.json_response({"id": 100, "type": "story", "kids": fine_kids})
        if item_id in stuck_kids:
            hanging += 1
            if hanging == 4:
                all_hanging.set()
            await asyncio.Event().wait()
        return web.json_response({"id": item_id, "type": "comment"})

    app = web.Application()
    app.router.add_get("/v0/item/{id}.json", item)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = HNClient(session, str(server.make_url("/v0")), max_inflight=4)
        blocked = asyncio.create_task(count_story(client, 1))
        async with asyncio.timeout(10):
            await all_hanging.wait()
        waiting = asyncio.create_task(count_story(client, 100))
        await asyncio.sleep(0)  # let it queue its story behind the stuck workers
        assert not waiting.done() and pool_for(client).workers == 4
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        async with asyncio.timeout(10):
            counted = await waiting
    assert counted.comments == len(fine_kids) and not counted.partial
    assert pool_for(client).workers == 0


async def test_a_bug_on_one_item_costs_its_subtree_not_the_walk() -> None:
    world = empty_world()
    story = world.add_story("fragile")
    first, *_ = world.add_replies(story, 5)
    world.add_replies(first, 4)

    class Fragile(StoryCrawl):
        def arrived(self, item_id: int, depth: int, item: Item | None) -> None:
            if item_id == first:
                raise KeyError("boom")
            super().arrived(item_id, depth, item)

    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        async with asyncio.timeout(10):
            result = await Fragile(HNClient(session, sim.base_url), story).run()
    assert result.comments == 4 and result.failed == 1 and result.partial
    assert any("a subtree failed" in note and "boom" in note for note in result.errors)


async def test_depth_and_item_caps_bound_a_hostile_tree() -> None:
    world = empty_world()
    story = world.add_story("abyss")
    world.add_chain(story, 50)
    wide = world.add_story("sea")
    world.add_replies(wide, 100)
    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url)
        deep = await count_story(client, story, max_depth=10)
        broad = await count_story(client, wide, max_items=21)
    assert deep.comments == 10 and deep.skipped == 1 and deep.partial
    assert broad.comments == 20 and broad.skipped == 80 and broad.partial


async def test_count_cli_prints_exact_json(sim: SimulatorServer, world: World) -> None:
    story = world.lists["topstories"][0]
    proc = await asyncio.create_subprocess_exec(
        *FLAMEWATCH, "count", "--api-url", sim.base_url, "--json", str(story),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    stats = world.tree_stats(story)
    assert result["id"] == story
    assert result["comments"] == stats["visible"]
    assert (result["deleted"], result["dead"]) == (stats["deleted"], stats["dead"])
    assert {"title", "unreachable", "fetches"} <= set(result)
    assert "took" in err.decode() and "fetches" in err.decode()


@pytest.mark.parametrize("max_inflight", [8])
async def test_once_over_a_20000_comment_front_page_is_exact_and_bounded(tmp_path: Path, max_inflight: int) -> None:
    world = World(seed=11, stories=30, total_comments=20_000)
    config = tmp_path / "flamewatch.toml"
    config.write_text(f'[hn]\nmax_inflight = {max_inflight}\n[crawl]\nincremental = false\n'
                      '[[notifiers]]\ntype = "console"\n')
    async with SimulatorServer(world, Faults(latency=0.0005)) as sim:
        proc = await asyncio.create_subprocess_exec(
            *FLAMEWATCH, "-c", str(config), "-q", "once", "--top", "30", "--json", "--api-url", sim.base_url,
            "--store", str(tmp_path / "fw.db"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert 1 < sim.stats.max_inflight <= max_inflight
    rows = [json.loads(line) for line in out.decode().splitlines()]
    ids = world.lists["topstories"][:30]
    assert [r["id"] for r in rows] == ids
    for row in rows:
        assert row["comments"] == world.visible_count(row["id"]), row
        assert row["partial"] is False
    assert sum(r["comments"] for r in rows) > 15_000


async def test_numbers_too_big_for_the_store_and_absurd_nesting_do_not_break_a_cycle(tmp_path: Path) -> None:
    from flamewatch.app import App
    from flamewatch.config import parse_config

    world = World(seed=3, stories=0)
    giant = world.add_story("Giant numbers")
    world.add_replies(giant, 2)
    world.corrupt(giant, score=2**64, descendants=-(2**70))
    fine = world.add_story("Fine")
    world.add_replies(fine, 3)
    world.serve_raw(world.add_comment(fine), "[" * 100_000)  # nested far past Python's recursion limit
    async with SimulatorServer(world) as sim:
        config = parse_config({"hn": {"api_url": sim.base_url, "retries": 0}, "rules": {"comment_levels": [1]},
                               "store": {"path": str(tmp_path / "fw.db")}, "notifiers": []}, "t.toml")
        async with App(config) as app:
            assert app.monitor is not None
            stats = await app.monitor.cycle(0)
            results = {r.story_id: r for r in app.monitor.last_results}
    assert stats.events == 2  # both stories still fire: the giant numbers were just ignored
    assert results[giant].comments == 2 and results[fine].comments == 3 and results[fine].failed == 1


async def test_a_cycle_warns_about_the_dropped_fields_of_a_story_and_still_fires(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from flamewatch.app import App
    from flamewatch.config import parse_config
    from flamewatch.testing import RecordingNotifier, plugin_offering, make_test_plugins

    world = World(seed=3, stories=0)
    future = world.add_story("From the future")
    world.add_replies(future, 2)
    world.corrupt(future, time=10**14, url="javascript:alert(1)", score=2**64)
    async with SimulatorServer(world) as sim:
        config = parse_config({"hn": {"api_url": sim.base_url, "retries": 0}, "rules": {"comment_levels": [1]},
                               "store": {"path": str(tmp_path / "fw.db")}, "notifiers": [{"type": "recording"}]},
                              "t.toml")
        plugins = make_test_plugins(plugin_offering(RecordingNotifier))
        with caplog.at_level(logging.WARNING):
            async with App(config, plugins=plugins) as app:
                assert app.monitor is not None and app.dispatcher is not None
                stats = await app.monitor.cycle(0)
                await app.dispatcher.wait_idle()
                dropped = app.monitor.client.stats.dropped_fields
                notifier = app.instances[0].notifier
                assert isinstance(notifier, RecordingNotifier)
                sent = list(notifier.sent)
    assert stats.events == 1 and dropped == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"story {future}: field(s) of the wrong type or out of range ignored: time (out of range), " \
           "url (not a short http(s) URL), score (out of range)" in warnings
    [event] = sent
    assert (event.story.title, event.story.time, event.story.url, event.story.score) == ("From the future", None,
                                                                                        None, 0)


async def test_json_only_the_standard_library_reads_still_counts_with_the_field_dropped() -> None:
    # orjson (the fast decoder) refuses NaN and may turn a 70-digit integer into a float: the item must
    # still be counted, with just those fields dropped and named as the JSON had them.
    world = empty_world()
    story = world.add_story("odd numbers")
    nan_one, huge_one = world.add_replies(story, 2)
    world.serve_raw(nan_one, f'{{"id":{nan_one},"type":"comment","parent":{story},"score":NaN}}')
    world.corrupt(huge_one, time=10**70, parent=2**64)
    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, retries=0)
        result = await count_story(client, story)
        nan_item, huge_item = await client.item(nan_one), await client.item(huge_one)
    assert result.comments == 2 and not result.partial and client.stats.failures == 0
    assert nan_item is not None and nan_item.dropped == ("score (float)",)
    assert huge_item is not None and huge_item.dropped == ("time (out of range)", "parent (not an item id)")


class _AnsweringWalk:
    """A :class:`~flamewatch.walkpool.Walk` of its own: every item is a leaf, answered at once."""

    def __init__(self) -> None:
        self.client = self  # the pool asks walk.client.item() for a root, walk.client.walked() below it
        self.done: list[int] = []

    async def item(self, item_id: int) -> Item:
        return Item.parse({"id": item_id, "type": "comment"}, item_id)

    async def walked(self, item_id: int) -> Item:
        return await self.item(item_id)

    def admit(self, item_id: int) -> bool:
        return True

    def arrived(self, item_id: int, depth: int, item: Item | None) -> None:
        self.done.append(item_id)

    def fetch_failed(self, item_id: int, error: Exception) -> None:
        raise AssertionError(error)

    def broke(self, item_id: int, error: Exception) -> None:
        raise AssertionError(error)


async def test_workers_cancelled_before_their_first_step_are_not_counted_for_ever() -> None:
    # A walk cancelled in the same loop iteration that started workers for it: they are cancelled before
    # they ever run. Counted as alive for ever, they would keep the pool from starting any new worker.
    pool = WalkPool(limit=2)
    gone = _AnsweringWalk()
    pool.add(gone, (1, 2, 3), depth=1)
    assert pool.workers == 2
    await pool.abandon(gone)  # before either worker took a step
    assert pool.workers == 0 and gone.done == []
    fresh = _AnsweringWalk()
    pool.add(fresh, (4, 5, 6), depth=1)
    async with asyncio.timeout(5):
        while pool.workers:  # noqa: ASYNC110 -- the workers end as soon as the queue is empty
            await asyncio.sleep(0)
    assert sorted(fresh.done) == [4, 5, 6]


class _HangingWalk(_AnsweringWalk):
    """A walk whose every fetch waits for ever (until cancelled)."""

    async def item(self, item_id: int) -> Item:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_walk_cancelled_again_while_abandoning_still_hands_the_workers_on() -> None:
    # A cycle timeout cancels a walk, and the shutdown cancels it again while it waits for its fetches to
    # end: the other walk's kids must still get a worker.
    pool = WalkPool(limit=1)
    stuck, waiting = _HangingWalk(), _AnsweringWalk()
    pool.add(stuck, (1,), depth=1)
    await asyncio.sleep(0)  # the one worker takes item 1 and hangs in its fetch
    pool.add(waiting, (2, 3), depth=1)
    assert pool.workers == 1
    abandoning = asyncio.create_task(pool.abandon(stuck))
    await asyncio.sleep(0)  # now inside abandon, waiting for the cancelled worker
    abandoning.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoning
    async with asyncio.timeout(5):
        while len(waiting.done) < 2:  # noqa: ASYNC110 -- the answers come at once, a step each
            await asyncio.sleep(0)
    assert sorted(waiting.done) == [2, 3]


async def test_item_urls_keep_the_base_urls_path_and_port(aiohttp_server: Any) -> None:
    # The client builds an item's URL from the base URL's parts (not by parsing a whole string per item).
    paths: list[str] = []

    async def item(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        return web.json_response({"id": int(request.match_info["id"]), "type": "comment", "kids": [7]})

    app = web.Application()
    app.router.add_get("/ab/v0/item/{id}.json", item)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        for base in (str(server.make_url("/ab/v0")), str(server.make_url("/ab/v0/"))):
            client = HNClient(session, base)
            story = await client.item(5)
            assert story is not None and story.kids == (7,)
            assert await client.walked(6) == (False, False, (7,))
    assert paths == ["/ab/v0/item/5.json", "/ab/v0/item/6.json"] * 2
