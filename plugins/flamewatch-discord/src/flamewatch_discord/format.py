"""Discord webhook messages (embeds) built from flamewatch events, within Discord's limits.

Text from Hacker News is untrusted. In Discord markdown, ``*_~`|>#-[]()\\`` and a few more shape the
text and ``[label](url)`` makes a disguised link, so every HN string goes through :func:`escape` (one
line, control and bidi characters dropped, markdown characters backslash-escaped). Mentions
(``@everyone``, ``<@id>``) are made harmless by the payload's ``allowed_mentions: {"parse": []}``, which
this module always sets, and by keeping HN text out of ``content``, the only field that pings.

Limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits): content 2,000
characters; 10 embeds a message; an embed's title 256, description 4,096, footer 2,048; 6,000 characters
across all embeds of a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flamewatch import Event
from flamewatch.text import flatten, inline, render_marked, safe_link

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000
URL_LIMIT = 2000
ELLIPSIS = "…"

#: Characters Discord markdown gives a meaning to (and the backslash itself).
_MARKDOWN = set("\\*_~`|>#-[]()<@")
#: Embed colour per rule (a hint only; other rules get the default).
_COLOURS = {"comments": 0xFF6600, "points": 0x2E86DE, "velocity": 0xE74C3C, "keyword": 0x8E44AD}
_DEFAULT_COLOUR = 0x95A5A6

#: The mentions field of every payload: nothing in a message may ping anyone.
NO_MENTIONS: dict[str, Any] = {"parse": []}


def escape(text: str, limit: int | None = None, *, keep_ends: bool = False) -> str:
    """``text`` on one line, clipped to ``limit`` characters (before escaping), markdown made literal."""
    flat = inline(text) if keep_ends else flatten(text)
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + ELLIPSIS
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in flat)


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL Discord can link safely (brackets and quotes encoded)."""
    link = safe_link(url)  # flamewatch's check: http(s) with a host, whitespace and controls encoded
    if link is None:
        return None
    encoded = "".join(f"%{ord(ch):02X}" if ch in "()<>[]\"'" else ch for ch in link)
    return encoded if len(encoded) <= URL_LIMIT else None


def link(url: str | None, label: str) -> str:
    """A markdown link to ``url`` labelled ``label`` (already escaped); just the label if ``url`` is unsafe."""
    target = safe_url(url)
    return f"[{label}]({target})" if target else label


def _facts(event: Event) -> str:
    story = event.story
    if not event.about_story:  # HN itself (a source gone stale): nothing counted, no discussion
        return ""
    parts = [f"{story.comments:,}{'+' if story.partial else ''} comments", f"{story.score:,} points"]
    if event.velocity is not None:
        parts.append(f"{event.velocity:,.0f}/h")
    if story.by:
        parts.append(f"by {escape(story.by, 40)}")
    return " · ".join(parts) + " · " + link(story.hn_url, "discussion")


def _quote(event: Event) -> str:
    wording = event.wording
    if wording.snippet:
        marked = render_marked(wording.snippet[:1000], wording.marks, lambda t: escape(t, keep_ends=True), "**", "**")
        return "> " + marked
    if event.subject is not None and event.subject.excerpt:
        return "> " + escape(event.subject.excerpt, 1000) + "\n" + link(event.subject.hn_url, "the comment")
    return ""


def event_embed(event: Event) -> dict[str, Any]:
    """The embed about ``event``: the story's title linked, what happened, the facts, a quote if any."""
    story = event.story
    wording = event.wording
    summary = f"**{escape(wording.summary, 160)}**" + (f" {escape(wording.detail, 160)}" if wording.detail else "")
    description = "\n".join(part for part in (summary, _facts(event), _quote(event)) if part)
    embed: dict[str, Any] = {
        "title": escape(story.title or f"Story {story.id}", MAX_TITLE - 56),  # escaping at most doubles it
        "description": description[:MAX_DESCRIPTION],
        "color": _COLOURS.get(event.rule, _DEFAULT_COLOUR),
        "footer": {"text": f"flamewatch · {escape(event.key, 200)}"},
        "timestamp": event.at.isoformat(),
    }
    if target := safe_url(story.link) or safe_url(story.hn_url):
        embed["url"] = target
    return embed


def embed_size(embed: dict[str, Any]) -> int:
    """The characters of ``embed`` that count toward Discord's 6,000 (title, description, footer...)."""
    fields = embed.get("fields") or []
    return (len(embed.get("title", "")) + len(embed.get("description", ""))
            + len((embed.get("footer") or {}).get("text", ""))
            + sum(len(f.get("name", "")) + len(f.get("value", "")) for f in fields))


def message(embeds: list[dict[str, Any]], *, content: str = "", username: str | None = None) -> dict[str, Any]:
    """A webhook payload: ``embeds`` and our own ``content``, pinging nobody."""
    payload: dict[str, Any] = {"embeds": embeds, "allowed_mentions": NO_MENTIONS}
    if content:
        payload["content"] = content[:MAX_CONTENT]
    if username:
        payload["username"] = username
    return payload


def digest_payloads(events: Sequence[Event], username: str | None = None) -> list[dict[str, Any]]:
    """The digest of ``events`` as payloads of at most 10 embeds and 6,000 embed characters each."""
    groups: list[list[dict[str, Any]]] = [[]]
    used = 0
    for event in events:
        embed = event_embed(event)
        size = embed_size(embed)
        if groups[-1] and (len(groups[-1]) == MAX_EMBEDS or used + size > MAX_EMBED_TOTAL):
            groups.append([])
            used = 0
        groups[-1].append(embed)
        used += size
    total = len(groups)
    return [message(group, content=f"flamewatch digest: {len(events)} events"
                    + (f" (part {n} of {total})" if total > 1 else ""), username=username)
            for n, group in enumerate(groups, 1)]
