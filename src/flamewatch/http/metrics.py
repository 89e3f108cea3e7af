"""``/metrics``: flamewatch's Prometheus metrics, on a registry of their own.

Counters and histograms are fed by the observer hooks (through :class:`~.recorder.StatusRecorder`);
the outbox gauges are read from the store and the tick lateness from the watcher at scrape time, since
neither comes through a hook. A registry per process object (not the global one) keeps tests and two
apps in one process apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..events import CycleStats, Event
from ..store import Backlog, DeliveryStatus

__all__ = ["CONTENT_TYPE", "Metrics"]

#: The exposition format's content type (text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)
#: Live mode puts alerts within a second or two; polling within a period (a minute by default) or more.
_ALERT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    """Every metric flamewatch exports, and how each is updated."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycles = Counter("flamewatch_cycles", "Watcher cycles finished, by outcome", ["outcome"], registry=r)
        self.cycle_duration = Histogram("flamewatch_cycle_duration_seconds", "How long each cycle took",
                                        buckets=_DURATION_BUCKETS, registry=r)
        self.skipped_ticks = Counter("flamewatch_skipped_ticks", "Ticks skipped because a cycle overran", registry=r)
        self.tick_lateness = Histogram("flamewatch_tick_lateness_seconds", "How late cycles started after their tick",
                                       buckets=_LATENESS_BUCKETS, registry=r)
        self.hn_requests = Counter("flamewatch_hn_requests", "HTTP requests to the HN API (retries included)",
                                   registry=r)
        self.hn_failures = Counter("flamewatch_hn_failures", "HN items that could not be fetched", registry=r)
        self.items = Counter("flamewatch_items_fetched", "New HN items the stream fetched", registry=r)
        self.partial = Gauge("flamewatch_partial_stories", "Stories counted only partly in the last cycle",
                             registry=r)
        self.events = Counter("flamewatch_events_fired", "Events fired, by rule", ["rule"], registry=r)
        self.rule_errors = Counter("flamewatch_rule_errors", "Stories and items a rule raised on (it was skipped "
                                   "there), by rule", ["rule"], registry=r)
        self.deliveries = Counter("flamewatch_deliveries", "Delivery attempts, by notifier instance and outcome",
                                  ["instance", "outcome"], registry=r)
        self.outbox_pending = Gauge("flamewatch_outbox_pending", "Outbox rows waiting to be sent, by instance",
                                    ["instance"], registry=r)
        self.outbox_dead = Gauge("flamewatch_outbox_dead", "Outbox rows given up on, by instance", ["instance"],
                                 registry=r)
        self.outbox_rows = Gauge("flamewatch_outbox_rows", "Outbox rows by notifier instance and delivery state "
                                 "(pending, sent, grouped, silenced, superseded, dead): deliveries by outcome",
                                 ["instance", "state"], registry=r)
        self.last_success = Gauge("flamewatch_last_success_timestamp_seconds",
                                  "Unix time the last successful cycle ended", registry=r)
        self.leader = Gauge("flamewatch_leader", "1 while this instance sends (single, or the leader of a "
                            "shared store), 0 while it stands by", ["role"], registry=r)
        self.alert_latency = Histogram(
            "flamewatch_alert_latency_seconds",
            "From the event's firing (since=seen: flamewatch saw the item, or the count crossing a level) or the "
            "item's own HN time (since=hn: replies, mentions) to its delivery's success, by rule",
            ["rule", "since"], buckets=_ALERT_BUCKETS, registry=r)
        self._skipped_seen = 0
        self._lateness_seen = 0

    def cycle_done(self, stats: CycleStats, last_success: float | None) -> None:
        """Count one finished (or failed) cycle."""
        self.cycles.labels("failed" if stats.failed else "ok").inc()
        self.cycle_duration.observe(stats.elapsed)
        if stats.skipped_ticks > self._skipped_seen:  # the watcher reports a running total
            self.skipped_ticks.inc(stats.skipped_ticks - self._skipped_seen)
            self._skipped_seen = stats.skipped_ticks
        self.hn_requests.inc(stats.requests)
        self.hn_failures.inc(stats.errors)
        self.items.inc(stats.new_items)
        for rule, count in stats.rule_errors:
            self.rule_errors.labels(rule).inc(count)
        if stats.failed is None:
            self.partial.set(stats.partial)
        if last_success is not None:
            self.last_success.set(last_success)

    def event_fired(self, event: Event) -> None:
        self.events.labels(event.rule).inc()

    def delivery_done(self, instance: str, ok: bool) -> None:
        self.deliveries.labels(instance, "delivered" if ok else "failed").inc()

    def alert_delivered(self, event: Event, now: float) -> None:
        """Observe how long after it was seen (and after its HN time, when it has one) an alert got through."""
        self.alert_latency.labels(event.rule, "seen").observe(max(0.0, now - event.at.timestamp()))
        if event.subject is not None and event.subject.time is not None:
            self.alert_latency.labels(event.rule, "hn").observe(max(0.0, now - event.subject.time))

    def ticks_started(self, started: int, lateness: Iterable[float]) -> None:
        """Observe the lateness of the cycles started since the last call (``started`` is the running
        total; ``lateness`` the watcher's bounded list, newest last)."""
        new = started - self._lateness_seen
        if new <= 0:
            return
        recent = list(lateness)[-new:]
        for value in recent:
            self.tick_lateness.observe(max(0.0, value))
        self._lateness_seen = started

    def outbox(self, instances: Iterable[str], backlog: Iterable[Backlog]) -> None:
        """Set the outbox gauges from the store's counts (every configured instance gets a value, 0 included)."""
        counted = {row.instance: row for row in backlog}
        for name in set(instances) | set(counted):
            row = counted.get(name)
            self.outbox_pending.labels(name).set(row.pending if row else 0)
            self.outbox_dead.labels(name).set(row.dead if row else 0)

    def outbox_states(self, instances: Iterable[str], counts: Mapping[str, Mapping[str, int]]) -> None:
        """Set the rows-by-state gauge from the store's counts (every state of every instance, 0 included)."""
        self.outbox_rows.clear()  # an instance gone since the last scrape must not linger
        for name in set(instances) | set(counts):
            for state in DeliveryStatus:
                self.outbox_rows.labels(name, str(state)).set(counts.get(name, {}).get(state, 0))

    def exposition(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
