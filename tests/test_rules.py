"""Rules: levels, points, velocity from history, keywords; stable keys; only the highest level announced."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flamewatch.config import ConfigError, configure_rules, parse_config
from flamewatch.events import Event
from flamewatch.rules import RuleEngine, comments_per_hour
from flamewatch.rules.comments import CommentsRule
from flamewatch.rules.keywords import KeywordRule
from flamewatch.rules.points import PointsRule
from flamewatch.rules.velocity import VelocityRule
from flamewatch.testing import make_story

BUILTIN_RULES = [CommentsRule, PointsRule, VelocityRule, KeywordRule]


def keys(events: list) -> list[str]:
    return [e.key for e in events]


def rules_from(**table: Any) -> RuleEngine:
    """The built-in rules configured from a ``[rules]`` table, through the config reader."""
    return RuleEngine(configure_rules(parse_config({"rules": table}, "mem.toml"), BUILTIN_RULES))


def test_first_sighting_above_several_levels_announces_only_the_highest() -> None:
    engine = rules_from(comment_levels=[50, 100, 250, 500])
    result = engine.evaluate(make_story(7, comments=300))
    assert keys(result.announce) == ["7:comments:250"]
    assert sorted(keys(result.passed)) == ["7:comments:100", "7:comments:50"]
    assert result.announce[0].value == 300 and result.announce[0].level == 250


def test_below_every_level_nothing_fires() -> None:
    engine = rules_from(comment_levels=[50], points_levels=[100])
    result = engine.evaluate(make_story(comments=49, score=99))
    assert result.announce == [] and result.passed == []


def test_points_and_keywords() -> None:
    engine = rules_from(comment_levels=[], points_levels=[100, 300], keywords=["rust", "c++"])
    result = engine.evaluate(make_story(3, title="Rewriting it in Rust, then C++", score=350, comments=12))
    assert keys(result.announce) == ["3:points:300", "3:keyword:rust", "3:keyword:c++"]
    # Whole words only: "trust" does not match "rust".
    assert keys(engine.evaluate(make_story(4, title="In trust we trust", score=0)).announce) == []


def test_velocity_fires_from_the_rate_over_its_window() -> None:
    engine = rules_from(comment_levels=[], velocity=[{"level": 100, "window": "1h"}])
    assert engine.history_windows == (3600.0,)
    slow = engine.evaluate(make_story(5), history=[(0.0, 0), (3600.0, 99)], now=3600.0)
    fast = engine.evaluate(make_story(5), history=[(0.0, 0), (3600.0, 150)], growth=40, now=3600.0)
    assert slow.announce == []
    assert keys(fast.announce) == ["5:velocity:100"]
    assert fast.announce[0].velocity == 150.0 and fast.announce[0].growth == 40
    assert "150 comments an hour" in fast.announce[0].describe()


def test_comments_per_hour_uses_the_oldest_sample_in_the_window() -> None:
    history = [(0.0, 10), (1800.0, 60), (3600.0, 160)]
    assert comments_per_hour(history, now=3600.0, window=3600.0) == 150.0
    assert comments_per_hour(history, now=3600.0, window=1800.0) == 200.0
    # Two samples seconds apart must not extrapolate to a wild rate.
    assert comments_per_hour([(0.0, 10), (5.0, 20)], now=5.0, window=3600.0) is None
    assert comments_per_hour([], now=0.0, window=60.0) is None


def test_velocity_reads_out_of_order_samples_by_their_time() -> None:
    # Live mode: a live recount (at 3600) and a cycle that started before it (at 3000) record samples of
    # one story at once, so the window can hold them out of time order.
    shuffled = [(600.0, 10), (3600.0, 160), (0.0, 10), (3000.0, 110)]
    assert comments_per_hour(shuffled, now=3600.0, window=3600.0) == 150.0  # base 0.0, latest 3600.0
    assert comments_per_hour(shuffled, now=3600.0, window=1800.0) == 300.0  # base 3000.0: 50 in 10 minutes
    engine = rules_from(comment_levels=[], velocity=[{"level": 100, "window": "1h"}])
    fired = engine.evaluate(make_story(5), history=shuffled, now=3600.0)
    assert keys(fired.announce) == ["5:velocity:100"] and fired.announce[0].velocity == 150.0
    # The newest sample first, or two at the same time: no rate rather than a negative or zero span.
    assert comments_per_hour([(3600.0, 150), (3600.0, 160)], now=3600.0, window=3600.0) is None
    assert comments_per_hour([(3600.0, 160), (3590.0, 150)], now=3600.0, window=3600.0) is None


def test_comments_per_hour_never_negative() -> None:
    assert comments_per_hour([(0.0, 100), (3600.0, 90)], now=3600.0, window=3600.0) == 0.0


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=8, unique=True),
       st.integers(min_value=0, max_value=10_000))
def test_every_crossed_level_is_either_announced_or_passed_exactly_once(levels: list[int], comments: int) -> None:
    engine = rules_from(comment_levels=levels)
    result = engine.evaluate(make_story(1, comments=comments))
    crossed = {level for level in levels if comments >= level}
    seen = [e.level for e in result.announce + result.passed]
    assert sorted(seen) == sorted(crossed)
    assert len(result.announce) == (1 if crossed else 0)
    if crossed:
        assert result.announce[0].level == max(crossed)


async def test_velocity_rule_fires_from_stored_history_through_a_real_cycle(store, session) -> None:
    from flamewatch.dispatch import Dispatcher, NotifierInstance
    from flamewatch.monitor import Monitor, MonitorSettings
    from flamewatch.simulator import SimulatorServer, World
    from flamewatch.hn import HNClient
    from flamewatch.testing import RecordingNotifier, notifier_context

    world = World(seed=4, stories=0)
    story = world.add_story("Hot take")
    world.add_replies(story, 10)
    now = {"t": 1_000_000.0}
    sink = RecordingNotifier(notifier_context(session, "sink"))
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)])
    await dispatcher.start()
    rules = rules_from(comment_levels=[], velocity=[{"level": 100}])
    async with SimulatorServer(world) as sim:
        monitor = Monitor(HNClient(session, sim.base_url), store, rules, dispatcher,
                          MonitorSettings(top=5), clock=lambda: now["t"])
        fired = []
        for step, (advance, grow) in enumerate([(0, 0), (1800, 40), (1800, 100)]):
            now["t"] += advance
            world.add_replies(story, grow)
            stats = await monitor.cycle(step)
            fired.append(stats.events)
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    assert fired == [0, 0, 1]  # 40 in the first half hour is 80/h; then 140 over the hour
    assert [e.key for e in sink.sent] == [f"{story}:velocity:100"]
    assert sink.sent[0].value == 140.0 and sink.sent[0].growth == 100


async def test_housekeeping_prunes_old_history_and_finished_deliveries(store, session) -> None:
    from flamewatch.dispatch import Dispatcher
    from flamewatch.monitor import Monitor, MonitorSettings
    from flamewatch.hn import HNClient
    from flamewatch.store import CountSample
    from flamewatch.testing import make_event

    now = 10_000_000.0
    await store.add_snapshots([CountSample(1, now - 8 * 86400, 5, 1, 5, False),
                               CountSample(1, now - 60, 9, 1, 9, False)])
    await store.record_events([make_event()], {make_event().key: ["sink"]}, now - 8 * 86400)
    await store.mark_sent([d.id for d in await store.pending()], now - 8 * 86400)
    monitor = Monitor(HNClient(session, "http://127.0.0.1:9"), store, rules_from(),
                      Dispatcher(store, []), MonitorSettings(history_seconds=7 * 86400), clock=lambda: now)
    await monitor.housekeep()
    assert [s.comments for s in await store.history(1, 0)] == [9]
    assert (await store.outbox_counts())["sent"] == 0
    assert len(await store.fired_keys()) == 1  # fired keys are never pruned: no repeat alerts


def test_each_event_carries_its_rules_wording() -> None:
    engine = rules_from(comment_levels=[500], points_levels=[1000], keywords=["rust"],
                        velocity=[{"level": 100, "window": 1800}])
    story = make_story(9, title="Rust at 1,200 points", comments=512, score=1200)
    events = {e.rule: e for e in engine.evaluate(story, history=[(0.0, 0), (1800.0, 1512)], now=1800.0).announce}
    assert {rule: (e.wording.summary, e.wording.detail, e.wording.emoji) for rule, e in events.items()} == {
        "comments": ("Reached 500 comments", "", "speech_balloon"),
        "points": ("Reached 1,000 points", "", "arrow_up"),
        "velocity": ("3,024 comments an hour", "(threshold 100)", "fire"),
        "keyword": ("Matches keyword", "“rust”", "mag"),
    }
    assert [e.headline() for e in events.values()] == [
        "reached 500 comments (512 now)", "reached 1000 points (1200 now)",
        "is getting 3024 comments an hour (threshold 100)", "matches keyword 'rust'",
    ]
    # The wording survives the outbox's JSON round trip, and is the same as events had before rules gave it.
    for event in events.values():
        assert Event.from_dict(event.to_dict()) == event
        old_row = {k: v for k, v in event.to_dict().items() if k != "wording"}
        assert Event.from_dict(old_row).wording == event.wording


def test_velocity_shown_on_events_uses_the_shortest_window() -> None:
    engine = rules_from(comment_levels=[1],
                        velocity=[{"level": 10_000, "window": "1h"}, {"level": 10_000, "window": "30m"}])
    assert engine.history_windows == (1800.0, 3600.0) and engine.history_span == 3600.0
    history = [(0.0, 0), (1800.0, 10), (3600.0, 40)]
    (event,) = engine.evaluate(make_story(comments=5), history=history, now=3600.0).announce
    assert event.velocity == 60.0  # 30 comments over the last half hour


def test_idle_rules_are_not_evaluated() -> None:
    engine = rules_from(comment_levels=[])
    assert engine.rules == [] and engine.history_span is None


@pytest.mark.parametrize(("table", "expected"), [
    ({"comment_levels": [5, "x"]}, "mem.toml: rules.comment_levels[1]: expected a positive whole number, got 'x'"),
    ({"points_levels": [0]}, "mem.toml: rules.points_levels[0]: expected a positive whole number, got 0"),
    ({"comment_levels": 5}, "mem.toml: rules.comment_levels: expected a list of positive whole numbers, got 5"),
    ({"keywords": ["ok", " "]}, "mem.toml: rules.keywords: keywords must not be empty strings"),
    ({"velocity": [{"level": 5, "window": "soon"}]},
     'mem.toml: rules.velocity[0].window: expected a number of seconds or a duration like "90s", "5m", "24h", '
     "got 'soon'"),
    ({"velocity": {"level": 5}}, "mem.toml: rules.velocity: expected an array of tables ([[rules.velocity]])"),
])
def test_bad_rule_options_are_one_line_naming_the_element(table: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        rules_from(**table)
    assert str(info.value) == expected
