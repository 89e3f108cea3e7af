"""Build the plugin manager and call hooks safely.

:func:`make_plugin_manager` is a factory (nothing is loaded at import time), so tests choose what is
loaded. Plugins come from three places, in this order:

1. ``extra`` plugin objects passed by the caller (tests, embedding applications);
2. entry points in the ``flamewatch`` group -- this is how the shipped notifiers are found, exactly
   like a third-party package's;
3. ``.py`` files in the configured plugin directories.

A plugin that fails to import or register is reported by name in :attr:`Plugins.errors` and skipped;
the rest still load. Hooks are called through :meth:`Plugins.notify`, one implementation at a time,
so a raising observer is logged with its plugin's name and the others still run.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .notifier import Notifier

log = logging.getLogger("flamewatch.plugins")

ENTRY_POINT_GROUP = "flamewatch"


class PluginError(Exception):
    """A plugin broke the contract (duplicate notifier type, wrong return value)."""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, as ``flamewatch plugins`` lists it."""

    name: str
    source: str  # "entry point <module>", "file <path>" or "object"
    hooks: tuple[str, ...]


@dataclass
class Plugins:
    """The plugin manager with what was loaded and what failed."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def notifier_types(self) -> dict[str, type[Notifier]]:
        """Every notifier type offered by a plugin, by ``type_name``.

        A hook that raises or returns something that is not a Notifier subclass is reported by plugin
        name in :attr:`errors` and skipped; two plugins offering the same type name is a PluginError.
        """
        types: dict[str, type[Notifier]] = {}
        owners: dict[str, str] = {}
        for impl in self.pm.hook.flamewatch_notifier_types.get_hookimpls():
            try:
                offered = list(impl.function() or ())
            except Exception as exc:
                self._error(f"plugin {impl.plugin_name}: flamewatch_notifier_types raised {type(exc).__name__}: {exc}")
                continue
            for cls in offered:
                if not (inspect.isclass(cls) and issubclass(cls, Notifier) and cls.type_name):
                    self._error(f"plugin {impl.plugin_name}: {cls!r} is not a Notifier subclass with a type_name")
                    continue
                if cls.type_name in types and types[cls.type_name] is not cls:
                    raise PluginError(
                        f"notifier type {cls.type_name!r} is offered by both plugin {owners[cls.type_name]} "
                        f"and plugin {impl.plugin_name}; disable one in [plugins] disable"
                    )
                types[cls.type_name] = cls
                owners[cls.type_name] = impl.plugin_name
        return types

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin, isolating each one's exceptions."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as exc:
                log.error("plugin %s: hook %s raised %s: %s", impl.plugin_name, hook_name, type(exc).__name__, exc)

    def _error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            log.error("%s", message)


def make_plugin_manager(
    *,
    extra: Sequence[object] = (),
    load_entry_points: bool = True,
    plugin_dirs: Iterable[str | Path] = (),
    disabled: Iterable[str] = (),
) -> Plugins:
    """A fresh plugin manager with hookspecs added and plugins loaded (see the module docstring)."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm)
    skip = set(disabled)

    for obj in extra:
        name = getattr(obj, "__name__", None) or type(obj).__name__
        _register(plugins, obj, name, "object")

    if load_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in skip or pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:
                plugins._error(f"plugin {ep.name}: cannot import {ep.value}: {type(exc).__name__}: {exc}")
                continue
            _register(plugins, module, ep.name, f"entry point {ep.value}")

    for directory in plugin_dirs:
        path = Path(directory).expanduser()
        if not path.is_dir():
            plugins._error(f"plugins directory {path} does not exist")
            continue
        for file in sorted(path.glob("*.py")):
            if file.stem in skip or file.name.startswith("_"):
                continue
            module = _import_file(plugins, file)
            if module is not None:
                _register(plugins, module, file.stem, f"file {file}")
    return plugins


def _import_file(plugins: Plugins, file: Path) -> Any | None:
    module_name = f"flamewatch_dir_plugin_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        plugins._error(f"plugin {file.stem}: cannot load {file}")
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        plugins._error(f"plugin {file.stem}: {file} failed to import: {type(exc).__name__}: {exc}")
        return None
    return module


def _register(plugins: Plugins, obj: object, name: str, source: str) -> None:
    try:
        plugins.pm.register(obj, name=name)
    except Exception as exc:  # pluggy validates hook names and signatures here
        plugins._error(f"plugin {name}: cannot register ({source}): {exc}")
        return
    hooks = tuple(sorted(c.name for c in plugins.pm.get_hookcallers(obj) or ()))
    plugins.infos.append(PluginInfo(name=name, source=source, hooks=hooks))
