"""One sender per store: real ``flamewatch`` processes on one SQLite store, a real webhook receiver.

``run`` and ``once`` take the store's instance lock (an flock on ``<store>.lock``) right after opening the
store; a second one stops with exit status 2 and one line naming the store and the holder's pid, before
it resumes (and re-sends) anything. ``outbox list`` opens the store read-only and works beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from conftest import FLAMEWATCH
from fakes.webhook_receiver import FakeWebhookReceiver
from test_faults import (
    FlamewatchProcess,
    read_store,
    run_args,
    static_world,
    webhook_settings,
    write_config,
)

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.dispatch.recording import while_held
from flamewatch.dispatch import Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.errors import StoreError, StoreLockedError
from flamewatch.rules import Evaluation
from flamewatch.simulator import SimulatorServer
from flamewatch.store import open_store
from flamewatch.testing import RecordingNotifier, make_event, make_test_plugins, notifier_context, plugin_offering


def sender_config(tmp_path: Path, receiver: FakeWebhookReceiver) -> Path:
    path = write_config(tmp_path / "fw.toml", {
        "watch": {"top": 5, "period": 0.2, "shutdown_timeout": 1.0},
        "rules": {"comment_levels": [1, 2, 3, 5, 8], "points_levels": [1, 5]},
    }, [webhook_settings(receiver, concurrency=2)])
    path.chmod(0o600)  # no "readable by others" warning among the lines counted here
    return path


async def flamewatch(*args: str) -> tuple[int, str, str]:
    """Run one ``flamewatch`` command to its end: ``(status, stdout, stderr)``."""
    proc = await asyncio.create_subprocess_exec(*FLAMEWATCH, *args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_second_run_and_a_once_beside_a_run_exit_2_naming_the_holder(
    tmp_path: Path, receiver: FakeWebhookReceiver
) -> None:
    store = tmp_path / "fw.db"
    config = sender_config(tmp_path, receiver)
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_args(config, sim, store)) as first:
        await first.wait_for_line("cycle 0:")
        _, outbox = read_store(store)
        await receiver.wait_for_deliveries(len(outbox), timeout=10)
        assert first.proc is not None
        holder = f"pid {first.proc.pid} "
        async with FlamewatchProcess(*run_args(config, sim, store)) as second:
            assert await second.exit_status(15) == 2
        once = await flamewatch("-c", str(config), "once", "--api-url", sim.base_url, "--store", str(store))
        await first.wait_for_line("cycle 2:")  # the first one carries on untroubled
        first.signal(signal.SIGTERM)
        assert await first.exit_status(5) == 0, first.stderr
    for status, stderr in ((2, second.stderr), (once[0], once[2])):
        (line,) = [line for line in stderr.splitlines() if line.strip()]
        assert status == 2
        assert line.startswith("flamewatch: error: store ") and str(store) in line and holder in line, line
    assert once[1] == ""  # no story lines: it stopped before its cycle
    # Every alert went out once: neither the second run nor the once resumed the outbox or fired again.
    keys = [d.body["data"]["key"] for d in receiver.deliveries]
    assert len(receiver.requests) == len(outbox) == len(keys) == len(set(keys))
    assert receiver.duplicates == 0


async def test_the_lock_goes_with_its_process_even_after_kill_9(tmp_path: Path, receiver: FakeWebhookReceiver) -> None:
    store = tmp_path / "fw.db"
    config = sender_config(tmp_path, receiver)
    async with SimulatorServer(static_world()) as sim:
        async with FlamewatchProcess(*run_args(config, sim, store)) as first:
            await first.wait_for_line("cycle 0:")
            first.signal(signal.SIGKILL)
            assert await first.exit_status(5) == -signal.SIGKILL
        async with FlamewatchProcess(*run_args(config, sim, store)) as second:
            await second.wait_for_line("cycle 1:")  # not refused: the kernel dropped the dead one's lock
            second.signal(signal.SIGTERM)
            assert await second.exit_status(5) == 0, second.stderr


async def test_outbox_list_reads_while_run_writes_and_while_a_write_lock_is_held(
    tmp_path: Path, receiver: FakeWebhookReceiver
) -> None:
    store = tmp_path / "fw.db"
    config = sender_config(tmp_path, receiver)
    receiver.hang_next(1000)  # deliveries stay pending while we look
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_args(config, sim, store)) as run:
        await run.wait_for_line("cycle 0:")
        listed = await flamewatch("-c", str(config), "outbox", "--store", str(store))
        # Another process in the middle of a write transaction: a writer would wait, then fail.
        with contextlib.closing(sqlite3.connect(store, timeout=0.1)) as db:
            db.execute("BEGIN IMMEDIATE")
            locked = await flamewatch("-c", str(config), "outbox", "--store", str(store), "--status", "all")
            db.execute("ROLLBACK")
        run.signal(signal.SIGTERM)
        assert await run.exit_status(5) == 0, run.stderr
    for status, out, err in (listed, locked):
        assert status == 0, err
        assert out.startswith("outbox: ") and " pending" in out and "#1 " in out
    assert "Traceback" not in run.stderr


async def test_a_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "fw.db"
    async with await open_store(path) as store:
        await store.record_events([make_event()], {}, 1.0)
    async with await open_store(path, read_only=True) as ro:
        assert await ro.fired_keys() == {make_event().key}
        with pytest.raises(StoreError, match="readonly"):
            await ro.record_events([make_event(story_id=2)], {}, 2.0)
    with pytest.raises(StoreError, match="no such file"):
        await open_store(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


async def test_app_takes_the_lock_and_a_second_app_is_refused(tmp_path: Path) -> None:
    config = parse_config({"store": {"path": str(tmp_path / "fw.db")}, "notifiers": [{"type": "recording"}]}, "t.toml")
    plugins = make_test_plugins(plugin_offering(RecordingNotifier))
    async with App(config, plugins=plugins, owner="first") as first:
        assert first.lock is not None and first.lock.held
        with pytest.raises(StoreLockedError, match=rf"pid {os.getpid()} .*\(first\)"):
            async with App(config, plugins=plugins, owner="second"):
                pass
    assert not first.lock.held
    async with App(config, plugins=plugins):  # free again once the first is closed
        pass


async def test_dispatcher_stops_sending_once_the_lock_is_lost(
    tmp_path: Path, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with await open_store(tmp_path / "fw.db") as store:
        lock = store.instance_lock("test")
        await lock.acquire(wait=False)
        sink = RecordingNotifier(notifier_context(session, "sink"))
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink)], retry=RetryPolicy(0.01, 0.05, 60.0),
                                may_send=while_held(lock))
        await dispatcher.start()
        await dispatcher.publish(Evaluation(announce=[make_event(story_id=1)]))
        await dispatcher.wait_idle()
        assert len(sink.sent) == 1
        await lock.release()  # what a PostgreSQL leader lock does when its connection is cut
        with caplog.at_level(logging.ERROR, logger="flamewatch.dispatch"):
            for story_id in (2, 3):
                await dispatcher.publish(Evaluation(announce=[make_event(story_id=story_id)]))
                await dispatcher.wait_idle()  # returns: nothing will be sent from here
        await dispatcher.close(1.0)
        assert len(sink.sent) == 1 and sink.attempts == 1
        assert (await store.outbox_counts())["pending"] == 2
    lost = [r for r in caplog.records if "no longer holds the store's instance lock" in r.getMessage()]
    assert len(lost) == 1


async def test_outbox_retry_beside_a_run_changes_rows_and_only_the_run_sends(
    tmp_path: Path, receiver: FakeWebhookReceiver
) -> None:
    store = tmp_path / "fw.db"
    config = write_config(tmp_path / "fw.toml", {
        "watch": {"top": 1, "period": 0.2, "shutdown_timeout": 1.0},
        "rules": {"comment_levels": [1]},
        "stream": {"enabled": False},
    }, [webhook_settings(receiver)])
    receiver.fail_next(400)  # the one alert is refused: a dead letter
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_args(config, sim, store)) as run:
        await run.wait_for_line("moved to dead letters")
        status, out, err = await flamewatch("-c", str(config), "outbox", "retry", "--store", str(store))
        assert (status, out) == (0, "1 deliveries queued for retry\n"), err
        # The daemon, the store's one sender, finds the requeued row on its next look at the outbox.
        await receiver.wait_for_deliveries(1, timeout=45)
        run.signal(signal.SIGTERM)
        assert await run.exit_status(5) == 0, run.stderr
    assert [r.status for r in receiver.requests] == [400, 200] and receiver.duplicates == 0
    _, outbox = read_store(store)
    assert [s for _, _, s in outbox] == ["sent"]
