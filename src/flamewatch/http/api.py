"""The data behind the status page and ``/api/*``: plain JSON-ready dicts, built from the recorder and
the store on each request.

Titles and other HN text go out without control and bidi characters (:func:`shown`: a NUL, an escape
sequence or a right-to-left override has nothing to show and can hide or reorder what is around it), and
otherwise as they are (JSON is data); whoever renders them escapes them (the page does so in :mod:`.page`).
Nothing here reads a secret: notifier instances appear by name only.

Every request reads bounded data: the outbox is counted by the database (:meth:`Store.backlog`), and the
events show at most :data:`OPEN_ROWS` of the newest open rows, however many thousands wait.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..events import CycleStats, Event
from ..store import Backlog, Delivery, DeliveryStatus, Store
from ..store.base import FINISHED
from .recorder import StatusRecorder

if TYPE_CHECKING:
    from ..app import App
    from ..watch import Watcher

__all__ = ["Reload", "Source", "cycles", "events", "health", "outbox", "shown", "stories"]

#: ``POST /-/reload`` calls this: None when the config was re-read, else the one-line reason it was not.
Reload = Callable[[], Awaitable[str | None]]

#: How far back a sparkline looks, and at most how many points it draws.
SPARK_WINDOW = 24 * 3600.0
SPARK_POINTS = 60
#: At most this many open (pending or dead) outbox rows are read per request, the newest.
OPEN_ROWS = 200
# Control (Cc), format (Cf: bidi marks, overrides and isolates, zero-width spaces), line and paragraph
# separators; but the joiners, which emoji sequences and some scripts need and which move nothing.
_UNSHOWN = frozenset({"Cc", "Cf", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


@dataclass
class Source:
    """What the HTTP face reads: the recorder, and the running app's store, period and instances.

    Functions rather than values, so a reload (which may change the instances) or a closed store is
    seen on the next request.
    """

    recorder: StatusRecorder
    store: Callable[[], Store | None]
    period: Callable[[], float]
    instances: Callable[[], list[str]]
    watcher: Watcher | None = None
    reload: Reload | None = None
    clock: Callable[[], float] = field(default=time.time)
    #: This instance's role ("single", "leader" or "standby") and who leads a shared store, if known.
    role: Callable[[], str] = field(default=lambda: "single")
    leader: Callable[[], Awaitable[str | None]] | None = None
    #: How new items arrive: ("live", since) over the event stream, ("polling", since) by the cycles alone.
    mode: Callable[[], tuple[str, float | None]] = field(default=lambda: ("polling", None))

    @classmethod
    def of_app(cls, app: App, recorder: StatusRecorder, *, watcher: Watcher | None = None,
               reload: Reload | None = None) -> Source:
        """The source reading ``app`` (its current config, store and instances)."""
        return cls(
            recorder=recorder,
            store=lambda: app.store,
            period=lambda: app.config.watch.period,
            instances=lambda: [instance.name for instance in app.instances],
            watcher=watcher,
            reload=reload,
            clock=recorder.clock,
            role=lambda: getattr(app, "role", "single"),
            leader=lambda: _leader_of(app),
            mode=lambda: _mode_of(app),
        )


def _mode_of(app: App) -> tuple[str, float | None]:
    """Live or polling, and since when (unix time; None: since the start, live mode is off)."""
    driver = getattr(app, "live_driver", None)
    if driver is None:
        return "polling", None
    return driver.source.mode, driver.source.since


def _iso(at: float | datetime | None) -> str | None:
    if at is None:
        return None
    moment = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- stories ---------------------------------------------------------------------------------------


async def stories(source: Source) -> list[dict[str, Any]]:
    """The watched stories by rank, with their history (for the sparkline), rate and fired levels."""
    store = source.store()
    watched = source.recorder.stories
    now = source.clock()
    fired: dict[int, list[Event]] = {}
    if store is not None and watched:
        for event in await store.fired_events([s.id for s in watched]):
            fired.setdefault(event.story.id, []).append(event)
    out = []
    for story in watched:
        points: list[tuple[float, int]] = []
        if store is not None:
            points = [(s.at, s.comments) for s in await store.history(story.id, now - SPARK_WINDOW)]
        out.append({
            "rank": story.rank,
            "id": story.id,
            "title": story.title,
            "domain": story.domain or "",
            "url": story.link,
            "hn_url": story.hn_url,
            "comments": story.comments,
            "partial": story.partial,
            "points": story.score,
            "per_hour": per_hour(points),
            "history": [[round(at, 1), comments] for at, comments in thin(points, SPARK_POINTS)],
            "levels": levels_fired(fired.get(story.id, [])),
        })
    return out


def levels_fired(events: Sequence[Event]) -> list[str]:
    """The levels ``events`` fired, of every kind, rule by rule, each rule's levels worst first by its
    own order (comments 10 before 100; rank top 10 before #1), words after numbers."""
    ordered = sorted(events, key=lambda e: (e.rule, e.parsed_key.kind, e.level_order.sort_key(e.level)))
    return list(dict.fromkeys(e.label() for e in ordered))


def per_hour(points: Sequence[tuple[float, int]], window: float = 3600.0) -> float | None:
    """Comments per hour over the last ``window`` seconds of samples (oldest first); None with fewer than
    two samples in it."""
    if len(points) < 2:
        return None
    last_at, last = points[-1]
    recent = [p for p in points if p[0] >= last_at - window]
    first_at, first = recent[0]
    if last_at <= first_at:
        return None
    return round((last - first) * 3600.0 / (last_at - first_at), 1)


def thin(points: Sequence[tuple[float, int]], most: int) -> list[tuple[float, int]]:
    """At most ``most`` of ``points``, evenly spread, always keeping the first and the last."""
    if len(points) <= most:
        return list(points)
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


# --- cycles ----------------------------------------------------------------------------------------


def cycle_json(stats: CycleStats) -> dict[str, Any]:
    return {
        "cycle": stats.cycle,
        "started_at": _iso(stats.started_at),
        "elapsed": round(stats.elapsed, 3),
        "stories": stats.stories,
        "requests": stats.requests,
        "errors": stats.errors,
        "partial": stats.partial,
        "events": stats.events,
        "new_items": stats.new_items,
        "skipped_ticks": stats.skipped_ticks,
        "failed": stats.failed,
        "rule_errors": dict(stats.rule_errors),
    }


def cycles(source: Source) -> list[dict[str, Any]]:
    """The recent cycles, newest first."""
    return [cycle_json(stats) for stats in reversed(source.recorder.cycles)]


# --- events and the outbox ---------------------------------------------------------------------------


def shown(value: Any) -> Any:
    """``value`` (JSON-ready: dicts, lists, strings, numbers) with every string freed of control, format
    and separator characters; tabs and line breaks become spaces, the rest go."""
    if isinstance(value, str):
        if value.isprintable():  # the usual case, checked in C
            return value
        return "".join(" " if ch in "\t\n\r\v\f" else ch for ch in value
                       if ch in "\t\n\r\v\f" or ch in _JOINERS or unicodedata.category(ch) not in _UNSHOWN)
    if isinstance(value, dict):
        return {key: shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shown(item) for item in value]
    return value


async def _open_rows(store: Store | None) -> list[Delivery]:
    """The newest :data:`OPEN_ROWS` pending or dead rows, newest first."""
    if store is None:
        return []
    return await store.outbox([DeliveryStatus.PENDING, DeliveryStatus.DEAD], limit=OPEN_ROWS, newest_first=True)


async def backlog(store: Store | None) -> list[Backlog]:
    """Each instance's open rows, counted by the store (nothing when there is no store)."""
    return [] if store is None else await store.backlog()


#: How many finished rows (sent, grouped, silenced, superseded) /api/events looks back over.
RECENT_FINISHED = 200


def _row_state(row: Delivery) -> dict[str, Any]:
    """One row's delivery state as the store keeps it (``ref``: by which key, into which message, which
    silence)."""
    state: dict[str, Any] = {"instance": row.instance, "state": str(row.status), "attempts": row.attempts,
                             "ref": row.ref, "error": row.last_error}
    if row.status is DeliveryStatus.PENDING:
        state["next_at"] = _iso(row.next_at)
    return state


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "key": event.key,
        "rule": event.rule,
        "kind": str(event.parsed_key.kind),
        "level": event.level,
        "label": event.label(),
        "level_order": str(event.level_order),
        "at": _iso(event.at),
        "summary": event.wording.summary,
        # An event about no story (a source gone stale) has none to show: null, not a story 0.
        "story": {"id": event.story.id, "title": event.story.title, "hn_url": event.story.hn_url}
                 if event.about_story else None,
        "subject": None if event.subject is None else {"id": event.subject.id, "by": event.subject.by},
    }


