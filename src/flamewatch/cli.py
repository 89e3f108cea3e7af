"""The ``flamewatch`` command line: run · once · count · demo · simulate · check · plugins · notify-test · outbox.

Every expected failure (bad config, unreachable store, bad arguments) ends as one line on stderr and a
non-zero exit status (2 for configuration mistakes), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse, urlsplit

from . import __version__
from .app import App, ResolvedNotifier, load_plugins, resolve_notifiers
from .config import Config, ConfigError, find_config_file, load_config
from .crawl import count_story
from .events import Event, StorySnapshot
from .notifier import DeliveryError, NotifierContext, Secret
from .plugins import PluginError, Plugins
from .source import FetchError, HNClient, make_session
from .store import StoreError
from .watch import Watcher

log = logging.getLogger("flamewatch")

EXIT_CONFIG = 2


class CliError(Exception):
    """An expected failure, reported as one line."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- argument parsing ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flamewatch", description="Watch Hacker News threads heat up and alert.")
    parser.add_argument("--version", action="version", version=f"flamewatch {__version__}")
    parser.add_argument("-c", "--config", help="config file (default: $FLAMEWATCH_CONFIG, ./flamewatch.toml, "
                        "~/.config/flamewatch/config.toml, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="watch HN until SIGINT/SIGTERM, delivering alerts")
    _api_and_store(p)
    p.add_argument("--period", type=float, help="seconds between cycles (overrides watch.period)")

    p = sub.add_parser("once", help="one cycle: count, fire, deliver, exit")
    _api_and_store(p)
    p.add_argument("--top", type=int, help="how many stories of the list to count (overrides watch.top)")
    p.add_argument("--json", action="store_true", help="print one JSON object per story on stdout")

    p = sub.add_parser("count", help="count one story's comments (the seed's script)")
    p.add_argument("id", nargs="?", type=int, help="story id (default 8863, 'My YC app: Dropbox')")
    p.add_argument("--url", help="an HN item page URL; its id= argument is used")
    p.add_argument("--api-url", help="HN API base URL (default: hn.api_url)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")

    p = sub.add_parser("demo", help="offline demo: a local simulator, a fast watcher, alerts on the console")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    p.add_argument("--period", type=float, default=2.0, help="seconds between cycles (default 2)")
    p.add_argument("--seed", type=int, default=7)

    from .simulator import add_simulate_arguments

    p = sub.add_parser("simulate", help="serve a local simulated HN API")
    add_simulate_arguments(p)

    sub.add_parser("check", help="validate the config and show the plugins and notifiers that would run")
    sub.add_parser("plugins", help="list loaded plugins and the notifier types they offer")

    p = sub.add_parser("notify-test", help="send a sample event through each configured notifier")
    p.add_argument("--notifier", action="append", help="only this instance (repeatable)")

    p = sub.add_parser("outbox", help="list, retry or drop queued and dead-letter deliveries")
    p.add_argument("action", nargs="?", choices=("list", "retry", "drop"), default="list")
    p.add_argument("--status", choices=("pending", "dead", "done", "all"), default=None)
    p.add_argument("--id", type=int, action="append", dest="ids", help="only this row (repeatable)")
    p.add_argument("--store", help="store file (overrides store.path)")
    return parser


def _api_and_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-url", help="HN API base URL (overrides hn.api_url)")
    p.add_argument("--store", help="store file (overrides store.path); ':memory:' keeps nothing")


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    if verbose < 2:
        logging.getLogger("aiosqlite").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failure, 2 configuration or usage mistake)."""
    args = build_parser().parse_args(argv)  # argparse exits 2 with usage on bad arguments
    setup_logging(args.verbose, args.quiet)
    handler = COMMANDS[args.command]
    try:
        return asyncio.run(handler(args))
    except (ConfigError, PluginError) as exc:
        _print_error(str(exc))
        return EXIT_CONFIG
    except (CliError, StoreError) as exc:
        _print_error(str(exc))
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug, not a user mistake: still one line; the traceback is there for whoever asks with -vv.
        log.debug("unexpected error", exc_info=True)
        _print_error(f"unexpected {type(exc).__name__}: {_first_line(exc)} (run with -vv for the traceback)")
        return 1


def _print_error(message: str) -> None:
    print(f"flamewatch: error: {_first_line(message)}", file=sys.stderr)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


def _config(args: argparse.Namespace) -> Config:
    return load_config(find_config_file(args.config))


# --- run / once ------------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.period is not None:
        if args.period <= 0:
            raise CliError("--period must be positive", EXIT_CONFIG)
        config = _with_watch(config, period=args.period)
    async with App(config, store_path=args.store, api_url=args.api_url) as app:
        assert app.monitor is not None
        watcher = Watcher(
            app.monitor.cycle,
            config.watch.period,
            cycle_timeout=config.watch.cycle_timeout,
            on_done=lambda stats: app.plugins.notify("flamewatch_cycle_done", stats=stats),
        )
        stop = _install_stop_signals(watcher)
        log.info("watching %s (top %d) every %gs at %s; %d notifier(s); store %s", config.watch.list,
                 config.watch.top, config.watch.period, app.api_url, len(app.lanes), app.store_path)
        await watcher.run(finish_timeout=config.watch.shutdown_timeout / 2)
        # The running cycle's grace period came out of the same shutdown budget: drain for the rest.
        spent = time.monotonic() - stop["at"] if stop["at"] is not None else 0.0
        app.drain_timeout = max(0.0, config.watch.shutdown_timeout - spent)
        log.info("stopping: draining deliveries (up to %.1fs)", app.drain_timeout)
    report = app.close_report
    if report is not None:
        log.info("stopped: %d deliveries finished during shutdown, %d left pending in the outbox",
                 report.finished, report.cancelled)
    return 0


def _install_stop_signals(watcher: Watcher) -> dict[str, float | None]:
    """Stop ``watcher`` on the first SIGINT/SIGTERM, exit at once on the second.

    Returns a dict whose ``"at"`` is the ``time.monotonic()`` of the first signal (None until then).
    """
    loop = asyncio.get_running_loop()
    state: dict[str, float | None] = {"at": None}

    def on_signal(signame: str) -> None:
        if state["at"] is not None:
            # Second signal: leave now. The store is transactional; queued deliveries resume next start.
            print(f"flamewatch: {signame} again, exiting at once", file=sys.stderr)
            os._exit(130)
        state["at"] = time.monotonic()
        log.info("%s received: finishing the current cycle and deliveries (send again to exit at once)", signame)
        watcher.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    return state


async def cmd_once(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.top is not None:
        if args.top < 1:
            raise CliError("--top must be at least 1", EXIT_CONFIG)
        config = _with_watch(config, top=args.top)
    async with App(config, store_path=args.store, api_url=args.api_url) as app:
        assert app.monitor is not None and app.dispatcher is not None
        try:
            stats = await app.monitor.cycle(0)
        except FetchError as exc:
            raise CliError(f"cannot fetch the story list: {exc}") from None
        try:
            async with asyncio.timeout(config.watch.shutdown_timeout):
                await app.dispatcher.wait_idle()
        except TimeoutError:
            log.warning("deliveries still running after %gs; they stay in the outbox", config.watch.shutdown_timeout)
        if args.json:
            for result in app.monitor.last_results:
                print(json.dumps(result.to_json()))
        log.info("%d stories, %d requests, %d errors, %d partial, %d new events in %.2fs", stats.stories,
                 stats.requests, stats.errors, stats.partial, stats.events, stats.elapsed)
    return 0


def _with_watch(config: Config, **changes: object) -> Config:
    from dataclasses import replace

    return replace(config, watch=replace(config.watch, **changes))


# --- count -----------------------------------------------------------------------------------------


async def cmd_count(args: argparse.Namespace) -> int:
    story_id = args.id
    if args.url:
        if args.id is not None:
            raise CliError("give a story id or --url, not both", EXIT_CONFIG)
        story_id = _id_from_url(args.url)
    if story_id is None:
        story_id = 8863
    if story_id < 1:
        raise CliError(f"story id must be a positive number, got {story_id}", EXIT_CONFIG)
    config = _config(args)
    api_url = args.api_url or config.hn.api_url
    if not api_url.startswith(("http://", "https://")):
        raise CliError(f"--api-url: expected an http:// or https:// URL, got {api_url!r}", EXIT_CONFIG)
    async with make_session() as session:
        client = HNClient(session, api_url, timeout=config.hn.timeout, retries=config.hn.retries,
                          max_inflight=config.hn.max_inflight)
        started = time.perf_counter()
        result = await count_story(client, story_id, max_depth=config.crawl.max_depth, max_items=config.crawl.max_items)
        elapsed = time.perf_counter() - started
    if result.story is None and result.failed:
        raise CliError(f"item {story_id}: {result.errors[0] if result.errors else 'cannot be fetched'}")
    if result.story is None:
        raise CliError(f"item {story_id} does not exist (HN answered null)")
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        extra = f", {result.deleted} deleted, {result.dead} dead, {result.unreachable} unreachable"
        partial = " (partial: some items could not be fetched)" if result.partial else ""
        print(f"Post {story_id} has {result.comments} comments{extra}{partial}")
    log.info("took %.2f seconds and %d fetches", elapsed, result.fetches)
    return 0


def _id_from_url(url: str) -> int:
    values = parse_qs(urlparse(url).query).get("id")
    if not values or not values[0].isdigit():
        raise CliError(f"--url {url!r}: no numeric id= argument (expected e.g. https://news.ycombinator.com/item?id=8863)",
                       EXIT_CONFIG)
    return int(values[0])


# --- check / plugins / notify-test / outbox ---------------------------------------------------------


async def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    plugins = load_plugins(config)
    resolved = resolve_notifiers(config, plugins)
    print(f"config: {config.source}: OK")
    print(f"watch: {config.watch.list} top {config.watch.top} every {config.watch.period:g}s from {config.hn.api_url}")
    print(f"rules: comment levels {list(config.rules.comment_levels)}, points levels {list(config.rules.points_levels)}, "
          f"velocity {[(v.level, v.window) for v in config.rules.velocity]}, keywords {list(config.rules.keywords)}")
    _print_plugins(plugins)
    print("notifiers:")
    for r in resolved:
        print(f"  {r.settings.name} (type {r.settings.type}): {_describe_route(r)}")
        for key, shown in option_lines(r.options):
            print(f"      {key} = {shown}")
    for settings in config.notifiers:
        if not settings.enabled:
            print(f"  {settings.name} (type {settings.type}): disabled")
    if not resolved:
        print("  (none: events are recorded but not delivered)")
    for error in plugins.errors:
        print(f"warning: {error}")
    return 0


# Option names that may hold a credential. Such a value is shown only as a Secret reference, a URL's
# origin, or not at all. Options classes belong to plugins, so ``check`` does not rely on their reprs
# or on every author having typed secrets as Secret: a webhook URL or header often embeds a token.
_SENSITIVE_NAME = re.compile(
    r"secret|token|passw|pwd|auth|credential|cookie|webhook|header|(?:^|_)(?:keys?|urls?|uris?|dsn)(?:$|_)",
    re.IGNORECASE,
)

_URL_IN_TEXT = re.compile(r"https?://[^\s,<>]+", re.IGNORECASE)


def option_lines(options: object) -> list[tuple[str, str]]:
    """``(name, shown value)`` for each field of a notifier's options, with anything secret-looking hidden."""
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        return [("(options)", "not shown: not a dataclass")]
    lines = []
    for f in dataclasses.fields(options):
        value = getattr(options, f.name, None)
        lines.append((f.name, _shown_option(f.name, value)))
    return lines


