"""Re-read the config of a running :class:`~flamewatch.app.App` (SIGHUP, ``POST /-/reload``).

The new file is validated completely before anything changes: its rules and notifier tables are built
against the loaded plugins, and the notifiers that are new or changed are started. If any of that fails
(a typo, a bad secret, a notifier that refuses to start), the running config is kept and the one-line
reason returned. Otherwise notifier instances that were removed or changed are stopped (their running
deliveries get their timeout to finish; queued rows stay in the outbox), the new ones join the
dispatcher, the retry policy is replaced, and the pipeline is rebuilt with the same builder as at start
(:func:`~flamewatch.pipeline.build_pipeline`) from the new settings, so the rules, the watched lists
and the history window apply from the next cycle. What only a restart applies (the objects built from it
live for the whole run) is named, setting by setting, in the log line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .assembly import bind_watchlist, open_notifier, resolve_notifiers, resolve_rules
from .config import Config, NotifierSettings, load_config
from .dispatch import NotifierInstance, RetryPolicy
from .errors import ConfigError, FlamewatchError, PermanentDeliveryError
from .pipeline import PipelineSettings

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("flamewatch.reload")

#: What only a restart applies, and where it lives in the config (the objects built from it live for the
#: whole run: the HN client, the counter, the stream, the store, the plugins, the watcher, the watchlist
#: and the HTTP server).
RESTART: tuple[tuple[str, Callable[[Config], Any]], ...] = (
    ("hn", lambda c: c.hn),
    ("crawl", lambda c: c.crawl),
    ("stream", lambda c: c.stream),
    ("store.path", lambda c: c.store.path),
    ("store.url", lambda c: c.store.url),
    ("plugins", lambda c: c.plugins),
    ("http", lambda c: c.http),
    ("watch.period", lambda c: c.watch.period),
    ("watch.cycle_timeout", lambda c: c.watch.cycle_timeout),
    ("watch.follow", lambda c: c.watch.follow),
    ("watch.follow_quiet", lambda c: c.watch.follow_quiet),
    ("watch.users", lambda c: c.watch.users),
    ("watch.domains", lambda c: c.watch.domains),
    ("watch.live", lambda c: c.watch.live),
)


def restart_needed(old: Config, new: Config) -> list[str]:
    """The settings that differ between ``old`` and ``new`` and that only a restart applies."""
    return [name for name, read in RESTART if read(old) != read(new)]


def _identity(instance: NotifierInstance) -> tuple[object, ...]:
    """What makes two instances of the same name the same: everything but the table's position."""
    settings = instance.settings
    table = dataclasses.replace(settings, where="") if isinstance(settings, NotifierSettings) else None
    return (instance.notifier_type, table, instance.timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class _Plan:
    """Which notifier instances a reload keeps, starts and stops."""

    old: dict[str, NotifierInstance]
    new: dict[str, NotifierInstance]
    unchanged: frozenset[str]

    @classmethod
    def of(cls, running: Sequence[NotifierInstance], wanted: Sequence[NotifierInstance]) -> _Plan:
        old = {i.name: i for i in running}
        new = {i.name: i for i in wanted}
        same = {name for name in old.keys() & new.keys() if _identity(old[name]) == _identity(new[name])}
        return cls(old, new, frozenset(same))

    @property
    def to_start(self) -> list[NotifierInstance]:
        return [i for name, i in self.new.items() if name not in self.unchanged]

    @property
    def to_stop(self) -> list[str]:
        return [name for name in self.old if name not in self.unchanged]

    def kept(self) -> list[NotifierInstance]:
        """The instances once applied, in the new file's order (unchanged ones keep running as they are)."""
        return [self.old[name] if name in self.unchanged else self.new[name] for name in self.new]

    def summary(self) -> str:
        added = sorted(self.new.keys() - self.old.keys())
        removed = sorted(self.old.keys() - self.new.keys())
        changed = sorted((self.old.keys() & self.new.keys()) - self.unchanged)
        return (f"notifiers added {', '.join(added) or 'none'}, removed {', '.join(removed) or 'none'}, "
                f"changed {', '.join(changed) or 'none'}")


async def _start_all(app: App, instances: Sequence[NotifierInstance]) -> str | None:
    """Open and start ``instances``; on the first failure close those started and return why."""
    assert app.session is not None and app.store is not None
    started: list[NotifierInstance] = []
    for instance in instances:
        reason = await _start(app, instance)
        if instance.is_open:
            started.append(instance)
        if reason is not None:
            for done in started:
                try:
                    await done.notifier.aclose()
                except Exception as exc:  # plugin code may raise anything
                    log.warning("notifier %s: error while closing: %s", done.name, _first_line(exc))
            return reason
    return None


async def _start(app: App, instance: NotifierInstance) -> str | None:
    assert app.session is not None and app.store is not None
    try:
        open_notifier(instance, app.session, app.store)
        async with asyncio.timeout(instance.timeout):
            await instance.notifier.start()
    except PermanentDeliveryError as exc:
        return f"notifier {instance.name}: {_first_line(exc)}"
    except TimeoutError:
        return f"notifier {instance.name}: start timed out after {instance.timeout:g}s"
    except Exception as exc:  # plugin code may raise anything
        return f"notifier {instance.name}: failed to start: {type(exc).__name__}: {_first_line(exc)}"
    return None


def _lists(settings: PipelineSettings) -> str:
    return ", ".join(f"{name} top {top}" for name, top in settings.watched_lists())


async def reload_app(app: App) -> str | None:
    """Apply the config file again to ``app``; None on success, else why the old config was kept."""
    source = app.config.source
    if source.startswith("<"):
        return f"nothing to re-read: the config is {source}, not a file"
    assert app.dispatcher is not None and app.monitor is not None
    try:
        config = load_config(source)
        rules = resolve_rules(config, app.plugins)
        plan = _Plan.of(app.instances, resolve_notifiers(config, app.plugins))
    except ConfigError as exc:
        more = len(exc.problems) - 1  # one log line: the first mistake, and how many more check lists
        return _first_line(exc) + (f" (and {more} more: 'flamewatch check' lists them)" if more else "")
    except FlamewatchError as exc:
        return _first_line(exc)
    if app.monitor.watchlist is not None:
        # The new rule objects read the same watched users and threads (a [watch] change needs a restart):
        # unbound, the rank and reply rules would count as inactive and drop out of the engine.
        bind_watchlist(rules, app.monitor.watchlist)
    # Open and start the new and changed instances before touching the running ones.
    if (reason := await _start_all(app, plan.to_start)) is not None:
        return reason

    for name in plan.to_stop:
        await app.dispatcher.remove_instance(name)
    for instance in plan.to_start:
        await app.dispatcher.add_instance(instance, started=True)
    app.instances = plan.kept()
    app.rules = rules
    delivery = config.delivery
    app.dispatcher.retry = RetryPolicy(delivery.retry_base, delivery.retry_cap, delivery.max_age)
    # The same builder as at start, from the new settings: the rules, every watched list and the history
    # window apply from the next cycle.
    settings = PipelineSettings.from_config(config)
    app.monitor.rebuild(rules=app.rule_engine(rules), settings=settings)
    later = restart_needed(app.config, config)
    app.config = config
    log.info("config reloaded from %s: %s; rules and lists (%s) apply from the next cycle%s", source,
             plan.summary(), _lists(settings), f"; restart to apply {', '.join(later)}" if later else "")
    return None