async def events(source: Source, limit: int = 50) -> list[dict[str, Any]]:
    """Recent events (fired here, or in the outbox), newest first, each with its delivery per instance in
    the store's words: pending with its next retry; sent; grouped into another row's message; silenced;
    superseded by a better level; dead with the reason ("delivered"/"failed" only for an outcome the
    store no longer holds)."""
    store = source.store()
    finished = [] if store is None else await store.outbox(FINISHED, limit=RECENT_FINISHED, newest_first=True)
    open_rows: dict[str, dict[str, Delivery]] = {}
    by_key: dict[str, Event] = {}
    for row in reversed([*await _open_rows(store), *finished]):  # oldest first, as the events are listed
        open_rows.setdefault(row.event.key, {})[row.instance] = row
        by_key.setdefault(row.event.key, row.event)
    outcomes: dict[str, dict[str, Any]] = {}
    for recent in source.recorder.events:
        by_key[recent.event.key] = recent.event
        outcomes[recent.event.key] = {
            name: {"instance": name, "state": "delivered" if o.ok else "failed", "attempts": o.attempts,
                   "error": o.error}
            for name, o in recent.deliveries.items()
        }
    out = []
    for key, event in by_key.items():
        states = dict(outcomes.get(key, {}))
        for name, row in open_rows.get(key, {}).items():
            states[name] = _row_state(row)  # the store knows better than the last hook call
        out.append({**_event_json(event), "deliveries": [states[name] for name in sorted(states)]})
    out.sort(key=lambda e: e["at"] or "", reverse=True)
    return out[:limit]


