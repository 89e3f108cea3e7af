"""Build the plugin manager and call hooks safely.

:func:`make_plugin_manager` is a factory (nothing is loaded at import time), so tests choose what is
loaded. Plugins come from four places, in this order:

1. ``extra`` plugin objects passed by the caller (tests, embedding applications);
2. :data:`DEFAULT_PLUGINS`, the built-in notifiers and rules, imported by module name (as datasette
   does), so a checkout works without being installed; they use only the public plugin API;
3. entry points in the ``flamewatch`` group: third-party packages;
4. ``.py`` files in the configured plugin directories.

A plugin that fails to import or register is reported by name in :attr:`Plugins.errors` and skipped;
the rest still load. Observer hooks are called through :meth:`Plugins.notify`: pluggy's own hook caller,
so ``tryfirst``/``trylast``, hook wrappers and tracing apply, with each implementation isolated (a raising
observer is logged with its plugin's name and the others still run; see :mod:`.hookcalls`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import logging
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .hookcalls import HookRunner, isolate, trace_calls
from .notifier import Notifier
from .rules.base import Rule

log = logging.getLogger("flamewatch.plugins")

ENTRY_POINT_GROUP = "flamewatch"

#: The built-in plugins: (plugin name, module). The name is what ``[plugins] disable`` and
#: ``flamewatch plugins`` use.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("console", "flamewatch.notifiers.console"),
    ("slack", "flamewatch.notifiers.slack"),
    ("email", "flamewatch.notifiers.email"),
    ("webhook", "flamewatch.notifiers.webhook"),
    ("feed", "flamewatch.notifiers.feed"),
    ("comments", "flamewatch.rules.comments"),
    ("points", "flamewatch.rules.points"),
    ("velocity", "flamewatch.rules.velocity"),
    ("keyword", "flamewatch.rules.keywords"),
    ("rank", "flamewatch.rules.rank"),
    ("reply", "flamewatch.rules.people"),
    ("mention", "flamewatch.rules.mentions"),
    ("decline", "flamewatch.rules.decline"),
    ("flamewar", "flamewatch.rules.flamewar"),
    ("stale", "flamewatch.rules.stale"),
    ("domain", "flamewatch.rules.domains"),
)



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
    _types: dict[str, type[Notifier]] | None = field(default=None, repr=False)
    _owners: dict[str, str] = field(default_factory=dict, repr=False)
    _rules: dict[str, type[Rule]] | None = field(default=None, repr=False)
    _rule_owners: dict[str, str] = field(default_factory=dict, repr=False)
    #: Calls observer hooks and runs the coroutines of ``async def`` ones (:meth:`notify`).
    runner: HookRunner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.runner = HookRunner(self.pm)

    def notifier_types(self) -> dict[str, type[Notifier]]:
        """Every notifier type offered by a plugin, by ``type_name`` (computed once, then cached).

        A hook that raises or returns something that is not a list of Notifier subclasses is reported by
        plugin name in :attr:`errors` and skipped; two plugins offering the same type name is a PluginError.
        """
        if self._types is None:
            types: dict[str, type[Notifier]] = {}
            for impl in self.pm.hook.flamewatch_notifier_types.get_hookimpls():
                for cls in self._offered_by(impl, "flamewatch_notifier_types", Notifier, "type_name"):
                    if cls.type_name in types and types[cls.type_name] is not cls:
                        raise PluginError(
                            f"notifier type {cls.type_name!r} is offered by both plugin {self._owners[cls.type_name]} "
                            f"and plugin {impl.plugin_name}; disable one in [plugins] disable"
                        )
                    types[cls.type_name] = cls
                    self._owners[cls.type_name] = impl.plugin_name
            self._types = types
        return dict(self._types)

    def type_owner(self, type_name: str) -> str | None:
        """The name of the plugin offering notifier type ``type_name``, if any."""
        self.notifier_types()
        return self._owners.get(type_name)

    def rule_types(self) -> dict[str, type[Rule]]:
        """Every rule type offered by a plugin, by ``name``, in plugin load order (computed once, then cached).

        Checked like :meth:`notifier_types`; besides two plugins offering the same rule name, two rules
        claiming the same ``[rules]`` key (an ``Options`` field) is a PluginError naming both.
        """
        if self._rules is None:
            rules: dict[str, type[Rule]] = {}
            key_owner: dict[str, type[Rule]] = {}
            for impl in self.pm.hook.flamewatch_rule_types.get_hookimpls():
                for cls in self._offered_by(impl, "flamewatch_rule_types", Rule, "name"):
                    if not dataclasses.is_dataclass(cls.Options):
                        self._error(f"plugin {impl.plugin_name}: flamewatch_rule_types returned {cls.__qualname__}, "
                                    "whose Options is not a dataclass")
                        continue
                    if cls.name in rules and rules[cls.name] is not cls:
                        raise PluginError(
                            f"rule {cls.name!r} is offered by both plugin {self._rule_owners[cls.name]} "
                            f"and plugin {impl.plugin_name}; disable one in [plugins] disable"
                        )
                    for f in dataclasses.fields(cls.Options):
                        other = key_owner.get(f.name)
                        if other is not None and other is not cls:
                            raise PluginError(
                                f"[rules] key {f.name!r} is claimed by both rule {other.name!r} (plugin "
                                f"{self._rule_owners[other.name]}) and rule {cls.name!r} (plugin {impl.plugin_name}); "
                                "disable one in [plugins] disable"
                            )
                        key_owner[f.name] = cls
                    rules[cls.name] = cls
                    self._rule_owners[cls.name] = impl.plugin_name
            self._rules = rules
        return dict(self._rules)

    def rule_owner(self, name: str) -> str | None:
        """The name of the plugin offering rule ``name``, if any."""
        self.rule_types()
        return self._rule_owners.get(name)

    def _offered_by(self, impl: pluggy.HookImpl, hook: str, base: type[Any], name_attr: str) -> list[Any]:
        """The valid ``base`` subclasses (each with a ``name_attr``) one plugin's ``hook`` returns."""
        kind = base.__name__
        where = f"plugin {impl.plugin_name}: {hook}"
        try:
            result = impl.function()
        except Exception as exc:
            self._error(f"{where} raised {type(exc).__name__}: {_one_line(exc)}")
            return []
        if result is None:
            return []
        # A bare class or string is iterable or nearly so; say what was expected instead of reporting each char.
        if isinstance(result, (str, bytes, dict)) or not isinstance(result, Iterable):
            self._error(f"{where} returned {_short_repr(result)}; expected a list of {kind} subclasses")
            return []
        valid = []
        try:
            # Iterating can run plugin code too (a generator, a custom iterable, a type_name property).
            for cls in result:
                if not (inspect.isclass(cls) and issubclass(cls, base)):
                    self._error(f"{where} returned {_short_repr(cls)}, which is not a {kind} subclass")
                elif not isinstance(getattr(cls, name_attr), str) or not getattr(cls, name_attr):
                    self._error(f"{where} returned {cls.__qualname__}, which has no {name_attr}")
                else:
                    valid.append(cls)
        except Exception as exc:
            self._error(f"{where} raised {type(exc).__name__} while its result was read: {_one_line(exc)}")
            return []
        return valid

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook through pluggy's hook caller (order, wrappers and tracing apply), each
        implementation isolated; an ``async def`` one runs in its own task (see :mod:`.hookcalls`)."""
        self.runner.call(hook_name, kwargs)

    def _error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            log.error("%s", message)


def make_plugin_manager(
    *,
    extra: Sequence[object] = (),
    defaults: bool = True,
    load_entry_points: bool = True,
    plugin_dirs: Iterable[str | Path] = (),
    disabled: Iterable[str] = (),
) -> Plugins:
    """A fresh plugin manager with hookspecs added and plugins loaded (see the module docstring)."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    trace_calls(pm)  # FLAMEWATCH_TRACE_PLUGINS=1 or -vv: every hook call in the log
    plugins = Plugins(pm)
    skip = set(disabled)
    seen: set[str] = set()  # every plugin name found, loaded or disabled

    for obj in extra:
        name = getattr(obj, "__name__", None) or type(obj).__name__
        _register(plugins, obj, name, "object")
    if defaults:
        _load_defaults(plugins, skip, seen)
    if load_entry_points:
        _load_entry_points(plugins, skip, seen)
    for directory in plugin_dirs:
        _load_directory(plugins, Path(directory).expanduser(), skip, seen)

    seen.update(info.name for info in plugins.infos)
    # Only meaningful when entry points were scanned: otherwise most plugin names are simply not looked at.
    if load_entry_points:
        for name in sorted(skip - seen):
            plugins._error(f"[plugins] disable: there is no plugin named {name!r} (found: {', '.join(sorted(seen))})")
    return plugins


