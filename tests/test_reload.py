"""SIGHUP re-reads the config of a running ``flamewatch run`` (a real subprocess, real servers on loopback).

A valid edit takes effect without a restart (a new webhook notifier starts receiving); an invalid one is
one log line and the old config keeps running; SIGHUP never ends the process.
"""

from __future__ import annotations

import signal
from pathlib import Path

from fakes.webhook_receiver import FakeWebhookReceiver
from test_faults import UNCLEAN, FlamewatchProcess, run_args, webhook_settings, write_config

from flamewatch.simulator import SimulatorServer, World


TABLES = {
    "watch": {"top": 5, "period": 0.3, "shutdown_timeout": 2.0},
    "rules": {"comment_levels": [5, 10, 20, 40, 80, 160, 320, 640, 1280], "points_levels": []},
    "delivery": {"retry_base": 0.05, "retry_cap": 0.2},
}
CONSOLE = {"type": "console", "name": "console", "stream": "stdout"}


async def _next_cycle(proc: FlamewatchProcess) -> None:
    """Wait until a cycle starts and ends after now (its line is new)."""
    seen = sum(1 for line in proc.lines if "cycle " in line and " stories in " in line)
    marker = f"cycle {seen}:"
    await proc.wait_for_line(marker)


async def test_sighup_adds_a_webhook_and_a_broken_edit_keeps_the_old_config(
    tmp_path: Path, receiver: FakeWebhookReceiver
) -> None:
    world = World(seed=3, stories=5, total_comments=100)
    config = write_config(tmp_path / "fw.toml", TABLES, [CONSOLE])
    async with SimulatorServer(world) as sim, FlamewatchProcess(*run_args(config, sim, tmp_path / "fw.db")) as proc:
        await proc.wait_for_line("cycle 0:")

        # 1. A new webhook notifier: started on SIGHUP, it receives the events of the next cycles.
        write_config(config, TABLES, [CONSOLE, webhook_settings(receiver)])
        proc.signal(signal.SIGHUP)
        line = await proc.wait_for_line("config reloaded")
        assert "notifiers added hook" in line, line
        world.grow(600)
        await receiver.wait_for_deliveries(1, timeout=15)

        # 2. A broken edit: one error line, the old config (with the webhook) keeps running.
        config.write_text("[watch\n")
        proc.signal(signal.SIGHUP)
        error = await proc.wait_for_line("config not reloaded")
        assert "line 1, column" in error and "not valid TOML" in error, error
        delivered = len(receiver.deliveries)
        world.grow(1200)
        await receiver.wait_for_deliveries(delivered + 1, timeout=15)
        await _next_cycle(proc)

        # 3. An edit whose new notifier cannot start (a secret of the wrong shape): also kept out.
        write_config(config, TABLES, [CONSOLE, webhook_settings(receiver),
                                      {"type": "webhook", "name": "bad", "url": receiver.url,
                                       "secret": {"env": "FW_RELOAD_BAD"}}])
        proc.signal(signal.SIGHUP)
        # FW_RELOAD_BAD is not set in the process's environment: the config itself is invalid.
        error = await proc.wait_for_line("FW_RELOAD_BAD")
        assert "config not reloaded" in error

        # 4. Removing the webhook stops it: later events no longer reach the receiver.
        write_config(config, TABLES, [CONSOLE])
        proc.signal(signal.SIGHUP)
        line = await proc.wait_for_line("removed hook")
        await _next_cycle(proc)
        await _next_cycle(proc)
        before = len(receiver.requests)
        world.grow(1200)
        await _next_cycle(proc)
        await _next_cycle(proc)
        assert len(receiver.requests) == before

        assert proc.proc is not None and proc.proc.returncode is None  # SIGHUP never ended it
        proc.signal(signal.SIGTERM)
        assert await proc.exit_status(10) == 0, proc.stderr
    errors = [line for line in proc.lines if "ERROR" in line]
    assert len(errors) == 2, proc.stderr  # one line per refused reload, nothing else
    assert not any(text in proc.stderr for text in UNCLEAN), proc.stderr


async def test_a_reload_refused_for_several_mistakes_says_how_many_more_check_lists(tmp_path: Path) -> None:
    from flamewatch.app import App
    from flamewatch.config import load_config
    from flamewatch.simulator import SimulatorServer, World
    from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering

    async with SimulatorServer(World(seed=5, stories=3)) as sim:
        path = tmp_path / "fw.toml"
        good = f'[hn]\napi_url = "{sim.base_url}"\n[store]\npath = "{tmp_path / "fw.db"}"\n'
        path.write_text(good + '[[notifiers]]\ntype = "recording"\n')
        async with App(load_config(path), plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            path.write_text(good + '[watch]\ntop = "x"\nperiod = "soon"\nlizt = 1\n')
            reason = await app.reload()
    assert reason is not None and "watch.top" in reason and "(and 2 more: 'flamewatch check' lists them)" in reason
