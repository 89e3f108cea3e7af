"""The dispatcher's decisions as pure values: which events a notifier instance takes, when a digest is
sent, and how long to wait before retrying a failed delivery.

Nothing here touches asyncio or the store, so each policy can be tested (and reasoned about) alone; the
:class:`~flamewatch.dispatch.runtime.Dispatcher` only asks them questions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from datetime import time as dtime
from zoneinfo import ZoneInfo

from ..config.model import DeliverySettings
from ..events import Event

__all__ = ["FLOOD_WINDOW", "DigestSchedule", "QuietHours", "RetryPolicy", "Route"]

#: The flood cap's window: ``max_per_hour`` counts the messages of the last this many seconds.
FLOOD_WINDOW = 3600.0


@dataclass(frozen=True)
class Route:
    """Which events one notifier instance takes. Empty/None means "no restriction"."""

    rules: frozenset[str] | None = None
    min_comments: int = 0
    min_points: int = 0
    min_level: int = 0  # numeric levels worse than this by their rule's LevelOrder are not taken
    lists: frozenset[str] | None = None
    keywords: tuple[str, ...] = ()
    users: frozenset[str] | None = None  # only events about these users: replies to them, their stories

    def describe(self) -> str:
        """The route in words, for ``flamewatch check``."""
        parts = []
        if self.rules is not None:
            parts.append(f"rules {', '.join(sorted(self.rules))}")
        if self.min_comments:
            parts.append(f">= {self.min_comments} comments")
        if self.min_points:
            parts.append(f">= {self.min_points} points")
        if self.min_level:
            parts.append(f"levels >= {self.min_level}")
        if self.lists is not None:
            parts.append(f"lists {', '.join(sorted(self.lists))}")
        if self.users is not None:
            parts.append(f"users {', '.join(sorted(self.users))}")
        if self.keywords:
            parts.append(f"keywords {', '.join(self.keywords)}")
        return "; ".join(parts) or "all events"

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` goes to the notifier instance with this route."""
        if self.rules is not None and event.rule not in self.rules:
            return False
        if self.lists is not None and event.source_list not in self.lists and not (self.lists & set(event.story.lists)):
            return False
        if self.users is not None and not about_users(event, self.users):
            return False
        if event.story.comments < self.min_comments or event.story.score < self.min_points:
            return False
        if self.min_level and not event.level_order.at_least(event.level, self.min_level):
            return False
        if self.keywords:
            title = event.story.title.casefold()
            return any(kw.casefold() in title for kw in self.keywords)
        return True


@dataclass(frozen=True)
class DigestSchedule:
    """When a digest instance sends: every ``every`` seconds (aligned to the epoch), or daily at ``at`` local time."""

    every: float | None = None
    at: dtime | None = None

    def describe(self) -> str:
        """The schedule in words, for ``flamewatch check``."""
        return f"digest every {self.every:g}s" if self.every is not None else f"digest daily at {self.at:%H:%M}"

    def next_after(self, now: float) -> float:
        """The first send time strictly after ``now`` (Unix seconds)."""
        if self.every is not None:
            return (math.floor(now / self.every) + 1) * self.every
        assert self.at is not None
        # Naive local datetimes: .timestamp() then applies the DST rules of that day, not today's offset.
        today = datetime.fromtimestamp(now).date()
        candidate = datetime.combine(today, self.at)
        if candidate.timestamp() <= now:
            candidate = datetime.combine(today + timedelta(days=1), self.at)
        return candidate.timestamp()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits about ``base * 2**n`` (capped), at least Retry-After.

    A failed delivery is given up (moved to the dead letters) once its next attempt would come more than
    ``max_age`` seconds after the event was first due.
    """

    base: float = DeliverySettings.retry_base
    cap: float = DeliverySettings.retry_cap
    max_age: float = DeliverySettings.max_age

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt, after ``attempts`` failed ones."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(0, attempts), 60))
        # Half fixed, half random: spreads retries out without ever retrying immediately.
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def gives_up(self, first_due: float, next_at: float) -> bool:
        """Whether an attempt at ``next_at`` would be too late for a delivery first due at ``first_due``."""
        return next_at - first_due > self.max_age


def about_users(event: Event, users: frozenset[str]) -> bool:
    """Whether ``event`` is about one of ``users``: a reply to them (its level names them) or their story."""
    if event.rule == "reply":
        return event.level in users
    return event.story.by in users


@dataclass(frozen=True)
class QuietHours:
    """A daily window (``22:00-07:00``, in ``timezone`` or the machine's local time) when an instance sends
    nothing: what falls due inside it waits for its end (a digest included)."""

    start: dtime
    end: dtime
    timezone: str | None = None

    def describe(self) -> str:
        """The window in words, for ``flamewatch check``."""
        return f"quiet {self.start:%H:%M}-{self.end:%H:%M}" + (f" {self.timezone}" if self.timezone else "")

    def end_after(self, now: float) -> float | None:
        """When the window holding ``now`` ends (Unix seconds), or None when ``now`` is outside it."""
        zone: tzinfo | None = ZoneInfo(self.timezone) if self.timezone else None
        local = datetime.fromtimestamp(now, zone)
        moment = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside = self.start <= moment < self.end
            day = local.date()
        else:  # the window crosses midnight
            inside = moment >= self.start or moment < self.end
            day = local.date() + timedelta(days=1) if moment >= self.start else local.date()
        if not inside:
            return None
        # Naive datetimes in local time (zone None): .timestamp() applies that day's DST rules.
        return datetime.combine(day, self.end, tzinfo=zone).timestamp()

    def not_before(self, due: float) -> float:
        """``due``, or the end of the window when ``due`` falls inside it."""
        end = self.end_after(due)
        return due if end is None else end
