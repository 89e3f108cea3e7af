"""The flamewar warning, against the simulator on a fake clock: a story whose comments outrun its points
fires once; a merely busy story (points keeping up) and a small heated one do not."""

from __future__ import annotations

from pathlib import Path

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering


async def test_comments_outrunning_points_warn_once_and_a_busy_story_does_not(tmp_path: Path) -> None:
    world = World(seed=9, stories=0)
    heated = world.add_story("A heated one", score=60)
    busy = world.add_story("A busy one", score=400)
    small = world.add_story("A small quarrel", score=5)
    now = {"t": 2_000_000.0}
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 5},
            "rules": {"flamewar_ratio": 1.0, "flamewar_velocity": 60, "flamewar_window": "30m",
                      "flamewar_min_comments": 40, "comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink"}],
        }, "flamewar.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier)),
                       clock=lambda: now["t"]) as app:
            assert app.monitor is not None and app.dispatcher is not None
            for step in range(4):
                # Every ten minutes: 30 comments on each big thread (180/h), a few on the small one.
                world.add_replies(heated, 30)
                world.add_replies(busy, 30)
                world.add_replies(small, 3)
                world.items[busy]["score"] += 40
                world.touch(busy)
                await app.monitor.cycle(step)
                await app.dispatcher.wait_idle()  # sent before the clock moves on
                now["t"] += 600
            (sink,) = [i.notifier for i in app.instances]
            assert isinstance(sink, RecordingNotifier)
    (warning,) = sink.sent
    assert warning.key == f"{heated}:flamewar:1" and warning.rule == "flamewar"
    assert warning.story.comments == 60 and warning.value == 1.0  # fired when 60 comments met 60 points
    assert warning.describe().startswith("A heated one looks like a flamewar: 60 comments on 60 points, 180")
    assert warning.label() == "flamewar 1"
