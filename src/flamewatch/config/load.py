"""Finding and reading the config file; the ``[[notifiers]]`` tables and their options.

Every mistake is reported as one :class:`ConfigError` line naming the file and the key
(``flamewatch.toml: watch.period: expected a number of seconds or a duration like "90s", got "soon"``).
Unknown keys are errors, because a typo that silently does nothing is the worst kind of bug in an
alerting tool. Notifier tables are checked in two steps: the core keys (``name``, ``type``, routing,
digest) when the file is read, and each type's own options once the plugins are loaded
(:func:`notifier_options`), against the dataclass the type declares. ``[rules]`` is checked at that same
later moment, against the loaded rule types (:mod:`flamewatch.config.rules_section`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from ..hn import STORY_LISTS
from .listen import listen_problem
from ..notifier import Notifier, warn_if_exposed
from .model import CORE_NOTIFIER_KEYS, DEFAULT_NOTIFIERS, SECTIONS, Config, NotifierSettings
from .values import Where, build, field_hints, parse_time_of_day, read_dataclass, read_fields, read_value, show


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
    except FileNotFoundError as exc:
        raise ConfigError(f"{file}: no such file") from exc
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {_toml_error(exc)}") from exc
    # Secrets proper are {env = ...} or {file = ...}, but a URL can carry credentials inline (a password
    # in the store's URL, a token in a query, or in a webhook's path as Slack's and Discord's do): say so
    # if anyone can read the file. A config without one is no more secret than the program itself, so
    # the usual 0644 file with its secrets in the environment is not warned about.
    if (where := _credentials_in(data, "")) is not None:
        warn_if_exposed(path, "config file", f"a value that may be a credential ({where})")
    return parse_config(data, file)


def _credentials_in(value: Any, key: str) -> str | None:
    """The key of the first value in ``value`` (TOML data) that may carry credentials, if any.

    That is a URL with a password (or, on the web, a user name: a token), with a query that names a
    credential (a notifier's: any query), or that cannot be read at all; a notifier's ``url`` or
    ``webhook_url`` with a path (a webhook's address is often its token); and any header value of a
    notifier (``Authorization = "Bearer ..."``).
    """
    if isinstance(value, dict):
        for name, item in value.items():
            if (found := _credentials_in(item, f"{key}.{name}" if key else str(name))) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _credentials_in(item, f"{key}[{index}]")) is not None:
                return found
    elif isinstance(value, str):
        notifier = key.startswith("notifiers[")
        if notifier and ".headers." in key:
            return key
        if "://" in value and _url_may_carry_credentials(value, notifier, key.rpartition(".")[2]):
            return key
    return None


_CREDENTIAL_WORDS = ("pass", "pwd", "token", "key", "secret", "sig", "auth", "cred")


def _url_may_carry_credentials(value: str, notifier: bool, name: str) -> bool:
    try:
        url = urlsplit(value)
        user, password, _ = url.username, url.password, url.port
    except ValueError:
        return True  # unreadable: a password with a '#' or '/' in it reads like this
    if password or url.fragment or (user and url.scheme in ("http", "https")):  # a web API's token as user name
        return True
    if notifier and name in ("url", "webhook_url") and url.path.strip("/"):
        return True
    words = [k.lower() for k, _ in parse_qsl(url.query, keep_blank_values=True)]
    return bool(words) and (notifier or any(w in k for k in words for w in _CREDENTIAL_WORDS))


_TOML_POSITION = re.compile(r"^(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _toml_error(exc: tomllib.TOMLDecodeError) -> str:
    """``line 3, column 7: not valid TOML: <reason>`` from tomllib's message (position moved to the front)."""
    message = str(exc).splitlines()[0] if str(exc) else "syntax error"
    match = _TOML_POSITION.match(message)
    if match is None:
        return f"not valid TOML: {message}"
    return f"line {match['line']}, column {match['column']}: not valid TOML: {match['what']}"


def parse_config(data: dict[str, Any], file: str) -> Config:
    """Validate an already-parsed TOML document (see :func:`load_config`).

    Every section is read even when an earlier one has mistakes, so one ConfigError carries them all.
    """
    top = Where(file)
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        try:
            sections[name] = read_dataclass(cls, data.get(name, {}), top.key(name))
        except ConfigError as exc:
            problems += exc.problems
    if (plugins := sections.get("plugins")) is not None:
        sections["plugins"] = dataclasses.replace(plugins, dirs=tuple(_relative_to(file, d) for d in plugins.dirs))
    http = sections.get("http")
    if http is not None and (problem := listen_problem(http.listen, http.token is not None)) is not None:
        problems.append(str(top.key("http").key("listen").error(problem)))

    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        problems.append(str(top.key("rules").error(f"expected a table, got {show(rules)}")))

    notifiers = _notifiers(file, data.get("notifiers", list(DEFAULT_NOTIFIERS)), problems)
    if "watch" in sections:
        try:
            _check_route_users(file, notifiers, sections["watch"].users)
        except ConfigError as exc:
            problems += exc.problems
    known = [*SECTIONS, "rules", "notifiers"]
    for key in sorted(set(data) - set(known)):
        problems.append(str(top.key(key).error(f"unknown key (known keys here: {', '.join(sorted(known))})")))
    if problems:
        raise ConfigError.of(problems)
    return Config(file, rules=dict(rules), notifiers=notifiers, **sections)


def _notifiers(file: str, raw: Any, problems: list[str]) -> tuple[NotifierSettings, ...]:
    """The ``[[notifiers]]`` tables that read well; the mistakes of every table go to ``problems``."""
    if not isinstance(raw, list):
        problems.append(str(Where(file, "notifiers").error("expected an array of tables ([[notifiers]])")))
        return ()
    notifiers: list[NotifierSettings] = []
    for i, table in enumerate(raw):
        try:
            notifiers.append(_notifier(file, i, table))
        except ConfigError as exc:
            problems += exc.problems
    first_use: dict[str, NotifierSettings] = {}
    for n in notifiers:
        if n.name in first_use:
            problems.append(
                f"{file}: {n.where}.name: notifier name {n.name!r} is already used by {first_use[n.name].where}; "
                "give each [[notifiers]] table a unique name"
            )
        first_use.setdefault(n.name, n)
    return tuple(notifiers)


def _relative_to(config_file: str, directory: str) -> str:
    """``directory`` with ``~`` expanded and, when relative, resolved against the config file's directory.

    A service usually runs from another working directory than the one the config was written in.
    """
    path = Path(directory).expanduser()
    if path.is_absolute() or config_file.startswith("<"):
        return str(path)
    return str(Path(config_file).parent / path)


def _notifier(file: str, index: int, table: Any) -> NotifierSettings:
    at = Where(file, f"notifiers[{index}]")
    if not isinstance(table, dict):
        raise at.error(f"expected a table, got {show(table)}")
    if "type" not in table:
        raise at.key("type").error('missing (which notifier type this is, e.g. type = "slack")')
    kind = read_value(table["type"], str, at.key("type"))
    if not kind.strip():
        raise at.key("type").error('must name a notifier type, e.g. type = "slack"')
    name = read_value(table.get("name", kind), str, at.key("name"))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise at.key("name").error(f"use letters, digits, '-', '_' or '.' only, got {name!r}")
    core = {key: value for key, value in table.items() if key not in ("name", "type", "quiet_hours", "timezone")}
    values, options = read_fields(
        NotifierSettings, core, at, skip=("name", "type", "where", "options", "quiet_hours", "timezone"),
        keep_unknown=True,
    )
    values.update(_quiet_hours(at, table))
    settings = NotifierSettings(name=name, type=kind, where=f"{at.path} ({name})", options=options, **values)
    # Routing filters name things; a typo here would silently route nothing, so check the names.
    # (Rule names are checked once the rule plugins are loaded: check_route_rules.)
    _check_names(at, "lists", settings.lists, STORY_LISTS)
    if any(not kw.strip() for kw in settings.keywords):
        raise at.key("keywords").error("keywords must not be empty strings (an empty one would match every title)")
    if settings.digest is not None and settings.digest_at is not None:
        raise at.key("digest_at").error("set either digest (an interval) or digest_at (a time of day), not both")
    if settings.group_wait is not None and (settings.digest is not None or settings.digest_at is not None):
        raise at.key("group_wait").error("a digest already sends events together; set either digest or group_wait")
    return settings


def _check_route_users(file: str, notifiers: Iterable[NotifierSettings], users: Iterable[Any]) -> None:
    """A route's ``users`` must name ``[[watch.users]]`` (a typo would silently route nothing)."""
    names = [u.name for u in users]
    for index, settings in enumerate(notifiers):
        for name in settings.users or ():
            if name not in names:
                watched = ", ".join(names) or "none: add a [[watch.users]] table"
                raise Where(file, f"notifiers[{index}]").key("users").error(
                    f"{name!r} is not a watched user (watched: {watched})")


def _quiet_hours(at: Where, table: dict[str, Any]) -> dict[str, Any]:
    """``quiet_hours = "22:00-07:00"`` and ``timezone = "Europe/Berlin"`` as settings values (ConfigError)."""
    out: dict[str, Any] = {}
    if "timezone" in table:
        zone = read_value(table["timezone"], str, at.key("timezone"))
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            message = f"unknown time zone {zone!r} (an IANA name such as 'Europe/Berlin')"
            raise at.key("timezone").error(message) from None
        if "quiet_hours" not in table:
            raise at.key("timezone").error("only used with quiet_hours; set quiet_hours too")
        out["timezone"] = zone
    if "quiet_hours" in table:
        where = at.key("quiet_hours")
        raw = table["quiet_hours"]
        start, sep, end = raw.partition("-") if isinstance(raw, str) else ("", "", "")
        if not sep:
            raise where.error(f'expected a window such as "22:00-07:00", got {show(raw)}')
        window = (parse_time_of_day(start.strip(), where), parse_time_of_day(end.strip(), where))
        if window[0] == window[1]:
            raise where.error("the window is empty: start and end are the same time")
        out["quiet_hours"] = window
    return out


def _check_names(at: Where, key: str, chosen: Iterable[str] | None, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for value in chosen or ():
        if value not in allowed:
            raise at.key(key).error(f"unknown {key[:-1]} {value!r} (expected some of {', '.join(allowed)})")


def check_route_rules(config: Config, rule_names: Iterable[str]) -> None:
    """Check every notifier's ``rules = [...]`` filter against the loaded rules' names (ConfigError)."""
    names = list(rule_names)
    problems: list[str] = []
    for index, settings in enumerate(config.notifiers):
        try:
            _check_names(Where(config.source, f"notifiers[{index}]"), "rules", settings.rules, names)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError.of(problems)


def notifier_options(config: Config, settings: NotifierSettings, notifier_type: type[Notifier]) -> Any:
    """Check ``settings.options`` against the type's ``Options`` dataclass and build it."""
    at = Where(config.source, settings.where)
    options_cls = notifier_type.Options
    if (settings.digest or settings.digest_at or settings.group_wait) and not notifier_type.supports_digest():
        key = "digest" if settings.digest else "digest_at" if settings.digest_at else "group_wait"
        raise at.key(key).error(f"notifier type {settings.type!r} does not support digests")
    if settings.max_per_hour is not None:
        if not notifier_type.supports_digest():
            raise at.key("max_per_hour").error(f"notifier type {settings.type!r} does not support digests "
                                               "(past the cap, the rest goes out as one digest)")
        if settings.digest or settings.digest_at or settings.group_wait:
            raise at.key("max_per_hour").error("not with digest, digest_at or group_wait (they already send "
                                               "one message per batch)")
    try:
        field_hints(options_cls)
    except Exception as exc:
        # A plugin bug (Options not a dataclass, an unresolvable annotation), not the user's mistake.
        raise at.key("type").error(
            f"notifier type {settings.type!r} declares Options the config reader cannot use "
            f"({type(exc).__name__}: {exc}); report this to the plugin's author"
        ) from exc
    values, _ = read_fields(
        options_cls,
        settings.options,
        at,
        unknown_message=lambda fields: (
            f"unknown key for type {settings.type!r} (known keys: {', '.join([*CORE_NOTIFIER_KEYS, *fields])})"
        ),
        missing_note=f"required by type {settings.type!r}",
    )
    try:
        return build(options_cls, values, at)
    except ConfigError:
        raise
    except Exception as exc:  # anything else is a plugin bug; still one line
        raise at.error(
            f"notifier type {settings.type!r} failed to build its options ({type(exc).__name__}: {exc})"
        ) from None  # the options may hold a revealed secret in the exception's context
