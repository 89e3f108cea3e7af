"""First counts from a story's comment list on HN's search API (``[crawl] tree_url``), checked against HN's
``descendants`` and healed by the stream; anything else falls back to the walk (issue 23)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flamewatch.app import App
from flamewatch.bootstrap import TreeSource, Unusable, build_tree, take_page
from flamewatch.config import parse_config
from flamewatch.crawl import GONE, VISIBLE
from flamewatch.hn import HNClient
from flamewatch.incremental import IncrementalCounter
from flamewatch.simulator import SimulatorServer, World
from flamewatch.simulator.searchapi import comments_of

REAL_THREAD = Path("/work/shared/data/hn-thread-25015967.jsonl")


def settings(sim: SimulatorServer, home: Path, tree_url: str | None) -> Any:
    home.mkdir(exist_ok=True)
    crawl = {} if tree_url is None else {"tree_bootstrap": True, "tree_url": tree_url}
    return parse_config({"hn": {"api_url": sim.base_url, "retries": 0}, "watch": {"top": 30}, "crawl": crawl,
                         "store": {"path": str(home / "fw.db")}, "notifiers": []}, "bootstrap.toml")


def tree_url(sim: SimulatorServer) -> str:
    return sim.base_url.removesuffix("/v0") + "/api/v1"


@dataclass
class Counting:
    sim: SimulatorServer
    client: HNClient
    counter: IncrementalCounter


@asynccontextmanager
async def counting(world: World, search_url: str | None = None, **limits: int) -> AsyncIterator[Counting]:
    """The counter on the simulator, its first counts from ``search_url`` (the simulator's by default)."""
    async with SimulatorServer(world) as sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, retries=0)
        trees = TreeSource(client, search_url or tree_url(sim), max_items=limits.get("max_items", 200_000))
        yield Counting(sim, client, IncrementalCounter(client, trees=trees, **limits))


def dead_branches(world: World) -> dict[str, int]:
    """A story whose dead and deleted comments hide live replies at the top level and deeper."""
    story = world.add_story("dead branches")
    ids = {"story": story, "a": world.add_comment(story)}
    ids["b"] = world.add_comment(ids["a"])
    ids["top_dead"] = world.add_comment(story, dead=True)  # in the story's kids: its place is known
    ids["e"] = world.add_comment(ids["top_dead"])
    ids["f"] = world.add_comment(ids["e"])
    world.add_comment(story, dead=True)  # nothing under these two: leaves the list never mentions
    world.add_comment(story, deleted=True)
    ids["deep_dead"] = world.add_comment(ids["a"], dead=True)  # an orphan: its parent is not known
    ids["g"] = world.add_comment(ids["deep_dead"])
    deleted = world.add_comment(ids["b"], deleted=True)  # not listed, nor is its dead kid's place
    ids["deeper_dead"] = world.add_comment(deleted, dead=True)
    ids["h"] = world.add_comment(ids["deeper_dead"])
    world.add_replies(story, 3)
    world.set_descendants_lag(0)
    return ids


async def test_dead_comments_with_live_replies_cost_nothing_beyond_the_list() -> None:
    world = World(seed=4, stories=0)
    ids = dead_branches(world)
    story = ids["story"]
    assert world.visible_count(story) == 9
    async with counting(world) as c:
        result = await c.counter.count(story)
        assert (result.comments, result.partial, result.cycles) == (9, False, 0)
        assert c.counter.stats.bootstrapped == 1 and c.counter.full_crawls == 0
        # The story item and the list: nothing else, however the dead comments hide their replies.
        assert (c.sim.stats.item_requests, c.sim.stats.search_requests, c.sim.stats.requests) == (1, 1, 2)
        assert result.fetches == 2
        # Dead or deleted, the list cannot say which: neither figure claims them.
        assert (result.gone, result.dead, result.deleted) == (5, 0, 0)
        assert result.max_depth_seen >= 2  # the orphans' depth is a lower bound
        assert result.to_json()["gone"] == 5
        # A recount from the cache (the story item changed) still counts the orphans' replies, asking nothing.
        world.edit_comment(ids["a"], "edited")
        c.sim.reset_stats()
        again = await c.counter.count(story)
        assert again.comments == 9 and c.sim.stats.requests == 1


