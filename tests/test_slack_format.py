"""Slack message building (flamewatch.notifiers.slack.format): escaping, links, limits, no I/O."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.slack_api import unescape
from flamewatch.notifiers.slack.format import (
    MAX_BLOCKS,
    clip,
    digest_messages,
    escape,
    event_message,
    flatten,
    safe_url,
)
from flamewatch import testing

#: Events with every optional number known (velocity, growth, rank), so every part of a message is built.
make_event = partial(testing.make_event, comments=512, level=500, velocity=85.4, growth=34, rank=3)


def test_escape_flattens_and_neutralises() -> None:
    assert escape("a\r\nb\u2028c\x1bd\te") == "a b c d e"
    assert escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"
    assert flatten("  two\n\nlines  ") == "two lines"


def test_safe_url_only_allows_http_links() -> None:
    assert safe_url("https://a.example/x?y=1&z=2") == "https://a.example/x?y=1&amp;z=2"
    assert safe_url("http://a.example/a b|c") == "http://a.example/a%20b%7Cc"
    for bad in ("javascript:alert(1)", "ftp://a.example/", "https://", "//a.example/x", None, ""):
        assert safe_url(bad) is None
    assert safe_url("https://a.example/" + "x" * 5000) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab &<>\n\u00e9"), max_size=60), st.integers(min_value=1, max_value=40))
def test_clip_never_cuts_an_entity(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert len(clipped) <= max(limit, 1)
    # Every "&" starts a whole entity, and nothing raw is left.
    assert re.fullmatch(r"(?:[^&<>]|&amp;|&lt;|&gt;)*", clipped)
    # What is shown is the start of the (flattened) title, plus an ellipsis when cut.
    shown = unescape(clipped)
    assert flatten(text).startswith(shown.removesuffix("…").rstrip())


def test_digest_respects_the_text_budget_with_long_entries() -> None:
    events = [make_event(story_id=i, title="<&>" * 200, url="https://a.example/" + "x" * 1400) for i in range(30)]
    messages = digest_messages(events)
    assert len(messages) > 1
    for message in messages:
        assert len(message.blocks) <= MAX_BLOCKS
        assert sum(len(b.get("text", {}).get("text", "")) for b in message.blocks) < 12000


def test_single_event_message_stays_within_limits() -> None:
    message = event_message(make_event(title="x" * 10000, by="y" * 10000))
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message.blocks)
    assert len(message.text) < 4000


def test_every_mrkdwn_object_is_verbatim_so_slack_adds_no_links_or_mentions() -> None:
    events = [make_event(title="Log in at evil.example/reset #general @here"), make_event(story_id=2)]
    messages = [event_message(events[0]), event_message(events[0], live=True), *digest_messages(events)]

    def text_objects(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node] if node.get("type") == "mrkdwn" else []
            return found + [o for v in node.values() for o in text_objects(v)]
        if isinstance(node, list):
            return [o for v in node for o in text_objects(v)]
        return []

    objects = [o for m in messages for o in text_objects(m.blocks)]
    assert objects and all(o.get("verbatim") is True for o in objects)
