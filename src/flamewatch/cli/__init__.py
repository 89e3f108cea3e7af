"""The ``flamewatch`` command line: run · once · count · demo · simulate · check · plugins · notify-test · outbox.

Every expected failure (bad config, unreachable store, bad arguments) ends as one line on stderr and a
non-zero exit status (2 for configuration mistakes), never a traceback. The commands live in
:mod:`.watching` (run, once, count, demo, simulate) and :mod:`.admin` (check, plugins, notify-test, outbox).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..config import ConfigError
from ..errors import PluginError
from ..store import StoreError
from .admin import cmd_check, cmd_notify_test, cmd_outbox, cmd_plugins
from .common import EXIT_CONFIG, CliError, first_line, log, print_error
from .silence import add_silence_arguments, cmd_silence
from .watching import cmd_count, cmd_demo, cmd_once, cmd_run, cmd_simulate

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

    p = sub.add_parser("count", help="count one story's comments by walking its tree")
    p.add_argument("id", nargs="?", type=int, help="story id (default 8863, 'My YC app: Dropbox')")
    p.add_argument("--url", help="an HN item page URL; its id= argument is used")
    p.add_argument("--api-url", help="HN API base URL (default: hn.api_url)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")

    p = sub.add_parser("demo", help="offline demo: a local simulator, a fast watcher, alerts on the console")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    p.add_argument("--period", type=float, default=2.0, help="seconds between cycles (default 2)")
    p.add_argument("--seed", type=int, default=7)

    from ..simulator import add_simulate_arguments

    p = sub.add_parser("simulate", help="serve a local simulated HN API")
    add_simulate_arguments(p)

    sub.add_parser("check", help="validate the config and show the plugins and notifiers that would run")
    sub.add_parser("plugins", help="list loaded plugins and the notifier types they offer")

    p = sub.add_parser("notify-test", help="send a sample event through each configured notifier")
    p.add_argument("--notifier", action="append", help="only this instance (repeatable)")

    p = sub.add_parser("outbox", help="list, retry or drop queued and dead-letter deliveries")
    p.add_argument("action", nargs="?", choices=("list", "retry", "drop"), default="list")
    p.add_argument("--status", choices=("pending", "dead", "done", "silenced", "superseded", "all"), default=None)
    p.add_argument("--id", type=int, action="append", dest="ids", help="only this row (repeatable)")
    p.add_argument("--store", help="store file (overrides store.path)")

    add_silence_arguments(sub)
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
        print_error(str(exc))
        return EXIT_CONFIG
    except (CliError, StoreError) as exc:
        print_error(str(exc))
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug, not a user mistake: still one line; the traceback is there for whoever asks with -vv.
        log.debug("unexpected error", exc_info=True)
        print_error(f"unexpected {type(exc).__name__}: {first_line(exc)} (run with -vv for the traceback)")
        return 1


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
    "silence": cmd_silence,
}