def _shown_option(name: str, value: object) -> str:
    if isinstance(value, Secret) or value is None or isinstance(value, bool):
        return repr(value)  # Secret's repr names the variable or file, never the value
    if not _SENSITIVE_NAME.search(name):
        if isinstance(value, str):
            return repr(_URL_IN_TEXT.sub(lambda m: _url_origin(m[0]), value))  # links may carry tokens too
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
            return repr([_URL_IN_TEXT.sub(lambda m: _url_origin(m[0]), v) if isinstance(v, str) else v
                         for v in value])
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return repr(_url_origin(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: <hidden>" for k in value) + "}"
    return "<hidden>"


def _url_origin(url: str) -> str:
    """``scheme://host[:port]``, plus ``/…`` when a path or query (which may carry a token) was dropped."""
    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<invalid url>"
    return origin + ("/…" if parts.path not in ("", "/") or parts.query or parts.fragment else "")


def _describe_route(r: ResolvedNotifier) -> str:
    s = r.settings
    parts = []
    if s.rules is not None:
        parts.append(f"rules {', '.join(s.rules)}")
    if s.min_comments:
        parts.append(f">= {s.min_comments} comments")
    if s.min_points:
        parts.append(f">= {s.min_points} points")
    if s.min_level:
        parts.append(f"levels >= {s.min_level}")
    if s.lists is not None:
        parts.append(f"lists {', '.join(s.lists)}")
    if s.keywords:
        parts.append(f"keywords {', '.join(s.keywords)}")
    if s.digest:
        parts.append(f"digest every {s.digest:g}s")
    if s.digest_at:
        parts.append(f"digest daily at {s.digest_at:%H:%M}")
    return "; ".join(parts) or "all events, immediately"


def _print_plugins(plugins: Plugins) -> None:
    print("plugins:")
    for info in plugins.infos:
        print(f"  {info.name} ({info.source}): {', '.join(info.hooks) or 'no hooks'}")
    print("notifier types:")
    for name, cls in sorted(plugins.notifier_types().items()):
        digest = " [digest]" if cls.supports_digest() else ""
        about = cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        print(f"  {name}{digest} (plugin {plugins.type_owner(name)}): {about}".rstrip())


async def cmd_plugins(args: argparse.Namespace) -> int:
    config = _config(args)
    plugins = load_plugins(config)
    _print_plugins(plugins)
    for error in plugins.errors:
        print(f"error: {error}")
    return 1 if plugins.errors else 0


def sample_event() -> Event:
    """The event ``notify-test`` sends."""
    story = StorySnapshot(id=8863, title="flamewatch test: My YC app: Dropbox - Throw away your USB drive",
                          comments=123, score=111, url="http://www.getdropbox.com/u/2/screencast.html", by="dhouston",
                          time=1175714200, descendants=123)
    return Event(key=f"test:{int(time.time())}", rule="comments", level=100, value=123, story=story,
                 at=datetime.now(UTC), velocity=42.0, growth=7)


async def cmd_notify_test(args: argparse.Namespace) -> int:
    config = _config(args)
    plugins = load_plugins(config)
    resolved = resolve_notifiers(config, plugins)
    if args.notifier:
        unknown = set(args.notifier) - {r.settings.name for r in resolved}
        if unknown:
            raise CliError(f"--notifier {min(unknown)!r}: no such enabled notifier in {config.source}", EXIT_CONFIG)
        resolved = [r for r in resolved if r.settings.name in args.notifier]
    if not resolved:
        raise CliError("no notifiers configured", EXIT_CONFIG)
    event = sample_event()
    failures = 0
    async with make_session() as session:
        for r in resolved:
            ok, reason = await _try_send(r, session, event, r.settings.timeout or config.delivery.timeout)
            failures += not ok
            print(f"{r.settings.name} ({r.settings.type}): {'OK' if ok else 'FAILED: ' + reason}")
    return 1 if failures else 0


async def _try_send(r: ResolvedNotifier, session: object, event: Event, timeout: float) -> tuple[bool, str]:
    """Start one notifier, send ``event``, close it: ``(True, "")`` or ``(False, one-line reason)``."""
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    try:
        notifier = r.type(NotifierContext(name=r.settings.name, session=session), r.options)
    except Exception as exc:  # noqa: BLE001 - plugin code may raise anything
        return False, f"cannot create the notifier: {type(exc).__name__}: {_first_line(exc)}"
    try:
        async with asyncio.timeout(timeout):
            await notifier.start()
            await notifier.send(event)
        return True, ""
    except TimeoutError:
        return False, f"timed out after {timeout:g}s"
    except DeliveryError as exc:
        kind = "will be retried in normal operation" if exc.retryable else "permanent"
        return False, f"{_first_line(exc)}{_os_reason(exc)} ({kind})"
    except Exception as exc:  # noqa: BLE001 - plugin code may raise anything
        return False, f"{type(exc).__name__}: {_first_line(exc)}{_os_reason(exc)}"
    finally:
        try:
            await notifier.aclose()
        except Exception as exc:  # noqa: BLE001 - plugin code may raise anything
            log.warning("%s: error while closing: %s", r.settings.name, _first_line(exc))


def _os_reason(exc: BaseException) -> str:
    """`` [Connection refused]`` when an OS error with an errno caused ``exc`` and the message lacks it.

    asyncio words a refused connection as "Connect call failed ('127.0.0.1', 9)", which hides the errno;
    ``notify-test`` exists to diagnose exactly that, so name it plainly.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        errno = getattr(cause, "errno", None) if isinstance(cause, OSError) else None
        if errno is None and isinstance(getattr(cause, "os_error", None), OSError):
            errno = cause.os_error.errno  # type: ignore[attr-defined]  # aiohttp.ClientConnectorError
        if isinstance(errno, int) and errno > 0:
            reason = os.strerror(errno)
            return "" if reason.lower() in str(exc).lower() else f" [{reason}]"
        cause = cause.__cause__ or cause.__context__
    return ""


async def cmd_outbox(args: argparse.Namespace) -> int:
    from .store import Store, default_store_path

    config = _config(args)
    path = args.store or config.store.path or str(default_store_path())
    async with await Store.open(path) as store:
        if args.action == "retry":
            count = await store.requeue(args.ids, time.time())
            print(f"{count} deliveries queued for retry")
            return 0
        if args.action == "drop":
            count = await store.drop(args.ids)
            print(f"{count} deliveries dropped")
            return 0
        status = None if args.status == "all" else args.status
        rows = await store.outbox(status)
        if args.status is None:
            rows = [r for r in rows if r.status != "done"]
        counts = await store.outbox_counts()
        if sum(counts.values()) == 0:
            print("outbox: empty")
        else:
            print("outbox: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for row in rows:
            when = datetime.fromtimestamp(row.next_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            error = f"  last error: {row.last_error}" if row.last_error else ""
            print(f"  #{row.id} {row.status:7} {row.instance:16} {row.event.key:28} attempts {row.attempts} next {when}{error}")
    return 0


# --- demo / simulate -------------------------------------------------------------------------------


async def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return await run_demo(duration=args.duration, period=args.period, seed=args.seed)


async def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import run_simulate

    task = asyncio.ensure_future(run_simulate(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return 0


COMMANDS = {
    "run": cmd_run,
    "once": cmd_once,
    "count": cmd_count,
    "demo": cmd_demo,
    "simulate": cmd_simulate,
    "check": cmd_check,
    "plugins": cmd_plugins,
    "notify-test": cmd_notify_test,
    "outbox": cmd_outbox,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
