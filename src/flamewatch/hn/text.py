"""HN's comment HTML turned into plain text, once, for every channel to escape its own way.

HN sends comment and story text as a small HTML dialect: ``<p>`` between paragraphs, ``<a href>``,
``<i>``, ``<pre><code>`` and entities. Notifiers need plain text (then escaped for Slack mrkdwn, HTML or
mail), so tags are dropped, paragraphs become blank lines, entities are decoded, and control and bidi
characters are removed so an excerpt cannot reorder or hide what is around it.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["excerpt", "html_to_text"]

_PARAGRAPH = re.compile(r"<\s*/?\s*p\s*/?\s*>", re.IGNORECASE)
_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\n{3,}")
_RUNS_OF_SPACES = re.compile(" {2,}")
_LINE_EDGES = re.compile(r"[^\S\n]*\n[^\S\n]*")


class _Invisible(dict[int, int | None]):
    """``str.translate`` table: code points of category C (but newline) map to None, others to themselves.

    Filled as characters are first seen, so the table holds only what texts contained and every later
    lookup is a dict hit in C (a ``unicodedata`` call per character in Python cost ~0.5 us each).
    """

    def __missing__(self, point: int) -> int | None:
        value = None if point != 10 and unicodedata.category(chr(point))[0] == "C" else point
        if len(self) < 65_536:  # a hostile text of every code point must not grow it without end
            self[point] = value
        return value


_INVISIBLE = _Invisible()


def html_to_text(text: str) -> str:
    """Plain text from HN's HTML: tags dropped, paragraphs as blank lines, entities decoded, no controls."""
    text = _PARAGRAPH.sub("\n\n", text)
    text = _BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    # Cc (controls, but keep newlines: tabs go too), Cf (format: bidi overrides, zero-width), Co/Cs/Cn:
    # nothing to show. Every step below is a pass in C; a test before a substitution skips the pass
    # that would find nothing (most comments have no double space and no space at a line's edge).
    text = text.translate(_INVISIBLE)
    if "  " in text:
        text = _RUNS_OF_SPACES.sub(" ", text)
    # In ASCII text the only blanks left are single spaces and newlines; other Unicode spaces (no-break,
    # em...) must go from the edges of lines too.
    text = text.replace(" \n", "\n").replace("\n ", "\n") if text.isascii() else _LINE_EDGES.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANKS.sub("\n\n", text)
    return text.strip()


def excerpt(text: str | None, limit: int = 300) -> str:
    """The first ``limit`` characters of :func:`html_to_text`, cut at a word with an ellipsis."""
    if not text:
        return ""
    plain = html_to_text(text)
    if len(plain) <= limit:
        return plain
    cut = plain[:limit].rsplit(" ", 1)[0] if " " in plain[:limit] else plain[:limit]
    return cut.rstrip() + "…"
