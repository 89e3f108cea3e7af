"""One TOML file, validated up front into typed settings.

Every mistake is reported as one :class:`ConfigError` line naming the file and the key
(``flamewatch.toml: watch.period: expected a number of seconds or a duration like "90s", got "soon"``).
Unknown keys are errors, because a typo that silently does nothing is the worst kind of bug in an
alerting tool. Notifier tables are checked in two steps: the core keys (``name``, ``type``, routing,
digest) when the file is read, and each type's own options once the plugins are loaded
(:func:`notifier_options`), against the dataclass the type declares.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .crawl import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS
from .notifier import Notifier, Secret
from .rules import RULE_NAMES, RulesConfig, VelocityRule
from .hn import DEFAULT_API_URL, STORY_LISTS



@dataclass(frozen=True)
class HNSettings:
    api_url: str = DEFAULT_API_URL
    timeout: float = 10.0
    retries: int = 3
    max_inflight: int = 32


@dataclass(frozen=True)
class WatchSettings:
    list: str = "topstories"
    top: int = 30
    period: float = 60.0
    cycle_timeout: float = 300.0
    shutdown_timeout: float = 10.0


@dataclass(frozen=True)
class CrawlSettings:
    max_depth: int = DEFAULT_MAX_DEPTH
    max_items: int = DEFAULT_MAX_ITEMS
    incremental: bool = True


@dataclass(frozen=True)
class StoreSettings:
    path: str = ""  # empty: the per-user default (store.default_store_path)
    history_days: float = 7.0


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 30.0
    retry_base: float = 5.0
    retry_cap: float = 3600.0
    max_age: float = 24 * 3600.0


@dataclass(frozen=True)
class PluginSettings:
    dirs: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    entry_points: bool = True


@dataclass(frozen=True)
class NotifierSettings:
    """The core part of one ``[[notifiers]]`` table; ``options`` holds the type's own keys, unchecked yet."""

    name: str
    type: str
    where: str  # "notifiers[2]" -- used in error messages
    enabled: bool = True
    rules: tuple[str, ...] | None = None
    min_comments: int = 0
    min_points: int = 0
    min_level: int = 0
    lists: tuple[str, ...] | None = None
    keywords: tuple[str, ...] = ()
    digest: float | None = None
    digest_at: dtime | None = None
    timeout: float | None = None
    concurrency: int = 1
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """Everything flamewatch reads from its config file."""

    source: str = "<built-in defaults>"
    hn: HNSettings = HNSettings()
    watch: WatchSettings = WatchSettings()
    crawl: CrawlSettings = CrawlSettings()
    rules: RulesConfig = field(default_factory=RulesConfig)
    store: StoreSettings = StoreSettings()
    delivery: DeliverySettings = DeliverySettings()
    plugins: PluginSettings = PluginSettings()
    notifiers: tuple[NotifierSettings, ...] = ()


DEFAULT_NOTIFIERS = ({"type": "console"},)

#: The rule names events carry (``Event.rule``), which a notifier's ``rules`` filter may list.

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class _Reader:
    """Reads one table, remembering which keys were used so the rest can be reported as unknown."""

    def __init__(self, file: str, prefix: str, table: Any) -> None:
        self.file = file
        self.prefix = prefix
        if not isinstance(table, dict):
            raise self.error(None, f"expected a table, got {_show(table)}")
        self.table = table
        self.used: set[str] = set()

    def error(self, key: str | None, message: str) -> ConfigError:
        where = ".".join(p for p in (self.prefix, key) if p)
        return ConfigError(f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}")

    def has(self, key: str) -> bool:
        return key in self.table

    def get(self, key: str, kind: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.table:
            return default
        return convert(self.table[key], kind, lambda msg: self.error(key, msg))

    def sub(self, key: str) -> _Reader:
        self.used.add(key)
        return _Reader(self.file, f"{self.prefix}.{key}" if self.prefix else key, self.table.get(key, {}))

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used)) or "none"
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")


