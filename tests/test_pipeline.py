"""The alert path as the builder lists it, isolation of a faulty rule, and a reload rebuilding the path."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from flamewatch import Evaluation, Rule, RuleContext, StorySnapshot, hookimpl
from flamewatch.app import App
from flamewatch.config import load_config, parse_config
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

CHAIN = [
    "collect", "stale", "evaluate", "decline", "record",
    "lead", "quiet hours", "take", "supersede", "silence", "group", "flood cap",
    "send", "record outcome",
]


async def test_the_builder_lists_the_whole_chain_in_order(tmp_path: Path) -> None:
    config = parse_config({"store": {"path": str(tmp_path / "fw.db")}, "notifiers": []}, "chain.toml")
    async with App(config, plugins=make_test_plugins()) as app:
        assert app.monitor is not None
        pipeline = app.monitor.pipeline
        print(pipeline.describe())
        assert pipeline.chain() == CHAIN
        assert pipeline.describe() == (
            "collect → stale → evaluate → decline → record"
            " ⇒ pump: lead → quiet hours → take → supersede → silence → group → flood cap"
            " ⇒ delivery: send → record outcome"
        )
        # The dispatcher's pumps run the very stages the pipeline lists (one list, not a copy).
        assert app.dispatcher is not None and pipeline.pump is app.dispatcher.pump
    # The README's "What it does" diagram is this chain.
    diagram = README.split("## What it does", 1)[1].split("```", 2)[1]
    for part in (pipeline.cycle, pipeline.pump, pipeline.delivery):
        assert " ─► ".join(stage.name for stage in part) in diagram, part


class BrokenRule(Rule):
    """A third-party rule with a bug: it raises on every story."""

    name = "broken"

    @dataclass(frozen=True)
    class Options:
        broken_level: int = 1

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        raise KeyError("oops")


class BrokenPlugin:
    __name__ = "broken-plugin"

    @hookimpl
    def flamewatch_rule_types(self) -> list[type[Rule]]:
        return [BrokenRule]


async def test_a_raising_rule_is_skipped_named_once_and_every_other_rule_still_alerts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(seed=5, stories=0)
    stories = [world.add_story(f"Story {n}") for n in range(3)]
    for story in stories:
        world.add_replies(story, 6)
    plugins = make_test_plugins(BrokenPlugin(), plugin_offering(RecordingNotifier))
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 5},
            "rules": {"comment_levels": [5], "points_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink"}],
        }, "broken.toml")
        async with App(config, plugins=plugins) as app:
            assert app.monitor is not None and app.dispatcher is not None
            with caplog.at_level(logging.ERROR, logger="flamewatch.rules"):
                first = await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
            (sink,) = [instance.notifier for instance in app.instances]
            assert isinstance(sink, RecordingNotifier)
            delivered = sorted(e.key for e in sink.sent)

    assert delivered == sorted(f"{story}:comments:5" for story in stories)
    assert first.events == 3 and first.rule_errors == (("broken", 3),)
    named = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(named) == 1, named  # once per cycle, not once per story
    assert "rule broken (plugin broken-plugin, " in named[0] and __file__ in named[0], named[0]
    assert "KeyError" in named[0] and "oops" in named[0]


def test_rule_errors_are_counted_in_metrics_and_shown_with_the_cycle() -> None:
    from datetime import UTC, datetime

    from flamewatch.events import CycleStats
    from flamewatch.http.api import cycle_json
    from flamewatch.http.page import fragment
    from flamewatch.http.recorder import StatusRecorder

    recorder = StatusRecorder()
    stats = CycleStats(cycle=0, started_at=datetime.now(UTC), elapsed=0.1, stories=3, requests=4, errors=0,
                       partial=0, events=3, rule_errors=(("broken", 3),))
    recorder.flamewatch_cycle_done(stats)
    recorder.flamewatch_cycle_done(stats)
    assert 'flamewatch_rule_errors_total{rule="broken"} 6.0' in recorder.metrics.exposition().decode()
    health = {"ready": True, "reason": "ok", "last_success": None, "period": 60.0, "uptime": 1.0}
    html = fragment({"health": health, "stories": [], "events": [], "outbox": [],
                     "cycles": [cycle_json(stats)]})
    assert '<span class="bad rule-error">rule broken raised on 3</span>' in html


def _write(path: Path, api_url: str, lists: str) -> None:
    path.write_text(f'notifiers = []\n[hn]\napi_url = "{api_url}"\n[store]\npath = "{path.parent / "fw.db"}"\n'
                    f'[rules]\ncomment_levels = []\npoints_levels = []\n{lists}')


async def test_a_reload_changing_the_watched_lists_counts_them_from_the_next_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(seed=7, stories=0)
    top = world.add_story("On the front page", top=True)
    ask = world.add_story("Ask HN: only on the ask list", top=False)
    path = tmp_path / "fw.toml"
    async with SimulatorServer(world) as sim:
        _write(path, sim.base_url, '[[watch.lists]]\nname = "topstories"\ntop = 5\n')
        async with App(load_config(str(path)), plugins=make_test_plugins()) as app:
            assert app.monitor is not None
            before = await app.monitor.cycle(0)
            _write(path, sim.base_url, '[watch]\nperiod = 90\ncycle_timeout = 60\n'
                                       '[[watch.lists]]\nname = "topstories"\ntop = 5\n'
                                       '[[watch.lists]]\nname = "askstories"\ntop = 5\n')
            with caplog.at_level(logging.INFO, logger="flamewatch.reload"):
                assert await app.reload() is None
            after = await app.monitor.cycle(1)

    assert {s.id for s in before.counted} == {top}
    assert {s.id for s in after.counted} == {top, ask}
    assert {s.id: s.lists for s in after.counted}[ask] == {"askstories": 1}
    (line,) = [r.getMessage() for r in caplog.records if "config reloaded" in r.getMessage()]
    assert "rules and lists (topstories top 5, askstories top 5) apply from the next cycle" in line, line
    assert line.endswith("; restart to apply watch.period, watch.cycle_timeout"), line


async def test_a_new_comment_reaches_a_notifier_on_the_apps_fake_clock(tmp_path: Path) -> None:
    """The whole path (stream, count, rule, record, group_wait, send, record outcome) reads App's clock:
    nothing on it looks at the wall clock, so a group_wait of an hour passes by moving the fake time."""
    world = World(seed=11, stories=0)
    story = world.add_story("Slow burner")
    world.add_replies(story, 4)
    fake = {"now": 1_000_000.0}  # 1970: any wall-clock reading on the way would show

    def clock() -> float:
        return fake["now"]

    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 5},
            "rules": {"comment_levels": [5], "points_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink", "group_wait": "1h"}],
        }, "clock.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier)), clock=clock) as app:
            assert app.monitor is not None and app.dispatcher is not None and app.store is not None
            (sink,) = [instance.notifier for instance in app.instances]
            assert isinstance(sink, RecordingNotifier)
            first = await app.monitor.cycle(0)
            world.add_replies(story, 1)  # the fifth comment: a new item the stream follows
            fake["now"] += 60
            second = await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
            assert sink.sent == []  # grouped: due an hour after it fired, on the fake clock
            (row,) = await app.store.pending()
            fake["now"] += 3600
            app.dispatcher.resume()
            (event,) = await sink.wait_for(1)
            await app.dispatcher.wait_idle()
            (done,) = await app.store.outbox()

    assert (first.events, second.events) == (0, 1)
    assert second.started_at.timestamp() == 1_000_060.0 and second.new_items >= 1
    assert event.key == f"{story}:comments:5" and event.at.timestamp() == 1_000_060.0
    assert row.created_at == 1_000_060.0 and row.next_at == 1_000_060.0 + 3600
    assert done.status == "sent" and done.id == row.id
