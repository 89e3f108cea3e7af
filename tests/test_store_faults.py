"""Store faults under a real ``flamewatch run``: a write lock held elsewhere, the file removed or replaced,
a read-only file. Real processes, a real SQLite file, a real webhook receiver on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import errno
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

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

from flamewatch.simulator import SimulatorServer
from flamewatch.store import open_store


def one_key_config(tmp_path: Path, receiver: FakeWebhookReceiver) -> Path:
    return write_config(tmp_path / "fw.toml", {
        "watch": {"top": 1, "period": 0.2, "shutdown_timeout": 2.0},
        "rules": {"comment_levels": [1]},
        "stream": {"enabled": False},
        # Fast retries: before, an unrecordable success was sent again after a 5 s hold.
        "delivery": {"retry_base": 0.05, "retry_cap": 0.2},
    }, [webhook_settings(receiver)])


async def test_a_success_the_store_cannot_record_is_never_sent_again(
    tmp_path: Path, receiver: FakeWebhookReceiver
) -> None:
    store = tmp_path / "fw.db"
    config = one_key_config(tmp_path, receiver)
    receiver.hold_next(1)  # the receiver has the message; the sender learns so when we say
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess("-vv", *run_args(config, sim, store)) as run:
        await receiver.wait_for_requests(1, timeout=15)
        # Another process takes the write lock: the daemon's "done" will wait 5 s (busy timeout), then fail.
        with contextlib.closing(sqlite3.connect(store, timeout=1.0, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            receiver.release_held()
            await run.wait_for_line("the store cannot record it", timeout=20)
            # The first retry of the write failed too: 15 s after the send, well past the old 5 s re-send.
            await run.wait_for_line("next try in 10s", timeout=30)
            db.execute("ROLLBACK")
        await run.wait_for_line("the store records again", timeout=30)
        run.signal(signal.SIGTERM)
        assert await run.exit_status(10) == 0, run.stderr
    assert len(receiver.requests) == 1 and receiver.duplicates == 0
    assert len([line for line in run.lines if "the store cannot record it" in line]) == 1
    _, outbox = read_store(store)
    assert [status for _, _, status in outbox] == ["sent"]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs to fill up, where the machine allows mounting one (root); else the test is skipped."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_up(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    block = bytes(65536)
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


async def test_a_full_disk_keeps_the_outcome_and_sends_nothing_twice(
    tmp_path: Path, receiver: FakeWebhookReceiver, small_tmpfs: Path
) -> None:
    store = small_tmpfs / "fw.db"
    config = one_key_config(tmp_path, receiver)
    receiver.hold_next(1)
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_args(config, sim, store)) as run:
        await receiver.wait_for_requests(1, timeout=15)
        fill_up(small_tmpfs / "filler")
        receiver.release_held()
        line = await run.wait_for_line("the store cannot record it", timeout=20)
        (small_tmpfs / "filler").unlink()
        await run.wait_for_line("the store records again", timeout=30)
        run.signal(signal.SIGTERM)
        assert await run.exit_status(10) == 0, run.stderr
    assert "full" in line, line
    assert len(receiver.requests) == 1 and receiver.duplicates == 0
    _, outbox = read_store(store)
    assert [status for _, _, status in outbox] == ["sent"]


@pytest.mark.parametrize("how", ["removed", "replaced"])
async def test_a_store_file_removed_or_replaced_under_run_stops_it(
    tmp_path: Path, receiver: FakeWebhookReceiver, how: str
) -> None:
    store = tmp_path / "fw.db"
    config = one_key_config(tmp_path, receiver)
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_args(config, sim, store)) as run:
        await run.wait_for_line("cycle 1:")
        if how == "removed":
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{store}{suffix}")
        else:
            shutil.copy(store, tmp_path / "copy.db")
            os.replace(tmp_path / "copy.db", store)
        status = await run.exit_status(10)
    assert status == 1
    errors = [line for line in run.lines if line.startswith("flamewatch: error: ")]
    word = "removed" if how == "removed" else "replaced"
    assert len(errors) == 1 and str(store) in errors[0] and word in errors[0], run.stderr
    assert "Traceback" not in run.stderr


async def test_a_read_only_store_file_is_refused_at_start(tmp_path: Path) -> None:
    store = tmp_path / "fw.db"
    async with await open_store(store):
        pass
    store.chmod(0o444)
    proc = await asyncio.create_subprocess_exec(
        *FLAMEWATCH, "-c", "/dev/null", "once", "--store", str(store), "--api-url", "http://127.0.0.1:9/v0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    lines = err.decode().splitlines()
    assert proc.returncode == 2 and out == b""  # a setup mistake, like a config one (README)
    assert len(lines) == 1 and lines[0].startswith(f"flamewatch: error: cannot open store {store}: the file is "
                                                   "read-only (mode -r--r--r--)"), lines
    listed = await asyncio.create_subprocess_exec(
        *FLAMEWATCH, "-c", "/dev/null", "outbox", "--store", str(store),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await listed.communicate()
    assert listed.returncode == 0 and out.decode() == "outbox: empty\n", err.decode()  # looking still works