async def test_a_reply_under_an_orphan_comes_from_the_stream_and_a_heal_puts_the_orphans_in_place() -> None:
    world = World(seed=5, stories=0)
    ids = dead_branches(world)
    story = ids["story"]
    async with counting(world) as c:
        await c.counter.count(story)
        orphans = set(c.counter._stories[story].orphans)
        assert orphans == {ids["deep_dead"], ids["deeper_dead"]}
        assert c.counter.owner_of(ids["h"]) == story and c.counter.owner_of(ids["deeper_dead"]) == story
        reply = world.add_comment(ids["h"])
        item = await c.client.item(reply)
        assert item is not None
        c.counter.attach(item)
        c.sim.reset_stats()
        grown = await c.counter.count(story)
        assert grown.comments == 10 == world.visible_count(story)
        assert c.counter.stats.grown == 1 and c.sim.stats.requests == 1
        # A reply the stream missed: below descendants, so the story is walked afresh, orphans and all.
        world.add_comment(ids["g"])
        healed = await c.counter.count(story)
        stats = world.tree_stats(story)
        assert healed.comments == 11 == stats["visible"] and c.counter.heals == 1
        assert (healed.gone, healed.dead, healed.deleted) == (0, stats["dead"], stats["deleted"])
        assert c.counter._stories[story].orphans == () and healed.cycles == 0


async def test_an_orphan_found_in_place_by_a_recount_is_counted_once() -> None:
    world = World(seed=6, stories=0)
    ids = dead_branches(world)
    story = ids["story"]
    async with counting(world) as c:
        await c.counter.count(story)
        # updates.json names the orphan's live parent: the recount fetches it, and its kids list the orphan.
        world.edit_comment(ids["a"], "edited")
        await c.counter.begin_cycle([story])
        result = await c.counter.count(story)
        assert (result.comments, result.cycles) == (9, 0)


async def test_a_hostile_or_short_list_is_walked_and_counted_exactly(aiohttp_server: Any) -> None:
    world = World(seed=7, stories=0)
    kinds = ["cycle", "foreign", "duplicate", "short", "moved", "sound"]
    branches = {kind: dead_branches(world) for kind in kinds}
    stories = {kind: ids["story"] for kind, ids in branches.items()}

    async def search(request: web.Request) -> web.Response:
        story = int(request.query["tags"].split("story_")[1])
        kind = next(k for k, s in stories.items() if s == story)
        hits = comments_of(world, story, 1000)
        ids = branches[kind]
        if kind == "cycle":  # e and its reply f, each the other's parent
            next(h for h in hits if int(h["objectID"]) == ids["e"])["parent_id"] = ids["f"]
        elif kind == "foreign":
            hits[0]["story_id"] = stories["sound"]
        elif kind == "duplicate":
            hits.append(dict(hits[0]))
        elif kind == "short":  # one live comment left out: the count is one below descendants
            hits = [h for h in hits if int(h["objectID"]) != world.items[story]["kids"][0]]
        elif kind == "moved":  # a comment listed under the story though the story does not list it
            next(h for h in hits if h["parent_id"] != story)["parent_id"] = story
        return web.json_response({"hits": hits})

    app = web.Application()
    app.router.add_get("/search_by_date", search)
    fake = await aiohttp_server(app)
    async with counting(world, str(fake.make_url(""))) as c:
        for kind, story in stories.items():
            result = await c.counter.count(story)
            assert (kind, result.comments, result.partial) == (kind, world.visible_count(story), False)
        assert c.counter.stats.bootstrapped == 1 and c.counter.trees is not None
        assert c.counter.trees.refused == len(kinds) - 1 and c.counter.full_crawls == len(kinds) - 1


