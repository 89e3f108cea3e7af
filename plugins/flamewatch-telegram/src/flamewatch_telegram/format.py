"""Telegram messages in the Bot API's HTML parse mode, built from flamewatch events.

Titles, authors, URLs and comment excerpts come from Hacker News and are untrusted. In HTML mode ``<``,
``>``, ``&`` (and ``"`` inside an attribute) are markup: every HN string goes through :func:`escape`,
which first cleans it with flamewatch's shared text module (:func:`flamewatch.text.flatten`: one line,
no control or bidi characters), and every URL through :func:`safe_url` (on
:func:`flamewatch.text.safe_link`) before it becomes an ``href``. The tags are ours. Telegram refuses a
message over 4,096 characters, so titles and quotes are clipped and a digest is split into several messages.

This module does no I/O.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from flamewatch import Event
from flamewatch.text import flatten, inline, render_marked, safe_link

#: Telegram's limit on a message's text (counted after entities are parsed; we count the HTML, stricter).
MAX_MESSAGE = 4096
TITLE_LIMIT = 300
EXCERPT_LIMIT = 1000
URL_LIMIT = 1500
ELLIPSIS = "…"

#: Unicode for the emoji hints rules give (Slack shortcodes); anything else shows a bell.
_EMOJI = {"speech_balloon": "💬", "arrow_up": "⬆️", "fire": "🔥", "mag": "🔍", "bell": "🔔",
          "trophy": "🏆", "leftwards_arrow_with_hook": "↩️", "eyes": "👀", "raising_hand": "🙋"}


def escape(text: str, limit: int | None = None) -> str:
    """``text`` flattened, clipped to ``limit`` characters (before escaping) and made inert in HTML."""
    flat = flatten(text)
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + ELLIPSIS
    return html.escape(flat, quote=True)


def _escape_piece(text: str) -> str:
    """:func:`escape` keeping the spaces at the ends (a piece of a snippet sits next to a mark)."""
    return html.escape(inline(text), quote=True)


def safe_url(url: str | None) -> str | None:
    """``url`` ready for an ``href="..."``, or None when it must not become a link (not http(s), too long)."""
    link = safe_link(url)  # flamewatch's check: http(s) with a host, whitespace and controls encoded
    if link is None:
        return None
    encoded = "".join(f"%{ord(ch):02X}" if ch in "\"'<>" else ch for ch in link)
    return html.escape(encoded, quote=True) if len(encoded) <= URL_LIMIT else None


def link(url: str | None, label: str) -> str:
    """An ``<a>`` to ``url`` labelled ``label`` (already escaped), or just the label when the URL is unsafe."""
    target = safe_url(url)
    return f'<a href="{target}">{label}</a>' if target else label


def _summary(event: Event) -> str:
    wording = event.wording
    phrase = f"{_EMOJI.get(wording.emoji, '🔔')} <b>{escape(wording.summary, 160)}</b>"
    return f"{phrase} {escape(wording.detail, 160)}" if wording.detail else phrase


def _facts(event: Event) -> str:
    story = event.story
    if not event.about_story:  # HN itself (a source gone stale): nothing counted, no discussion
        return ""
    comments = f"{story.comments:,}" + ("+" if story.partial else "")
    parts = [f"{comments} comments", f"{story.score:,} points"]
    if event.velocity is not None:
        parts.append(f"{event.velocity:,.0f}/h")
    if story.by:
        parts.append(f"by {escape(story.by, 40)}")
    return " · ".join(parts) + " · " + link(story.hn_url, "discussion")


def _quote(event: Event) -> str:
    wording = event.wording
    if wording.snippet:
        marked = render_marked(wording.snippet[:EXCERPT_LIMIT], wording.marks, _escape_piece, "<b>", "</b>")
        return f"<blockquote>{marked}</blockquote>"
    if event.subject is not None and event.subject.excerpt:
        by = f"{escape(event.subject.by, 40)}: " if event.subject.by else ""
        return f"<blockquote>{by}{escape(event.subject.excerpt, EXCERPT_LIMIT)}</blockquote>"
    return ""


def title_link(event: Event) -> str:
    """The story's title, escaped and clipped, linked to the story (or its discussion when unsafe)."""
    story = event.story
    title = escape(story.title or f"Story {story.id}", TITLE_LIMIT)
    return link(story.link if safe_url(story.link) else story.hn_url, title)


def event_message(event: Event) -> str:
    """The HTML text of the message about ``event`` (always within :data:`MAX_MESSAGE`)."""
    lines = [part for part in (_summary(event), title_link(event), _facts(event)) if part]
    if quote := _quote(event):
        lines.append(quote)
    if event.subject is not None:
        lines.append(link(event.subject.hn_url, "the comment"))
    return "\n".join(lines)


def digest_messages(events: Sequence[Event]) -> list[str]:
    """The digest of ``events`` as messages of at most :data:`MAX_MESSAGE` characters each."""
    lines = [f"• {title_link(e)}: {escape(e.headline(), 200)}"
             + (f" ({link(e.story.hn_url, 'discussion')})" if e.about_story else "") for e in events]
    chunks: list[list[str]] = [[]]
    used = 0
    for line in lines:
        if chunks[-1] and used + len(line) + 1 > MAX_MESSAGE - 100:  # 100: room for the header line
            chunks.append([])
            used = 0
        chunks[-1].append(line)
        used += len(line) + 1
    total = len(chunks)
    messages = []
    for number, chunk in enumerate(chunks, 1):
        part = f" (part {number} of {total})" if total > 1 else ""
        messages.append(f"🔔 <b>flamewatch digest: {len(events)} events{part}</b>\n" + "\n".join(chunk))
    return messages
