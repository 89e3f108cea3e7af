"""Atom (RFC 4287) and JSON Feed 1.1 documents from a feed's events. No I/O.

Entry ids are stable (``tag:`` URIs built from the event's key), so a reader never shows an event
twice, even when a retried delivery stores it again. HN text is untrusted: it is put on one line and
stripped of control and format characters (XML 1.0 cannot even carry most control characters), then
escaped by the XML writer or JSON encoder; only http(s) story URLs become links, else the discussion.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from flamewatch import Event
from flamewatch.text import flatten, safe_link

ATOM_NS = "http://www.w3.org/2005/Atom"
HN_HOME = "https://news.ycombinator.com/"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"


def clean(text: str) -> str:
    """``text`` on one line, without control or format (bidi, zero-width) characters, nor surrogates (which
    XML cannot carry): flamewatch's shared :func:`~flamewatch.text.flatten`, then that."""
    return "".join(ch for ch in flatten(text) if not 0xD800 <= ord(ch) <= 0xDFFF)


def entry_id(event: Event) -> str:
    """The event's stable id: a ``tag:`` URI of its key."""
    return "tag:flamewatch.invalid,2026:event/" + quote(event.key, safe=":@-._~!$&'()*+,;=/")


def feed_id(name: str) -> str:
    """The feed's stable id."""
    return "tag:flamewatch.invalid,2026:feed/" + quote(name, safe="-._~")


def story_link(event: Event) -> str:
    """The story's own link when it is a plain http(s) URL, else its discussion page."""
    return safe_link(event.story.url) or event.story.hn_url


def entry_title(event: Event) -> str:
    """``<title> <headline>``, cleaned."""
    return clean(event.describe())[:500]


def entry_text(event: Event) -> str:
    """A short plain-text body: what happened and the numbers."""
    story = event.story
    parts = [clean(f"{event.wording.summary} {event.wording.detail}")]
    if event.about_story:  # HN itself (a source gone stale) has nothing counted
        parts.append(f"{story.comments:,}{'+' if story.partial else ''} comments, {story.score:,} points")
    quote_text = event.wording.snippet or (event.subject.excerpt if event.subject is not None else "")
    if quote_text:
        parts.append("“" + clean(quote_text)[:1000] + "”")
    return " · ".join(parts)


def _updated(events: Sequence[Event]) -> datetime:
    return max((e.at for e in events), default=datetime(2007, 2, 19, tzinfo=UTC))


def atom(name: str, title: str, events: Sequence[Event]) -> bytes:
    """The Atom document of ``events`` (newest first)."""
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        element.text = text
        return element

    sub(root, "id", feed_id(name))
    sub(root, "title", clean(title) or f"flamewatch: {name}")
    sub(root, "updated", _updated(events).isoformat())
    sub(sub(root, "author"), "name", "flamewatch")
    sub(root, "link", href=HN_HOME)
    sub(root, "generator", "flamewatch")
    for event in events:
        entry = sub(root, "entry")
        sub(entry, "id", entry_id(event))
        sub(entry, "title", entry_title(event))
        sub(entry, "updated", event.at.isoformat())
        sub(entry, "link", href=event.story.hn_url)  # the discussion: where the event happened
        if (link := story_link(event)) != event.story.hn_url:
            sub(entry, "link", rel="related", href=link)
        if event.story.by:
            sub(sub(entry, "author"), "name", clean(event.story.by)[:80])
        sub(entry, "category", term=clean(event.rule)[:80])
        sub(entry, "summary", entry_text(event), type="text")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + document


def json_feed(name: str, title: str, events: Sequence[Event]) -> bytes:
    """The JSON Feed 1.1 document of ``events`` (newest first)."""
    items = []
    for event in events:
        item: dict[str, object] = {
            "id": entry_id(event),
            "url": event.story.hn_url,
            "title": entry_title(event),
            "content_text": entry_text(event),
            "date_published": event.at.isoformat(),
            "tags": [clean(event.rule)[:80]],
        }
        if (link := story_link(event)) != event.story.hn_url:
            item["external_url"] = link
        if event.story.by:
            item["authors"] = [{"name": clean(event.story.by)[:80]}]
        items.append(item)
    document = {"version": "https://jsonfeed.org/version/1.1", "title": clean(title) or f"flamewatch: {name}",
                "home_page_url": HN_HOME, "items": items}
    return json.dumps(document, ensure_ascii=False).encode()
