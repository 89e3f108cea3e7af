"""Assemble a running flamewatch from a :class:`~flamewatch.config.Config`, and take it apart in order.

``async with App(config) as app:`` opens the shared HTTP session, the store, the notifier instances and
the dispatcher (which resumes pending outbox rows), and builds the monitor. Leaving the block drains
deliveries within ``watch.shutdown_timeout`` and closes everything, so nothing outlives it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from .config import Config, ConfigError, NotifierSettings, check_route_rules, configure_rules, notifier_options
from .dispatch import DigestSchedule, Dispatcher, Lane, RetryPolicy, Route
from .incremental import IncrementalCounter
from .stream import STREAM_STATE, ItemStream
from .monitor import Monitor, MonitorSettings
from .notifier import Notifier, NotifierContext
from .plugins import PluginError, Plugins, make_plugin_manager
from .rules import Rule, RuleEngine
from .hn import HNClient, make_session
from .store import Store, default_store_path, open_store
from .tasks import CloseReport

log = logging.getLogger("flamewatch.app")


@dataclass(frozen=True)
class ResolvedNotifier:
    """A configured notifier instance with its type found and its options checked."""

    settings: NotifierSettings
    type: type[Notifier]
    options: Any


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


def resolve_notifiers(config: Config, plugins: Plugins) -> list[ResolvedNotifier]:
    """Match every enabled ``[[notifiers]]`` table to its type and validate its options (ConfigError)."""
    try:
        types = plugins.notifier_types()
        rule_names = list(plugins.rule_types())
    except PluginError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    check_route_rules(config, rule_names)
    resolved = []
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
        resolved.append(ResolvedNotifier(settings, notifier_type, notifier_options(config, settings, notifier_type)))
    return resolved


def make_lane(resolved: ResolvedNotifier, config: Config, session: aiohttp.ClientSession, store: Store) -> Lane:
    """The dispatcher lane of one notifier instance."""
    s = resolved.settings
    ctx = NotifierContext(
        name=s.name, session=session, state=store.state_for(s.name), log=logging.getLogger(f"flamewatch.notifier.{s.name}")
    )
    notifier = resolved.type(ctx, resolved.options)
    return Lane(notifier, route_for(s), digest_for(s), timeout=s.timeout or config.delivery.timeout,
                concurrency=s.concurrency)


def route_for(s: NotifierSettings) -> Route:
    """Which events the instance configured by ``s`` takes."""
    return Route(
        rules=frozenset(s.rules) if s.rules is not None else None,
        min_comments=s.min_comments,
        min_points=s.min_points,
        min_level=s.min_level,
        lists=frozenset(s.lists) if s.lists is not None else None,
        keywords=s.keywords,
    )


def digest_for(s: NotifierSettings) -> DigestSchedule | None:
    """When the instance configured by ``s`` sends digests, or None for immediate delivery."""
    return DigestSchedule(every=s.digest, at=s.digest_at) if (s.digest or s.digest_at) else None


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
        self.resolved = resolve_notifiers(config, self.plugins)
        self.store_path = store_path or config.store.path or str(default_store_path())
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
        lanes = [make_lane(r, cfg, self.session, self.store) for r in self.resolved]
        self.dispatcher = Dispatcher(
            self.store,
            lanes,
            retry=RetryPolicy(cfg.delivery.retry_base, cfg.delivery.retry_cap, cfg.delivery.max_age),
            on_event=lambda **kw: self.plugins.notify("flamewatch_event_fired", **kw),
            on_delivery=lambda **kw: self.plugins.notify("flamewatch_delivery_done", **kw),
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

    async def _close(self, timeout: float) -> None:
        if self.dispatcher is not None:
            self.close_report = await self.dispatcher.close(timeout)
        if self.store is not None:
            await self.store.close()
        if self.session is not None:
            await self.session.close()

    @property
    def lanes(self) -> Sequence[Lane]:
        assert self.dispatcher is not None
        return list(self.dispatcher.lanes.values())