async def test_a_heal_and_the_eviction_after_it_leave_no_owner_behind(aiohttp_server: Any) -> None:
    world = World(seed=9, stories=0)
    ids = dead_branches(world)
    story, fake_parent = ids["story"], 987_654_321  # a stale list places h under a dead comment HN never had

    async def search(request: web.Request) -> web.Response:
        hits = comments_of(world, story, 1000)
        next(h for h in hits if int(h["objectID"]) == ids["h"])["parent_id"] = fake_parent
        return web.json_response({"hits": hits})

    app = web.Application()
    app.router.add_get("/search_by_date", search)
    fake = await aiohttp_server(app)
    async with counting(world, str(fake.make_url(""))) as c:
        await c.counter.count(story)  # the count is right, so the list is taken, the fake orphan with it
        assert c.counter.stats.bootstrapped == 1 and c.counter.owner_of(fake_parent) == story
        world.add_comment(ids["g"])  # missed by the stream: below descendants, so the story heals
        assert (await c.counter.count(story)).comments == world.visible_count(story) and c.counter.heals == 1
        assert c.counter.owner_of(fake_parent) is None  # not in the tree the walk found
        await c.counter.begin_cycle([])  # the story leaves the watched lists
        assert c.counter._owner == {}


async def test_an_orphan_of_unknown_depth_is_walked_under_a_depth_cap() -> None:
    world = World(seed=8, stories=0)
    story = dead_branches(world)["story"]
    async with counting(world, max_depth=50, max_items=1000) as c:
        result = await c.counter.count(story)
        assert result.comments == 9 and c.counter.stats.bootstrapped == 0 and c.counter.full_crawls == 1


def real_thread() -> tuple[World, int]:
    """A world holding the real thread alone (its items as the official API served them)."""
    if not REAL_THREAD.exists():
        pytest.skip(f"{REAL_THREAD} is not on this machine")
    world = World(seed=9, stories=0)
    items = [json.loads(line) for line in REAL_THREAD.read_text().splitlines() if line.strip()]
    for item in items:
        world.items[item["id"]] = item
        world.touch(item["id"])
    world.lists["topstories"] = [items[0]["id"]]
    return world, items[0]["id"]


async def test_a_real_thread_with_22_dead_branches_is_counted_from_two_pages() -> None:
    world, story = real_thread()
    async with counting(world) as c:
        result = await c.counter.count(story)
        assert (result.comments, result.partial) == (1968, False) == (world.visible_count(story), False)
        assert c.counter.stats.bootstrapped == 1
        # 1,968 live comments: two pages of at most 1,000, and the story item.
        assert (c.sim.stats.item_requests, c.sim.stats.search_requests) == (1, 2)


async def test_a_front_page_is_counted_from_one_list_a_story_and_heals_from_the_stream(tmp_path: Path) -> None:
    world = World(seed=2, stories=30, total_comments=3_000)
    stories = [s for s in world.lists["topstories"][:30] if world.items[s]["type"] == "story"]
    truth = {s: world.visible_count(s) for s in stories}
    async with SimulatorServer(world) as sim:
        async with App(settings(sim, tmp_path / "walk", None)) as app:
            assert app.monitor is not None
            walked = await app.monitor.cycle(1)
        async with App(settings(sim, tmp_path / "tree", tree_url(sim))) as app:
            assert app.monitor is not None and app.monitor.parts.counter is not None
            counter = app.monitor.parts.counter
            sim.reset_stats()
            await app.monitor.cycle(1)
            assert {r.story_id: r.comments for r in app.monitor.last_results if r.story_id in truth} == truth
            # Every story with comments from its list (none here has more than 1,000), the story items
            # themselves: no comment is fetched.
            with_comments = [s for s in stories if world.items[s].get("kids")]
            assert counter.stats.bootstrapped == len(with_comments) == sim.stats.search_requests
            assert sim.stats.item_requests == 30 < walked.requests / 10
            world.grow(n_comments=40)
            await app.monitor.cycle(2)
            still = [r for r in app.monitor.last_results if r.story_id in truth]  # new stories push some out
            assert len(still) > 20
            assert {r.story_id: r.comments for r in still} == {
                r.story_id: world.visible_count(r.story_id) for r in still}


