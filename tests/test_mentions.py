"""Mention rules: terms, regular expressions, exclusions, scopes and filters on every new HN item; the
matched snippet marked safely on every channel; a pathological pattern cannot stall anything."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fakes.slack_api import FakeSlack
from fakes.smtp_server import FakeSMTPServer
from fakes.webhook_receiver import FakeWebhookReceiver
from flamewatch import Item, ItemContext
from flamewatch.app import App
from flamewatch.config import ConfigError, parse_config
from flamewatch.text import render_marked
from flamewatch.notifiers.console import ConsoleNotifier
from flamewatch.rules.mentions import MAX_SCANNED_BYTES, MentionRule, MentionSpec, snippet_around
from flamewatch.rules.termmatch import MAX_REJECTED
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import RecordingNotifier, make_event, make_test_plugins, plugin_offering

CTX = ItemContext(now=0.0)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"flamewatch mention test key 32b!").decode()


def rule(*specs: MentionSpec) -> MentionRule:
    return MentionRule(MentionRule.Options(mentions=specs))


def comment(text: str, *, by: str = "alice", id: int = 10) -> Item:
    return Item(id, type="comment", by=by, text=text, parent=1)


def story(title: str, url: str | None = None, *, by: str = "bob", id: int = 20) -> Item:
    return Item(id, type="story", by=by, title=title, url=url)


def levels(r: MentionRule, item: Item) -> list[str | int]:
    return [m.level for m in r.observe_item(item, CTX)]


def test_phrases_are_whole_words_in_any_case() -> None:
    r = rule(MentionSpec("rust", ("rust",)), MentionSpec("cpp", ("C++",)), MentionSpec("lang", ("rust lang",)))
    assert levels(r, comment("I <i>love</i> RUST.")) == ["rust"]
    assert levels(r, comment("trust me, rusty")) == []  # whole words only
    assert levels(r, comment("c++ and Rust\n  Lang")) == ["rust", "cpp", "lang"]  # any whitespace in a phrase
    assert levels(rule(MentionSpec("part", ("rust",), whole_word=False)), comment("trusty")) == ["part"]


def test_regular_expressions_and_exclusions() -> None:
    r = rule(MentionSpec("version", ("re:python ?3\\.1[0-9]",)), MentionSpec("go", ("go(lang)?",), regex=True),
             MentionSpec("ml", ("machine learning", "-hiring", "-re:job(s)?")))
    assert levels(r, comment("Python 3.12 is out")) == ["version"]
    assert levels(r, comment("golang, not google")) == ["go"]
    assert levels(r, comment("machine learning is neat")) == ["ml"]
    assert levels(r, comment("machine learning jobs here")) == []
    assert levels(r, story("Hiring: machine learning")) == []  # an exclusion in any scope the mention reads


def test_scopes_and_filters() -> None:
    r = rule(
        MentionSpec("site", ("github.com",), scopes=("domain",)),
        MentionSpec("path", ("flamewatch",), scopes=("url",)),
        MentionSpec("titles", ("sqlite",), scopes=("title",)),
        MentionSpec("by-dang", ("moderation",), authors=("Dang",)),
        MentionSpec("on-gh", ("release",), domains=("github.com",), scopes=("title",)),
    )
    assert levels(r, story("SQLite tricks", "https://gist.github.com/x/flamewatch")) == ["site", "path", "titles"]
    assert levels(r, comment("sqlite in a comment")) == []  # titles only
    assert levels(r, comment("about moderation", by="dang")) == ["by-dang"]
    assert levels(r, comment("about moderation", by="someone")) == []
    assert levels(r, story("A release", "https://www.github.com/a/b")) == ["site", "on-gh"]
    assert levels(r, story("A release", "https://gitlab.com/a/b")) == []
    assert levels(r, Item(30, type="comment", text="sqlite moderation", by="dang", deleted=True)) == []


def test_a_longer_term_is_found_where_a_shorter_one_starts_the_same_word() -> None:
    # The search used to stop at "go" inside "golang", reject it as not a whole word, and move past.
    r = rule(MentionSpec("go", ("go", "golang")), MentionSpec("ai", ("ai",)))
    assert levels(r, comment("We rewrote it in golang last year")) == ["go"]
    assert levels(r, comment("He said it again, plainly")) == []  # "ai" inside words, many times
    assert levels(r, comment("AI: again, said the maintainer")) == ["ai"]


def test_whole_words_in_any_script_and_under_case_folding() -> None:
    r = rule(MentionSpec("na", ("na",)), MentionSpec("ok", ("ok",)), MentionSpec("rust", ("rust",)))
    assert levels(r, comment("naïve")) == []  # "ï" is a letter: "na" is inside a word
    assert levels(r, comment("éna")) == []
    assert levels(r, comment("«na» — rust")) == ["na", "rust"]  # punctuation of any script is a boundary
    assert levels(r, comment("o\u212a then")) == ["ok"]  # the Kelvin sign folds to k, and ends the word
    assert levels(r, comment("o\u212ay")) == []


def test_one_item_has_a_bounded_cost() -> None:
    # Only the first MAX_SCANNED_BYTES of a text are searched; a search gives up after MAX_REJECTED
    # matches that were not whole words (a regex term can match inside words everywhere).
    far = "word " * (MAX_SCANNED_BYTES // 5) + "rust"
    assert levels(rule(MentionSpec("rust", ("rust",))), comment(far)) == []
    crowded = "ba " * (MAX_REJECTED + 1) + "a"
    assert levels(rule(MentionSpec("a", ("re:a",))), comment(crowded)) == []
    assert levels(rule(MentionSpec("a", ("re:a",))), comment("ba " * (MAX_REJECTED - 1) + "a")) == ["a"]


def test_the_match_carries_a_marked_snippet_and_its_key() -> None:
    r = rule(MentionSpec("rust", ("rust", "cargo")))
    long = "word " * 40 + "we ship Rust and cargo crates, rust everywhere " + "tail " * 40
    (match,) = r.observe_item(comment(f"<p>{long}</p>", id=77), CTX)
    assert match.event_key("mention", 77) == "mention:rust:77" and match.level == "rust"
    wording = match.wording
    marked = render_marked(wording.snippet, wording.marks, str, "[", "]")
    assert "we ship [Rust] and [cargo] crates, [rust] everywhere" in marked
    assert marked.startswith("…") and marked.endswith("…") and len(wording.snippet) < 200
    assert "comment by alice mentioning 'Rust'" in wording.headline


def test_snippet_window_never_starts_mid_word_and_is_one_line() -> None:
    text = "alpha beta gamma\ndelta TERM epsilon zeta"
    snippet, marks = snippet_around(text, [(text.index("TERM"), text.index("TERM") + 4)], context=12)
    assert snippet == "…delta TERM epsilon…"
    assert [snippet[s:e] for s, e in marks] == ["TERM"]


def test_marks_from_stored_json_cannot_break_rendering() -> None:
    # Out-of-range, reversed and overlapping marks are ignored; every piece is escaped.
    assert render_marked("<b>x</b> y", [(3, 6), (3, 4), (9, 99), (6, 5)], lambda t: t.replace("<", "&lt;"),
                         "*", "*") == "&lt;b>*x*&lt;/b> y"


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    # (a+)+$ against "aaaa...b" backtracks exponentially in Python's re; RE2 has no backtracking.
    r = rule(MentionSpec("evil", ("re:(a+)+$", "re:(x|x)*y", "re:(.*a){20}"), whole_word=False))
    hostile = "a" * 50_000 + "b"
    # (.*a){20} does match; the point is that these return at all (the time is benchmark 9's figure).
    assert levels(r, comment(hostile)) == ["evil"]
    assert levels(r, comment("x" * 50_000)) == []


@pytest.mark.parametrize(("table", "message"), [
    ({"name": "x", "terms": ["re:(?<=a)b"]},
     "rules.mentions[0].terms: mention 'x': pattern 're:(?<=a)b' does not compile"),
    ({"name": "x", "terms": ["-only"]}, "rules.mentions[0].terms: needs at least one term that is not an exclusion"),
    ({"name": "a:b", "terms": ["t"]}, "rules.mentions[0].name: must be a non-empty name without ':'"),
    ({"name": "x", "terms": ["t"], "scopes": ["body"]}, "rules.mentions[0].scopes[0]: "),
])
def test_bad_mentions_are_one_line_naming_the_mention(table: dict[str, Any], message: str) -> None:
    config = parse_config({"rules": {"mentions": [table]}, "notifiers": []}, "m.toml")
    with pytest.raises(ConfigError) as info:
        App(config)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"m.toml: {message}"), text


def test_two_mentions_with_one_name_are_refused() -> None:
    config = parse_config({"rules": {"mentions": [{"name": "x", "terms": ["a"]}, {"name": "x", "terms": ["b"]}]},
                           "notifiers": []}, "m.toml")
    with pytest.raises(ConfigError, match=r"^m\.toml: rules\.mentions: two mentions are named 'x'"):
        App(config)


HOSTILE_COMMENT = (
    "<p>&lt;!channel&gt; &lt;@U123&gt; @here <b>FlameWatch</b> is &lt;script&gt;alert(1)&lt;/script&gt;"
    " *bold* _it_ &amp;amp; <a href=\"javascript:alert(1)\">flamewatch</a>\r\nBcc: victim@example.com</p>"
)


async def test_a_domains_filter_keeps_comments_under_stories_linking_there(tmp_path: Path) -> None:
    world = World(seed=5, stories=0)
    on_github = world.add_story("Our release", url="https://github.com/fw/fw/releases")
    elsewhere = world.add_story("Other news", url="https://gitlab.com/x/y")
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [], "mentions": [
                {"name": "gh", "terms": ["flamewatch"], "domains": ["WWW.GitHub.com"]}]},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "recording"}],
        }, "mentions.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)  # the stream's first poll sets its cursor
            wanted = world.add_comment(world.add_comment(on_github), text="flamewatch deep in the thread")
            world.add_comment(elsewhere, text="flamewatch, but under a gitlab story")
            await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
            sink = app.instances[0].notifier
            assert isinstance(sink, RecordingNotifier)
    assert [(e.key, e.story.id) for e in sink.sent] == [(f"mention:gh:{wanted}", on_github)]


@pytest.fixture(autouse=True)
def fast_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch.notifiers.slack.notifier import SlackNotifier

    monkeypatch.setattr(SlackNotifier, "min_interval", 0.01)


async def test_a_hostile_mentioning_comment_reaches_every_channel_marked_and_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-fake-valid-token")
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    world = World(seed=5, stories=0)
    thread = world.add_story("Somewhere on HN", url="https://example.com/post")
    async with (
        SimulatorServer(world) as sim,
        FakeSlack(channels={"#hn": "C0HN"}) as slack,
        FakeSMTPServer() as smtp,
        FakeWebhookReceiver(WEBHOOK_SECRET) as receiver,
    ):
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [], "mentions": [{"name": "fw", "terms": ["flamewatch", "-tsunami"]}]},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [
                {"name": "slack", "type": "slack", "token": {"env": "SLACK_TOKEN"}, "channel": "#hn",
                 "base_url": slack.api_url},
                {"name": "mail", "type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                 "sender": "flamewatch@example.com", "to": ["me@example.com"]},
                {"name": "hook", "type": "webhook", "url": receiver.url, "secret": {"env": "HOOK_SECRET"}},
            ],
        }, "mentions.toml")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)  # the stream's first poll sets its cursor
            hostile = world.add_comment(thread, text=HOSTILE_COMMENT)
            world.add_comment(thread, text="nothing here")
            world.add_comment(thread, text="flamewatch after a tsunami")  # excluded
            stats = await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
        assert stats.events == 1

        (message,) = slack.messages
        raw = message.all_text
        assert "<!channel>" not in raw and "<@U123>" not in raw and "<script>" not in raw
        assert not message.rendered.mentions
        shown = message.rendered.text
        assert "“<!channel> <@U123> @here *FlameWatch* is <script>alert(1)</script> *bold* _it_ &amp; *flamewatch*…”" \
            in shown  # HN's text shown as written, our marks bold, on one line
        assert not any(url.startswith("javascript") for url, _ in message.rendered.links)
        assert (f"https://news.ycombinator.com/item?id={hostile}", "comment") in message.rendered.links

        await smtp.wait_for_messages(1)
        (mail,) = smtp.mails
        msg = mail.message
        assert "bcc" not in {k.lower() for k in msg}
        html = msg.get_body(("html",)).get_content()
        assert "&lt;!channel&gt; &lt;@U123&gt; @here <mark>FlameWatch</mark> is &lt;script&gt;" in html
        assert "<script>" not in html and "javascript:" not in html
        assert f'<a href="https://news.ycombinator.com/item?id={hostile}">comment</a>' in html
        plain = msg.get_body(("plain",)).get_content()
        assert "<!channel> <@U123> @here »FlameWatch« is <script>alert(1)</script> *bold* _it_ &amp; »flamewatch«…" \
            in plain

        (delivery,) = receiver.deliveries
        data = delivery.body["data"]
        assert data["key"] == f"mention:fw:{hostile}" and data["rule"] == "mention" and data["level"] == "fw"
        assert data["subject"]["id"] == hostile and data["story"]["id"] == thread
        snippet, marks = data["wording"]["snippet"], data["wording"]["marks"]
        assert [snippet[s:e] for s, e in marks] == ["FlameWatch", "flamewatch"]
        assert data["subject"]["hn_url"].endswith(f"item?id={hostile}")


def test_console_marks_with_guillemets_and_drops_controls() -> None:
    event = make_event(title="T")
    from dataclasses import replace

    event = replace(event, wording=replace(event.wording, snippet="say \x1b[31mrust\x1b[0m now", marks=((9, 13),)))
    line = ConsoleNotifier.format(event)
    assert "\x1b" not in line and "»rust«" in line


def test_a_slack_digest_has_one_section_per_story_within_limits() -> None:
    from dataclasses import replace

    from flamewatch.notifiers.slack.format import digest_messages

    hostile = "<&>" * 200
    events = [make_event(story_id=1, title="One", level=level) for level in (100, 250)]
    events += [replace(make_event(story_id=2, title="<&>" * 200, url="https://a.example/" + "x" * 1400, level=n),
                       wording=replace(make_event().wording, snippet=hostile, marks=((0, 3),))) for n in range(8)]
    (message,) = digest_messages(events)
    sections = [b for b in message.blocks if b["type"] == "section"]
    assert len(sections) == 1 + 2  # story 1; story 2's eight events in two sections of at most six
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert sections[0]["text"]["text"].count("*<") == 1  # story 1's title once, both its events under it


def test_alertmanager_bodies_carry_the_snippet_as_text() -> None:
    from dataclasses import replace

    from flamewatch.notifiers.webhook.payload import alertmanager_document

    event = make_event(story_id=3)
    event = replace(event, wording=replace(event.wording, snippet="<b>rust</b> is nice", marks=((3, 7),)))
    (alert,) = alertmanager_document([event], "r", "g")["alerts"]
    assert alert["annotations"]["snippet"] == "<b>»rust«</b> is nice"  # JSON text: escaped by the encoder
    (plain,) = alertmanager_document([make_event(story_id=4)], "r", "g")["alerts"]
    assert "snippet" not in plain["annotations"]
