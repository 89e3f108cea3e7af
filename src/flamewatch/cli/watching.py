"""Commands that watch Hacker News: run (the daemon), once, demo, simulate (``count`` is in :mod:`.counting`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from ..app import App
from ..config import Config
from ..crawl import CrawlResult
from ..events import CycleStats
from ..hn import FetchError
from ..http.api import Reload
from ..http.server import start_http, stop_http
from ..watch import Watcher
from .common import EXIT_CONFIG, CliError, config_from_args, log, plural, print_error
from .daemon import failed_deliveries, first_cycle_progress, install_reload_signal, shutdown_summary

# --- run / once ------------------------------------------------------------------------------------


def _refuse_to_start(app: App) -> None:
    """Stop at once, naming each notifier that can never start (a bad token, say), when there is one."""
    refused = app.permanent_start_failures()
    if refused:
        app.drain_timeout = 0.0
        for line in refused[:-1]:
            print_error(line)
        raise CliError(f"{refused[-1]} (fix it, or set enabled = false in its [[notifiers]] table)", EXIT_CONFIG)


def _log_watching(app: App, config: Config) -> None:
    """The line saying what a watcher that starts now watches, how often, where, and with what."""
    lists = ", ".join(f"{w.name} (top {w.top})" for w in config.watch.watched_lists())
    log.info("watching %s every %gs at %s; %s; store %s (%s)", lists, config.watch.period,
             app.api_url, plural(len(app.instances), "notifier"), app.store_label, app.role)


async def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.period is not None:  # a positive, finite duration (checked by the parser)
        config = _with_watch(config, period=args.period)
    store_gone: list[str] = []
    async with App(config, store_path=args.store, api_url=args.api_url, backfill=args.backfill, owner="run",
                   live=True) as app:
        assert app.monitor is not None
        _refuse_to_start(app)
        current: dict[str, Any] = {"watcher": None, "standby": None}

        def stop_now() -> None:
            if current["watcher"] is not None:
                current["watcher"].stop()
            if current["standby"] is not None:
                current["standby"].cancel()

        def on_done(stats: CycleStats) -> None:
            app.plugins.notify("flamewatch_cycle_done", stats=stats)
            # Checked after every cycle: a daemon writing on into a deleted (or swapped) store file would
            # lose every fired key and repeat those alerts at its next start. Stop, and say so once.
            if not store_gone and (problem := app.store_problem()) is not None:
                store_gone.append(problem)
                stop_now()

        stop = _install_stop_signals(stop_now)
        install_reload_signal(app)
        http = await start_http(app, listen=args.http, watcher=None, reload=_reload_of(app))
        try:
            # With a shared (PostgreSQL) store, only the leader runs cycles: wait as standby until this
            # instance leads, and go back to waiting if it loses the lead (its sends stopped at once).
            while await _wait_to_lead(app, current):
                if stop["at"] is not None:
                    break  # stopped just as this instance came to lead
                watcher = Watcher(first_cycle_progress(app, app.monitor.cycle), config.watch.period,
                                  cycle_timeout=config.watch.cycle_timeout, on_done=on_done)
                current["watcher"] = watcher
                if http is not None:
                    http.source.watcher = watcher  # /metrics reads tick lateness from the running watcher
                app.on_leadership_lost = watcher.stop
                if app.role == "standby":
                    current["watcher"] = None
                    continue  # lost the lead before this watcher could hear of it: compete again
                _log_watching(app, config)
                await watcher.run(finish_timeout=config.watch.shutdown_timeout / 2)
                current["watcher"] = None
                if stop["at"] is not None or app.role != "standby" or store_gone:
                    break
        finally:
            await stop_http(app, http)
        # The running cycle's grace period came out of the same shutdown budget: drain for the rest.
        spent = time.monotonic() - stop["at"] if stop["at"] is not None else 0.0
        app.drain_timeout = max(0.0, config.watch.shutdown_timeout - spent)
        log.info("stopping: draining deliveries (up to %.1fs)", app.drain_timeout)
    log.info("stopped: %s", shutdown_summary(app))
    if store_gone:
        raise CliError(f"{store_gone[0]}; stopped (restart flamewatch to use the store at that path)")
    return 0


def _reload_of(app: App) -> Reload | None:
    """``App.reload`` (re-reading the config) for ``POST /-/reload``, when this version has it."""
    reload: Reload | None = getattr(app, "reload", None)
    return reload


async def _wait_to_lead(app: App, current: dict[str, Any]) -> bool:
    """Wait until ``app`` may run cycles (at once for a single instance); False if stopped meanwhile."""
    task = asyncio.ensure_future(app.lead())
    current["standby"] = task
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled() and not _current_task_cancelling():
            return False  # a stop signal while waiting as standby
        raise
    finally:
        current["standby"] = None
    return True


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _install_stop_signals(stop_now: Callable[[], None]) -> dict[str, float | None]:
    """Call ``stop_now`` on the first SIGINT/SIGTERM, exit at once on the second.

    Returns a dict whose ``"at"`` is the ``time.monotonic()`` of the first signal (None until then).
    """
    loop = asyncio.get_running_loop()
    state: dict[str, float | None] = {"at": None}

    def on_signal(signame: str) -> None:
        if state["at"] is not None:
            # Second signal: leave now. The store is transactional; queued deliveries resume next start.
            print(f"flamewatch: {signame} again, exiting at once", file=sys.stderr)
            os._exit(130)
        state["at"] = time.monotonic()
        log.info("%s received: finishing the current cycle and deliveries (send again to exit at once)", signame)
        stop_now()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    return state


async def cmd_once(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.top is not None:  # at least 1 (checked by the parser)
        config = _with_watch(config, top=args.top)
    async with App(config, store_path=args.store, api_url=args.api_url, backfill=args.backfill, owner="once") as app:
        assert app.monitor is not None and app.dispatcher is not None
        await app.lead(wait=False)  # a shared store: only when no leader runs (else one line, exit 1)
        try:
            stats = await app.monitor.cycle(0)
        except FetchError as exc:
            raise CliError(f"cannot fetch the story list: {exc}") from None
        try:
            async with asyncio.timeout(config.watch.shutdown_timeout):
                await app.dispatcher.wait_idle()
        except TimeoutError:
            log.warning("deliveries still running after %gs; they stay in the outbox", config.watch.shutdown_timeout)
        for rank, result in enumerate(app.monitor.last_results, start=1):
            if args.json:
                print(json.dumps(result.to_json()))
            else:
                print(_story_line(rank, result))
        failed = await failed_deliveries(app)
        d = app.dispatcher.stats
        log.info("%s, %s, %s, %d partial, %s in %.2fs; deliveries: %d delivered, %d failed (%d dead)",
                 plural(stats.stories, "story", "stories"), plural(stats.requests, "request"),
                 plural(stats.errors, "error"), stats.partial, plural(stats.events, "new event"), stats.elapsed,
                 d.delivered, failed, d.dead)
    if failed:
        raise CliError(f"{plural(failed, 'delivery', 'deliveries')} failed; 'flamewatch outbox' shows why")
    return 0


def _story_line(rank: int, result: CrawlResult) -> str:
    """The "Post X has N comments" line, with the rank and a printable title."""
    title = "".join(ch if ch.isprintable() else " " for ch in result.title)[:80] or "(no title)"
    count = f"{result.comments}+ comments" if result.partial else plural(result.comments, "comment")
    return f"{rank:>3}. Post {result.story_id} has {count}: {title}"


def _with_watch(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, watch=dataclasses.replace(config.watch, **changes))


# --- demo / simulate -------------------------------------------------------------------------------


async def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return await run_demo(duration=args.duration, period=args.period, seed=args.seed, http=args.http)


async def cmd_simulate(args: argparse.Namespace) -> int:
    from ..simulator import run_simulate

    task = asyncio.ensure_future(run_simulate(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return 0