def _load_defaults(plugins: Plugins, skip: set[str], seen: set[str]) -> None:
    """The built-in plugins of :data:`DEFAULT_PLUGINS` not disabled and not already registered."""
    for name, module_name in DEFAULT_PLUGINS:
        seen.add(name)
        if name in skip or plugins.pm.has_plugin(name):
            continue
        _register(plugins, importlib.import_module(module_name), name, f"built-in {module_name}")


def _load_entry_points(plugins: Plugins, skip: set[str], seen: set[str]) -> None:
    """Third-party plugins from the ``flamewatch`` entry point group, by name."""
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        seen.add(ep.name)
        if ep.name in skip or plugins.pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:
            plugins._error(f"plugin {ep.name}: cannot import {ep.value}: {type(exc).__name__}: {exc}")
            continue
        _register(plugins, module, ep.name, f"entry point {ep.value}")


def _load_directory(plugins: Plugins, path: Path, skip: set[str], seen: set[str]) -> None:
    """The ``.py`` files of one plugin directory (not those starting with ``_``), if it is safe to run them."""
    if not path.is_dir():
        plugins._error(f"plugins directory {path} does not exist")
        return
    if (unsafe := unsafe_permissions(path)) is not None:
        plugins._error(f"plugins directory {path} is not loaded: {unsafe}")
        return
    for file in sorted(path.glob("*.py")):
        if file.name.startswith("_"):
            continue
        seen.add(file.stem)
        if file.stem in skip:
            continue
        if (unsafe := unsafe_permissions(file)) is not None:
            plugins._error(f"plugin {file.stem}: {file} is not loaded: {unsafe}")
            continue
        module = _import_file(plugins, file)
        if module is not None:
            _register(plugins, module, file.stem, f"file {file}")


