"""Assemble a running flamewatch from a :class:`~flamewatch.config.Config`, and take it apart in order.

``async with App(config) as app:`` opens the shared HTTP session, the store, the notifier instances and
the dispatcher (which resumes pending outbox rows), and builds the monitor. Leaving the block drains
deliveries within ``watch.shutdown_timeout`` and closes everything, so nothing outlives it.
"""

from __future__ import annotations

import asyncio
import sys
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, TypeGuard
from collections.abc import Callable, Sequence

import aiohttp

from .assembly import (  # re-exported: `from flamewatch.app import resolve_rules` keeps working
    bind_watchlist,
    load_plugins,
    open_notifier,
    resolve_notifier,
    resolve_notifiers,
    resolve_rules,
)
from .config import Config
from .dispatch import Dispatcher, RetryPolicy
from .dispatch.recording import while_held
from .errors import PermanentDeliveryError
from .bootstrap import TreeSource
from .incremental import IncrementalCounter
from .live import LiveDriver
from .hn.livesource import LiveSource
from .stream import STREAM_STATE, ItemStream
from .monitor import Monitor
from .pipeline import PipelineSettings
from .people import FOLLOWS_STATE, Watchlist
from .plugins import Plugins
from .rules import Rule, RuleEngine
from .hn import HNClient, make_session
from .store import InstanceLock, Store, StoreError, open_store
from .store.factory import configured_location, describe_location
from .tasks import CloseReport


if TYPE_CHECKING:
    from .store.postgres import PostgresStore

log = logging.getLogger("flamewatch.app")

__all__ = ["App", "bind_watchlist", "load_plugins", "open_notifier", "resolve_notifier", "resolve_notifiers",
           "resolve_rules"]