async def test_without_a_usable_list_the_walk_counts_as_before(tmp_path: Path) -> None:
    world = World(seed=3, stories=8, total_comments=400)
    async with SimulatorServer(world) as sim, App(settings(sim, tmp_path, sim.base_url + "/nowhere")) as app:
        assert app.monitor is not None and app.monitor.parts.counter is not None
        await app.monitor.cycle(1)
        assert app.monitor.parts.counter.stats.bootstrapped == 0
        for r in app.monitor.last_results:
            assert r.comments == world.visible_count(r.story_id) and not r.partial


def hit(item_id: int, parent: int, story: int = 1, at: int = 100) -> dict[str, Any]:
    return {"objectID": str(item_id), "parent_id": parent, "story_id": story, "created_at_i": at}


def test_a_page_of_hits_is_taken_only_when_every_hit_is_a_comment_of_the_story() -> None:
    found: dict[int, int] = {}
    assert take_page([hit(2, 1, at=5), hit(3, 2, at=4)], 1, found) == (2, 4)
    assert take_page([hit(3, 2), hit(4, 3)], 1, found) == (1, 100)  # pages meet at a second: no harm
    assert found == {2: 1, 3: 2, 4: 3}
    assert take_page([{"objectID": "5", "parent_id": 4, "story_id": 1}], 1, {}) == (1, None)
    for hits, why in [
        ([hit(2, 1), hit(2, 1)], "listed twice"),
        ([hit(2, 1, story=9)], "story 9"),
        ([hit(3, 9)], "parents 2 and 9"),  # listed again under another parent
        ([{"objectID": "x", "parent_id": 1, "story_id": 1}], "not a comment id"),
        ([{"objectID": "2", "parent_id": "1", "story_id": 1}], "not a comment id"),
        ([hit(1, 1)], "not a comment id"),  # the story as its own comment
        ([[2]], "not an object"),
        ({"hits": []}, "no list"),
    ]:
        with pytest.raises(Unusable, match=why):
            take_page(hits, 1, dict(found))


def test_a_tree_is_built_from_parents_with_orphans_and_gone_leaves() -> None:
    # Story 1 lists 2 (live), 3 (dead, with a live reply 4) and 5 (dead, nothing under it); 7 replies to
    # 6, which is neither listed nor one of the story's kids: 6 is an orphan.
    tree = build_tree({2: 1, 4: 3, 7: 6}, 1, (2, 3, 5), 10)
    assert tree.orphans == (6,) and tree.listed == 3
    assert {i: (n.status, tuple(n.kids)) for i, n in tree.nodes.items()} == {
        1: (VISIBLE, (2, 3, 5)), 2: (VISIBLE, ()), 4: (VISIBLE, ()), 7: (VISIBLE, ()),
        3: (GONE, (4,)), 6: (GONE, (7,)), 5: (GONE, ())}
    for parents, top, limit, why in [
        ({2: 3, 3: 2}, (), 10, "under neither"),  # a cycle of parents
        ({2: 2}, (), 10, "under neither"),
        ({2: 1, 3: 2}, (2, 3), 10, "reached twice"),  # the story lists a reply of its own kid
        ({2: 1, 3: 1}, (2, 3), 1, "more than 1 comments"),
        ({2: 1}, (2, 3, 4), 2, "more than 2 items"),  # gone leaves count against max_items too
    ]:
        with pytest.raises(Unusable, match=why):
            build_tree(parents, 1, top, limit)
