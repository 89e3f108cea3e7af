"""Building the parts of a flamewatch from its config: the plugins, the rules and the notifier instances.

Every config mistake here is a :class:`~flamewatch.errors.ConfigError` before anything opens. Both
:class:`~flamewatch.app.App` (at start) and :mod:`flamewatch.reload` (on SIGHUP) build from these, so a
reload checks a new file exactly as a start would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiohttp

from .config import Config, NotifierSettings, check_route_rules, configure_rules, notifier_options
from .dispatch import NotifierInstance
from .errors import ConfigError, PluginError
from .notifier import Notifier, NotifierContext
from .people import Watchlist
from .plugins import Plugins, make_plugin_manager
from .rules import Rule
from .store import Store

if TYPE_CHECKING:
    from .templates import MessageTemplate

__all__ = ["bind_watchlist", "load_plugins", "open_notifier", "resolve_notifier", "resolve_notifiers", "resolve_rules",
           "template_of"]


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
    return [resolve_notifier(config, settings, types, plugins) for settings in config.notifiers if settings.enabled]


def resolve_notifier(
    config: Config, settings: NotifierSettings, types: dict[str, type[Notifier]], plugins: Plugins
) -> NotifierInstance:
    """The instance of one ``[[notifiers]]`` table: its type looked up, its options checked (ConfigError)."""
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
    if settings.template is not None:
        template_of(settings, notifier_type, config.source)  # a mistake in it is a ConfigError now, at check
    return NotifierInstance.from_settings(settings, notifier_type, options, default_timeout=config.delivery.timeout)


def template_of(settings: NotifierSettings | None, notifier_type: type[Notifier],
                source: str = "config") -> MessageTemplate | None:
    """The compiled ``template`` of a ``[[notifiers]]`` table, or None; ConfigError naming the instance and
    the template's line when it cannot be used."""
    if settings is None or settings.template is None:
        return None
    where = f"{source}: {settings.where}.template"
    fmt = notifier_type.template_format
    if fmt is None:
        raise ConfigError(f"{where}: type {settings.type!r} takes no template")
    from .templates import TemplateProblem, compile_template  # jinja2 only for an instance with a template

    try:
        return compile_template(settings.template, fmt)
    except TemplateProblem as exc:
        raise ConfigError(f"{where}: {exc}") from None


def open_notifier(instance: NotifierInstance, session: aiohttp.ClientSession, store: Store) -> None:
    """Create ``instance``'s notifier object with the shared session and its state in ``store``."""
    name = instance.name
    instance.open(NotifierContext(
        name=name, session=session, state=store.state_for(name), log=logging.getLogger(f"flamewatch.notifier.{name}"),
        template=template_of(instance.settings, instance.notifier_type),
    ))


def bind_watchlist(rules: Sequence[Rule], watchlist: Watchlist) -> None:
    """Hand the watched users and threads to the rules that read them (rank, reply: ``bind_watchlist``)."""
    for rule in rules:
        bind = getattr(rule, "bind_watchlist", None)
        if callable(bind):
            bind(watchlist)
