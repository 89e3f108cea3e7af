"""Re-read the config of a running :class:`~flamewatch.app.App` (SIGHUP, ``POST /-/reload``).

The new file is validated completely before anything changes: its rules and notifier tables are built
against the loaded plugins, and the notifiers that are new or changed are started. If any of that fails
(a typo, a bad secret, a notifier that refuses to start), the running config is kept and the one-line
reason returned. Otherwise notifier instances that were removed or changed are stopped (their running
deliveries get their timeout to finish; queued rows stay in the outbox), the new ones join the
dispatcher, and the rules and the watched list apply from the next cycle. Settings that need a restart
(the HN client, the store, the crawler, plugins, the period) are named in a log line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from .config import NotifierSettings, load_config
from .dispatch import NotifierInstance
from .errors import FlamewatchError, PermanentDeliveryError
from .pipeline import PipelineSettings

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("flamewatch.reload")

#: Sections whose changes only a restart applies (the objects built from them live for the whole run).
RESTART_SECTIONS = ("hn", "crawl", "stream", "store", "plugins")


def _identity(instance: NotifierInstance) -> tuple[object, ...]:
    """What makes two instances of the same name the same: everything but the table's position."""
    settings = instance.settings
    table = dataclasses.replace(settings, where="") if isinstance(settings, NotifierSettings) else None
    return (instance.notifier_type, table, instance.timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def reload_app(app: App) -> str | None:
    """Apply the config file again to ``app``; None on success, else why the old config was kept."""
    from .app import bind_watchlist, open_notifier, resolve_notifiers, resolve_rules

    source = app.config.source
    if source.startswith("<"):
        return f"nothing to re-read: the config is {source}, not a file"
    assert app.dispatcher is not None and app.monitor is not None and app.session is not None
    assert app.store is not None
    try:
        config = load_config(source)
        rules = resolve_rules(config, app.plugins)
        instances = resolve_notifiers(config, app.plugins)
    except FlamewatchError as exc:
        return _first_line(exc)
    if app.monitor.watchlist is not None:
        # The new rule objects read the same watched users and threads (a [watch] change needs a restart):
        # unbound, the rank and reply rules would count as inactive and drop out of the engine.
        bind_watchlist(rules, app.monitor.watchlist)

    old = {i.name: i for i in app.instances}
    new = {i.name: i for i in instances}
    unchanged = {name for name in old.keys() & new.keys() if _identity(old[name]) == _identity(new[name])}
    to_start = [i for name, i in new.items() if name not in unchanged]
    to_stop = [name for name in old if name not in unchanged]

    # Open and start the new and changed instances before touching the running ones.
    started: list[NotifierInstance] = []
    reason: str | None = None
    for instance in to_start:
        try:
            open_notifier(instance, app.session, app.store)
            async with asyncio.timeout(instance.timeout):
                await instance.notifier.start()
        except PermanentDeliveryError as exc:
            reason = f"notifier {instance.name}: {_first_line(exc)}"
        except TimeoutError:
            reason = f"notifier {instance.name}: start timed out after {instance.timeout:g}s"
        except Exception as exc:  # plugin code may raise anything
            reason = f"notifier {instance.name}: failed to start: {type(exc).__name__}: {_first_line(exc)}"
        if instance.is_open:
            started.append(instance)
        if reason is not None:
            break
    if reason is not None:
        for instance in started:
            try:
                await instance.notifier.aclose()
            except Exception as exc:  # plugin code may raise anything
                log.warning("notifier %s: error while closing: %s", instance.name, _first_line(exc))
        return reason

    for name in to_stop:
        await app.dispatcher.remove_instance(name)
    for instance in started:
        await app.dispatcher.add_instance(instance, started=True)
    app.instances = [old[name] if name in unchanged else new[name] for name in new]
    app.rules = rules
    # The same builder as at start, from the new settings: the rules and every [watch] list apply from the
    # next cycle (the stages live no longer than one pipeline).
    app.monitor.rebuild(rules=app.rule_engine(rules), settings=PipelineSettings.from_config(config))
    later = [name for name in RESTART_SECTIONS if getattr(config, name) != getattr(app.config, name)]
    if config.watch.period != app.config.watch.period:
        later.append("watch.period")
    app.config = config
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    changed = sorted((old.keys() & new.keys()) - unchanged)
    log.info("config reloaded from %s: notifiers added %s, removed %s, changed %s; rules apply from the next "
             "cycle%s", source, ", ".join(added) or "none", ", ".join(removed) or "none", ", ".join(changed) or "none",
             f"; restart to apply {', '.join(later)}" if later else "")
    return None
