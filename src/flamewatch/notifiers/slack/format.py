"""Building Slack messages (Block Kit plus a plain ``text`` fallback) from flamewatch events.

Everything that comes from Hacker News (titles, authors, URLs) is untrusted. In Slack's mrkdwn, ``&``,
``<`` and ``>`` are control characters: an unescaped ``<!channel>`` in a title would ping a whole
workspace and ``<https://evil|innocent>`` would disguise a link. So every HN string goes through
:func:`escape` (or :func:`clip`, which escapes and shortens), and every URL through :func:`safe_url`
before it is put inside ``<url|label>``. Our own fixed wording is written already escaped.

This module does no I/O, so it is easy to test on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flamewatch import Event
from flamewatch.text import flatten, inline, render_marked, safe_link

# Slack's documented limits (https://docs.slack.dev/reference/block-kit/blocks): 50 blocks a message,
# 150 characters of plain_text in a header, 3,000 in a section text, 2,000 in a section field.
MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150

# Our own, tighter budgets, chosen so that no section comes near 3,000 characters.
TITLE_LIMIT = 250  # escaped characters of a title (HN titles are at most 80 characters)
URL_LIMIT = 1500  # longer story URLs are not linked (the HN discussion link is used instead)
SMALL_LIMIT = 80  # escaped characters of an author, a domain, a keyword
PHRASE_LIMIT = 160  # escaped characters of a rule's summary or detail (its keyword, say)
EXCERPT_LIMIT = 700  # escaped characters of a reply's or mention's text in its quote block
MESSAGE_TEXT_BUDGET = 9000  # block text per digest message, well under Slack's ~12k
DIGEST_EVENTS_PER_MESSAGE = 40  # plus a header and a context block: 42 blocks, under 50

ELLIPSIS = "…"

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class SlackMessage:
    """One message ready to post: the notification ``text`` fallback and the Block Kit ``blocks``."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    #: Message metadata (``chat.postMessage``'s ``metadata``): the event keys, so a receiver reading the
    #: channel (a bot, an export) can drop a message delivered twice (at-least-once delivery).
    metadata: dict[str, Any] | None = None


#: Event type of the metadata on a message about one event (payload ``{"key": ...}``).
EVENT_METADATA_TYPE = "flamewatch_event"
#: Event type of the metadata on a digest message (payload ``{"keys": [...]}``, that part's events).
DIGEST_METADATA_TYPE = "flamewatch_digest"


# --- escaping -------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """``text`` flattened to one line and made inert in mrkdwn (``&``, ``<``, ``>`` as entities)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in flatten(text))


def clip(text: str, limit: int) -> str:
    """:func:`escape` of ``text``, shortened to at most ``limit`` characters with a trailing ``…``.

    The cut is made in the raw text, one character at a time while measuring the escaped length, so it
    can never split an entity such as ``&amp;`` in half.
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    budget = limit - len(ELLIPSIS)
    out: list[str] = []
    used = 0
    for ch in flatten(text):
        piece = _ESCAPES.get(ch, ch)
        if used + len(piece) > budget:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def plain_clip(text: str, limit: int) -> str:
    """``text`` flattened and shortened for a ``plain_text`` object (no escaping there: Slack shows it as is)."""
    flat = flatten(text)
    if len(flat) <= limit:
        return flat
    return flat[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def safe_url(url: str | None) -> str | None:
    """``url`` ready to sit inside ``<url|label>``, or None when it must not become a link.

    :func:`flamewatch.text.safe_link` decides (absolute http(s) with a host; whitespace and controls
    percent-encoded); then the characters that would end or split a Slack link (``|``, ``<``, ``>``) are
    percent-encoded too, and ``&`` is written as ``&amp;``, which Slack decodes back, so query strings work.
    """
    safe = safe_link(url)
    if safe is None:
        return None
    result = "".join("&amp;" if ch == "&" else f"%{ord(ch):02X}" if ch in "|<>" else ch for ch in safe)
    # Checked after encoding, which can make a URL several times longer.
    return result if len(result) <= URL_LIMIT else None


def link(url: str | None, label: str) -> str:
    """A mrkdwn link to ``url`` labelled ``label`` (already escaped), or just the label if ``url`` is unsafe."""
    target = safe_url(url)
    return f"<{target}|{label}>" if target else label


# Every mrkdwn object is sent with "verbatim": true: otherwise Slack itself would turn plain text from HN
# into links ("evil.example/login"), link-ify "#channel" names and parse some mentions, after our escaping.

# --- pieces of a message ----------------------------------------------------------------------------


def what_happened(event: Event) -> str:
    """A short mrkdwn phrase from the event's own wording, e.g. ``:speech_balloon: *Reached 500 comments*``."""
    wording = event.wording
    emoji = wording.emoji if _EMOJI.fullmatch(wording.emoji) else "bell"
    phrase = f":{emoji}: *{clip(wording.summary, PHRASE_LIMIT)}*"
    return f"{phrase} {clip(wording.detail, PHRASE_LIMIT)}" if wording.detail else phrase


