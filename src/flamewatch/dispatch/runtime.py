"""Route events to notifier instances through the outbox, as tracked fire-and-forget tasks.

The flow for one event:

1. :meth:`Dispatcher.publish` asks each instance's :class:`Route` whether it wants the event, then
   records the event and one outbox row per chosen instance in a single store transaction (a key that
   already fired is dropped there: no repeat alerts, even across restarts).
2. Each instance has a *lane*: a pump task that takes due outbox rows and starts one delivery task per
   row (or one per batch, for a digest), at most ``concurrency`` at a time. Deliveries run in a
   :class:`~flamewatch.tasks.TaskRegistry`, never on the watcher's path, so a slow notifier cannot
   delay a cycle.
3. A delivery that succeeds marks its rows done; a retryable failure reschedules them with exponential
   backoff and jitter (never sooner than ``Retry-After``) until ``max_age``; a permanent failure, or
   running out of time, moves them to the dead-letter state with the reason.
4. :meth:`Dispatcher.close` stops the pumps, lets running deliveries finish within the shutdown
   timeout and cancels the rest: their rows stay pending and are resumed on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import socket
import time
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING

from ..config.model import DeliverySettings
from ..events import Event
from ..notifier import DeliveryError, Notifier, PermanentDeliveryError
from ..tasks import CloseReport, TaskRegistry

if TYPE_CHECKING:
    from ..rules import Evaluation
    from ..store import Delivery, Store

log = logging.getLogger("flamewatch.dispatch")

#: A notifier step (the code between two awaits) running longer than this blocked every other task:
#: the watcher's ticks, the HN crawl and the other notifiers. It is reported with the notifier's name.
BLOCKING_WARN_SECONDS = 0.1

#: An idle pump re-reads its outbox at least this often, even when nothing woke it: rows requeued by
#: ``flamewatch outbox retry`` from another process, or recorded by a publish cancelled before it woke us.
POLL_SECONDS = 30.0

#: How long a pump, or a delivery whose outcome could not be written, waits after a store error.
STORE_ERROR_BACKOFF = 5.0

#: Who this flamewatch instance is when it claims outbox rows: an instance elsewhere sharing the store
#: leaves them alone until the claim lapses. The name outlives the process on purpose: restarted after a
#: crash (kill -9), the instance takes its unfinished rows back at once instead of waiting out its own
#: claims. Within the process, rows in flight are told apart in memory (``Lane.inflight``).
CLAIM_OWNER = socket.gethostname()

#: A claim lasts the lane's attempt timeout plus this, the time to record the outcome.
CLAIM_MARGIN = 30.0


@dataclass(frozen=True)
class Route:
    """Which events one notifier instance takes. Empty/None means "no restriction"."""

    rules: frozenset[str] | None = None
    min_comments: int = 0
    min_points: int = 0
    min_level: int = 0  # numeric levels (comments, points, velocity) below this are not taken
    lists: frozenset[str] | None = None
    keywords: tuple[str, ...] = ()

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
        if self.keywords:
            parts.append(f"keywords {', '.join(self.keywords)}")
        return "; ".join(parts) or "all events"

    def accepts(self, event: Event) -> bool:
        if self.rules is not None and event.rule not in self.rules:
            return False
        if self.lists is not None and event.source_list not in self.lists:
            return False
        if event.story.comments < self.min_comments or event.story.score < self.min_points:
            return False
        if self.min_level and isinstance(event.level, int) and event.level < self.min_level:
            return False
        if self.keywords:
            title = event.story.title.casefold()
            return any(kw.casefold() in title for kw in self.keywords)
        return True


@dataclass(frozen=True)
class DigestSchedule:
    """When a digest lane sends: every ``every`` seconds (aligned to the epoch), or daily at ``at`` local time."""

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
    """Exponential backoff with jitter: attempt n waits about ``base * 2**n`` (capped), at least Retry-After."""

    base: float = DeliverySettings.retry_base
    cap: float = DeliverySettings.retry_cap
    max_age: float = DeliverySettings.max_age

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(max(0, attempts), 60)))
        # Half fixed, half random: spreads retries out without ever retrying immediately.
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


@dataclass
class Lane:
    """One notifier instance as the dispatcher runs it."""

    notifier: Notifier
    route: Route = field(default_factory=Route)
    digest: DigestSchedule | None = None
    timeout: float = DeliverySettings.timeout
    concurrency: int = 1

    @property
    def name(self) -> str:
        return self.notifier.name

    def __post_init__(self) -> None:
        self.inflight: set[int] = set()
        self.held: dict[int, float] = {}  # row id -> not before (when its outcome could not be stored)
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(self.concurrency)


@dataclass
class DispatchStats:
    events: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0


HookCaller = Callable[..., None]


class Dispatcher:
    """Owns the lanes, their pumps and every delivery task."""

    def __init__(
        self,
        store: Store,
        lanes: Sequence[Lane],
        *,
        retry: RetryPolicy | None = None,
        on_event: HookCaller | None = None,
        on_delivery: HookCaller | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lanes = {lane.name: lane for lane in lanes}
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self._on_event = on_event
        self._on_delivery = on_delivery
        self.deliveries = TaskRegistry("deliveries")
        self._pumps: list[asyncio.Task[None]] = []
        self.stats = DispatchStats()
        self._changed = asyncio.Condition()  # notified whenever a delivery attempt ends

    # --- events in ------------------------------------------------------------------------------

    async def publish(self, evaluation: Evaluation) -> list[Event]:
        """Record the evaluation's events and queue deliveries; returns the events that were new."""
        now = self.clock()
        routes: dict[str, list[str]] = {}
        for event in evaluation.announce:
            routes[event.key] = [lane.name for lane in self.lanes.values() if lane.route.accepts(event)]
        for event in evaluation.passed:
            routes[event.key] = []  # recorded as fired so it is never announced later
        not_before = {name: lane.digest.next_after(now) for name, lane in self.lanes.items() if lane.digest}
        try:
            new = await self.store.record_events([*evaluation.announce, *evaluation.passed], routes, now, not_before)
        finally:
            # The write may have committed even if this task is being cancelled (a cycle timeout): wake the
            # lanes regardless, so committed rows do not wait for some unrelated event.
            for name in {n for names in routes.values() for n in names}:
                self.lanes[name].wake.set()
        announce_keys = {e.key for e in evaluation.announce}
        fresh = [e for e in new if e.key in announce_keys]
        for event in fresh:
            self.stats.events += 1
            if self._on_event is not None:
                self._on_event(event=event)
        return fresh

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every lane's notifier and pump; pending rows from an earlier run are resumed."""
        for lane in self.lanes.values():
            try:
                async with asyncio.timeout(lane.timeout):  # a hanging start must not hold up the others
                    await lane.notifier.start()
            except Exception as exc:
                # A bad token or an unreachable server must not stop the other notifiers; this lane's
                # deliveries will fail visibly (retry, or dead letters with the reason) until it is fixed.
                kind = "permanent" if isinstance(exc, PermanentDeliveryError) else type(exc).__name__
                log.error("notifier %s: failed to start (%s): %s", lane.name, kind, exc)
            lane.wake.set()
            self._pumps.append(asyncio.create_task(self._pump(lane), name=f"pump:{lane.name}"))
        orphans: dict[str, int] = {}
        for row in await self.store.pending():
            if row.instance not in self.lanes:
                orphans[row.instance] = orphans.get(row.instance, 0) + 1
        for instance, count in sorted(orphans.items()):
            log.warning("%d deliveries are queued for notifier %r, which is not configured (or not enabled) now; "
                        "they wait for it to come back ('flamewatch outbox drop' removes them)", count, instance)

    async def flush_digests(self, instance: str | None = None) -> int:
        """Make every waiting digest due now (all digest lanes, or the one named); returns the rows moved."""
        now = self.clock()
        moved = 0
        for lane in self.lanes.values():
            if lane.digest is None or (instance is not None and lane.name != instance):
                continue
            ids = [r.id for r in await self.store.pending(lane.name) if r.next_at > now]
            if ids:
                moved += await self.store.requeue(ids, now)
                lane.wake.set()
        return moved

    async def wait_for(self, predicate: Callable[[DispatchStats], bool]) -> None:
        """Wait until ``predicate(self.stats)`` holds; re-checked after every delivery attempt."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.stats))

    async def wait_idle(self) -> None:
        """Wait until nothing is due or in flight (tests and ``once`` use this)."""
        while True:
            await self.deliveries.wait_idle()
            due = [r for r in await self.store.due(self.clock()) if r.instance in self.lanes]
            if not due and not len(self.deliveries):
                return
            for lane in self.lanes.values():
                lane.wake.set()
            await asyncio.sleep(0.01)

    async def close(self, timeout: float) -> CloseReport:
        """Stop the pumps, give running deliveries ``timeout`` seconds, cancel the rest, close notifiers."""
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._pumps.clear()
        report = await self.deliveries.close(timeout)
        if report.cancelled:
            log.warning("%d deliveries did not finish in %.1fs; they stay in the outbox for the next start",
                        report.cancelled, timeout)
        for lane in self.lanes.values():
            try:
                async with asyncio.timeout(lane.timeout):
                    await lane.notifier.aclose()
            except Exception as exc:  # one broken plugin must not stop the others from closing
                log.error("notifier %s: error while closing: %s", lane.name, exc)
        return report

    # --- the pump -------------------------------------------------------------------------------

    async def _pump(self, lane: Lane) -> None:
        while True:
            try:
                wait = await self._pump_once(lane)
            except Exception as exc:
                # A store error must not end this lane's deliveries for the rest of the run.
                log.error("notifier %s: cannot read the outbox (%s); trying again in %gs", lane.name,
                          str(exc) or type(exc).__name__, STORE_ERROR_BACKOFF)
                await asyncio.sleep(STORE_ERROR_BACKOFF)
                continue
            if wait > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives as the wake-up does, and close() would then wait for this pump forever.
                try:
                    async with asyncio.timeout(wait):
                        await lane.wake.wait()
                except TimeoutError:
                    pass

    async def _pump_once(self, lane: Lane) -> float:
        """Start every due row of ``lane``; returns how long to wait before looking again (0: at once)."""
        lane.wake.clear()
        now = self.clock()
        rows = [
            r for r in await self.store.claim_due(
                now, instance=lane.name, claim_for=lane.timeout + CLAIM_MARGIN, owner=CLAIM_OWNER
            )
            if r.id not in lane.inflight and lane.held.get(r.id, 0.0) <= now
        ]
        if rows:
            for row in rows:
                lane.held.pop(row.id, None)
            if lane.digest is not None:
                await self._start(lane, rows)
            else:
                for row in rows:
                    await lane.slots.acquire()
                    await self._start(lane, [row], release_slot=True)
            return 0.0
        waits = [POLL_SECONDS]
        upcoming = await self._time_to_next(lane, now)
        if upcoming is not None:
            waits.append(upcoming)
        if lane.held:
            waits.append(max(0.0, min(lane.held.values()) - now))
        return min(waits)

    async def _time_to_next(self, lane: Lane, now: float) -> float | None:
        """Seconds until this lane's next row falls due, or None (wait to be woken).

        Rows due now are all in flight at this point (the pump just started every due row it could),
        and a finishing delivery wakes the pump, so only rows due later matter. One indexed query, not
        a scan of the pending rows: a lane whose endpoint is down may hold thousands.
        """
        upcoming = await self.store.next_due_at(lane.name, after=now)
        return None if upcoming is None else max(0.0, upcoming - now)

    async def _start(self, lane: Lane, rows: list[Delivery], *, release_slot: bool = False) -> None:
        lane.inflight.update(r.id for r in rows)
        label = rows[0].event.key if len(rows) == 1 else f"digest of {len(rows)}"
        try:
            self.deliveries.spawn(self._deliver(lane, rows, release_slot), name=f"deliver:{lane.name}:{label}")
        except RuntimeError:  # the registry is closing: leave the rows pending for the next start
            lane.inflight.difference_update(r.id for r in rows)
            if release_slot:
                lane.slots.release()

    async def _deliver(self, lane: Lane, rows: list[Delivery], release_slot: bool) -> None:
        ids = [r.id for r in rows]
        events = [r.event for r in rows]
        try:
            failure = await self._attempt(lane, events)
            try:
                await self._record(lane, rows, failure)
            except Exception as exc:
                # The outcome could not be stored (disk full, database locked): the rows are still pending
                # and due, so hold them back here rather than send them again in a tight loop.
                hold = max(self.retry.delay(max(r.attempts for r in rows)), STORE_ERROR_BACKOFF)
                for row_id in ids:
                    lane.held[row_id] = self.clock() + hold
                log.error("notifier %s: %s: cannot record the delivery outcome (%s); holding it for %.0fs",
                          lane.name, _label(events), str(exc) or type(exc).__name__, hold)
            if self._on_delivery is not None:
                for event in events:
                    self._on_delivery(event=event, notifier=lane.name, ok=failure is None,
                                      error=failure.error if failure else None)
        finally:
            lane.inflight.difference_update(ids)
            if release_slot:
                lane.slots.release()
            lane.wake.set()
            async with self._changed:
                self._changed.notify_all()

    async def _attempt(self, lane: Lane, events: list[Event]) -> _Failure | None:
        """One send (or digest) through the lane's notifier, within its timeout; None on success."""
        try:
            async with asyncio.timeout(lane.timeout):
                if lane.digest is not None:
                    send = lane.notifier.send_digest(events)
                else:
                    send = lane.notifier.send(events[0])
                # A plugin's send may be any awaitable; only coroutines can be driven step by step.
                await (_StepTimer(send, lane.name) if asyncio.iscoroutine(send) else send)
        except PermanentDeliveryError as exc:
            return _Failure(str(exc) or type(exc).__name__, permanent=True)
        except Exception as exc:  # DeliveryError, TimeoutError, or a plugin's bug: all retried later
            return _Failure(_describe_failure(exc, lane.timeout), retry_after=getattr(exc, "retry_after", None))
        return None

    async def _record(self, lane: Lane, rows: list[Delivery], failure: _Failure | None) -> None:
        """Write the outcome of an attempt to the outbox: done, dead letter, or retry later."""
        ids = [r.id for r in rows]
        if failure is None:
            await self.store.mark_done(ids, self.clock())
            self.stats.delivered += len(ids)
        elif failure.permanent:
            await self.store.mark_dead(ids, error=failure.error)
            self.stats.dead += len(ids)
            log.error("notifier %s: %s: permanent failure, moved to dead letters: %s", lane.name,
                      _label(r.event for r in rows), failure.error)
        else:
            await self._retry_later(lane, rows, failure.error, failure.retry_after)

    async def _retry_later(self, lane: Lane, rows: list[Delivery], error: str, retry_after: float | None) -> None:
        now = self.clock()
        oldest = min(r.created_at for r in rows)
        if lane.digest is not None:
            # A digest row waits for its send time before its first attempt: its age counts from then.
            oldest = min(lane.digest.next_after(r.created_at) for r in rows)
        attempts = max(r.attempts for r in rows)
        next_at = now + self.retry.delay(attempts, retry_after)
        ids = [r.id for r in rows]
        if next_at - oldest > self.retry.max_age:
            await self.store.mark_dead(ids, error=f"gave up after {attempts + 1} attempts: {error}")
            self.stats.dead += len(ids)
            log.error("notifier %s: %s: gave up after %d attempts: %s", lane.name, _label(r.event for r in rows), attempts + 1, error)
            return
        await self.store.mark_retry(ids, next_at=next_at, error=error)
        self.stats.retried += len(ids)
        log.warning("notifier %s: %s: %s; retrying in %.1fs", lane.name, _label(r.event for r in rows), error, next_at - now)


