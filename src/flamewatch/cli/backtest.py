"""``flamewatch backtest``: how many alerts a day a config would have sent, from the store's history.

Reads the store read-only (SQLite ``mode=ro``, so it may run beside the daemon), the config's rules and
notifier routes (``--config other.toml`` tries another file against the same store), and prints per
rule, level and notifier instance how many alerts the last ``--days`` would have given (see
:mod:`flamewatch.backtest`).
"""

from __future__ import annotations

import argparse
import json
import time

from ..assembly import load_plugins, resolve_notifiers, resolve_rules
from ..backtest import BacktestReport, replay
from ..config import Config
from ..store.factory import configured_location, describe_location
from ..store.sqlite import SQLiteStore
from .common import EXIT_CONFIG, CliError, config_from_args

__all__ = ["cmd_backtest", "run_backtest"]


async def cmd_backtest(args: argparse.Namespace) -> int:
    """Print the report (``--json``: one JSON object). Exit 0, or 1 when the store cannot be read."""
    config = config_from_args(args)
    report = await run_backtest(config, days=args.days, store_path=args.store)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0


async def run_backtest(config: Config, *, days: float, store_path: str | None = None,
                       now: float | None = None) -> BacktestReport:
    """Replay the last ``days`` of ``config``'s store (or ``store_path``) against its rules and routes."""
    path = configured_location(config.store, store_path)
    if "://" in path:
        raise CliError(f"backtest reads the embedded store file only; {describe_location(path)} is a database "
                       "server", EXIT_CONFIG)
    plugins = load_plugins(config)
    rules = resolve_rules(config, plugins)
    instances = resolve_notifiers(config, plugins)
    end = time.time() if now is None else now
    since = start = end - days * 86400.0
    async with await SQLiteStore.open_readonly(path) as store:
        samples = await store.samples_since(since)
        fired = await store.fired_events({s.story_id for s in samples})
    if samples:
        start, end = samples[0].at, samples[-1].at
    return replay(samples, rules, instances, fired, since=since, start=start, end=end)