def convert(value: Any, kind: str, error: typing.Callable[[str], ConfigError]) -> Any:
    """Check and convert one value; ``kind`` is one of the small vocabulary used in this module."""
    if kind == "str":
        if not isinstance(value, str):
            raise error(f"expected a string, got {_show(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise error(f"expected true or false, got {_show(value)}")
        return value
    if kind in ("int", "posint", "nonneg"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise error(f"expected a whole number, got {_show(value)}")
        if kind == "posint" and value < 1:
            raise error(f"must be at least 1, got {value}")
        if kind == "nonneg" and value < 0:
            raise error(f"must not be negative, got {value}")
        return value
    if kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise error(f"expected a number, got {_show(value)}")
        if not math.isfinite(value):  # TOML has nan and inf; no setting means either
            raise error(f"expected a finite number, got {_show(value)}")
        return float(value)
    if kind == "duration":
        return parse_duration(value, error)
    if kind == "strs":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise error(f"expected a list of strings, got {_show(value)}")
        return tuple(value)
    if kind == "levels":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise error(f"expected a list of positive whole numbers, got {_show(value)}")
        return tuple(sorted(set(value)))
    if kind == "time_of_day":
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value) if isinstance(value, str) else None
        if match is None:
            raise error(f'expected a local time of day like "08:00", got {_show(value)}')
        return dtime(int(match[1]), int(match[2]))
    raise AssertionError(f"unknown kind {kind}")


def parse_duration(value: Any, error: typing.Callable[[str], ConfigError]) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"5m"``, ``"1.5h"``, ``"1d"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m[1]) * _UNITS[m[2]]
    else:
        raise error(f'expected a number of seconds or a duration like "90s", "5m", "24h", got {_show(value)}')
    if not math.isfinite(seconds) or seconds <= 0:
        raise error(f"must be a finite number more than zero, got {_show(value)}")
    if seconds < 0.001:
        raise error(f"must be at least a millisecond, got {_show(value)}")
    return seconds


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def find_config_file(explicit: str | None) -> Path | None:
    """The config file to use: ``--config``, ``$FLAMEWATCH_CONFIG``, ``./flamewatch.toml``, the user's, or None."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("FLAMEWATCH_CONFIG"):
        return Path(env)
    for candidate in (Path("flamewatch.toml"), _user_config_dir() / "flamewatch" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def _user_config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def load_config(path: str | Path | None) -> Config:
    """Read and validate ``path`` (None: built-in defaults with a console notifier)."""
    if path is None:
        return parse_config({}, "<built-in defaults>")
    file = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {_toml_error(exc)}") from None
    return parse_config(data, file)


_TOML_POSITION = re.compile(r"^(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _toml_error(exc: tomllib.TOMLDecodeError) -> str:
    """``line 3, column 7: not valid TOML: <reason>`` from tomllib's message (position moved to the front)."""
    message = str(exc).splitlines()[0] if str(exc) else "syntax error"
    match = _TOML_POSITION.match(message)
    if match is None:
        return f"not valid TOML: {message}"
    return f"line {match['line']}, column {match['column']}: not valid TOML: {match['what']}"


def parse_config(data: dict[str, Any], file: str) -> Config:
    """Validate an already-parsed TOML document (see :func:`load_config`)."""
    top = _Reader(file, "", data)

    r = top.sub("hn")
    hn = HNSettings(
        api_url=_url(r, "api_url", DEFAULT_API_URL),
        timeout=r.get("timeout", "duration", 10.0),
        retries=r.get("retries", "nonneg", 3),
        max_inflight=r.get("max_inflight", "posint", 32),
    )
    r.finish()

    r = top.sub("watch")
    watch = WatchSettings(
        list=r.get("list", "str", "topstories"),
        top=r.get("top", "posint", 30),
        period=r.get("period", "duration", 60.0),
        cycle_timeout=r.get("cycle_timeout", "duration", 300.0),
        shutdown_timeout=r.get("shutdown_timeout", "duration", 10.0),
    )
    if watch.list not in STORY_LISTS:
        raise r.error("list", f"expected one of {', '.join(STORY_LISTS)}, got {watch.list!r}")
    r.finish()

    r = top.sub("crawl")
    crawl = CrawlSettings(
        max_depth=r.get("max_depth", "posint", DEFAULT_MAX_DEPTH),
        max_items=r.get("max_items", "posint", DEFAULT_MAX_ITEMS),
        incremental=r.get("incremental", "bool", True),
    )
    r.finish()

    rules = _rules(top.sub("rules"))

    r = top.sub("store")
    store = StoreSettings(path=r.get("path", "str", ""), history_days=r.get("history_days", "float", 7.0))
    if store.history_days <= 0:
        raise r.error("history_days", f"must be more than zero, got {store.history_days:g}")
    r.finish()

    r = top.sub("delivery")
    delivery = DeliverySettings(
        timeout=r.get("timeout", "duration", 30.0),
        retry_base=r.get("retry_base", "duration", 5.0),
        retry_cap=r.get("retry_cap", "duration", 3600.0),
        max_age=r.get("max_age", "duration", 24 * 3600.0),
    )
    r.finish()

    r = top.sub("plugins")
    plugins = PluginSettings(
        dirs=tuple(_relative_to(file, d) for d in r.get("dirs", "strs", ())),
        disable=r.get("disable", "strs", ()),
        entry_points=r.get("entry_points", "bool", True),
    )
    r.finish()

    top.used.add("notifiers")
    raw = data.get("notifiers", list(DEFAULT_NOTIFIERS))
    if not isinstance(raw, list):
        raise top.error("notifiers", "expected an array of tables ([[notifiers]])")
    notifiers = tuple(_notifier(file, i, table) for i, table in enumerate(raw))
    first_use: dict[str, NotifierSettings] = {}
    for n in notifiers:
        if n.name in first_use:
            raise ConfigError(
                f"{file}: {n.where}.name: notifier name {n.name!r} is already used by {first_use[n.name].where}; "
                "give each [[notifiers]] table a unique name"
            )
        first_use[n.name] = n
    top.finish()
    return Config(file, hn, watch, crawl, rules, store, delivery, plugins, notifiers)


