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
_SPACES = re.compile(r"[ \t\f\v]+")


def html_to_text(text: str) -> str:
    """Plain text from HN's HTML: tags dropped, paragraphs as blank lines, entities decoded, no controls."""
    text = _PARAGRAPH.sub("\n\n", text)
    text = _BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    # Cc (controls, but keep newlines), Cf (format: bidi overrides, zero-width), Co/Cs/Cn: nothing to show.
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    text = _SPACES.sub(" ", text)
    return _BLANKS.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


def excerpt(text: str | None, limit: int = 300) -> str:
    """The first ``limit`` characters of :func:`html_to_text`, cut at a word with an ellipsis."""
    if not text:
        return ""
    plain = html_to_text(text)
    if len(plain) <= limit:
        return plain
    cut = plain[:limit].rsplit(" ", 1)[0] if " " in plain[:limit] else plain[:limit]
    return cut.rstrip() + "…"
