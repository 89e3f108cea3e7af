"""Assemble a running flamewatch from a :class:`~flamewatch.config.Config`, and take it apart in order.

``async with App(config) as app:`` opens the shared HTTP session, the store, the notifier instances and
the dispatcher (which resumes pending outbox rows), and builds the monitor. Leaving the block drains
deliveries within ``watch.shutdown_timeout`` and closes everything, so nothing outlives it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

import aiohttp

from .config import Config, check_route_rules, configure_rules, notifier_options
from .dispatch import Dispatcher, NotifierInstance, RetryPolicy
from .errors import ConfigError, PluginError
from .incremental import IncrementalCounter
from .stream import STREAM_STATE, ItemStream
from .monitor import Monitor, MonitorSettings
from .notifier import NotifierContext
from .plugins import Plugins, make_plugin_manager
from .rules import Rule, RuleEngine
from .hn import HNClient, make_session
from .store import InstanceLock, Store, open_store
from .store.factory import configured_location, describe_location
from .tasks import CloseReport

log = logging.getLogger("flamewatch.app")


def load_plugins(config: Config) -> Plugins:
    """The plugin manager for ``config`` (built-ins and third-party by entry point, plus plugin dirs)."""
    return make_plugin_manager(
        load_entry_points=config.plugins.entry_points,
        plugin_dirs=config.plugins.dirs,
        disabled=config.plugins.disable,
    )


def resolve_rules(config: Config, plugins: Plugins) -> list[Rule]:
    """The loaded rule types configured from the ``[rules]`` table (ConfigError for a bad key)."""
    try:
        rule_types = plugins.rule_types()
    except PluginError as exc:
        raise ConfigError(f"{config.source}: {exc}") from exc
    return configure_rules(config, list(rule_types.values()))


def resolve_notifiers(config: Config, plugins: Plugins) -> list[NotifierInstance]:
    """The notifier instances of every enabled ``[[notifiers]]`` table, not yet open.

    Each table's type is looked up and its options checked here, so every config mistake is a
    :class:`ConfigError` before anything opens.
    """
    try:
        types = plugins.notifier_types()
        rule_names = list(plugins.rule_types())
    except PluginError as exc:
        raise ConfigError(f"{config.source}: {exc}") from exc
    check_route_rules(config, rule_names)
    instances = []
    for settings in config.notifiers:
        if not settings.enabled:
            continue
        notifier_type = types.get(settings.type)
        if notifier_type is None:
            available = ", ".join(sorted(types)) or "none"
            hint = ""
            if any(settings.type in e for e in plugins.errors):
                hint = " (its plugin failed to load, see above)"
            raise ConfigError(
                f"{config.source}: {settings.where}.type: unknown notifier type {settings.type!r}{hint} "
                f"(available: {available})"
            )
        options = notifier_options(config, settings, notifier_type)
        instances.append(
            NotifierInstance.from_settings(settings, notifier_type, options, default_timeout=config.delivery.timeout)
        )
    return instances


def open_notifier(instance: NotifierInstance, session: aiohttp.ClientSession, store: Store) -> None:
    """Create ``instance``'s notifier object with the shared session and its state in ``store``."""
    name = instance.name
    instance.open(NotifierContext(
        name=name, session=session, state=store.state_for(name), log=logging.getLogger(f"flamewatch.notifier.{name}")
    ))


class App:
    """A configured flamewatch: session, HN client, store, plugins, dispatcher and monitor."""

    def __init__(
        self,
        config: Config,
        *,
        plugins: Plugins | None = None,
        store_path: str | None = None,
        api_url: str | None = None,
    ) -> None:
        self.config = config
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
        self.close_report: CloseReport | None = None
        #: Seconds running deliveries get to finish when the block is left. ``run`` lowers it to what is
        #: left of ``watch.shutdown_timeout`` after the last cycle, so the whole stop stays within it.
        self.drain_timeout = config.watch.shutdown_timeout
        #: "single" (the only sender of its store), "standby" (waiting for the leader lock of a shared
        #: store) or "leader" (holding it). The status page and /metrics show it.
        self.role = "single"
        #: The leader lock of a shared store, once :meth:`lead` took it (``lock.holder()`` names the leader).
        self.lock: InstanceLock | None = None
        #: Called (no arguments) when this instance loses the lead; ``run`` stops its watcher with it.
        self.on_leadership_lost: Callable[[], None] | None = None

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
        self.store = await open_store(self.store_path)
        if _shared(self.store):
            self.role = "standby"  # nothing is sent until lead() takes the leader lock
        for instance in self.instances:
            open_notifier(instance, self.session, self.store)
        self.dispatcher = Dispatcher(
            self.store,
            self.instances,
            retry=RetryPolicy(cfg.delivery.retry_base, cfg.delivery.retry_cap, cfg.delivery.max_age),
            on_event=lambda **kw: self.plugins.notify("flamewatch_event_fired", **kw),
            on_delivery=lambda **kw: self.plugins.notify("flamewatch_delivery_done", **kw),
            may_send=self.may_send,
        )
        await self.dispatcher.start()
        counter = None
        if cfg.crawl.incremental:
            counter = IncrementalCounter(self.client, max_depth=cfg.crawl.max_depth, max_items=cfg.crawl.max_items)
        self.stream = self._make_stream(counter)
        self.monitor = Monitor(
            self.client,
            self.store,
            RuleEngine(self.rules),
            self.dispatcher,
            MonitorSettings(
                list_name=cfg.watch.list,
                top=cfg.watch.top,
                max_depth=cfg.crawl.max_depth,
                max_items=cfg.crawl.max_items,
                history_seconds=cfg.store.history_days * 86400,
            ),
            counter=counter,
            stream=self.stream,
        )

    def _make_stream(self, counter: IncrementalCounter | None) -> ItemStream | None:
        """The stream of new items, feeding the counter and the ``flamewatch_new_item`` hook."""
        cfg = self.config.stream
        assert self.client is not None and self.store is not None
        if not cfg.enabled:
            return None
        stream = ItemStream(self.client, self.store.state_for(STREAM_STATE), max_gap=cfg.max_gap,
                            retries=cfg.retries)
        if counter is not None:
            stream.subscribe(counter.attach)
        if self.plugins.pm.hook.flamewatch_new_item.get_hookimpls():
            stream.subscribe(lambda item: self.plugins.notify("flamewatch_new_item", item=item))
        return stream

    # --- leadership among instances sharing a PostgreSQL store -----------------------------------------

    def may_send(self) -> bool:
        """Whether deliveries may go out now: always for a single instance, only while holding the lock
        for one sharing its store (checked before every send: a lost lock stops sending at once)."""
        return self.role == "single" or (self.lock is not None and self.lock.held)

    async def lead(self, *, wait: bool = True) -> None:
        """Become the one instance that runs cycles and sends. A shared (PostgreSQL) store: take its leader
        lock, waiting as a standby while another instance holds it (``wait=False``: raise
        :class:`~flamewatch.errors.StoreLockedError` instead). Any other store: nothing to wait for."""
        from .store.postgres import PostgresStore

        assert self.store is not None and self.dispatcher is not None
        if not isinstance(self.store, PostgresStore):
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
        if self.dispatcher is not None:
            self.close_report = await self.dispatcher.close(grace)
        if self.lock is not None:
            await self.lock.release()
        if self.store is not None:
            await self.store.close()
        if self.session is not None:
            await self.session.close()


def _shared(store: Store) -> bool:
    """Whether ``store`` may be shared by several instances (one leader sends; the others stand by)."""
    from .store.postgres import PostgresStore

    return isinstance(store, PostgresStore)