def _relative_to(config_file: str, directory: str) -> str:
    """``directory`` with ``~`` expanded and, when relative, resolved against the config file's directory.

    A service usually runs from another working directory than the one the config was written in.
    """
    path = Path(directory).expanduser()
    if path.is_absolute() or config_file.startswith("<"):
        return str(path)
    return str(Path(config_file).parent / path)


def _url(r: _Reader, key: str, default: str) -> str:
    value = r.get(key, "str", default)
    if not re.match(r"^https?://[^\s/]+", value):
        raise r.error(key, f"expected an http:// or https:// URL, got {value!r}")
    return value


def _rules(r: _Reader) -> RulesConfig:
    defaults = RulesConfig()
    velocity: list[VelocityRule] = []
    r.used.add("velocity")
    raw_velocity = r.table.get("velocity", [])
    if not isinstance(raw_velocity, list):
        raise r.error("velocity", "expected an array of tables ([[rules.velocity]])")
    for i, table in enumerate(raw_velocity):
        v = _Reader(r.file, f"{r.prefix}.velocity[{i}]", table)
        if not v.has("level"):
            raise v.error("level", "missing (comments per hour that fires the rule)")
        velocity.append(VelocityRule(level=v.get("level", "posint", 0), window=v.get("window", "duration", 3600.0)))
        v.finish()
    keywords = r.get("keywords", "strs", ())
    for kw in keywords:
        if not kw.strip():
            raise r.error("keywords", "keywords must not be empty strings")
    config = RulesConfig(
        comment_levels=r.get("comment_levels", "levels", defaults.comment_levels),
        points_levels=r.get("points_levels", "levels", defaults.points_levels),
        velocity=tuple(velocity),
        keywords=keywords,
    )
    r.finish()
    return config


def _notifier(file: str, index: int, table: Any) -> NotifierSettings:
    where = f"notifiers[{index}]"
    r = _Reader(file, where, table)
    if not r.has("type"):
        raise r.error("type", 'missing (which notifier type this is, e.g. type = "slack")')
    kind = r.get("type", "str", "")
    if not kind.strip():
        raise r.error("type", 'must name a notifier type, e.g. type = "slack"')
    name = r.get("name", "str", kind)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise r.error("name", f"use letters, digits, '-', '_' or '.' only, got {name!r}")
    settings = NotifierSettings(
        name=name,
        type=kind,
        where=f"{where} ({name})",
        enabled=r.get("enabled", "bool", True),
        rules=r.get("rules", "strs", None),
        min_comments=r.get("min_comments", "nonneg", 0),
        min_points=r.get("min_points", "nonneg", 0),
        min_level=r.get("min_level", "nonneg", 0),
        lists=r.get("lists", "strs", None),
        keywords=r.get("keywords", "strs", ()),
        digest=r.get("digest", "duration", None),
        digest_at=r.get("digest_at", "time_of_day", None),
        timeout=r.get("timeout", "duration", None),
        concurrency=r.get("concurrency", "posint", 1),
        options={k: v for k, v in table.items() if k not in r.used},
    )
    # Routing filters name things; a typo here would silently route nothing, so check the names.
    for key, allowed in (("rules", RULE_NAMES), ("lists", STORY_LISTS)):
        chosen = getattr(settings, key)
        for value in chosen or ():
            if value not in allowed:
                raise r.error(key, f"unknown {key[:-1]} {value!r} (expected some of {', '.join(allowed)})")
    if any(not kw.strip() for kw in settings.keywords):
        raise r.error("keywords", "keywords must not be empty strings (an empty one would match every title)")
    if settings.digest is not None and settings.digest_at is not None:
        raise r.error("digest_at", "set either digest (an interval) or digest_at (a time of day), not both")
    return settings


CORE_NOTIFIER_KEYS = (
    "name", "type", "enabled", "rules", "min_comments", "min_points", "min_level", "lists", "keywords",
    "digest", "digest_at", "timeout", "concurrency",
)


