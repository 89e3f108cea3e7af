"""First counts from a story's whole tree in one answer (``[crawl] tree_url``), checked against HN's
``descendants`` and healed by the stream; anything else falls back to the walk (issue 23)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flamewatch.app import App
from flamewatch.bootstrap import parse_tree
from flamewatch.config import parse_config
from flamewatch.simulator import SimulatorServer, World


def settings(sim: SimulatorServer, home: Path, tree_url: str | None) -> Any:
    home.mkdir(exist_ok=True)
    crawl = {} if tree_url is None else {"tree_bootstrap": True, "tree_url": tree_url}
    return parse_config({"hn": {"api_url": sim.base_url, "retries": 0}, "watch": {"top": 30}, "crawl": crawl,
                         "store": {"path": str(home / "fw.db")}, "notifiers": []}, "bootstrap.toml")


def tree_url(sim: SimulatorServer) -> str:
    return sim.base_url.removesuffix("/v0") + "/api/v1"


async def test_a_front_page_is_counted_from_one_tree_a_story_and_heals_from_the_stream(tmp_path: Path) -> None:
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
            first = await app.monitor.cycle(1)
            assert {r.story_id: r.comments for r in app.monitor.last_results if r.story_id in truth} == truth
            # A story costs its tree, plus (where dead comments with live replies were left out of it) its
            # comment list, the dead parents and the replies under them: a fraction of the walk.
            assert counter.stats.bootstrapped >= len(stories) - 2
            assert first.requests < walked.requests / 3
            world.grow(n_comments=40)
            await app.monitor.cycle(2)
            still = [r for r in app.monitor.last_results if r.story_id in truth]  # new stories push some out
            assert len(still) > 20
            assert {r.story_id: r.comments for r in still} == {
                r.story_id: world.visible_count(r.story_id) for r in still}


async def test_without_a_usable_tree_the_walk_counts_as_before(tmp_path: Path) -> None:
    world = World(seed=3, stories=8, total_comments=400)
    async with SimulatorServer(world) as sim, App(settings(sim, tmp_path, sim.base_url + "/nowhere")) as app:
        assert app.monitor is not None and app.monitor.parts.counter is not None
        await app.monitor.cycle(1)
        assert app.monitor.parts.counter.stats.bootstrapped == 0
        for r in app.monitor.last_results:
            assert r.comments == world.visible_count(r.story_id) and not r.partial


def test_an_unsound_tree_is_refused() -> None:
    leaf = {"id": 2, "author": "a", "text": "x", "children": []}
    assert parse_tree({"id": 1, "children": [leaf]}, 1, 10) is not None
    assert parse_tree({"id": 9, "children": [leaf]}, 1, 10) is None  # another story
    assert parse_tree({"id": 1, "children": [leaf, leaf]}, 1, 10) is None  # one id twice
    assert parse_tree({"id": 1, "children": [{"id": "2"}]}, 1, 10) is None  # not an HN id
    assert parse_tree({"id": 1, "children": {"id": 2}}, 1, 10) is None
    assert parse_tree({"id": 1, "children": [leaf]}, 1, 0) is None  # over max_items
    gone = parse_tree({"id": 1, "children": [{"id": 2, "author": None, "text": None, "children": [leaf | {"id": 3}]}]},
                      1, 10)
    assert gone is not None and (gone.comments, gone.deleted, gone.max_depth) == (1, 1, 2)


async def test_live_replies_under_a_dead_comment_are_hung_back_into_the_tree(tmp_path: Path) -> None:
    world = World(seed=4, stories=0)
    story = world.add_story("with a dead branch")
    world.add_replies(story, 5)
    top = world.add_comment(story)
    dead = world.add_comment(top, dead=True)  # the search API leaves it out, and its subtree with it
    live = world.add_comment(dead)
    world.add_comment(live)
    world.set_descendants_lag(0)
    assert world.visible_count(story) == 8
    async with SimulatorServer(world) as sim, App(settings(sim, tmp_path, tree_url(sim))) as app:
        assert app.monitor is not None and app.monitor.parts.counter is not None
        sim.reset_stats()
        await app.monitor.cycle(1)
        (result,) = [r for r in app.monitor.last_results if r.story_id == story]
        assert result.comments == 8 and not result.partial
        assert app.monitor.parts.counter.stats.bootstrapped == 1
        # The tree and the comment list, then only the dead comment and the two replies: no walk.
        assert sim.stats.item_requests == 1 + 3
