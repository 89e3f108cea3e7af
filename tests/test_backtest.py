"""``flamewatch backtest``: a live run against the simulator records history; replaying it with the same
config counts exactly the alerts the live run queued, per rule, level and instance; another config
(``-c other.toml``) replays the same store with its own thresholds."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flamewatch.app import App
from flamewatch.cli import main
from flamewatch.config import load_config
from flamewatch.simulator import SimulatorServer, World


def write_config(path: Path, sim: SimulatorServer, store: Path, rules: str) -> Path:
    path.write_text(f"""
[hn]
api_url = "{sim.base_url}"
[watch]
top = 6
[rules]
{rules}
[store]
path = "{store}"
[[notifiers]]
type = "console"
name = "all"
stream = "stderr"
[[notifiers]]
type = "console"
name = "big"
stream = "stderr"
min_comments = 60
""")
    return path


async def backtest(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    assert await asyncio.to_thread(main, [*argv, "backtest", "--days", "1", "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


async def test_backtest_counts_what_a_live_run_with_the_same_config_queued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(seed=12, stories=6, total_comments=150)
    clock = {"t": time.time() - 6 * 3600}  # six hours ago, a cycle every ten minutes: all in the last day
    store = tmp_path / "fw.db"
    rules = ('comment_levels = [20, 40, 80, 160]\npoints_levels = [50, 100]\n'
             '[[rules.velocity]]\nlevel = 60\nwindow = "30m"')
    async with SimulatorServer(world) as sim:
        path = write_config(tmp_path / "fw.toml", sim, store, rules)
        async with App(load_config(path), clock=lambda: clock["t"]) as app:
            assert app.monitor is not None and app.dispatcher is not None and app.store is not None
            for n in range(24):
                world.grow(25)
                await app.monitor.cycle(n)
                await app.dispatcher.wait_idle()
                clock["t"] += 600
            rows = await app.store.outbox(None, limit=10_000)
            live = Counter((d.event.rule, str(d.event.level), d.instance) for d in rows)
        stricter = write_config(tmp_path / "strict.toml", sim, store, "comment_levels = [160]")
        same = await backtest(capsys, "-c", str(path))
        other = await backtest(capsys, "-c", str(stricter))
    replayed = Counter({(a["rule"], a["level"], a["instance"]): a["total"] for a in same["alerts"]})
    assert sum(live.values()) > 10 and {rule for rule, _, _ in live} == {"comments", "points", "velocity"}
    assert replayed == live
    assert same["cycles"] == 24 and same["stories"] >= 6  # new stories reach the list as it grows
    assert 0.15 < same["days"] < 0.17  # 23 cycle intervals of ten minutes
    a_day = {(a["rule"], a["level"], a["instance"]): a["per_day"] for a in same["alerts"]}
    some = next(iter(live))
    assert a_day[some] == pytest.approx(live[some] / same["days"], rel=0.02)
    assert {a["rule"] for a in other["alerts"]} <= {"comments"} and all(a["level"] == "160" for a in other["alerts"])
    assert sum(a["total"] for a in other["alerts"]) <= sum(n for (r, lv, _), n in live.items() if lv == "160")


def test_backtest_text_names_what_it_cannot_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fw.toml"
    path.write_text(f'[rules]\ncomment_levels = [10]\ndecline = true\n[store]\npath = "{tmp_path / "fw.db"}"\n'
                    '[[notifiers]]\ntype = "console"\n')
    # An empty store: nothing replayed, said plainly.
    asyncio.run(_open_store(path))
    capsys.readouterr()
    assert main(["-c", str(path), "backtest"]) == 0
    out = capsys.readouterr().out
    assert "replayed 0 cycles" in out and "no alert would have been sent" in out
    assert "not replayed (the store keeps counts, not lists or items): decline" in out


async def _open_store(path: Path) -> None:
    async with App(load_config(path)):
        pass
