"""Email parts for events about people: replies (with the reply's text quoted), rank changes and what
happened next to a watched story (its decline: left a list, dead, retitled...).

A digest puts them in their own sections ("Replies", "Rank changes", "What happened next") after the
table of hot threads; a
single reply's email quotes the reply. The reply's text is untrusted plain text: it is flattened to one
line for the plain part and HTML-escaped for the HTML part, like every other HN string.
"""

from __future__ import annotations

from collections.abc import Sequence

from flamewatch import DECLINE_KINDS, Event
from flamewatch.text import escape_html, safe_link
from flamewatch.text import flatten as one_line

_E = escape_html

#: Longest excerpt shown in an email (characters of plain text).
EXCERPT_MAX = 1000

_QUOTE = 'style="margin:8px 0;padding:4px 12px;border-left:3px solid #ccc;color:#333"'


def kind(event: Event) -> str:
    """``"reply"`` for events about an item (replies, mentions), ``"rank"`` for rank and decline events (a
    line each, no counts table), else ``"thread"``."""
    if event.subject is not None:
        return "reply"
    return "rank" if event.rule == "rank" or is_decline(event) else "thread"


def is_decline(event: Event) -> bool:
    """Whether ``event`` tells what happened next to a story (its key's kind is a decline kind)."""
    return event.parsed_key.kind in DECLINE_KINDS


def split(events: Sequence[Event]) -> tuple[list[Event], list[Event], list[Event]]:
    """``events`` as (threads, ranks, replies), each in time order."""
    ordered = sorted(events, key=lambda e: e.at)
    return ([e for e in ordered if kind(e) == "thread"], [e for e in ordered if kind(e) == "rank"],
            [e for e in ordered if kind(e) == "reply"])


def excerpt(event: Event) -> str:
    """The subject's text on one line, shortened."""
    text = one_line(event.subject.excerpt if event.subject is not None else "")
    return text if len(text) <= EXCERPT_MAX else text[: EXCERPT_MAX - 1].rstrip() + "…"


def plain_subject_lines(event: Event) -> list[tuple[str, str]]:
    """The detail lines a single reply's plain part adds: who, what, where."""
    subject = event.subject
    if subject is None:
        return []
    return [("From", one_line(subject.by or "someone")), ("Text", excerpt(event)), ("Reply", subject.hn_url)]


def html_quote(event: Event) -> str:
    """The reply's text as an escaped HTML block quote with its author and links (empty without a subject)."""
    subject = event.subject
    if subject is None:
        return ""
    links = f'{_a(subject.hn_url, "reply")} · {_a(event.story.hn_url, "thread")}'
    return (f"<p><b>{_E(one_line(subject.by or 'someone'))}</b> wrote:</p>"
            f"<blockquote {_QUOTE}>{_E(excerpt(event))}</blockquote><p>{links}</p>\n")


def plain_sections(ranks: Sequence[Event], replies: Sequence[Event]) -> str:
    """The digest's plain-text sections for rank changes and replies ("" when there are none)."""
    out: list[str] = []
    for title, group in _rank_groups(ranks):
        out += [title, "-" * len(title)]
        out += [f"  {one_line(e.describe())}\n    {e.story.hn_url}" for e in group]
        out.append("")
    if replies:
        out += ["Replies", "-------"]
        for e in replies:
            assert e.subject is not None
            out.append(f"  {one_line(e.subject.by or 'someone')} in {one_line(e.story.title)!r}:")
            out.append(f"    {excerpt(e)}")
            out.append(f"    {e.subject.hn_url}")
        out.append("")
    return "\n".join(out)


def html_sections(ranks: Sequence[Event], replies: Sequence[Event]) -> str:
    """The digest's HTML sections for rank changes and replies ("" when there are none)."""
    out: list[str] = []
    for title, group in _rank_groups(ranks):
        out.append(f'<h3 style="font-size:16px;margin:16px 0 4px">{title}</h3><ul>')
        out += [f"<li>{_a(e.story.hn_url, one_line(e.describe()))}</li>" for e in group]
        out.append("</ul>\n")
    if replies:
        out.append('<h3 style="font-size:16px;margin:16px 0 4px">Replies</h3>')
        for e in replies:
            out.append(f"<p style=\"margin:8px 0 0\">in {_a(e.story.hn_url, one_line(e.story.title))}</p>")
            out.append(html_quote(e))
    return "".join(out)


def _rank_groups(events: Sequence[Event]) -> list[tuple[str, list[Event]]]:
    """Rank changes, then declines, each under its heading (groups that are empty left out)."""
    groups = [("Rank changes", [e for e in events if not is_decline(e)]),
              ("What happened next", [e for e in events if is_decline(e)])]
    return [(title, group) for title, group in groups if group]


def _a(url: str | None, text: str) -> str:
    link = safe_link(url)
    return _E(text) if link is None else f'<a href="{_E(link)}">{_E(text)}</a>'
