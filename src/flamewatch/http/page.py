"""The status page: HTML drawn on the server from the :mod:`.api` data, sparklines included.

Every piece of text from HN (titles, domains, wording) and every error string goes through
:func:`flamewatch.text.escape_html`; the sparkline SVG is built from numbers only. The page
(``static/index.html``) holds one ``<main>``; ``static/page.js`` polls ``/fragment?since=<version>`` and
swaps the main part in when something changed, so the page updates itself without a reload.
"""

from __future__ import annotations

from ..text import escape_html
from importlib import resources
from string import Template
from typing import Any

__all__ = ["fragment", "page", "shell", "sparkline"]

DASH = "\u2013"  # shown for "no value"


def _e(value: object) -> str:
    return escape_html(value)  # everything shown went through here: HN text is untrusted (flamewatch.text)


def sparkline(history: list[list[float]], width: int = 120, height: int = 24) -> str:
    """An inline SVG line of the comment count over time (``[[at, comments], ...]``, oldest first)."""
    if len(history) < 2:
        return f'<svg class="spark" width="{width}" height="{height}" aria-hidden="true"></svg>'
    t0, t1 = history[0][0], history[-1][0]
    low = min(c for _, c in history)
    high = max(c for _, c in history)
    span_t = (t1 - t0) or 1.0
    span_c = (high - low) or 1.0
    pad = 2
    xs = (pad + (at - t0) / span_t * (width - 2 * pad) for at, _ in history)
    ys = (height - pad - (c - low) / span_c * (height - 2 * pad) for _, c in history)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    label = f"{int(low)} to {int(high)} comments"
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}"><polyline fill="none" stroke="currentColor" stroke-width="1.5" '
            f'points="{points}"/></svg>')


def _time(iso: str | None) -> str:
    """``HH:MM:SS`` (UTC) on the page, the full timestamp on hover."""
    if not iso:
        return DASH
    return f'<time datetime="{_e(iso)}" title="{_e(iso)}">{_e(iso[11:19])}</time>'