@dataclass(frozen=True)
class _Failure:
    """Why a delivery attempt failed, and what that means for the next one."""

    error: str
    permanent: bool = False
    retry_after: float | None = None


class _StepTimer:
    """Await a notifier's coroutine, timing each step it runs between two awaits.

    A plugin that calls a blocking function (``time.sleep``, ``requests.post``) freezes the whole event
    loop, and asyncio alone cannot say who did it. Driving the coroutine one step at a time, as a task
    does, measures exactly the synchronous part of each step; the longest one over
    :data:`BLOCKING_WARN_SECONDS` is logged with the notifier's and the delivery task's names. Everything
    else (the futures it waits on, results, exceptions, cancellation) passes through unchanged.
    """

    def __init__(self, coro: Coroutine[object, object, None], notifier: str) -> None:
        self._coro = coro
        self._notifier = notifier
        self._longest = 0.0

    def __await__(self) -> Generator[object, object, None]:
        coro = self._coro
        task = asyncio.current_task()
        value: object = None
        error: BaseException | None = None
        try:
            while True:
                started = time.perf_counter()
                try:
                    future = coro.throw(error) if error is not None else coro.send(value)
                except StopIteration:
                    return
                finally:
                    self._longest = max(self._longest, time.perf_counter() - started)
                try:
                    value, error = (yield future), None
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # noqa: BLE001 - cancellation and errors go to the notifier's coroutine
                    value, error = None, exc
        finally:
            if self._longest > BLOCKING_WARN_SECONDS:
                log.warning(
                    "notifier %s blocked the event loop for %.2fs in one step (task %s): it must not call "
                    "blocking functions; use an async library or asyncio.to_thread",
                    self._notifier, self._longest, task.get_name() if task else "?",
                )


def _label(events: Iterable[Event]) -> str:
    events = list(events)
    return events[0].key if len(events) == 1 else f"digest of {len(events)} events"


def _describe_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, DeliveryError):
        return str(exc) or type(exc).__name__
    # Not a DeliveryError: a bug or an unexpected library error in the plugin; keep it retryable.
    return f"unexpected {type(exc).__name__}: {exc}"