def unsafe_permissions(path: Path) -> str | None:
    """Why running code from ``path`` would let someone else run code as us, or None when it would not.

    As OpenSSH's StrictModes: a plugin file, or the directory holding it, must not be writable by group
    or others (anyone who can write there can replace the plugin), and must belong to us or root.
    """
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot check its permissions ({exc.strerror or type(exc).__name__})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "group and others" if info.st_mode & stat.S_IWGRP and info.st_mode & stat.S_IWOTH else (
            "its group" if info.st_mode & stat.S_IWGRP else "others")
        return f"it is writable by {who} (mode {stat.filemode(info.st_mode)}); chmod go-w {path}"
    if info.st_uid not in (os.getuid(), 0):
        return f"it belongs to another user (uid {info.st_uid})"
    return None


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
    except Exception as exc:
        # pluggy spreads the reason over lines ("Argument(s) {'evnt'} are declared..."): keep it, on one line.
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        plugins._error(f"plugin {name}: cannot register ({source}): {reason}")
        return
    isolate(plugins.pm, obj, name)
    callers = plugins.pm.get_hookcallers(obj) or []
    _check_hook_names(plugins, obj, name, callers)
    hooks = tuple(sorted(c.name for c in callers if c.has_spec()))
    plugins.infos.append(PluginInfo(name=name, source=source, hooks=hooks))


def _check_hook_names(plugins: Plugins, obj: object, name: str, callers: list[pluggy.HookCaller]) -> None:
    """Report hook implementations flamewatch will never call, as ``pm.check_pending()`` would, but by plugin.

    Two mistakes are caught: an ``@hookimpl`` whose name matches no hookspec (a typo such as
    ``flamewatch_notifer_types``), and a function named like a hook but not marked with ``@hookimpl``.
    """
    spec_names = sorted(n for n in vars(hookspecs) if n.startswith("flamewatch_"))
    for caller in callers:
        if caller.has_spec():
            continue
        if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is obj):
            continue
        close = difflib.get_close_matches(caller.name, spec_names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (hooks: {', '.join(spec_names)})"
        plugins._error(f"plugin {name}: unknown hook {caller.name!r}, flamewatch never calls it{hint}")
    for attr in spec_names:
        # getattr_static: never run a plugin's properties or module __getattr__ just to look.
        value = inspect.getattr_static(obj, attr, None)
        if callable(value) and plugins.pm.parse_hookimpl_opts(obj, attr) is None:
            plugins._error(f"plugin {name}: {attr} is not marked with @hookimpl, so flamewatch never calls it")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
