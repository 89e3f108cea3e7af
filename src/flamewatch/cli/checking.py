"""``flamewatch check``: every problem ``run`` would stop on, found at once and reported one line each.

The config file itself is read first (a file that does not parse stops there: nothing after it can be
trusted). Then, independently of one another: the plugins (a missing directory, a file that does not
import, a ``disable`` naming no plugin), the rules, each enabled notifier's options, each notifier's
own start-up check (a secret of the wrong shape, a bad token), the store path (a read-only file), and
notifier routes that can never match; the status page's address in use now is a warning. ``run`` performs the
same start-up checks and refuses to start on a permanent failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from yarl import URL

from ..app import load_plugins, resolve_notifier, resolve_rules
from ..config import Config, check_route_rules
from ..dispatch import NotifierInstance
from ..errors import ConfigError, PermanentDeliveryError, PluginError
from ..hn import make_session
from ..notifier import Notifier, NotifierContext
from ..plugins import Plugins
from ..rules import Rule
from ..http.listen import parse_listen
from ..store import default_store_path
from ..store.filelock import lock_holder
from ..store.sqlite import read_only_problem
from .common import EXIT_CONFIG, config_from_args, first_line, print_error


@dataclass
class CheckResult:
    """What ``check`` found: the pieces that could be built, and every problem as one line."""

    config: Config
    plugins: Plugins | None = None
    rules: list[Rule] = field(default_factory=list)
    instances: list[NotifierInstance] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_config(config: Config) -> CheckResult:
    """Everything that can be checked without the network (see :func:`check_starts` for the rest)."""
    result = CheckResult(config)
    src = config.source
    plugin_log = logging.getLogger("flamewatch.plugins")
    level = plugin_log.level
    plugin_log.setLevel(logging.CRITICAL)  # its errors are reported below, once, as problems
    try:
        plugins = load_plugins(config)
    except PluginError as exc:
        result.problems.append(f"{src}: {first_line(exc)}")
        return result
    finally:
        plugin_log.setLevel(level)
    result.plugins = plugins
    result.problems.extend(f"{src}: {first_line(e)}" for e in plugins.errors)
    try:
        types = plugins.notifier_types()
        rule_types = plugins.rule_types()
    except PluginError as exc:
        result.problems.append(f"{src}: {first_line(exc)}")
        return result
    try:
        result.rules = resolve_rules(config, plugins)
    except ConfigError as exc:
        result.problems += exc.problems
    try:
        check_route_rules(config, list(rule_types))
    except ConfigError as exc:
        result.problems += exc.problems
    for settings in config.notifiers:
        if not settings.enabled:
            continue
        try:
            result.instances.append(resolve_notifier(config, settings, types, plugins))
        except ConfigError as exc:
            result.problems += exc.problems
    result.problems.extend(_store_problems(config))
    _check_listen(config, result)
    result.problems.extend(never_matching_routes(config, result.rules))
    return result


def _store_problems(config: Config) -> list[str]:
    path = config.store.path or str(default_store_path())
    if path == ":memory:" or "://" in path:
        return []
    file = Path(path).expanduser()
    if file.is_dir():
        return [f"{config.source}: store.path: {path} is a directory; give a file name, e.g. {file / 'flamewatch.db'}"]
    parent = next((p for p in [file.parent, *file.parent.parents] if p.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK)):
        return [f"{config.source}: store.path: cannot create {path}: {parent} is not a writable directory"]
    try:
        read_only = read_only_problem(file)  # run refuses such a file at start: say so now
    except OSError:
        return []  # no file yet (it is created), or one run will name the problem with
    return [f"{config.source}: store.path: {path}: {read_only}"] if read_only is not None else []


def _check_listen(config: Config, result: CheckResult) -> None:
    """A warning when the status page's address is in use now: ``run`` would refuse to start. Not a
    problem (exit 2): the config is right, and whoever holds the port (often the running daemon itself,
    when its config is checked before a reload) may be gone by the time ``run`` starts."""
    listen = config.http.listen
    if not listen:
        return
    try:
        host, port = parse_listen(listen)
    except ValueError:
        return  # already one line from the config reader
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            probe.bind(infos[0][4])
    except OSError as exc:
        path = config.store.path or str(default_store_path())
        holder = lock_holder(str(Path(path).expanduser())) if "://" not in path and path != ":memory:" else None
        who = f"the running flamewatch ({holder}) probably serves there" if holder else (
            "'flamewatch run' would refuse to start while it is")
        result.warnings.append(f"http.listen: {listen} is in use now ({exc.strerror or exc}): {who}")


def never_matching_routes(config: Config, rules: list[Rule]) -> list[str]:
    """Notifier filters that exclude every event this config can produce (one line each)."""
    problems = []
    active = {r.name for r in rules if r.is_active()}
    for settings in config.notifiers:
        if not settings.enabled:
            continue
        where = f"{config.source}: {settings.where}"
        if settings.lists is not None and config.watch.list not in settings.lists:
            problems.append(f"{where}.lists: never matches: only {config.watch.list} is watched (watch.list); "
                            f"add it to lists or remove the filter")
        if rules and settings.rules is not None and not active.intersection(settings.rules):
            problems.append(f"{where}.rules: never matches: none of {', '.join(settings.rules)} is active "
                            f"(active rules: {', '.join(sorted(active)) or 'none'})")
    return problems


async def start_problem(instance: NotifierInstance, notifier: Notifier) -> tuple[str | None, bool]:
    """Run ``notifier.start()``: ``(None, False)`` if fine, else ``(one-line reason, permanent?)``."""
    try:
        async with asyncio.timeout(instance.timeout):
            await notifier.start()
    except TimeoutError:
        return f"notifier {instance.name}: start-up check timed out after {instance.timeout:g}s", False
    except PermanentDeliveryError as exc:
        return f"notifier {instance.name}: {first_line(exc)}", True
    except Exception as exc:  # plugin code may raise anything
        return f"notifier {instance.name}: failed to start: {type(exc).__name__}: {first_line(exc)}", False
    return None, False


async def check_starts(instances: list[NotifierInstance]) -> tuple[list[str], list[str]]:
    """Start (and close) each notifier as ``run`` would: ``(problems, warnings)``."""
    problems: list[str] = []
    warnings: list[str] = []
    async with make_session() as session:
        for instance in instances:
            try:
                notifier = instance.notifier_type(NotifierContext(name=instance.name, session=session),
                                                  instance.options)
            except Exception as exc:
                problems.append(f"notifier {instance.name}: cannot be created: {type(exc).__name__}: "
                                f"{first_line(exc)}")
                continue
            reason, permanent = await start_problem(instance, notifier)
            if reason is not None:
                (problems if permanent else warnings).append(reason)
            try:
                await notifier.aclose()
            except Exception as exc:
                warnings.append(f"notifier {instance.name}: error while closing: {first_line(exc)}")
    return problems, warnings


async def cmd_check(args: argparse.Namespace) -> int:
    from .admin import option_lines, print_plugins

    config = config_from_args(args)  # a file that does not parse: one line, exit 2
    result = check_config(config)
    start_problems, warnings = await check_starts(result.instances)
    problems = result.problems + start_problems
    warnings = result.warnings + warnings
    if problems:
        for problem in problems:
            print_error(problem)
        return EXIT_CONFIG
    assert result.plugins is not None
    print(f"config: {config.source}: OK")
    print(f"watch: {config.watch.list} top {config.watch.top} every {config.watch.period:g}s from "
          f"{_without_credentials(config.hn.api_url)}")
    print(f"rules: {'; '.join(r.describe() for r in result.rules if r.is_active()) or 'none'}")
    from .people import check_people

    await check_people(config)
    print_plugins(result.plugins)
    from .admin import _check_server_store

    await _check_server_store(config)
    print("notifiers:")
    for r in result.instances:
        print(f"  {r.name} (type {r.type_name}): {r.describe()}")
        for key, shown in option_lines(r.options):
            print(f"      {key} = {shown}")
    for settings in config.notifiers:
        if not settings.enabled:
            print(f"  {settings.name} (type {settings.type}): disabled")
    if not result.instances:
        print("  (none: events are recorded but not delivered)")
    for warning in warnings:
        print(f"warning: {warning}")
    return 0


def _without_credentials(url: str) -> str:
    """``url`` without a user name, password or query (a proxy in front of the API may take a token there)."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None)) if parsed.user or parsed.query_string else url
    except (ValueError, TypeError):
        return "<an unreadable URL>"
