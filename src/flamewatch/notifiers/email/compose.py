"""Build the alert and digest emails: multipart/alternative, plain text first, then HTML.

Everything from Hacker News (titles, authors, URLs) is untrusted:

* nothing from HN reaches a header without :func:`header_text` (control characters and line breaks
  become spaces), and the ``email`` package encodes non-ASCII, so a title cannot add a header;
* every HN string in the HTML part goes through :func:`flamewatch.text.escape_html`, and only ``http(s)`` URLs
  become links;
* the plain-text part shows titles as they are, minus control characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from flamewatch import Event, StorySnapshot
from flamewatch.text import PLAIN_MARKS, escape_html, flatten, inline, render_marked
from flamewatch.text import safe_link as text_safe_link

from . import sections

# Longest title kept in a Subject line; longer ones end with an ellipsis.
SUBJECT_TITLE_MAX = 120
# Most event keys listed in a digest's X-Flamewatch-Event-Keys header: servers cap header sizes, and a
# week-long digest can hold thousands of events (X-Flamewatch-Event-Count always has the total).
DIGEST_HEADER_KEYS_MAX = 100



@dataclass(frozen=True)
class MailSettings:
    """What a message needs besides the events (taken from the notifier's options)."""

    sender: Address
    to: Sequence[Address]
    subject_prefix: str = "[flamewatch]"
    instance: str = "email"
    list_unsubscribe: str | None = None


# --- small text helpers ---------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` on one line, safe for a header or a line of the body (:func:`flamewatch.text.flatten`)."""
    return flatten(text)


def header_text(text: str, limit: int | None = None) -> str:
    """``text`` made safe for a header value: one line, optionally shortened to ``limit`` chars.

    The email package decodes RFC 2047 encoded words (``=?utf-8?q?...?=``) in a value it is given, and
    ``=0D=0A`` inside one would come back as a real line break, adding headers or replacing the body.
    So an ``=?`` in untrusted text gets an invisible zero-width space between its two characters: it
    still reads the same, and it can no longer start an encoded word.
    """
    text = one_line(text).replace("=?", "=\u200b?")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def safe_link(url: str | None) -> str | None:
    """``url`` if it may become a link in a message (:func:`flamewatch.text.safe_link`), else None."""
    return text_safe_link(url)


def what_happened(event: Event) -> str:
    """A short phrase for ``event`` ("reached 500 comments (512 now)"), safe for one header line."""
    return one_line(event.headline())


def plain_snippet(event: Event) -> str:
    """The event's quoted snippet (a mention) on one line, marks as »…«; "" when it has none."""
    wording = event.wording
    return render_marked(wording.snippet, wording.marks, inline, *PLAIN_MARKS) if wording.snippet else ""


def html_snippet(event: Event) -> str:
    """The snippet as escaped HTML with ``<mark>`` around the matched words; "" when it has none."""
    wording = event.wording
    if not wording.snippet:
        return ""
    return render_marked(wording.snippet, wording.marks, lambda t: _E(inline(t)), "<mark>", "</mark>")


def _comments(story: StorySnapshot) -> str:
    if not story.is_story:  # HN itself (a source gone stale): nothing was counted
        return ""
    # A partial count is a lower bound: say so rather than print a number that looks exact.
    return f"{story.comments}+" if story.partial else str(story.comments)


def _points(story: StorySnapshot) -> str:
    return str(story.score) if story.is_story else ""


def _velocity(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}/h"


def _growth(value: int | None) -> str:
    return "" if value is None else f"{value:+d}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- one row per story ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One hot thread: its latest snapshot and every event it fired."""

    story: StorySnapshot
    events: tuple[Event, ...]

    @property
    def velocity(self) -> float | None:
        known = [e.velocity for e in self.events if e.velocity is not None]
        return known[-1] if known else None

    @property
    def growth(self) -> int | None:
        known = [e.growth for e in self.events if e.growth is not None]
        return known[-1] if known else None

    @property
    def what(self) -> list[str]:
        return [what_happened(e) for e in self.events]


def _rows(events: Sequence[Event]) -> list[_Row]:
    """Group events by story (latest snapshot wins), hottest first."""
    by_story: dict[int | str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.at):  # an event about no story is a row of its own
        by_story.setdefault(event.story.id if event.about_story else event.key, []).append(event)
    rows = []
    for story_events in by_story.values():
        latest = max(story_events, key=lambda e: (e.story.comments, e.at)).story
        rows.append(_Row(story=latest, events=tuple(story_events)))
    rows.sort(key=lambda r: (-r.story.comments, -r.story.score, r.story.id))
    return rows


# --- plain text ------------------------------------------------------------------------------------


def _plain_event(event: Event) -> str:
    story = event.story
    lines = [one_line(event.describe()), ""]
    details: list[tuple[str, str]] = [
        ("Thread", one_line(story.title)),
        *([("Link", one_line(story.url))] if story.url else []),  # text posts only have the discussion
        ("Discussion", story.hn_url),
        ("Comments", _comments(story)),
        ("Points", str(story.score)),
    ] if event.about_story else [("Site", story.hn_url)]  # about HN itself: no thread, nothing counted
    if event.wording.snippet:
        details.append(("Snippet", plain_snippet(event)))
    if event.subject is not None:
        details.append(("Item", event.subject.hn_url))
    if event.growth is not None:
        details.append(("Growth", f"{_growth(event.growth)} comments since the last check"))
    if event.velocity is not None:
        details.append(("Velocity", f"{_velocity(event.velocity)} (comments an hour)"))
    if story.by:
        details.append(("Posted by", one_line(story.by)))
    if story.lists:
        details.append(("Rank", ", ".join(f"#{r} on {one_line(n)}" for n, r in story.lists.items())))
    elif story.rank is not None:
        details.append(("Rank", f"#{story.rank} on {one_line(event.source_list)}"))
    details += sections.plain_subject_lines(event)
    details.append(("Fired at", _utc(event.at)))
    width = max(len(label) for label, _ in details) + 2
    lines += [f"  {label + ':':<{width}}{value}" for label, value in details]
    return "\n".join(lines)


def _plain_digest(rows: list[_Row], events: Sequence[Event]) -> str:
    lines = [_digest_summary(rows, events), ""]
    headers = ("Comments", "Points", "Growth", "Velocity")
    cells = [(_comments(r.story), _points(r.story), _growth(r.growth), _velocity(r.velocity)) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    indent = " " * (sum(widths) + 2 * len(widths))
    lines.append("".join(f"{h:>{w}}  " for h, w in zip(headers, widths, strict=True)) + "Thread")
    lines.append("".join("-" * w + "  " for w in widths) + "------")
    for row, cell in zip(rows, cells, strict=True):
        lines.append("".join(f"{c:>{w}}  " for c, w in zip(cell, widths, strict=True)) + one_line(row.story.title))
        lines.append(indent + "; ".join(row.what))
        lines += [indent + plain_snippet(e) for e in row.events if e.wording.snippet]
        if row.story.url:
            lines.append(indent + one_line(row.story.url))
        lines.append(indent + row.story.hn_url)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _digest_summary(rows: list[_Row], events: Sequence[Event]) -> str:
    threads = f"{len(rows)} hot thread" + ("" if len(rows) == 1 else "s")
    alerts = f"{len(events)} alert" + ("" if len(events) == 1 else "s")
    first, last = min(e.at for e in events), max(e.at for e in events)
    span = _utc(first) if first == last else f"{_utc(first)} to {_utc(last)}"
    return f"flamewatch digest: {threads}, {alerts} ({span})"


def _plain_footer(settings: MailSettings) -> str:
    return f"\n-- \nSent by flamewatch (notifier {one_line(settings.instance)!r}).\n"


# --- HTML ------------------------------------------------------------------------------------------

_E = escape_html  # every untrusted string in the HTML part goes through this (flamewatch.text)

_TABLE = 'style="border-collapse:collapse;font-family:Arial,Helvetica,sans-serif;font-size:14px"'
_TH = 'style="text-align:left;padding:6px 10px;border-bottom:2px solid #ccc;background:#f6f6ef"'
_TD = 'style="padding:6px 10px;border-bottom:1px solid #eee;vertical-align:top"'
_NUM = 'style="padding:6px 10px;border-bottom:1px solid #eee;vertical-align:top;text-align:right"'


def _a(url: str | None, text: str) -> str:
    """An escaped link, or just the escaped text when ``url`` is not a safe http(s) URL."""
    link = safe_link(url)
    if link is None:
        return _E(text)
    return f'<a href="{_E(link)}">{_E(text)}</a>'


def _html_table(rows: list[_Row]) -> str:
    head = "".join(
        f"<th {_TH}>{h}</th>"
        for h in ("Thread", "Comments", "What happened", "Points", "Growth", "Velocity", "HN")
    )
    body = []
    for row in rows:
        story = row.story
        domain = urlsplit(safe_link(story.url) or "").hostname
        title = _a(story.link, one_line(story.title))
        if domain:
            title += f' <span style="color:#888;font-size:12px">({_E(domain)})</span>'
        if story.by:
            title += f'<br><span style="color:#888;font-size:12px">by {_E(one_line(story.by))}</span>'
        what = "<br>".join(_E(w) for w in row.what)
        for e in row.events:
            if e.wording.snippet:  # a mention: the quote, then a link to the mentioning item
                what += f"<br><q>{html_snippet(e)}</q>"
                what += f" {_a(e.subject.hn_url, e.subject.type)}" if e.subject else ""
        body.append(
            "<tr>"
            f"<td {_TD}>{title}</td>"
            f"<td {_NUM}><b>{_E(_comments(story))}</b></td>"
            f"<td {_TD}>{what}</td>"
            f"<td {_NUM}>{_points(story)}</td>"
            f"<td {_NUM}>{_E(_growth(row.growth))}</td>"
            f"<td {_NUM}>{_E(_velocity(row.velocity))}</td>"
            f"<td {_TD}>{_a(story.hn_url, 'discuss') if story.is_story else ''}</td>"
            "</tr>\n"
        )
    # Newlines between rows keep the quoted-printable source readable; HTML ignores them.
    return f"<table {_TABLE}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{''.join(body)}</tbody></table>\n"


def _html_page(heading: str, intro: str, table: str, settings: MailSettings) -> str:
    footer = f"Sent by flamewatch (notifier {_E(one_line(settings.instance))})."
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#222">'
        f'<h2 style="font-size:18px;margin:0 0 8px">{heading}</h2>'
        f'<p style="margin:0 0 12px;color:#555">{intro}</p>'
        f"{table}"
        f'<p style="margin-top:16px;color:#888;font-size:12px">{footer}</p>'
        "</body></html>\n"
    )


# --- headers and messages ----------------------------------------------------------------------------


def message_id(keys: Sequence[str], settings: MailSettings) -> str:
    """A Message-ID that depends only on the instance and the event keys, so a retry reuses it."""
    material = "\n".join([settings.instance, *sorted(set(keys))]).encode()
    digest = hashlib.sha256(material).hexdigest()[:32]
    return f"<{digest}.flamewatch@{settings.sender.domain}>"


def _thread_id(story_id: int, settings: MailSettings) -> str:
    # Alerts about one story refer to the same (never sent) root id, so mail clients group them.
    return f"<story-{story_id}.flamewatch@{settings.sender.domain}>"


def _new_message(subject: str, keys: Sequence[str], settings: MailSettings, now: datetime | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = list(settings.to)
    _set_header(msg, "Subject", header_text(subject), fallback="[flamewatch] alert")
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id(keys, settings)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a bot
    msg["X-Auto-Response-Suppress"] = "All"  # the same request, in Exchange's dialect
    if settings.list_unsubscribe:
        msg["List-Unsubscribe"] = header_text(settings.list_unsubscribe)
    return msg


def _set_header(msg: EmailMessage, name: str, value: str, *, fallback: str) -> None:
    """Set a header built from untrusted text, and check what the email package made of it.

    :func:`header_text` already prevents line breaks; this is the backstop: should a value still decode
    to one (a parser quirk we did not foresee), the header gets ``fallback`` instead.
    """
    msg[name] = value
    if any(ch in str(msg[name]) for ch in "\r\n"):
        del msg[name]
        msg[name] = fallback


def _prefixed(prefix: str, text: str) -> str:
    prefix = header_text(prefix)
    return f"{prefix} {text}" if prefix else text


def build_event_message(event: Event, settings: MailSettings, *, now: datetime | None = None) -> EmailMessage:
    """The email for one event: "[flamewatch] 'Title' reached 500 comments"."""
    title = header_text(event.story.title, SUBJECT_TITLE_MAX)
    subject = _prefixed(settings.subject_prefix, f"'{title}' {what_happened(event)}")
    msg = _new_message(subject, [event.key], settings, now)
    msg["X-Flamewatch-Event-Key"] = header_text(event.key)
    if event.about_story:  # events about HN itself are no thread of a "story 0"
        msg["References"] = _thread_id(event.story.id, settings)

    plain = _plain_event(event) + _plain_footer(settings)
    rows = [_Row(story=event.story, events=(event,))]
    story = event.story
    heading = f"{_a(story.link, one_line(story.title))} {_E(what_happened(event))}"
    counts = f"{_E(_comments(story))} comments, {story.score} points · " if event.about_story else ""
    intro = f"{counts}fired {_E(_utc(event.at))}"
    msg.set_content(plain)
    body = sections.html_quote(event) + _html_table(rows)
    msg.add_alternative(_html_page(heading, intro, body, settings), subtype="html")
    return msg


def build_digest_message(
    events: Sequence[Event], settings: MailSettings, *, now: datetime | None = None
) -> EmailMessage:
    """One email holding every event in ``events`` (which must not be empty), a row per story."""
    if not events:
        raise ValueError("a digest needs at least one event")
    # Sections by kind: hot threads (a table), then rank changes and replies (flamewatch.people).
    thread_events, ranks, replies = sections.split(events)
    rows = _rows(thread_events)
    threads = f"{len(rows)} hot thread" + ("" if len(rows) == 1 else "s")
    subject = _prefixed(settings.subject_prefix, f"Digest: {threads}")
    keys = [e.key for e in events]
    msg = _new_message(subject, keys, settings, now)
    msg["X-Flamewatch-Event-Count"] = str(len(keys))
    msg["X-Flamewatch-Event-Keys"] = header_text(", ".join(keys[:DIGEST_HEADER_KEYS_MAX]))

    table = _plain_digest(rows, events) if rows else _digest_summary(rows, events) + "\n\n"
    plain = table + sections.plain_sections(ranks, replies) + _plain_footer(settings)
    heading = f"flamewatch digest: {_E(threads)}"
    intro = _E(_digest_summary(rows, events).removeprefix("flamewatch digest: "))
    msg.set_content(plain)
    html_body = (_html_table(rows) if rows else "") + sections.html_sections(ranks, replies)
    msg.add_alternative(_html_page(heading, intro, html_body, settings), subtype="html")
    return msg

