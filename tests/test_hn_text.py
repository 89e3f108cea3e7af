"""HN's HTML to plain text: the passes in C give what a character-by-character filter gives (issue 23)."""

from __future__ import annotations

import html
import random
import re
import unicodedata

from flamewatch.hn.text import excerpt, html_to_text


def by_character(text: str) -> str:
    """The plain reading of the rules: a test of every character's Unicode category, line by line."""
    text = re.sub(r"<\s*/?\s*p\s*/?\s*>", "\n\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<\s*br\s*/?\s*>", "\n", text, flags=re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]*>", "", text))
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


PIECES = ["a", "b", " ", "  ", "\n", "\n\n\n", "\t", "\r", "\x0b", "\x0c", "\x00", "\x7f", "\x85", "<p>", "</p>",
          "<br>", "<i>x</i>", "&amp;", "&nbsp;", "&#10;", "&#x202e;", "&lt;b&gt;", "\u00a0", "\u2003", "\u3000",
          "\u2028", "\u200b", "\u202e", "\ufeff", "é", "ï", "\U0001f600", "\ue000", "\u0378", "\U000e0001"]


def test_the_fast_passes_give_what_the_character_filter_gives() -> None:
    rng = random.Random(23)
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
        assert html_to_text(text) == by_character(text), repr(text)


def test_controls_and_bidi_go_and_paragraphs_stay() -> None:
    assert html_to_text("<p>one\u202e two\t\tthree\x00</p><p> four&nbsp;\n five") == "one twothree\n\nfour\nfive"
    assert html_to_text("caf\u00e9 \u200bok") == "caf\u00e9 ok"
    assert excerpt("<p>" + "word " * 100, limit=20) == "word word word word…"
