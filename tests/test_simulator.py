"""The HN API simulator, exercised over real loopback HTTP with aiohttp's client."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from flamewatch.simulator import (
    REMOVE,
    Faults,
    SimulatorServer,
    World,
    add_simulate_arguments,
    make_app,
    run_simulate,
)
from flamewatch.simulator.cli import world_from_args
from flamewatch.simulator.world import LIST_NAMES

T0 = 1_700_000_000

STORY_KEYS = {"by", "descendants", "id", "kids", "score", "time", "title", "type", "url"}
COMMENT_KEYS = {"by", "id", "kids", "parent", "text", "time", "type"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200, (url, response.status)
        assert response.content_type == "application/json"
        return json.loads(await response.read())


def hand_built() -> tuple[World, dict[str, int]]:
    """A story whose tree has deleted and dead comments with live replies, and a missing kid."""
    world = World(stories=0, start_time=T0)
    ids: dict[str, int] = {}
    ids["story"] = world.add_story("Hand-built", score=42, url="https://example.com/a", by="alice")
    ids["a"] = world.add_comment(ids["story"], text="<p>first", by="bob")
    ids["deleted"] = world.add_comment(ids["a"], deleted=True)
    ids["under_deleted"] = world.add_comment(ids["deleted"], by="carol")
    ids["dead"] = world.add_comment(ids["story"], dead=True, by="mallory", text="<p>spam")
    ids["under_dead"] = world.add_comment(ids["dead"], by="dave")
    ids["missing"] = world.add_missing_kid(ids["a"])
    return world, ids


# --- item shapes --------------------------------------------------------------------------------------


async def test_item_shapes_match_the_official_api(http: aiohttp.ClientSession) -> None:
    world, ids = hand_built()
    ask = world.add_story("Ask HN: Anyone?", text="<p>question", by="erin")
    job = world.add_job("Acme is hiring", top=True)
    async with SimulatorServer(world) as sim:
        base = sim.base_url
        story = await get_json(http, f"{base}/item/{ids['story']}.json")
        assert set(story) == STORY_KEYS
        assert story["type"] == "story" and story["by"] == "alice" and story["score"] == 42
        assert story["kids"] == [ids["a"], ids["dead"]]
        assert story["descendants"] == 3  # a, under_deleted, under_dead

        comment = await get_json(http, f"{base}/item/{ids['a']}.json")
        assert set(comment) == COMMENT_KEYS
        assert comment["parent"] == ids["story"] and comment["text"] == "<p>first"
        assert comment["kids"] == [ids["deleted"], ids["missing"]]

        leaf = await get_json(http, f"{base}/item/{ids['under_dead']}.json")
        assert set(leaf) == COMMENT_KEYS - {"kids"}  # kids is absent when empty

        deleted = await get_json(http, f"{base}/item/{ids['deleted']}.json")
        assert deleted == {
            "deleted": True,
            "id": ids["deleted"],
            "kids": [ids["under_deleted"]],
            "parent": ids["a"],
            "time": T0,
            "type": "comment",
        }

        dead = await get_json(http, f"{base}/item/{ids['dead']}.json")
        assert dead["dead"] is True and dead["by"] == "mallory" and dead["text"] == "<p>spam"
        assert dead["kids"] == [ids["under_dead"]]

        assert await get_json(http, f"{base}/item/{ids['missing']}.json") is None

        ask_item = await get_json(http, f"{base}/item/{ask}.json")
        assert "url" not in ask_item and ask_item["text"] == "<p>question"
        assert set(ask_item) == STORY_KEYS - {"url", "kids"} | {"text"}

        job_item = await get_json(http, f"{base}/item/{job}.json")
        assert job_item["type"] == "job" and "kids" not in job_item and "descendants" not in job_item


async def test_bodies_are_compact_with_sorted_keys(http: aiohttp.ClientSession) -> None:
    world, ids = hand_built()
    async with SimulatorServer(world) as sim, http.get(f"{sim.base_url}/item/{ids['a']}.json") as r:
        body = await r.text()
    assert body.startswith('{"by":"bob","id":') and " " not in body.replace("<p>first", "")


async def test_odd_paths(http: aiohttp.ClientSession) -> None:
    world, _ids = hand_built()
    async with SimulatorServer(world) as sim:
        assert await get_json(http, f"{sim.base_url}/item/abc.json") is None
        assert await get_json(http, f"{sim.base_url}/nosuchthing.json") is None
        assert await get_json(http, f"{sim.base_url}/item/99.json?print=pretty") is None
        async with http.get(f"{sim.base_url}/topstories") as r:
            assert r.status == 404
        user = await get_json(http, f"{sim.base_url}/user/alice.json")
        assert user["id"] == "alice" and isinstance(user["karma"], int)
        assert await get_json(http, f"{sim.base_url}/user/nobody-here.json") is None
        assert sim.stats.statuses[404] == 1 and sim.stats.item_requests == 2


# --- lists, maxitem, updates ----------------------------------------------------------------------------


async def test_lists_and_maxitem(http: aiohttp.ClientSession) -> None:
    world = World(seed=3, start_time=T0)
    async with SimulatorServer(world) as sim:
        lists = {name: await get_json(http, f"{sim.base_url}/{name}.json") for name in LIST_NAMES}
        maxitem = await get_json(http, f"{sim.base_url}/maxitem.json")
    top = lists["topstories"]
    assert len(top) == 30 and len(set(top)) == 30
    assert [world.items[i]["type"] for i in top].count("job") == 1
    assert lists["jobstories"] and all(world.items[i]["type"] == "job" for i in lists["jobstories"])
    assert lists["newstories"] == sorted(lists["newstories"], reverse=True)
    assert all(world.items[i]["type"] == "story" for i in lists["newstories"])
    scores = [world.items[i]["score"] for i in lists["beststories"]]
    assert scores == sorted(scores, reverse=True)
    assert all("text" in world.items[i] for i in lists["askstories"])
    assert all(world.items[i]["title"].startswith("Show HN") for i in lists["showstories"])
    assert maxitem == world.maxitem == max(world.items)


async def test_topstories_is_capped_at_500(http: aiohttp.ClientSession) -> None:
    world = World(stories=0, start_time=T0)
    stories = [world.add_story() for _ in range(501)]
    async with SimulatorServer(world) as sim:
        top = await get_json(http, f"{sim.base_url}/topstories.json")
    assert top == stories[:500]


async def test_updates_list_what_grow_changed(http: aiohttp.ClientSession) -> None:
    world = World(seed=5, start_time=T0)
    async with SimulatorServer(world) as sim:
        assert await get_json(http, f"{sim.base_url}/updates.json") == {"items": [], "profiles": []}
        before = world.maxitem
        changed = world.grow(40)
        updates = await get_json(http, f"{sim.base_url}/updates.json")
        new = [i for i in changed if i > before]
        assert len(new) >= 40
        assert set(changed) <= set(updates["items"])
        for cid in new:
            item = world.items[cid]
            if item["type"] == "comment":
                assert item["parent"] in changed  # its kids changed
                root = cid
                while world.items[root]["type"] == "comment":
                    root = world.items[root]["parent"]
                assert root in changed  # descendants and score moved
        assert updates["profiles"] and all(isinstance(p, str) for p in updates["profiles"])
        for _ in range(world.updates_window):
            world.grow(0, bump_scores=False)
        later = await get_json(http, f"{sim.base_url}/updates.json")
        assert not set(new) & set(later["items"])  # old changes age out


async def test_served_items_follow_changes(http: aiohttp.ClientSession) -> None:
    world, ids = hand_built()
    async with SimulatorServer(world) as sim:
        url = f"{sim.base_url}/item/{ids['story']}.json"
        assert (await get_json(http, url))["descendants"] == 3
        world.add_comment(ids["story"])
        assert (await get_json(http, url))["descendants"] == 4
        world.delete_comment(ids["a"])
        story_a = await get_json(http, f"{sim.base_url}/item/{ids['a']}.json")
        assert story_a["deleted"] is True and "by" not in story_a and story_a["kids"]
        assert (await get_json(http, url))["descendants"] == 3
        world.items[ids["story"]]["title"] = "edited by hand"
        world.touch(ids["story"])
        assert (await get_json(http, url))["title"] == "edited by hand"


# --- a bounded updates list, as HN's ----------------------------------------------------------------


def test_bounded_updates_list_the_most_recent_changes_first() -> None:
    world = World(stories=0, start_time=T0, updates_limit=3)
    first, b, c, d = (world.add_story(by=name) for name in ("ann", "bob", "cy", "di"))
    assert world.updates() == {"items": [d, c, b], "profiles": ["di", "cy", "bob"]}
    assert first not in world.updates()["items"]  # the oldest change fell off
    world.touch(b)  # changed again: it becomes the most recent change
    assert world.updates()["items"] == [b, d, c]
    for _ in range(world.updates_window + 5):  # no window: only newer changes push an id out
        world.grow(0, bump_scores=False)
    posted = sorted((i for i in world.items if i > d), reverse=True)  # stories growth posted meanwhile
    assert world.updates()["items"] == [*posted, b, d, c][:3]


async def test_bounded_updates_overflow_under_churn(http: aiohttp.ClientSession) -> None:
    bounded = World(seed=5, start_time=T0, updates_limit=50)
    unbounded = World(seed=5, start_time=T0)  # the same world, with the forgiving list
    async with SimulatorServer(bounded) as sim:
        assert await get_json(http, f"{sim.base_url}/updates.json") == {"items": [], "profiles": []}
        before = await get_json(http, f"{sim.base_url}/maxitem.json")
        changed = bounded.grow(200)  # far more changes than the list holds before the next read
        assert changed == unbounded.grow(200)
        updates = await get_json(http, f"{sim.base_url}/updates.json")
        after = await get_json(http, f"{sim.base_url}/maxitem.json")
    every_change = unbounded.updates()["items"]  # most recent first, nothing dropped
    assert len(every_change) == len(changed) > 50
    assert updates["items"] == every_change[:50]  # HN keeps the most recent changes...
    assert not set(updates["items"]) & set(every_change[50:])  # ...and the older ones are gone
    assert updates["profiles"] and all(isinstance(p, str) for p in updates["profiles"])
    missed = set(range(before + 1, after + 1)) - set(updates["items"])
    assert missed  # new items the list no longer names: only following maxitem finds them


def test_updates_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="World: updates_limit must be >= 1, got 0"):
        World(stories=0, updates_limit=0)


# --- following every new item from maxitem --------------------------------------------------------------


async def test_every_new_item_can_be_followed_from_maxitem(http: aiohttp.ClientSession) -> None:
    world = World(seed=8, start_time=T0)
    async with SimulatorServer(world) as sim:
        base = sim.base_url
        seen_max = await get_json(http, f"{base}/maxitem.json")
        kinds: set[str] = set()
        for step in range(20):
            world.grow(30)
            if step == 5:  # growth posts stories now and then; make sure of one, and of a job ad
                world.add_story("Posted between growth steps")
                world.add_job("Hiring between growth steps")
            maxitem = await get_json(http, f"{base}/maxitem.json")
            assert maxitem > seen_max
            for item_id in range(seen_max + 1, maxitem + 1):  # every id above the last maxitem is new
                item = await get_json(http, f"{base}/item/{item_id}.json")
                assert item is not None and item["id"] == item_id
                kinds.add(item["type"])
                if item["type"] == "comment":
                    parent = await get_json(http, f"{base}/item/{item['parent']}.json")
                    assert parent["id"] < item_id and item_id in parent["kids"]
                else:
                    listed = "jobstories" if item["type"] == "job" else "newstories"
                    assert item_id in await get_json(http, f"{base}/{listed}.json")
            seen_max = maxitem
    assert kinds == {"story", "comment", "job"}


def test_hand_built_items_get_ids_above_maxitem() -> None:
    world, ids = hand_built()
    adders: list[Callable[[], int]] = [
        lambda: world.add_story(),
        lambda: world.add_job(),
        lambda: world.add_comment(ids["story"]),
        lambda: world.add_comment(ids["a"], dead=True),
        lambda: world.add_missing_kid(ids["a"]),
    ]
    for add in adders:
        before = world.maxitem
        assert add() == before + 1 == world.maxitem


# --- deleted, dead and edited comments ------------------------------------------------------------------


async def test_delete_kill_and_edit_are_served_and_listed(http: aiohttp.ClientSession) -> None:
    world = World(stories=0, start_time=T0)
    story = world.add_story()
    doomed, killed, edited = world.add_replies(story, 3)
    world.grow(0, bump_scores=False)  # a fresh step; the old changes age out below
    for _ in range(world.updates_window):
        world.grow(0, bump_scores=False)
    assert not {story, doomed, killed, edited} & set(world.updates()["items"])
    async with SimulatorServer(world) as sim:
        url = f"{sim.base_url}/item/{{}}.json"
        before = await get_json(http, url.format(edited))  # cached now
        world.delete_comment(doomed)
        world.kill_comment(killed)
        world.edit_comment(edited, "<p>edited: I was wrong")
        updates = await get_json(http, f"{sim.base_url}/updates.json")
        assert updates["items"][0] == edited  # the most recent change first
        assert {doomed, killed, edited, story} <= set(updates["items"])  # the story's count moved
        deleted = await get_json(http, url.format(doomed))
        assert deleted["deleted"] is True and "text" not in deleted and "by" not in deleted
        dead = await get_json(http, url.format(killed))
        assert dead["dead"] is True and dead["text"]
        after = await get_json(http, url.format(edited))
        assert after == {**before, "text": "<p>edited: I was wrong"}
        assert (await get_json(http, url.format(story)))["descendants"] == 1 == world.visible_count(story)


def test_edit_comment_refuses_what_cannot_be_edited() -> None:
    world, ids = hand_built()
    changes = len(world.updates()["items"])
    world.edit_comment(ids["a"], "<p>first")  # the same text: nothing changed, nothing listed
    assert len(world.updates()["items"]) == changes
    with pytest.raises(ValueError, match=f"edit_comment: item {ids['deleted']} is deleted"):
        world.edit_comment(ids["deleted"], "<p>back")
    with pytest.raises(ValueError, match=f"edit_comment: item {ids['story']} is not a comment"):
        world.edit_comment(ids["story"], "<p>no")
    with pytest.raises(ValueError, match="edit_comment: item 777 does not exist"):
        world.edit_comment(777, "<p>no")
    world.edit_comment(ids["dead"], "<p>still dead")  # a dead comment keeps its text, so it can change
    assert world.items[ids["dead"]]["dead"] is True and world.visible_count(ids["story"]) == 3


# --- ground truth -----------------------------------------------------------------------------------------


def test_visible_count_on_a_hand_built_tree() -> None:
    world, ids = hand_built()
    assert world.visible_count(ids["story"]) == 3
    assert world.tree_stats(ids["story"]) == {"visible": 3, "deleted": 1, "dead": 1, "missing": 1, "items": 5}
    world.kill_comment(ids["under_dead"])
    assert world.tree_stats(ids["story"])["dead"] == 2
    assert world.items[ids["story"]]["descendants"] == world.visible_count(ids["story"]) == 2
    with pytest.raises(ValueError, match="story 12345 does not exist"):
        world.tree_stats(12345)


def test_descendants_agree_with_the_tree_while_growing() -> None:
    world = World(seed=11, start_time=T0)
    for _ in range(20):
        world.grow(100)
    for sid in world.lists["topstories"]:
        if world.items[sid]["type"] == "story":
            stats = world.tree_stats(sid)
            assert world.items[sid]["descendants"] == stats["visible"], sid
    stories = [s for s in world.lists["topstories"] if world.items[s]["type"] == "story"]
    assert any(world.tree_stats(s)["deleted"] for s in stories)


def test_descendants_lag_when_asked() -> None:
    world = World(stories=0, start_time=T0)
    story = world.add_story()
    world.set_descendants_lag(1)
    world.add_replies(story, 3)
    assert world.items[story]["descendants"] == 0 and world.visible_count(story) == 3
    world.grow(0, bump_scores=False)
    assert world.items[story]["descendants"] == 0
    world.grow(0, bump_scores=False)
    assert world.items[story]["descendants"] == 3
    world.add_comment(story)
    world.set_descendants_lag(0)
    assert world.items[story]["descendants"] == 4


def test_grow_favours_big_threads_and_posts_new_stories() -> None:
    world = World(seed=2, start_time=T0)
    stories = [s for s in world.lists["topstories"] if world.items[s]["type"] == "story"]
    before = {s: world.items[s]["descendants"] for s in stories}
    top_before = list(world.lists["topstories"])
    for _ in range(30):
        world.grow(50)
    gain = {s: world.items[s]["descendants"] - before[s] for s in stories}
    big = sorted(stories, key=before.__getitem__)[-5:]
    small = sorted(stories, key=before.__getitem__)[:5]
    assert sum(gain[s] for s in big) > 3 * sum(gain[s] for s in small)
    assert len(world.lists["topstories"]) > len(top_before)  # new stories reached the front page


# --- calibration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_front_page_looks_like_the_real_one(seed: int) -> None:
    world = World(seed=seed)
    counts = [world.items[s].get("descendants", 0) for s in world.lists["topstories"]]
    # The real 300-story front page: median 31, max 721 (30 stories sample it).
    assert 10 <= statistics.median(counts) <= 80
    assert 100 <= max(counts) <= 1000
    assert min(counts) == 0  # the job ad, and quiet stories, have none


def test_scaled_world_and_thread_shape() -> None:
    world = World(seed=1, stories=30, total_comments=20_000, start_time=T0)  # its build time: benchmark 9
    stories = [s for s in world.lists["topstories"] if world.items[s]["type"] == "story"]
    total = sum(world.items[s]["descendants"] for s in stories)
    assert 18_000 <= total <= 22_000
    biggest = max(stories, key=lambda s: world.items[s]["descendants"])
    stats = world.tree_stats(biggest)
    # The real 2,170-comment thread: 11% top-level, 4.5% deleted, 5.8% dead.
    assert 0.05 <= len(world.items[biggest]["kids"]) / stats["items"] <= 0.25
    assert 0.02 <= stats["deleted"] / stats["items"] <= 0.08
    assert 0.03 <= stats["dead"] / stats["items"] <= 0.09
    for sid in stories:  # ids follow time: a reply is newer than what it answers
        for kid in world.items[sid].get("kids", []):
            assert kid > sid and world.items[kid]["time"] >= world.items[sid]["time"]


def test_worlds_are_reproducible() -> None:
    a = World(seed=9, start_time=T0)
    b = World(seed=9, start_time=T0)
    assert a.items == b.items and a.lists == b.lists
    assert a.grow(30) == b.grow(30) and a.items == b.items


# --- hostile shapes, built fast -------------------------------------------------------------------------


async def test_deep_wide_and_cyclic_trees(http: aiohttp.ClientSession) -> None:
    world = World(stories=0, start_time=T0)
    deep, wide, loop = world.add_story(), world.add_story(), world.add_story()
    deepest = world.add_chain(deep, 3000)  # how fast these are built: benchmark 9
    kids = world.add_replies(wide, 4000)
    top = world.add_comment(loop)
    cyc = world.add_cycle(top)
    assert world.tree_stats(deep) == {"visible": 3000, "deleted": 0, "dead": 0, "missing": 0, "items": 3000}
    assert world.visible_count(wide) == 4000 and world.items[wide]["kids"] == kids
    assert world.visible_count(loop) == 2
    async with SimulatorServer(world) as sim:
        chain_end = await get_json(http, f"{sim.base_url}/item/{deepest}.json")
        assert "kids" not in chain_end and world.items[chain_end["parent"]]["kids"] == [deepest]
        cycle = await get_json(http, f"{sim.base_url}/item/{cyc}.json")
        assert cycle["kids"] == [top] and cycle["parent"] == top


async def test_corrupt_serves_hostile_fields(http: aiohttp.ClientSession) -> None:
    world, ids = hand_built()
    async with SimulatorServer(world) as sim:
        url = f"{sim.base_url}/item/{ids['a']}.json"
        await get_json(http, url)  # cached now
        world.corrupt(ids["a"], kids="not a list", time="yesterday", by=REMOVE)
        item = await get_json(http, url)
        assert item["kids"] == "not a list" and item["time"] == "yesterday" and "by" not in item
        world.serve_raw(ids["under_dead"], "[1, 2, 3]")
        assert await get_json(http, f"{sim.base_url}/item/{ids['under_dead']}.json") == [1, 2, 3]
    assert world.tree_stats(ids["story"])["missing"] == 1  # only the dead branch remains walkable
    with pytest.raises(ValueError, match=re.escape(f"item {ids['a']} is not JSON-encodable")):
        world.corrupt(ids["a"], kids={1, 2})


def test_ground_truth_and_growth_survive_hostile_items() -> None:
    world, ids = hand_built()
    world.corrupt(ids["dead"], kids=[[1], True, "x", ids["under_dead"], ids["under_dead"]])
    stats = world.tree_stats(ids["story"])
    assert stats["missing"] == 1 + 3 and stats["visible"] == 3  # a repeated kid counts once
    world.corrupt(ids["story"], time="soon")
    before = world.maxitem
    world.grow(20)
    assert world.maxitem >= before + 20


def test_bad_hand_building_is_a_clear_error() -> None:
    world = World(stories=0, start_time=T0)
    job = world.add_job()
    with pytest.raises(ValueError, match="add_comment: item 777 does not exist"):
        world.add_comment(777)
    with pytest.raises(ValueError, match=f"item {job} is a job"):
        world.add_comment(job)
    with pytest.raises(ValueError, match="World: stories must be >= 0"):
        World(stories=-1)


# --- faults and statistics ------------------------------------------------------------------------------


async def test_faults_then_recovery(http: aiohttp.ClientSession) -> None:
    world = World(seed=4, start_time=T0)
    faults = Faults(error_rate=1.0)
    story = world.lists["newstories"][0]
    async with SimulatorServer(world, faults) as sim:
        url = f"{sim.base_url}/item/{story}.json"
        async with http.get(url) as r:
            assert r.status == 500
        faults.error_rate = 0.0
        faults.malformed_rate = 1.0
        for _ in range(4):  # both kinds of garbage
            async with http.get(url) as r:
                assert r.status == 200
                with pytest.raises(ValueError):
                    json.loads(await r.read())
        faults.malformed_rate = 0.0
        faults.unauthorized_rate = 1.0
        async with http.get(url) as r:
            assert r.status == 401
        faults.unauthorized_rate = 0.0
        faults.fail_ids.add(story)
        async with http.get(url) as r:
            assert r.status == 500
        assert await get_json(http, f"{sim.base_url}/topstories.json")  # other ids are fine
        faults.fail_ids.clear()
        assert (await get_json(http, url))["id"] == story
        assert sim.stats.statuses == {500: 2, 200: 6, 401: 1}


def test_faults_reject_bad_rates() -> None:
    with pytest.raises(ValueError, match=r"Faults\.error_rate must be between 0 and 1"):
        Faults(error_rate=1.5)


async def test_partial_error_rate_is_seeded(http: aiohttp.ClientSession) -> None:
    async with SimulatorServer(World(stories=0), Faults(error_rate=0.5, seed=1)) as sim:
        statuses = []
        for _ in range(40):
            async with http.get(f"{sim.base_url}/maxitem.json") as r:
                statuses.append(r.status)
    assert 5 <= statuses.count(500) <= 35 and 5 <= statuses.count(200) <= 35


async def test_max_inflight_sees_concurrency(http: aiohttp.ClientSession) -> None:
    world = World(seed=1, start_time=T0)
    async with SimulatorServer(world, Faults(latency=0.1)) as sim:
        ids = world.lists["topstories"][:20]

        async def fetch(i: int) -> int:
            async with http.get(f"{sim.base_url}/item/{i}.json") as r:
                item_id: int = (await r.json())["id"]
                return item_id

        assert await asyncio.gather(*(fetch(i) for i in ids)) == ids
        assert sim.stats.max_inflight == 20 and sim.stats.inflight == 0
        assert sim.stats.item_requests == 20 and sim.stats.item_fetches[ids[0]] == 1
        sim.reset_stats()
        assert sim.stats.requests == 0 and sim.stats.max_inflight == 0
        sim.faults.latency = 0.0
        await fetch(ids[0])
        assert sim.stats.max_inflight == 1 and sim.stats.requests == 1


async def test_hanging_requests_do_not_hold_up_close(http: aiohttp.ClientSession) -> None:
    sim = SimulatorServer(World(stories=0), Faults(hang_rate=1.0))
    await sim.start()
    try:
        pending = asyncio.create_task(http.get(f"{sim.base_url}/maxitem.json"))
        async with asyncio.timeout(5):  # a guard against a hung test, not a wait
            await sim.stats.wait_until(lambda stats: stats.inflight == 1)
    finally:
        # A guard against a hung test, not a timing figure: close must not wait for the hanging handler.
        async with asyncio.timeout(30):
            await sim.close()
    try:
        response = await pending
    except aiohttp.ClientError:
        pass  # the connection was dropped: also fine
    else:
        assert response.status == 503
        response.release()
    assert sim.stats.inflight == 0


async def test_make_app_serves_under_a_test_client(aiohttp_client: Any) -> None:
    world, ids = hand_built()
    client = await aiohttp_client(make_app(world))
    async with client.get(f"/v0/item/{ids['story']}.json") as r:
        assert (await r.json())["id"] == ids["story"]


# --- the simulate command -------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flamewatch simulate")
    add_simulate_arguments(parser)
    return parser.parse_args(argv)


def test_simulate_arguments_validate(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["--port", "0", "--stories", "5", "--grow-every", "2.5", "--latency", "0.01"])
    assert (args.port, args.stories, args.grow_every, args.latency) == (0, 5, 2.5, 0.01)
    assert world_from_args(args).updates_limit is None  # the forgiving list unless asked
    with pytest.raises(SystemExit):
        parse(["--error-rate", "2"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--error-rate" in err and "between 0 and 1" in err and "'2'" in err
    with pytest.raises(SystemExit):
        parse(["--updates-limit", "0"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--updates-limit" in err and "positive whole number" in err


def test_simulate_updates_limit_reaches_the_world() -> None:
    world = world_from_args(parse(["--stories", "0", "--updates-limit", "2"]))
    assert world.updates_limit == 2
    stories = [world.add_story() for _ in range(3)]
    assert world.updates()["items"] == stories[:0:-1]


@pytest.mark.looptime(start=0)
async def test_run_simulate_grows_then_returns(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["--port", "0", "--stories", "12", "--grow-every", "5", "--duration", "30"])
    assert await run_simulate(args) == 0
    out = capsys.readouterr().out
    assert "Simulated HN API at http://127.0.0.1:" in out and "/v0 (12 stories" in out
    assert out.count("grew:") == 5  # at 5, 10, 15, 20 and 25 s on the loop clock; at 30 s it stops


async def test_run_simulate_serves_until_cancelled(
    http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    args = parse(["--port", "0", "--stories", "10", "--grow-every", "0"])
    task = asyncio.create_task(run_simulate(args, on_ready=lambda sim: ready.set_result(sim.base_url)))
    async with asyncio.timeout(5):  # a guard against a hung test, not a wait
        base = await ready
    assert f"Simulated HN API at {base} " in capsys.readouterr().out
    assert len(await get_json(http, f"{base}/topstories.json")) == 10
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{base}/topstories.json"):
            pass
