"""What the HTTP face remembers of a running flamewatch: an internal observer plugin.

:class:`StatusRecorder` is registered on the plugin manager like any plugin and hears the observer hooks
(``flamewatch_cycle_done``, ``flamewatch_event_fired``, ``flamewatch_delivery_done``). It keeps bounded
rings of recent cycles and events for the status page (a daemon running for months must not grow), the
stories counted by the last good cycle, and feeds the Prometheus :class:`~.metrics.Metrics`.
Every change bumps :attr:`StatusRecorder.version`, which the page polls to know when to redraw.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import hookimpl
from ..events import CycleStats, Event, StorySnapshot
from .metrics import Metrics

__all__ = ["DeliveryOutcome", "RecentEvent", "StatusRecorder"]

#: How many recent cycles and events the page can show.
RING_SIZE = 50


@dataclass
class DeliveryOutcome:
    """The last attempt to deliver one event to one notifier instance, as the hooks reported it."""

    ok: bool
    error: str | None
    at: float
    attempts: int = 1


@dataclass
class RecentEvent:
    """An event fired by this process, with what became of its deliveries per instance."""

    event: Event
    fired_at: float
    deliveries: dict[str, DeliveryOutcome] = field(default_factory=dict)


class StatusRecorder:
    """The observer plugin behind the status page, the API and ``/metrics``."""

    def __init__(self, metrics: Metrics | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.cycles: deque[CycleStats] = deque(maxlen=RING_SIZE)
        self.events: deque[RecentEvent] = deque(maxlen=RING_SIZE)
        self._by_key: dict[str, RecentEvent] = {}
        #: The stories the last cycle that counted any, by rank.
        self.stories: tuple[StorySnapshot, ...] = ()
        #: Unix time the last cycle without failure ended, or None before the first one.
        self.last_success: float | None = None
        #: The sources the last good cycle found stale (each a reason): not ready while there are any.
        self.stale: tuple[str, ...] = ()
        #: Bumped on every change the page shows; the page polls it.
        self.version = 0
        self.started_at = clock()

    # -- hooks -----------------------------------------------------------------------------------------

    @hookimpl
    def flamewatch_cycle_done(self, stats: CycleStats) -> None:
        """Remember the cycle and its stories; count it in the metrics."""
        self.cycles.append(stats)
        if stats.failed is None:
            self.last_success = self.clock()
            self.stale = stats.stale
            if stats.counted:
                ranked = sorted(stats.counted, key=lambda s: (s.rank is None, s.rank or 0, s.id))
                self.stories = tuple(ranked)
        self.metrics.cycle_done(stats, self.last_success)
        self.version += 1

    @hookimpl
    def flamewatch_event_fired(self, event: Event) -> None:
        """Remember the event (the oldest one leaves the ring) and count it by rule."""
        if len(self.events) == self.events.maxlen:
            self._by_key.pop(self.events[0].event.key, None)
        recent = RecentEvent(event, self.clock())
        self.events.append(recent)
        self._by_key[event.key] = recent
        self.metrics.event_fired(event)
        self.version += 1

    @hookimpl
    def flamewatch_delivery_done(self, event: Event, notifier: str, ok: bool, error: str | None) -> None:
        """Remember the outcome of the latest attempt for (event, instance), and count it."""
        self.metrics.delivery_done(notifier, ok)
        if ok:
            self.metrics.alert_delivered(event, self.clock())
        recent = self._by_key.get(event.key)
        if recent is not None:
            before = recent.deliveries.get(notifier)
            attempts = before.attempts + 1 if before is not None else 1
            recent.deliveries[notifier] = DeliveryOutcome(ok, error, self.clock(), attempts)
        self.version += 1

    # -- questions -------------------------------------------------------------------------------------

    def ready(self, period: float, store_open: bool) -> tuple[bool, str]:
        """Ready once the store is open and a cycle finished within the last three periods; and why not."""
        if not store_open:
            return False, "store not open"
        if self.last_success is None:
            return False, "no cycle finished yet"
        age = self.clock() - self.last_success
        if age > 3 * period:
            return False, f"last good cycle {age:.0f}s ago (more than 3 periods of {period:g}s)"
        if self.stale:
            return False, "stale source: " + "; ".join(self.stale)
        return True, "ok"

    def touch(self) -> None:
        """Note a change not coming through a hook (a reload), so the page redraws."""
        self.version += 1
