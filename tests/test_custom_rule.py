"""A brand-new rule, defined in this file alone, is loaded as a plugin, enabled by config and delivered.

Nothing in flamewatch knows the rule: it is registered through ``flamewatch_rule_types`` exactly as a
third-party package would register it, reads its own key from ``[rules]``, fires during a real watcher
cycle against the simulator, and reaches a notifier worded the way the rule says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from flamewatch import (
    Evaluation,
    Item,
    ItemContext,
    ItemMatch,
    PositiveInt,
    Rule,
    RuleContext,
    StorySnapshot,
    Wording,
    hookimpl,
)
from flamewatch.app import App
from flamewatch.config import ConfigError, parse_config
from flamewatch.notifiers.slack.format import what_happened
from flamewatch.plugins import Plugins, make_plugin_manager
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import RecordingNotifier, plugin_offering, make_test_plugins


class AskHNRule(Rule):
    """Fires when an "Ask HN" thread gets at least ``ask_hn_comments`` comments."""

    name = "ask_hn"
    description = "an Ask HN thread gets busy"

    @dataclass(frozen=True)
    class Options:
        ask_hn_comments: PositiveInt | None = None  # idle unless configured

    def is_active(self) -> bool:
        return self.options.ask_hn_comments is not None

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        threshold = self.options.ask_hn_comments
        if not story.title.startswith("Ask HN:") or story.comments < threshold:
            return Evaluation()
        wording = Wording(
            summary=f"Ask HN with {threshold}+ answers",
            headline=f"has {story.comments} answers (Ask HN threshold {threshold})",
            detail="(worth a read)",
            emoji="raising_hand",
        )
        return Evaluation(announce=[self.event(story, ctx, threshold, story.comments, wording)])


class AskHNPlugin:
    @hookimpl
    def flamewatch_rule_types(self) -> list[type[Rule]]:
        return [AskHNRule]


def plugins_with_ask_hn() -> Plugins:
    return make_test_plugins(AskHNPlugin(), plugin_offering(RecordingNotifier))


async def test_a_rule_from_a_test_file_fires_and_is_delivered_with_its_own_wording(tmp_path: Path) -> None:
    world = World(seed=3, stories=0)
    ask = world.add_story("Ask HN: What are you working on?")
    show = world.add_story("Show HN: not a question")
    for story in (ask, show):
        world.add_replies(story, 6)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"ask_hn_comments": 5, "comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            # The notifier's route names the new rule: routes are checked against the loaded rules.
            "notifiers": [{"type": "recording", "name": "sink", "rules": ["ask_hn"]}],
        }, "custom.toml")
        async with App(config, plugins=plugins_with_ask_hn()) as app:
            assert app.monitor is not None and app.dispatcher is not None
            assert [rule.name for rule in app.rules if rule.is_active()] == ["ask_hn"]
            await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
            (sink,) = [instance.notifier for instance in app.instances]
            assert isinstance(sink, RecordingNotifier)
            delivered = list(sink.sent)

    (event,) = delivered  # read back from the outbox, so the wording survived the JSON round trip
    assert event.key == f"{ask}:ask_hn:5" and event.rule == "ask_hn"
    assert event.describe() == "Ask HN: What are you working on? has 6 answers (Ask HN threshold 5)"
    # A notifier that never heard of the rule still words it: Slack shows the rule's own phrase and emoji.
    assert what_happened(event) == ":raising_hand: *Ask HN with 5+ answers* (worth a read)"


def test_the_new_rules_key_is_checked_like_any_other(tmp_path: Path) -> None:
    config = parse_config({"rules": {"ask_hn_comments": 0}, "notifiers": []}, "custom.toml")
    with pytest.raises(ConfigError, match=r"^custom\.toml: rules\.ask_hn_comments: must be at least 1, got 0$"):
        App(config, plugins=plugins_with_ask_hn())
    # Without the plugin, its key is unknown, and the message lists what the loaded rules accept.
    without = make_test_plugins()
    config = parse_config({"rules": {"ask_hn_comments": 5}, "notifiers": []}, "custom.toml")
    with pytest.raises(ConfigError, match=r"rules\.ask_hn_comments: unknown key \(known keys here: comment_levels, "):
        App(config, plugins=without)


def test_two_rules_claiming_one_key_is_an_error_naming_both_plugins() -> None:
    class Copycat(AskHNRule):
        name = "copycat"

    class CopycatPlugin:
        @hookimpl
        def flamewatch_rule_types(self) -> list[type[Rule]]:
            return [Copycat]

    from flamewatch.errors import PluginError

    plugins = make_plugin_manager(extra=[AskHNPlugin(), CopycatPlugin()], defaults=False, load_entry_points=False)
    with pytest.raises(PluginError, match=r"\[rules\] key 'ask_hn_comments' is claimed by both rule 'ask_hn' \(plugin "
                                          r".*AskHNPlugin.*\) and rule 'copycat' \(plugin .*CopycatPlugin.*\)"):
        plugins.rule_types()


def test_the_readme_rule_example_works(tmp_path: Path) -> None:
    import re

    from flamewatch.app import load_plugins, resolve_rules
    from flamewatch.rules import RuleEngine
    from flamewatch.testing import make_story

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (source,) = re.findall(r"```python\n(# flamewatch_ask_hn\.py\n.*?)```", readme, re.S)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "flamewatch_ask_hn.py").write_text(source)
    config = parse_config({"rules": {"ask_hn_comments": 50, "comment_levels": []},
                           "plugins": {"dirs": [str(tmp_path / "plugins")], "disable": ["slack", "email", "webhook"]},
                           "notifiers": []}, "guide.toml")
    engine = RuleEngine(resolve_rules(config, load_plugins(config)))
    (event,) = engine.evaluate(make_story(1, title="Ask HN: Who is hiring?", comments=64)).announce
    assert event.describe() == "Ask HN: Who is hiring? has 64 answers"
    assert engine.evaluate(make_story(2, title="Show HN: a tool", comments=640)).announce == []


class ShoutRule(Rule):
    """Fires for every new comment that says ``shout_word``, anywhere on HN (an item rule)."""

    name = "shout"

    @dataclass(frozen=True)
    class Options:
        shout_word: str = ""

    def is_active(self) -> bool:
        return bool(self.options.shout_word)

    def observe_item(self, item: Item, ctx: ItemContext) -> list[ItemMatch]:
        if item.type != "comment" or self.options.shout_word not in (item.text or ""):
            return []
        wording = Wording(summary="Shouted", headline=f"has a comment saying {self.options.shout_word!r}")
        return [ItemMatch(level=self.options.shout_word, wording=wording)]


class ShoutPlugin:
    @hookimpl
    def flamewatch_rule_types(self) -> list[type[Rule]]:
        return [ShoutRule]


async def test_an_item_rule_sees_new_comments_from_the_stream_with_their_thread(tmp_path: Path) -> None:
    world = World(seed=3, stories=0)
    story = world.add_story("A thread somewhere")
    watched = world.add_story("On the front page", top=True)
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"shout_word": "HELLO", "comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording", "name": "sink"}],
        }, "custom.toml")
        async with App(config, plugins=make_test_plugins(ShoutPlugin(), plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)  # the stream's first poll only sets its cursor
            quiet = world.add_comment(story, text="<p>nothing to see</p>")
            loud = world.add_comment(quiet, text="<p>HELLO &amp; <b>goodbye</b></p>")
            world.add_comment(watched, text="HELLO from the front page")
            stats = await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
            (sink,) = [instance.notifier for instance in app.instances]
            assert isinstance(sink, RecordingNotifier)
            delivered = sorted(sink.sent, key=lambda e: e.key)
    assert stats.new_items == 3 and stats.events == 2
    first = next(e for e in delivered if e.key == f"shout:{loud}")
    assert first.subject is not None and first.subject.id == loud and first.subject.parent == quiet
    assert first.subject.excerpt == "HELLO & goodbye"  # plain text from HN's HTML
    assert first.story.id == story and first.story.title == "A thread somewhere"  # the thread, found by its chain
    assert first.describe() == "A thread somewhere has a comment saying 'HELLO'"
