"""``flamewatch silence add|list|expire``: silences kept in the store, applied by a running daemon at its
next cycle (see :mod:`flamewatch.silences`)."""

from __future__ import annotations

import argparse
import time

from ..config.values import Where, parse_duration
from ..errors import ConfigError
from ..silences import SilenceList, describe
from .common import EXIT_CONFIG, CliError, config_from_args

__all__ = ["cmd_silence"]


async def cmd_silence(args: argparse.Namespace) -> int:
    """Add, list or expire silences."""
    from ..store import open_store
    from ..store.factory import configured_location

    if args.action in ("add", "expire") and not args.target:
        what = "story:ID, domain:D, user:U or term:T" if args.action == "add" else "the silence id (see silence list)"
        raise CliError(f"silence {args.action}: missing {what}", EXIT_CONFIG)
    duration = 0.0
    if args.action == "add":
        try:
            duration = parse_duration(args.duration, Where("--for"))
        except ConfigError as exc:
            raise CliError(f"silence add: {exc}", EXIT_CONFIG) from None
    config = config_from_args(args)
    path = configured_location(config.store, args.store)  # [store] url too: the daemon's store
    now = time.time()
    async with await open_store(path) as store:
        book = await SilenceList.load(store)
        if args.action == "list":
            shown = book.silences if args.all else book.active(now)
            print(f"silences: {len(book.active(now))} active" + ("" if args.all else " (--all: expired too)"))
            for line in describe(shown, now):
                print(line)
            return 0
        try:
            if args.action == "add":
                silence = book.add(args.target, duration, args.comment, now)
                verb = "added"
            else:
                silence = book.expire(args.target, now)
                verb = "expired"
        except ValueError as exc:
            raise CliError(str(exc), EXIT_CONFIG) from None
        except KeyError as exc:
            raise CliError(str(exc.args[0]), EXIT_CONFIG) from None
        await book.save(store, now)
    print(f"silence {silence.id} {verb}: {silence.matcher}" + (f" until {_local(silence.expires_at)}"
                                                               if verb == "added" else ""))
    return 0


def _local(moment: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d %H:%M %Z")