#: What a Slack emoji shortcode may contain; anything else in a rule's hint falls back to :bell:.
_EMOJI = re.compile(r"[a-z0-9_+\-]{1,64}")


def snippet_line(event: Event) -> str:
    """The event's snippet (a mention) as escaped mrkdwn in quotes, the matched words bold; "" if none."""
    wording = event.wording
    if not wording.snippet:
        return ""
    # Each piece is escaped on its own; the bold stars are ours. Clipped after rendering would risk
    # cutting an entity, so the snippet is bounded by the rule (a short window) and by escape's flattening.
    quote = f"“{render_marked(wording.snippet[:PHRASE_LIMIT], wording.marks, _escape_piece, '*', '*')}”"
    if event.subject is not None:  # the mentioning comment itself, not only its thread
        # The label is ours, not the item's: HN's "type" is untrusted text like any other field.
        quote += f" · {link(event.subject.hn_url, 'comment' if event.subject.type == 'comment' else 'item')}"
    return quote


def _escape_piece(text: str) -> str:
    """:func:`escape` without trimming: a piece of a snippet keeps the spaces next to its marks."""
    return "".join(_ESCAPES.get(ch, ch) for ch in inline(text))


def _comments(event: Event) -> str:
    count = f"{event.story.comments:,}"
    # A partial count means part of the tree could not be fetched: the real number is higher.
    return f"{count}+" if event.story.partial else count


def _title_link(event: Event) -> str:
    title = clip(event.story.title or f"Story {event.story.id}", TITLE_LIMIT)
    # Story URLs that cannot be linked safely fall back to the discussion page.
    target = event.story.link if safe_url(event.story.link) else event.story.hn_url
    return link(target, title)


def _hn_link(event: Event) -> str:
    if not event.about_story:  # a source gone stale: no thread, no count (the title already links HN)
        return ""
    return link(event.story.hn_url, f"{_comments(event)} comments on Hacker News")


def _fields(event: Event) -> list[dict[str, Any]]:
    story = event.story
    if not event.about_story:
        return []
    pairs = [("Comments", _comments(event)), ("Points", f"{story.score:,}")]
    if event.velocity is not None:
        pairs.append(("Velocity", f"{event.velocity:,.0f} comments/hour"))
    if event.growth is not None:
        pairs.append(("Growth", f"{event.growth:+,} since last check"))
    if story.lists:
        ranks = ", ".join(f"#{rank} on {clip(name, SMALL_LIMIT)}" for name, rank in story.lists.items())
        pairs.append(("Rank", ranks))
    elif story.rank is not None:
        pairs.append(("Rank", f"#{story.rank} on {clip(event.source_list, SMALL_LIMIT)}"))
    return [{"type": "mrkdwn", "verbatim": True, "text": f"*{name}*\n{value}"} for name, value in pairs]


def _context(event: Event, *, live: bool) -> dict[str, Any]:
    story = event.story
    bits: list[str] = []
    if story.by:
        bits.append(f"by {clip(story.by, SMALL_LIMIT)}")
    domain = story.domain
    if domain:
        bits.append(clip(domain, SMALL_LIMIT))
    if story.time:
        posted = datetime.fromtimestamp(story.time, UTC)
        bits.append(f"posted {posted:%Y-%m-%d %H:%M} UTC")
    stamp = f"{event.at.astimezone(UTC):%H:%M} UTC"
    bits.append(f"flamewatch · updated {stamp}" if live else f"flamewatch · {stamp}")
    return {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": " · ".join(bits)}]}


def quote(event: Event) -> str | None:
    """The subject of a reply or mention as a mrkdwn quote: who wrote it, what (escaped, one line), links."""
    subject = event.subject
    if subject is None:
        return None
    author = clip(subject.by or "someone", SMALL_LIMIT)
    text = clip(subject.excerpt, EXCERPT_LIMIT) if subject.excerpt else "_(no text)_"
    # The excerpt is flattened to one line by clip(), so the whole of it stays inside the quote.
    links = f"{link(subject.hn_url, 'reply')} · {link(event.story.hn_url, 'thread')}"
    return f"*{author}* wrote:\n>{text}\n{links}"


def _quote_blocks(event: Event) -> list[dict[str, Any]]:
    text = quote(event)
    return [] if text is None else [{"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": text}}]


# --- whole messages -----------------------------------------------------------------------------------


