"""flamewatch.text: the one place untrusted HN text is cleaned, and every channel using it."""

from __future__ import annotations

import pytest

from flamewatch.text import clip, escape_html, excerpt, flatten, inline, printable, safe_link

#: A right-to-left override, a zero-width space, a line separator, CR/LF and an escape sequence.
NASTY = "Show HN: e\u202egnp.exe\u200b <!channel>\u2028next\r\nBcc: x@example.com \x1b[2J"


def test_flatten_is_one_line_without_controls_or_format_characters() -> None:
    assert flatten(NASTY) == "Show HN: egnp.exe <!channel> next Bcc: x@example.com [2J"
    assert inline(" a\nb ") == " a b "  # a piece keeps its spaces
    assert clip("one two three", 8) == "one two…" and clip("short", 8) == "short"


def test_printable_leaves_nothing_a_terminal_would_act_on() -> None:
    shown = printable(NASTY)
    assert "\x1b" not in shown and "\u202e" not in shown and "\r" not in shown and "\n" not in shown
    assert printable("x" * 100, 10) == "x" * 10


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>", "//example.com/x", "ftp://example.com",
                                 "https://", "", None, "   "])
def test_safe_link_refuses_what_must_not_become_a_link(url: str | None) -> None:
    assert safe_link(url) is None


def test_safe_link_encodes_what_could_break_a_line_or_hide() -> None:
    assert safe_link(" https://example.com/a b\r\nc\u202e ") == "https://example.com/a%20b%0D%0Ac%E2%80%AE"
    assert safe_link("https://example.com/?q=1&r=2") == "https://example.com/?q=1&r=2"
    assert safe_link("https://example.com/" + "x" * 5000) is None


def test_escape_html_and_excerpt() -> None:
    assert escape_html("<b>\"x\" & 'y'\u202e</b>") == "&lt;b&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;/b&gt;"
    assert excerpt("<p>Hello &amp; <i>bye</i><p>Second\u202e paragraph") == "Hello & bye\n\nSecond paragraph"


def test_every_channel_shows_the_same_cleaned_title() -> None:
    """Slack, email, the console and the page all clean with flamewatch.text (then escape their own way)."""
    from flamewatch.http.page import _e
    from flamewatch.notifiers.email.compose import header_text
    from flamewatch.notifiers.slack.format import escape
    from flamewatch.notifiers.slack.format import flatten as slack_flatten

    clean = flatten(NASTY)
    assert slack_flatten is flatten
    assert escape(NASTY) == clean.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert header_text(NASTY) == clean
    assert printable(NASTY) == clean
    assert "\u202e" not in _e(NASTY) and "\u200b" not in _e(NASTY)
