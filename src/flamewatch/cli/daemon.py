"""What ``run`` and ``once`` add around an :class:`~flamewatch.app.App`: SIGHUP reloads, a progress line
for the first cycle, and summaries that agree with ``flamewatch outbox``."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from ..app import App
from ..events import CycleStats
from ..store import DeliveryStatus
from .common import first_line, plural
from .progress import Progress

log = logging.getLogger("flamewatch")


def install_reload_signal(app: App) -> set[asyncio.Task[None]]:
    """Re-read the config on SIGHUP (never fatal); returns the set holding the running reload tasks."""
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        log.info("SIGHUP received: re-reading %s", app.config.source)
        try:
            reason = await app.reload()
        except Exception as exc:  # a bug must not end the daemon: keep running what worked so far
            log.debug("reload failed", exc_info=True)
            reason = f"unexpected {type(exc).__name__}: {first_line(exc)}"
        if reason is not None:
            log.error("config not reloaded, still running the previous one: %s", reason)

    def on_hup() -> None:
        task = loop.create_task(reload(), name="reload")
        running.add(task)
        task.add_done_callback(running.discard)

    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    return running


def first_cycle_progress(
    app: App, cycle: Callable[[int], Awaitable[CycleStats]]
) -> Callable[[int], Awaitable[CycleStats]]:
    """``cycle`` with a progress line (on a terminal) during the first one, which walks every tree."""
    first = True

    async def wrapped(number: int) -> CycleStats:
        nonlocal first
        if not first or app.client is None:
            return await cycle(number)
        first = False
        client = app.client
        before = client.stats.requests
        async with Progress("first cycle", done=lambda: client.stats.requests - before):
            return await cycle(number)

    return wrapped


async def failed_deliveries(app: App) -> int:
    """Deliveries of this run's instances that failed: dead letters and rows waiting for a retry."""
    assert app.store is not None and app.dispatcher is not None
    waiting = [r for r in await app.store.outbox("pending") if r.last_error and r.instance in app.dispatcher.instances]
    return app.dispatcher.stats.dead + len(waiting)


def shutdown_summary(app: App) -> str:
    """The stop line: deliveries finished during shutdown, and the outbox as ``flamewatch outbox`` counts it."""
    report = app.close_report
    finished = plural(report.finished if report else 0, "delivery", "deliveries")
    counts = app.final_outbox_counts
    if counts is None:
        return f"{finished} finished during shutdown"
    waiting = {status: n for status, n in counts.items() if not DeliveryStatus(status).finished and n}
    outbox = ", ".join(f"{n} {status}" for status, n in sorted(waiting.items())) or "nothing pending"
    return f"{finished} finished during shutdown; outbox: {outbox} ('flamewatch outbox' lists them)"