def notifier_options(config: Config, settings: NotifierSettings, notifier_type: type[Notifier]) -> Any:
    """Check ``settings.options`` against the type's ``Options`` dataclass and build it."""
    where = f"{config.source}: {settings.where}"
    options_cls = notifier_type.Options
    if (settings.digest or settings.digest_at) and not notifier_type.supports_digest():
        key = "digest" if settings.digest else "digest_at"
        raise ConfigError(f"{where}.{key}: notifier type {settings.type!r} does not support digests")
    try:
        fields = {f.name: f for f in dataclasses.fields(options_cls)}
        hints = typing.get_type_hints(options_cls)
    except Exception as exc:  # noqa: BLE001
        # A plugin bug (Options not a dataclass, an unresolvable annotation), not the user's mistake.
        raise ConfigError(
            f"{where}.type: notifier type {settings.type!r} declares Options the config reader cannot use "
            f"({type(exc).__name__}: {exc}); report this to the plugin's author"
        ) from None
    values: dict[str, Any] = {}
    for key, value in settings.options.items():
        if key not in fields:
            known = ", ".join([*CORE_NOTIFIER_KEYS, *fields]) or "none"
            raise ConfigError(f"{where}.{key}: unknown key for type {settings.type!r} (known keys: {known})")
        values[key] = _coerce(value, hints[key], _error_at(f"{where}.{key}"))
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in values:
            raise ConfigError(f"{where}.{name}: missing (required by type {settings.type!r})")
    try:
        return options_cls(**values)
    except (ValueError, TypeError) as exc:
        # Options.__post_init__ says "<key>: <problem>"; put the key into the path like every other error.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        key, sep, rest = message.partition(": ")
        if sep and key in fields:
            raise ConfigError(f"{where}.{key}: {rest}") from None
        raise ConfigError(f"{where}: {message}") from None
    except Exception as exc:  # noqa: BLE001 - anything else is a plugin bug; still one line
        raise ConfigError(
            f"{where}: notifier type {settings.type!r} failed to build its options ({type(exc).__name__}: {exc})"
        ) from None


def _error_at(where: str) -> typing.Callable[[str], ConfigError]:
    """A ConfigError maker for one key, for the converters."""
    return lambda message: ConfigError(f"{where}: {message}")


def _coerce(value: Any, hint: Any, error: typing.Callable[[str], ConfigError]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _coerce(value, options[0], error)
        for option in options:
            try:
                return _coerce(value, option, error)
            except ConfigError:
                continue
        raise error(f"expected one of {', '.join(getattr(o, '__name__', str(o)) for o in options)}, got {_show(value)}")
    if hint is Secret:
        return _secret(value, error)
    if hint is Any:
        return value
    if hint is str:
        return convert(value, "str", error)
    if hint is bool:
        return convert(value, "bool", error)
    if hint is int:
        return convert(value, "int", error)
    if hint is float:
        return convert(value, "float", error)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, list):
            raise error(f"expected a list, got {_show(value)}")
        item = args[0] if args else Any
        items = [_coerce(v, item, error) for v in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, typing.Mapping) or hint is dict:
        if not isinstance(value, dict):
            raise error(f"expected a table, got {_show(value)}")
        key_hint, value_hint = args if args else (str, Any)
        return {_coerce(k, key_hint, error): _coerce(v, value_hint, error) for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise error(f"expected one of {', '.join(map(repr, args))}, got {_show(value)}")
        return value
    raise error(f"option type {hint!r} is not supported by the config reader")


def _secret(value: Any, error: typing.Callable[[str], ConfigError]) -> Secret:
    """A :class:`Secret` from ``{ env = "NAME" }`` or ``{ file = "/path" }``, checked to be readable now.

    Messages never include the value: a plain string here is probably the secret itself.
    """
    if isinstance(value, str):
        raise error('secrets are not written in the config file: use { env = "VARIABLE" } or { file = "/path" }')
    if not isinstance(value, dict):
        raise error(f'expected {{ env = "VARIABLE" }} or {{ file = "/path" }}, got {_show(value)}')
    unknown = sorted(set(value) - {"env", "file"})
    if unknown:
        raise error(f'unknown key {unknown[0]!r} in a secret: use {{ env = "VARIABLE" }} or {{ file = "/path" }}')
    if len(value) != 1:
        raise error('a secret takes exactly one of env or file: { env = "VARIABLE" } or { file = "/path" }')
    ((kind, ref),) = value.items()
    if not isinstance(ref, str) or not ref.strip():
        raise error(f"{kind}: expected a non-empty string, got {_show(ref)}")
    secret = Secret(env=ref) if kind == "env" else Secret(file=ref)
    try:
        revealed = secret.reveal()  # fail at start-up, not at the first alert hours later
    except LookupError as exc:
        raise error(str(exc)) from None
    if not revealed:
        where = f"environment variable {ref}" if kind == "env" else f"secret file {ref}"
        raise error(f"{where} is empty")
    return secret