async def outbox(source: Source) -> list[dict[str, Any]]:
    """Per notifier instance: how many rows are in each delivery state, and when the next one is due."""
    store = source.store()
    counted = {row.instance: row for row in await backlog(store)}
    states = {} if store is None else await store.outbox_counts_by_instance()
    out = []
    for name in sorted(set(source.instances()) | set(counted) | set(states)):
        mine = states.get(name, {})
        due = counted[name].next_at if name in counted else None
        out.append({"instance": name, **{str(state): mine.get(state, 0) for state in DeliveryStatus},
                    "next_at": _iso(due)})
    return out


# --- health ----------------------------------------------------------------------------------------


async def _leader_of(app: App) -> str | None:
    """Who leads ``app``'s store (the lock holder's description), or None when not known."""
    lock = getattr(app, "lock", None)
    return await lock.holder() if lock is not None else None


def health(source: Source) -> dict[str, Any]:
    """Health at a glance: ready or not and why, the last good cycle, how long the process has run, and
    this instance's role (``single``, ``leader`` or ``standby``: a standby runs no cycles, by design)."""
    recorder = source.recorder
    role = source.role()
    ready, why = recorder.ready(source.period(), source.store() is not None)
    if role == "standby":
        ready, why = False, "standby: another instance leads this store"
    mode, since = source.mode()
    return {
        "healthy": True,
        "role": role,
        "mode": mode,
        "mode_since": _iso(since if since is not None else source.recorder.started_at),
        "ready": ready,
        "reason": why,
        "last_success": _iso(recorder.last_success),
        "uptime": round(source.clock() - recorder.started_at, 1),
        "period": source.period(),
        "version": recorder.version,
    }
