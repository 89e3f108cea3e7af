"""Commands that watch Hacker News: run (the daemon), once, count, demo, simulate."""

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
from urllib.parse import parse_qs, urlparse

from ..app import App
from ..config import Config
from ..crawl import CrawlResult, count_story
from ..hn import FetchError, HNClient, make_session
from ..watch import Watcher
from .common import EXIT_CONFIG, CliError, config_from_args, log

# --- run / once ------------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.period is not None:
        if args.period <= 0:
            raise CliError("--period must be positive", EXIT_CONFIG)
        config = _with_watch(config, period=args.period)
    async with App(config, store_path=args.store, api_url=args.api_url) as app:
        assert app.monitor is not None
        current: dict[str, Any] = {"watcher": None, "standby": None}

        def stop_now() -> None:
            if current["watcher"] is not None:
                current["watcher"].stop()
            if current["standby"] is not None:
                current["standby"].cancel()

        stop = _install_stop_signals(stop_now)
        # With a shared (PostgreSQL) store, only the leader runs cycles: wait as standby until this
        # instance leads, and go back to waiting if it loses the lead (its sends stopped at once).
        while await _wait_to_lead(app, current):
            if stop["at"] is not None:
                break  # stopped just as this instance came to lead
            watcher = Watcher(
                app.monitor.cycle,
                config.watch.period,
                cycle_timeout=config.watch.cycle_timeout,
                on_done=lambda stats: app.plugins.notify("flamewatch_cycle_done", stats=stats),
            )
            current["watcher"] = watcher
            app.on_leadership_lost = watcher.stop
            log.info("watching %s (top %d) every %gs at %s; %d notifier(s); store %s (%s)", config.watch.list,
                     config.watch.top, config.watch.period, app.api_url, len(app.instances), app.store_label,
                     app.role)
            await watcher.run(finish_timeout=config.watch.shutdown_timeout / 2)
            current["watcher"] = None
            if stop["at"] is not None or app.role != "standby":
                break
        # The running cycle's grace period came out of the same shutdown budget: drain for the rest.
        spent = time.monotonic() - stop["at"] if stop["at"] is not None else 0.0
        app.drain_timeout = max(0.0, config.watch.shutdown_timeout - spent)
        log.info("stopping: draining deliveries (up to %.1fs)", app.drain_timeout)
    report = app.close_report
    if report is not None:
        log.info("stopped: %d deliveries finished during shutdown, %d left pending in the outbox",
                 report.finished, report.cancelled)
    return 0


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
    if args.top is not None:
        if args.top < 1:
            raise CliError("--top must be at least 1", EXIT_CONFIG)
        config = _with_watch(config, top=args.top)
    async with App(config, store_path=args.store, api_url=args.api_url) as app:
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
        log.info("%d stories, %d requests, %d errors, %d partial, %d new events in %.2fs", stats.stories,
                 stats.requests, stats.errors, stats.partial, stats.events, stats.elapsed)
    return 0


def _story_line(rank: int, result: CrawlResult) -> str:
    """The seed's "Post X has N comments" line, with the rank and a printable title."""
    title = "".join(ch if ch.isprintable() else " " for ch in result.title)[:80] or "(no title)"
    count = f"{result.comments}+" if result.partial else str(result.comments)
    return f"{rank:>3}. Post {result.story_id} has {count} comments: {title}"


def _with_watch(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, watch=dataclasses.replace(config.watch, **changes))


# --- count -----------------------------------------------------------------------------------------


async def cmd_count(args: argparse.Namespace) -> int:
    story_id = args.id
    if args.url:
        if args.id is not None:
            raise CliError("give a story id or --url, not both", EXIT_CONFIG)
        story_id = _id_from_url(args.url)
    if story_id is None:
        story_id = 8863
    if story_id < 1:
        raise CliError(f"story id must be a positive number, got {story_id}", EXIT_CONFIG)
    config = config_from_args(args)
    api_url = args.api_url or config.hn.api_url
    if not api_url.startswith(("http://", "https://")):
        raise CliError(f"--api-url: expected an http:// or https:// URL, got {api_url!r}", EXIT_CONFIG)
    async with make_session() as session:
        client = HNClient(session, api_url, timeout=config.hn.timeout, retries=config.hn.retries,
                          max_inflight=config.hn.max_inflight)
        started = time.perf_counter()
        result = await count_story(client, story_id, max_depth=config.crawl.max_depth, max_items=config.crawl.max_items)
        elapsed = time.perf_counter() - started
    if result.story is None and result.failed:
        raise CliError(f"item {story_id}: {result.errors[0] if result.errors else 'cannot be fetched'}")
    if result.story is None:
        raise CliError(f"item {story_id} does not exist (HN answered null)")
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        extra = f", {result.deleted} deleted, {result.dead} dead, {result.unreachable} unreachable"
        partial = " (partial: some items could not be fetched)" if result.partial else ""
        print(f"Post {story_id} has {result.comments} comments{extra}{partial}")
    log.info("took %.2f seconds and %d fetches", elapsed, result.fetches)
    return 0


def _id_from_url(url: str) -> int:
    values = parse_qs(urlparse(url).query).get("id")
    if not values or not values[0].isdigit():
        raise CliError(f"--url {url!r}: no numeric id= argument (expected e.g. https://news.ycombinator.com/item?id=8863)",
                       EXIT_CONFIG)
    return int(values[0])


# --- demo / simulate -------------------------------------------------------------------------------


async def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return await run_demo(duration=args.duration, period=args.period, seed=args.seed)


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