def event_message(event: Event, *, live: bool = False) -> SlackMessage:
    """The message for one event: linked title, what happened, the numbers, the HN link, a context line.

    ``live`` marks a message that is edited in place as the thread grows (the context says "updated").
    """
    quote = snippet_line(event)
    summary = f"*{_title_link(event)}*\n{what_happened(event)}\n{quote + chr(10) if quote else ''}{_hn_link(event)}"
    fields = _fields(event)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": summary.rstrip()}},
        *_quote_blocks(event),
        *([{"type": "section", "fields": fields}] if fields else []),
        _context(event, live=live),
    ]
    fallback = f"{clip(event.story.title, TITLE_LIMIT)} {escape(event.headline())} {event.story.hn_url}"
    metadata = {"event_type": EVENT_METADATA_TYPE, "event_payload": {"key": event.key}}
    return SlackMessage(text=fallback, blocks=blocks, metadata=metadata)


def _digest_line(event: Event, *, quotes: bool = True) -> str:
    if not event.about_story:  # a source gone stale: what happened, nothing to count
        return f"*{_title_link(event)}*\n{what_happened(event)}"
    extras = [f"{event.story.score:,} points"]
    if event.velocity is not None:
        extras.append(f"{event.velocity:,.0f}/hour")
    if event.growth is not None:
        extras.append(f"{event.growth:+,}")
    quote = _quote(event) if quotes else ""
    line = f"*{_title_link(event)}*\n{what_happened(event)} · {_hn_link(event)} · {' · '.join(extras)}"
    return f"{line}\n{quote}" if quote else line


def _quote(event: Event) -> str:
    """What a digest line quotes: a mention's marked snippet, or a reply's author and text (escaped)."""
    quote = snippet_line(event)
    if not quote and event.subject is not None:
        author = clip(event.subject.by or "someone", SMALL_LIMIT)
        quote = f">{author}: {clip(event.subject.excerpt, PHRASE_LIMIT)} · {link(event.subject.hn_url, 'reply')}"
    return quote


#: A digest section longer than this drops its quotes (Slack refuses a section text over 3,000).
SECTION_LIMIT = 2900


#: The most events of one story shown in one digest section (a section holds at most 3,000 characters).
EVENTS_PER_SECTION = 6


def _story_sections(events: Sequence[Event]) -> list[tuple[str, list[str]]]:
    """One section per story (several for a story with many events), stories in first-seen order: each
    section's text and the keys of the events it shows."""
    by_story: dict[int | str, list[Event]] = {}
    for event in events:  # an event about no story is a section of its own, not one of a "story 0"
        by_story.setdefault(event.story.id if event.about_story else event.key, []).append(event)
    sections = []
    for story_events in by_story.values():
        for i in range(0, len(story_events), EVENTS_PER_SECTION):
            part = story_events[i : i + EVENTS_PER_SECTION]
            text = _section(part, quotes=True)
            text = text if len(text) <= SECTION_LIMIT else _section(part, quotes=False)
            sections.append((text, [event.key for event in part]))
    return sections


def _section(events: Sequence[Event], *, quotes: bool) -> str:
    """One story's section: its title once, then what happened for each event (and its quote)."""
    if len(events) == 1:
        return _digest_line(events[0], quotes=quotes)
    latest = events[-1]
    lines = [f"*{_title_link(latest)}*"]
    for event in events:
        quote = _quote(event) if quotes else ""
        lines.append(what_happened(event) + (f"\n{quote}" if quote else ""))
    lines.append(f"{_hn_link(latest)} · {latest.story.score:,} points")
    return "\n".join(lines)


def digest_messages(events: Sequence[Event]) -> list[SlackMessage]:
    """The digest of ``events``: one section per story, split into as many messages as the limits need.

    Each message has a header, at most :data:`DIGEST_EVENTS_PER_MESSAGE` event sections and a context
    line, and keeps its block text under :data:`MESSAGE_TEXT_BUDGET` characters.
    """
    chunks: list[list[str]] = []
    chunk_keys: list[list[str]] = []
    current: list[str] = []
    keys: list[str] = []
    used = 0
    for line, section_keys in _story_sections(events):
        if current and (len(current) >= DIGEST_EVENTS_PER_MESSAGE or used + len(line) > MESSAGE_TEXT_BUDGET):
            chunks.append(current)
            chunk_keys.append(keys)
            current, keys, used = [], [], 0
        current.append(line)
        keys.extend(section_keys)
        used += len(line)
    if current:
        chunks.append(current)
        chunk_keys.append(keys)

    total = len(events)
    messages: list[SlackMessage] = []
    for number, lines in enumerate(chunks, start=1):
        part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
        title = f"Flamewatch digest: {total} event{'s' if total != 1 else ''}{part}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": plain_clip(title, MAX_HEADER_TEXT)}}
        ]
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": line}} for line in lines]
        now = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        stamp = {"type": "mrkdwn", "verbatim": True, "text": f"flamewatch · {now}"}
        blocks.append({"type": "context", "elements": [stamp]})
        metadata = {"event_type": DIGEST_METADATA_TYPE, "event_payload": {"keys": chunk_keys[number - 1]}}
        messages.append(SlackMessage(text=escape(title), blocks=blocks, metadata=metadata))
    return messages