class App:
    """A configured flamewatch: session, HN client, store, plugins, dispatcher and monitor."""

    def __init__(
        self,
        config: Config,
        *,
        plugins: Plugins | None = None,
        store_path: str | None = None,
        api_url: str | None = None,
        backfill: bool = False,
        sender: bool = True,
        owner: str = "flamewatch",
        clock: Callable[[], float] = time.time,
        live: bool = False,
    ) -> None:
        """``sender``: take the store's instance lock on entering (see :meth:`_take_lock`), so no other
        flamewatch sends from the same store; ``owner`` says who we are in the lock (``"run"``, ``"once"``).
        ``clock``: the time (Unix seconds) every part reads: the cycle, the store, the dispatcher and the
        watchlist get this one, so a test can run the whole path on a fake clock. ``live``: follow HN's
        event stream between cycles when ``[watch] live`` allows (``run``, ``demo``)."""
        self.config = config
        self.clock = clock
        #: ``--backfill``: a watched user's first run announces what it finds instead of only recording it.
        self.backfill = backfill
        self.sender = sender
        self.owner = owner
        #: The store's instance lock while this App holds it (None when ``sender`` is False).
        self.lock: InstanceLock | None = None
        self.plugins = plugins or load_plugins(config)
        self.rules = resolve_rules(config, self.plugins)  # ConfigError before anything opens
        #: The enabled notifier instances (opened, and handed to the dispatcher, on entering the block).
        self.instances = resolve_notifiers(config, self.plugins)
        self.store_path = configured_location(config.store, store_path)  # may hold a password: never log it
        #: The store as it may be shown (a URL without its password).
        self.store_label = describe_location(self.store_path)
        self.api_url = api_url or config.hn.api_url
        self.session: aiohttp.ClientSession | None = None
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        self.monitor: Monitor | None = None
        self.stream: ItemStream | None = None
        self.client: HNClient | None = None
        self.live = live and config.watch.live
        #: Live mode's driver while it runs (its ``source`` says live or polling, and since when).
        self.live_driver: LiveDriver | None = None
        self.close_report: CloseReport | None = None
        #: Seconds running deliveries get to finish when the block is left. ``run`` lowers it to what is
        #: left of ``watch.shutdown_timeout`` after the last cycle, so the whole stop stays within it.
        self.drain_timeout = config.watch.shutdown_timeout
        self._reload_lock = asyncio.Lock()
        #: Outbox rows by status once the dispatcher has stopped (None: not known).
        self.final_outbox_counts: dict[str, int] | None = None
        #: "single" (the only sender of its store), "standby" (waiting for the leader lock of a shared
        #: store) or "leader" (holding it). The status page and /metrics show it.
        self.role = "single"
        #: Called (no arguments) when this instance loses the lead; ``run`` stops its watcher with it.
        self.on_leadership_lost: Callable[[], None] | None = None
        self._single_guard: Callable[[], bool] | None = None  # may_send of a single instance (says loss once)

    async def __aenter__(self) -> App:
        try:
            await self._open()
        except BaseException:
            await self._close(0.0)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close(self.drain_timeout)

    async def _open(self) -> None:
        cfg = self.config
        self.session = make_session(limit=max(100, cfg.hn.max_inflight * 2))
        self.client = HNClient(
            self.session, self.api_url, timeout=cfg.hn.timeout, retries=cfg.hn.retries, max_inflight=cfg.hn.max_inflight
        )
        self.store = await open_store(self.store_path, clock=self.clock)
        if _shared(self.store):
            self.role = "standby"  # nothing is sent until lead() takes the leader lock
        else:
            await self._take_lock(self.store)
        for instance in self.instances:
            open_notifier(instance, self.session, self.store)
        self.dispatcher = Dispatcher(
            self.store,
            self.instances,
            retry=RetryPolicy(cfg.delivery.retry_base, cfg.delivery.retry_cap, cfg.delivery.max_age),
            on_event=lambda **kw: self.plugins.notify("flamewatch_event_fired", **kw),
            on_delivery=lambda **kw: self.plugins.notify("flamewatch_delivery_done", **kw),
            may_send=self.may_send,
            clock=self.clock,
        )
        await self.dispatcher.start()
        counter = None
        if cfg.crawl.incremental:
            trees = None if not cfg.crawl.tree_bootstrap else TreeSource(
                self.client, cfg.crawl.tree_url, max_items=cfg.crawl.max_items)
            counter = IncrementalCounter(self.client, max_depth=cfg.crawl.max_depth, max_items=cfg.crawl.max_items,
                                         trees=trees)
        self.stream = self._make_stream(counter)
        watchlist = await self._make_watchlist()
        self.monitor = Monitor(
            self.client,
            self.store,
            self.rule_engine(self.rules),
            self.dispatcher,
            PipelineSettings.from_config(cfg),
            counter=counter,
            stream=self.stream,
            watchlist=watchlist,
            clock=self.clock,
        )
        if self.live and self.stream is not None:
            # The lists watched at start are followed; a list a reload adds is ranked by the cycles alone.
            source = LiveSource(self.session, self.api_url, lists=[n for n, _ in self.monitor.settings.watched_lists()])
            self.live_driver = LiveDriver(self.monitor, source, active=lambda: self.role != "standby")
            self.live_driver.start()

    def rule_engine(self, rules: Sequence[Rule]) -> RuleEngine:
        """The engine running ``rules``, knowing each one's plugin (named when a rule raises)."""
        return RuleEngine(rules, owners={rule.name: owner for rule in rules
                                         if (owner := self.plugins.rule_owner(rule.name)) is not None})

    async def _take_lock(self, store: Store) -> None:
        """Become the store's one sender, before anything resumes its outbox, or raise StoreLockedError.

        Whatever the backend's lock is (a file lock for SQLite, a leader lock for PostgreSQL), it is taken
        without waiting: a second ``run``, or a ``once`` beside a ``run``, stops at once with one line
        naming the holder rather than sending what the first one sends.
        """
        if not self.sender:
            return
        lock = store.instance_lock(self.owner)
        await lock.acquire(wait=False)
        self.lock = lock
        # Holding the store's only lock proves every earlier sender is gone (a crash, kill -9): their
        # leases on outbox rows guard sends that can no longer happen, so take those rows back now.
        released = await store.release_claims(None)
        if released:
            log.info("resuming %d deliveries a stopped flamewatch had claimed", released)

    def store_problem(self) -> str | None:
        """One line when the store's file was removed or replaced under us (see ``Store.file_problem``)."""
        return self.store.file_problem() if self.store is not None else None

    def _make_stream(self, counter: IncrementalCounter | None) -> ItemStream | None:
        """The stream of new items, feeding the counter and the ``flamewatch_new_item`` hook."""
        cfg = self.config.stream
        assert self.client is not None and self.store is not None
        if not cfg.enabled:
            return None
        stream = ItemStream(self.client, self.store.state_for(STREAM_STATE), max_gap=cfg.max_gap,
                            retries=cfg.retries, retry_for=cfg.retry_for)
        if counter is not None:
            stream.subscribe(counter.attach)
        if self.plugins.pm.hook.flamewatch_new_item.get_hookimpls():
            stream.subscribe(lambda item: self.plugins.notify("flamewatch_new_item", item=item))
        return stream

    async def reload(self) -> str | None:
        """Re-read the config file (SIGHUP, ``POST /-/reload``): None once applied, else the one-line
        reason the running config was kept (see :mod:`flamewatch.reload`)."""
        from .reload import reload_app

        async with self._reload_lock:  # two reloads at once would diff against a half-applied state
            return await reload_app(self)

    def permanent_start_failures(self) -> list[str]:
        """One line per notifier whose start failed permanently (``run`` refuses to go on with them)."""
        if self.dispatcher is None:
            return []
        return [f"notifier {name}: {str(exc).strip() or type(exc).__name__}"
                for name, exc in self.dispatcher.start_failures.items() if isinstance(exc, PermanentDeliveryError)]

    async def _make_watchlist(self) -> Watchlist:
        """Followed threads and watched users: their state, their profiles, and the rules that read them."""
        assert self.client is not None and self.store is not None
        watchlist = Watchlist(self.config.watch, self.store.state_for(FOLLOWS_STATE), backfill=self.backfill)
        bind_watchlist(self.rules, watchlist)
        if self.stream is not None and watchlist.users:
            self.stream.subscribe(watchlist.see_item)
        await watchlist.start(self.client, self.clock())
        return watchlist

    # --- one sender per store: a file lock (SQLite), or the leader lock of a shared (PostgreSQL) store ---

    def may_send(self) -> bool:
        """Whether deliveries may go out now (checked before every send: a lost lock stops sending at once).

        A single instance: while it holds its store's lock (or takes none, ``sender=False``). One sharing a
        PostgreSQL store: only while it leads. Losing a single instance's lock is said once.
        """
        if self.role == "single":
            if self.lock is None:
                return True
            if self._single_guard is None:
                self._single_guard = while_held(self.lock)
            return self._single_guard()
        return self.lock is not None and self.lock.held

    async def lead(self, *, wait: bool = True) -> None:
        """Become the one instance that runs cycles and sends. A shared (PostgreSQL) store: take its leader
        lock, waiting as a standby while another instance holds it (``wait=False``: raise
        :class:`~flamewatch.errors.StoreLockedError` instead). Any other store: its lock is already held."""
        assert self.store is not None and self.dispatcher is not None
        if not _shared(self.store):
            return
        if self.lock is None:
            # A standby tries, and a leader checks its lock connection, a few times a period: takeover
            # within two periods of the leader's death.
            period = self.config.watch.period
            self.store.lock_check_every = min(self.store.lock_check_every, max(0.05, period / 4))
            lock = self.store.instance_lock(f"pid {os.getpid()} on {socket.gethostname()}")
            lock.on_lost(self._lost_lead)
            self.lock = lock
        self.role = "standby"
        await self.lock.acquire(wait=wait)
        self.role = "leader"
        log.info("leading %s: running cycles and deliveries", self.store_label)
        self.dispatcher.resume()

    def _lost_lead(self, reason: str) -> None:
        self.role = "standby"
        if self.dispatcher is not None:
            self.dispatcher.halt()  # deliveries in flight stop now; their rows stay pending, same keys
        if self.on_leadership_lost is not None:
            self.on_leadership_lost()

    async def _close(self, grace: float) -> None:
        try:
            if self.live_driver is not None:
                await self.live_driver.close()
            if self.dispatcher is not None:
                self.close_report = await self.dispatcher.close(grace)
            await self.plugins.runner.drain(grace)  # async observers of the last events and cycle
            if self.store is not None and self.dispatcher is not None:
                try:  # what is left, as `flamewatch outbox` will count it, for the stop summary
                    self.final_outbox_counts = await self.store.outbox_counts()
                except StoreError as exc:
                    log.warning("cannot count the outbox: %s", exc)
            if self.lock is not None and _shared(self.store):
                await self.lock.release()  # a leader lock lives on its own connection: before the pool
            if self.store is not None:
                await self.store.close()
        finally:
            if self.lock is not None:
                # Last for a file lock: until the store is closed, another sender could find our outcomes
                # unwritten. (Releasing twice is harmless.)
                await self.lock.release()
            if self.session is not None:
                await self.session.close()


def _shared(store: Store | None) -> TypeGuard[PostgresStore]:
    """Whether ``store`` may be shared by several instances (one leader sends; the others stand by)."""
    # Only a PostgreSQL store is shared, and one exists only once its module was loaded: a SQLite user
    # never pays for importing asyncpg (about 4 MB) just to be told so.
    postgres = sys.modules.get("flamewatch.store.postgres")
    return store is not None and postgres is not None and isinstance(store, postgres.PostgresStore)