def _rate(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def _stories(stories: list[dict[str, Any]]) -> str:
    if not stories:
        return '<p class="empty">No stories counted yet: the first cycle is running.</p>'
    rows = []
    for s in stories:
        comments = f"{s['comments']:,}" + ("+" if s["partial"] else "")
        levels = " ".join(f'<span class="level">{_e(level)}</span>' for level in s["levels"])
        domain = f' <span class="domain">({_e(s["domain"])})</span>' if s["domain"] else ""
        rows.append(
            f'<tr data-story="{int(s["id"])}"><td class="num">{_e(s["rank"] or "")}</td>'
            f'<td class="title"><a href="{_e(s["hn_url"])}" rel="noopener noreferrer">{_e(s["title"])}</a>{domain}</td>'
            f'<td class="num comments">{comments}</td><td class="num">{s["points"]:,}</td>'
            f'<td class="num">{_rate(s["per_hour"])}</td><td>{sparkline(s["history"])}</td>'
            f'<td class="levels">{levels}</td></tr>'
        )
    return ('<table class="stories"><thead><tr><th>#</th><th>Story</th><th>Comments</th><th>Points</th>'
            '<th>Per hour</th><th>History</th><th>Levels fired</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _cycles(cycles: list[dict[str, Any]]) -> str:
    if not cycles:
        return '<p class="empty">No cycle finished yet.</p>'
    rows = []
    for c in cycles[:10]:
        outcome = f'<span class="bad">{_e(c["failed"])}</span>' if c["failed"] else "ok"
        broken = c.get("rule_errors") or {}
        if broken:  # a faulty rule was skipped where it raised; the cycle and the other rules went on
            outcome += "".join(f' · <span class="bad rule-error">rule {_e(rule)} raised on {int(n)}</span>'
                               for rule, n in sorted(broken.items()))
        rows.append(
            f'<tr data-cycle="{int(c["cycle"])}"><td>{_e(c["cycle"])}</td><td>{_time(c["started_at"])}</td>'
            f'<td class="num">{c["elapsed"]:.2f}s</td><td class="num">{c["requests"]}</td>'
            f'<td class="num">{c["errors"]}</td><td class="num">{c["skipped_ticks"]}</td><td>{outcome}</td></tr>'
        )
    return ('<table><thead><tr><th>Cycle</th><th>Started (UTC)</th><th>Took</th><th>Requests</th><th>Errors</th>'
            '<th title="ticks skipped since start because a cycle overran its period">Ticks skipped (total)</th>'
            '<th>Outcome</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _delivery(d: dict[str, Any]) -> str:
    state = d["state"]
    text = f"{d['instance']}: {state}"
    if state == "pending" and d.get("next_at"):
        when = d["next_at"][11:19]
        text += f" (retry at {when} UTC)" if d.get("attempts") else f" (due at {when} UTC)"
    if d.get("ref"):  # superseded by a key, grouped into another row's message, silenced by a silence
        text += f" {'into' if state == 'grouped' else 'by'} {d['ref']}"
    if state in ("dead", "failed", "pending") and d.get("error"):
        text += f" {DASH} {d['error']}"
    return f'<li class="delivery {_e(state)}">{_e(text)}</li>'


def _events(events: list[dict[str, Any]]) -> str:
    if not events:
        return '<p class="empty">No events yet.</p>'
    items = []
    for ev in events[:20]:
        deliveries = "".join(_delivery(d) for d in ev["deliveries"]) or '<li class="delivery">no notifier took it</li>'
        story = ev["story"]  # None for an event about no story (a source gone stale): no link then
        thread = f' <a href="{_e(story["hn_url"])}" rel="noopener noreferrer">{_e(story["title"])}</a>' if story else ""
        items.append(
            f'<li>{_time(ev["at"])} <strong>{_e(ev["summary"])}</strong>{thread}'
            f'<ul class="deliveries">{deliveries}</ul></li>'
        )
    return '<ul class="events">' + "".join(items) + "</ul>"


#: The delivery states the outbox table shows, in the order a row goes through them.
_STATES = ("pending", "sent", "grouped", "silenced", "superseded", "dead")


def _outbox(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="empty">No notifier instances.</p>'
    body = "".join(
        f'<tr><td>{_e(r["instance"])}</td>'
        + "".join(f'<td class="num{" bad" if s == "dead" and r.get(s) else ""}">{r.get(s, 0)}</td>' for s in _STATES)
        + f'<td>{_time(r["next_at"])}</td></tr>'
        for r in rows
    )
    head = "".join(f"<th>{s.capitalize()}</th>" for s in _STATES)
    return (f"<table><thead><tr><th>Instance</th>{head}<th>Next due (UTC)</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _health(h: dict[str, Any]) -> str:
    state = "ok" if h["ready"] else "warn"
    word = "Ready" if h["ready"] else "Not ready"
    last = _time(h["last_success"]) if h["last_success"] else "never"
    role = f' · {_e(h["role"])}' if h.get("role", "single") != "single" else ""
    mode = ""
    if "mode" in h:
        since = _time(h["mode_since"]) if h.get("mode_since") else "the start"
        mode = f' · <span id="mode">{_e(h["mode"])} since {since} (UTC)</span>'
    return (f'<div class="health {state}" id="health"><strong>{word}</strong>{role} · {_e(h["reason"])} · '
            f'last good cycle {last} (UTC) · every {h["period"]:g}s{mode} · up {h["uptime"]:.0f}s</div>')


def _feeds(feeds: list[dict[str, str]]) -> str:
    """The feeds and their links (each needs its ``?token=``, which the page never shows)."""
    if not feeds:
        return ""
    items = "".join(f'<li>{_e(f["name"])}: <a href="{_e(f["atom"])}">Atom</a> · <a href="{_e(f["json"])}">JSON Feed</a>'
                    "</li>" for f in feeds)
    return f'<h2>Feeds</h2><ul class="feeds">{items}</ul><p class="note">add ?token=… (the feed\'s own token)</p>'


def fragment(data: dict[str, Any]) -> str:
    """The ``<main>`` contents for ``data`` (keys: health, stories, cycles, events, outbox)."""
    return (
        _health(data["health"])
        + '<section><h2>Watched stories</h2>' + _stories(data["stories"]) + "</section>"
        + '<div class="columns"><section><h2>Recent events</h2>' + _events(data["events"]) + "</section>"
        + '<section><h2>Last cycles</h2>' + _cycles(data["cycles"]) + "<h2>Outbox</h2>"
        + _outbox(data["outbox"]) + _feeds(data.get("feeds") or []) + "</section></div>"
    )


def static_text(name: str) -> str:
    """One of the shipped static files (``index.html``, ``style.css``, ``page.js``)."""
    return resources.files("flamewatch.http").joinpath("static", name).read_text(encoding="utf-8")


def page(data: dict[str, Any]) -> str:
    """The whole status page, first drawn with ``data``."""
    return Template(static_text("index.html")).substitute(
        version=int(data["health"]["version"]), main=fragment(data)
    )


def shell(note: str = "Loading\u2026") -> str:
    """The page without data, for a browser that has not sent the token yet: its script reads the token
    from the address's ``#token=`` and fetches the data with it (see :mod:`.guard`). ``note``: what it
    says meanwhile (why there is no data, when the store cannot be read)."""
    waiting = f'<p class="empty" id="waiting">{_e(note)}</p>'
    return Template(static_text("index.html")).substitute(version="", main=waiting)
