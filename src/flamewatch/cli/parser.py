"""The ``flamewatch`` argument parser: every command with a description and an example.

``-c``, ``-v``, ``-q`` and ``--log-format`` are accepted before or after the command name
(``flamewatch -v check`` and ``flamewatch check -v`` mean the same). A usage mistake is one line on
stderr and exit status 2, like every other mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from typing import NoReturn

from .. import __version__
from ..config.values import Where, parse_duration
from ..errors import ConfigError

# Defaults of the options every command takes; the sub-parsers leave them unset (SUPPRESS) so a value
# given before the command name is not overwritten by the sub-parser's default.
GLOBAL_DEFAULTS = {"config": None, "verbose": 0, "quiet": False, "log_format": "text"}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``flamewatch: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"flamewatch: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def duration(text: str) -> float:
    """``--period`` and friends: seconds (``90``) or a duration as the config takes it (``"5m"``)."""
    value: object = text
    with contextlib.suppress(ValueError):
        value = float(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds or a duration like 5m, got {text!r}")
    try:
        return parse_duration(value, Where("<command line>"))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("<command line>: ")) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(name: str) -> object:
        return argparse.SUPPRESS if suppress else GLOBAL_DEFAULTS[name]

    parser.add_argument("-c", "--config", default=default("config"),
                        help="config file (default: $FLAMEWATCH_CONFIG, ./flamewatch.toml, "
                        "~/.config/flamewatch/config.toml, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="count", default=default("verbose"),
                        help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default("quiet"),
                        help="only warnings and errors")
    parser.add_argument("--log-format", choices=("text", "json"), default=default("log_format"),
                        help="log lines as text, or as one JSON object per line (journald, containers)")


def _command(sub: argparse._SubParsersAction[Parser], name: str, summary: str, description: str,
             example: str) -> Parser:
    parser: Parser = sub.add_parser(
        name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {description}",
        epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, suppress=True)
    return parser


def build_parser() -> Parser:
    parser = Parser(prog="flamewatch", description="Watch Hacker News threads heat up and alert.",
                    epilog="start with: flamewatch init, then flamewatch check, then flamewatch run")
    parser.add_argument("--version", action="version", version=f"flamewatch {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    # Listed in --help in this order: getting started and watching, then inspecting, then the store's lists.
    _watching_commands(sub)
    _inspecting_commands(sub)
    _list_commands(sub)
    return parser


def _watching_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    """init, run, once, count, demo and simulate."""
    p = _command(sub, "init", "write a commented starter config",
                 "Asks which notifiers to set up when run on a terminal; otherwise takes them from the flags. "
                 "The file it writes passes 'flamewatch check'.",
                 "flamewatch init --slack ~/.config/flamewatch/config.toml")
    p.add_argument("path", nargs="?", default="flamewatch.toml", help="where to write it (default: %(default)s)")
    for kind in ("slack", "email", "webhook"):
        p.add_argument(f"--{kind}", action="store_true", help=f"include a {kind} notifier")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    p = _command(sub, "run", "watch HN until SIGINT/SIGTERM, delivering alerts",
                 "The daemon. SIGHUP re-reads the config file (an invalid edit is logged and the old config "
                 "kept); SIGINT or SIGTERM finishes the current cycle and deliveries, twice exits at once.",
                 "flamewatch -c flamewatch.toml run --period 5m")
    _api_and_store(p)
    p.add_argument("--period", type=duration, help="time between cycles, e.g. 90 or 5m (overrides watch.period)")
    _http_option(p, "http.listen")
    _backfill(p)

    p = _command(sub, "once", "one cycle: count, fire, deliver, exit",
                 "For cron: the exit status is 1 when the story list could not be fetched or a delivery "
                 "failed, so the failure reaches the cron mail.",
                 "flamewatch once --top 10 --json")
    _api_and_store(p)
    p.add_argument("--top", type=positive_int, help="how many stories of the list to count (overrides watch.top)")
    p.add_argument("--json", action="store_true", help="print one JSON object per story on stdout")
    _backfill(p)

    p = _command(sub, "count", "count stories' comments by walking their trees",
                 "Prints one line per id. On a terminal a progress line shows items, rate and time left.",
                 "flamewatch count 8863 121003")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="story ids (default 8863, 'My YC app: Dropbox')")
    p.add_argument("--url", help="an HN item page URL; its id= argument is used")
    p.add_argument("--api-url", help="HN API base URL (default: hn.api_url)")
    p.add_argument("--json", action="store_true", help="print each result as one JSON object")

    p = _command(sub, "demo", "offline demo: a local simulator, a fast watcher, alerts on the console",
                 "Needs no network and no config: lowered comment levels make alerts fire within seconds.",
                 "flamewatch demo --duration 30")
    p.add_argument("--duration", type=duration, default=20.0, help="how long to run (default 20s)")
    p.add_argument("--period", type=duration, default=2.0, help="time between cycles (default 2s)")
    p.add_argument("--seed", type=int, default=7, help="the simulated world's random seed (default 7)")
    _http_option(p, "127.0.0.1:8642")

    from ..simulator import add_simulate_arguments

    p = _command(sub, "simulate", "serve a local simulated HN API",
                 "Point hn.api_url (or --api-url) at it to try rules and notifiers without touching HN.",
                 "flamewatch simulate --port 8765 --stories 30")
    add_simulate_arguments(p)


def _inspecting_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    """status, check, plugins, notify-test and outbox."""
    p = _command(sub, "status", "what the daemon is doing: its store (read-only) and its API",
                 "Works while 'run' writes: the store is opened read-only; the daemon's API adds live details.",
                 "flamewatch status --json")
    p.add_argument("--store", help="store file (overrides store.path)")
    p.add_argument("--http", metavar="ADDR", help="the daemon's HTTP address (default: http.listen)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = _command(sub, "backtest", "how many alerts a day this config would have sent, from the store's history",
                 "Replays the recorded counts against the config's rules and notifier routes (-c other.toml tries "
                 "another file) and prints, per rule, level and notifier instance, alerts in total and a day.",
                 "flamewatch -c stricter.toml backtest --days 7")
    p.add_argument("--days", type=positive_int, default=7, help="how many days back to replay (default 7)")
    p.add_argument("--store", help="store file (overrides store.path)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    _command(sub, "check", "validate the config and show the plugins and notifiers that would run",
             "Reports every problem 'run' would stop on, one line each, and exits 2 if there is any.",
             "flamewatch -c flamewatch.toml check")
    _command(sub, "plugins", "list loaded plugins and the notifier types they offer",
             "Shows built-in plugins, entry points and plugin directories, and any that failed to load.",
             "flamewatch plugins")

    p = _command(sub, "notify-test", "send a sample event through each configured notifier",
                 "A real message: use it to see how alerts look and that credentials work.",
                 "flamewatch notify-test --notifier team-slack")
    p.add_argument("--notifier", action="append", help="only this instance (repeatable)")

    p = _command(sub, "outbox", "list, retry or drop queued and dead-letter deliveries",
                 "Reads the store; 'retry' makes rows due now (a running daemon picks them up).",
                 "flamewatch outbox retry --id 12")
    p.add_argument("action", nargs="?", choices=("list", "retry", "drop"), default="list")
    p.add_argument("--status", choices=("pending", "sent", "grouped", "silenced", "superseded", "dead", "all", "done"),
                   default=None, help="only rows in this state ('done' is the older name of 'sent'); default: "
                   "pending and dead")
    p.add_argument("--id", type=int, action="append", dest="ids", help="only this row (repeatable)")
    p.add_argument("--store", help="store file (overrides store.path)")
    p.add_argument("--limit", type=positive_int, default=1000, help="list at most this many rows (default 1000)")
    p.add_argument("--json", action="store_true", help="print the listing (or the change) as one JSON object")


def _list_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    """follow, silence and unfollow: the followed threads and the silences kept in the store."""
    p = _command(sub, "follow", "count a thread every cycle (a story or comment id, or an HN URL)",
                 "Kept in the store: a running daemon picks it up at its next cycle. Following a comment follows "
                 "its story; a followed thread ends after it has been quiet for watch.follow_quiet.",
                 "flamewatch follow https://news.ycombinator.com/item?id=8863 --for 3d")
    p.add_argument("target", nargs="?", help="item id or https://news.ycombinator.com/item?id=... URL")
    p.add_argument("--for", dest="duration", help='stop following after this long, e.g. "3d" (default: until quiet)')
    p.add_argument("--list", action="store_true", help="list the followed threads")
    p.add_argument("--store", help="store file (overrides store.path)")
    p.add_argument("--api-url", help="HN API base URL (overrides hn.api_url)")

    p = _command(sub, "silence", "stop alerts about a story, domain, user or term for a while",
                 "Kept in the store; a running daemon applies silences at its next cycle. Silenced events are "
                 "recorded and listed ('flamewatch outbox --status silenced'), never sent.",
                 'flamewatch silence add domain:example.com --for 6h --comment "launch day"')
    p.add_argument("action", choices=("add", "list", "expire"))
    p.add_argument("target", nargs="?", help="add: story:ID, domain:D, user:U or term:T; expire: the silence id")
    p.add_argument("--for", dest="duration", default="1h", help="add: how long, e.g. 30m, 6h, 2d (default 1h)")
    p.add_argument("--comment", default="", help="add: why (shown in listings and in the outbox)")
    p.add_argument("--all", action="store_true", help="list: expired silences too")
    p.add_argument("--store", help="store file (overrides store.path)")

    p = _command(sub, "unfollow", "stop following a thread",
                 "A running daemon stops counting it at its next cycle. A comment id unfollows its story, "
                 "as 'follow' followed it.", "flamewatch unfollow 8863")
    p.add_argument("target", help="item id or HN URL")
    p.add_argument("--store", help="store file (overrides store.path)")
    p.add_argument("--api-url", help="HN API base URL (overrides hn.api_url), to find a comment's story")


def _backfill(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backfill", action="store_true", help="a watched user's first run announces their stories' "
                   "current ranks and levels instead of only recording them")


def _http_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--http", metavar="ADDR", help=f'serve the status page, API and metrics at host:port; "" turns '
                   f"it off (default: {default})")


def _api_and_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-url", help="HN API base URL (overrides hn.api_url)")
    p.add_argument("--store", help="store file (overrides store.path); ':memory:' keeps nothing")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` and fill in the global options' defaults."""
    args = build_parser().parse_args(argv)
    for name, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args
