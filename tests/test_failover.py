"""Several flamewatch instances on one PostgreSQL store: one leader, takeover, no sends from a lost leader.

Everything is real: the test PostgreSQL server (a fresh schema per test; skipped with a reason when no
server answers, a failure under CI=true), ``flamewatch run`` subprocesses against the HN simulator, and
webhook receivers on loopback. Leadership is cut the way it is lost in production: ``kill -9`` of the
leader, and ``pg_terminate_backend`` on its lock connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from fakes.webhook_receiver import FakeWebhookReceiver
from pgserver import fresh_schema, server_url
from test_faults import (
    FlamewatchProcess,
    delivered_keys,
    figures,
    static_world,
    webhook_settings,
    write_config,
)

from flamewatch.errors import StoreLockedError
from flamewatch.simulator import SimulatorServer
from flamewatch.store import open_store
from flamewatch.store.base import DeliveryStatus
from flamewatch.store.postgres import PostgresLeaderLock, PostgresStore

PERIOD = 0.5


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_schema() as url:
        yield url()


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[FakeWebhookReceiver]:
    async with FakeWebhookReceiver(secret) as fake:
        yield fake


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    from conftest import SECRET_ENV

    value = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0"
    monkeypatch.setenv(SECRET_ENV, value)
    return value


async def terminate_lock_connection(owner_text: str) -> int:
    """``pg_terminate_backend`` on the lock connection whose application_name holds ``owner_text``."""
    conn = await asyncpg.connect(server_url())
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1", f"flamewatch %{owner_text}%"
        )
        for row in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
        return len(pids)
    finally:
        await conn.close()


def run_cmd(config: Path, sim: SimulatorServer, url: str) -> list[str]:
    config.chmod(0o600)  # a config readable by others adds a warning line
    # Each instance serves its HTTP face on a free port (two on the default port would collide).
    return ["-c", str(config), "run", "--api-url", sim.base_url, "--store", url, "--http", "127.0.0.1:0"]


async def outbox_rows(url: str) -> list[tuple[str, str]]:
    async with await open_store(url) as store:
        return [(d.event.key, d.status) for d in await store.outbox()]


async def saw_log(text: str) -> None:
    """Wait until a ``flamewatch.store`` log record contains ``text``."""
    seen = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    handler = Watch()
    logger = logging.getLogger("flamewatch.store")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with asyncio.timeout(5):
            await seen.wait()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


# --- the lock itself -------------------------------------------------------------------------------------


async def test_two_locks_taken_at_once_give_one_leader_and_a_cut_connection_hands_over(pg_url: str) -> None:
    async with await open_store(pg_url) as store:
        assert isinstance(store, PostgresStore)
        store.lock_check_every = 0.1
        one, two = store.instance_lock("pid 1 on a"), store.instance_lock("pid 2 on b")
        results = await asyncio.gather(one.acquire(wait=False), two.acquire(wait=False), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "StoreLockedError"]
        leader, standby = (one, two) if one.held else (two, one)
        assert not standby.held
        refused = next(r for r in results if isinstance(r, StoreLockedError))
        assert leader.owner in str(refused)  # names who leads
        assert await standby.holder() == leader.owner

        lost = asyncio.Event()
        leader.on_lost(lambda reason: lost.set())
        waiting = asyncio.create_task(standby.acquire(wait=True))
        await saw_log("standby: waiting for " + leader.owner)  # it tried, and waits
        assert not waiting.done()
        assert await terminate_lock_connection(leader.owner) == 1
        async with asyncio.timeout(2):
            await lost.wait()
        assert not leader.held  # False at once: a sender checking it stops
        async with asyncio.timeout(2):
            await waiting
        assert standby.held and await standby.holder() == standby.owner
        await standby.release()
        await leader.release()
        assert await standby.holder() is None
        await standby.release()  # idempotent


async def test_a_lock_without_a_server_is_one_line_without_the_password() -> None:
    from flamewatch.store.postgres import parse_location

    lock = PostgresLeaderLock(parse_location("postgresql://me:s3cret@127.0.0.1:1/db"), "pid 1")
    with pytest.raises(Exception) as info:
        await lock.acquire(wait=False)
    assert "s3cret" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    assert "\n" not in str(info.value)


# --- real instances ------------------------------------------------------------------------------------


async def first_leader(*procs: FlamewatchProcess) -> FlamewatchProcess:
    """The process that logs "leading" first."""
    waits = {asyncio.ensure_future(p.wait_for_line("leading ", timeout=15)): p for p in procs}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    winner = next(iter(done))
    winner.result()  # a timeout fails the test here
    return waits[winner]


async def test_two_instances_at_once_one_leads_and_a_kill_9_mid_delivery_loses_nothing(
    tmp_path: Path, pg_url: str, receiver: FakeWebhookReceiver
) -> None:
    config = write_config(tmp_path / "fw.toml", {
        "watch": {"top": 5, "period": PERIOD, "shutdown_timeout": 1.0},
        "rules": {"comment_levels": [1, 2, 3, 5, 8], "points_levels": [1, 5]},
        "delivery": {"retry_base": 0.05, "retry_cap": 0.2},
    }, [webhook_settings(receiver, concurrency=3, timeout=3)])  # leases lapse 3 + 5 s after a claim
    receiver.fail_next(200, count=2)  # two accepted...
    receiver.hang_next(2, after_accepting=True)  # ...two taken but never acknowledged...
    receiver.hang_next(1)  # ...one hangs unread: three in flight when the leader dies
    async with SimulatorServer(static_world()) as sim:
        args = run_cmd(config, sim, pg_url)
        async with FlamewatchProcess(*args) as a, FlamewatchProcess(*args) as b:  # started together
            leader = await first_leader(a, b)
            standby = b if leader is a else a
            await standby.wait_for_line("standby: waiting for pid", timeout=10)
            assert not any("leading " in line for line in standby.lines)  # one leader, not two

            await leader.wait_for_line("cycle 0:", timeout=15)  # every event recorded (a static front page)
            await receiver.wait_for_requests(5, timeout=15)
            await receiver.wait_for_deliveries(4)
            rows_before = await outbox_rows(pg_url)
            killed_at = time.monotonic()
            leader.signal(signal.SIGKILL)
            assert await leader.exit_status(5) == -signal.SIGKILL
            await standby.wait_for_line("leading ", timeout=5)
            took_over = time.monotonic() - killed_at
            # Rows in flight at the kill are resent once their leases lapse (the dead leader's sends
            # cannot be told from a zombie's), the others at once.
            await receiver.wait_for_deliveries(len(rows_before), timeout=30)
            await standby.wait_for_line("cycle 1:", timeout=10)  # it runs cycles now; nothing fires again
            standby.signal(signal.SIGTERM)
            assert await standby.exit_status(10) == 0, standby.stderr
        rows_after = await outbox_rows(pg_url)

    got = delivered_keys(receiver)
    announced = [key for key, _ in rows_before]
    assert rows_after == [(key, "sent") for key in announced]  # every row delivered, no row added
    assert sorted(got) == sorted(announced)  # none lost
    # Only messages in flight at the kill were sent twice, with the same key: the two taken but never
    # acknowledged, and any acknowledged one whose "done" the leader had not committed yet.
    key_of = {r.id: r.body["data"]["key"] for r in receiver.requests if r.verified}
    duplicated = {key_of[i] for i, n in receiver.accepted_ids.items() if n > 1}
    pending_at_kill = {key for key, status in rows_before if status == "pending"}
    assert duplicated <= pending_at_kill
    assert 2 <= receiver.duplicates <= 4
    figures("postgres: leader kill -9 mid-delivery, standby takes over", generated=len(announced),
            delivered=len(set(got)), duplicated=receiver.duplicates, lost=len(set(announced) - set(got)),
            takeover_seconds=round(took_over, 2))


async def test_a_leader_whose_lock_connection_is_cut_stops_sending(
    tmp_path: Path, pg_url: str, secret: str
) -> None:
    # Each instance posts to its own receiver, so the test sees who sent what.
    async with FakeWebhookReceiver(secret) as to_a, FakeWebhookReceiver(secret) as to_b:
        tables = {
            "watch": {"top": 5, "period": PERIOD, "shutdown_timeout": 1.0},
            "rules": {"comment_levels": [1, 2, 3, 5, 8], "points_levels": [1, 5]},
        }
        # A's two rows in flight stay leased for 5 + 5 s after the cut: then B sends them.
        config_a = write_config(tmp_path / "a.toml", tables, [webhook_settings(to_a, concurrency=2, timeout=5)])
        config_b = write_config(tmp_path / "b.toml", tables, [webhook_settings(to_b, concurrency=2)])
        to_a.hang_next(100)  # A's sends never end: two stay in flight, the rest wait for a slot
        async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_cmd(config_a, sim, pg_url)) as a:
            await a.wait_for_line("leading ", timeout=15)
            await a.wait_for_line("cycle 0:", timeout=15)  # every event recorded (a static front page)
            async with FlamewatchProcess(*run_cmd(config_b, sim, pg_url)) as b:
                await b.wait_for_line("standby: waiting for pid", timeout=15)
                await to_a.wait_for_requests(2, timeout=15)
                assert a.proc is not None
                assert await terminate_lock_connection(f"pid {a.proc.pid} ") == 1
                await a.wait_for_line("lost the leader lock", timeout=15)
                await b.wait_for_line("leading ", timeout=5)
                rows = await outbox_rows(pg_url)
                await to_b.wait_for_deliveries(len(rows), timeout=30)
                await a.wait_for_line("standby: waiting for pid", timeout=5)  # alive, standing by
                sent_by_a = len(to_a.requests)
                for proc in (b, a):
                    proc.signal(signal.SIGTERM)
                assert await b.exit_status(10) == 0, b.stderr
                assert await a.exit_status(10) == 0, a.stderr
    assert sent_by_a == 2  # only what was already in flight when its lock went; nothing after
    assert sorted(delivered_keys(to_b)) == sorted(key for key, _ in rows)
    assert await outbox_rows(pg_url) == [(key, "sent") for key, _ in rows]


# --- what App exposes (status, the status page and /metrics read it) -------------------------------------


async def test_app_role_is_standby_until_it_leads_and_single_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    from flamewatch.app import App
    from flamewatch.config import Config, parse_config
    from flamewatch.testing import make_test_plugins

    def config(store: dict[str, object]) -> Config:
        return parse_config({"store": store, "watch": {"period": 1.0}, "notifiers": []}, "fw.toml")

    async with App(config({"path": str(tmp_path / "fw.db")}), plugins=make_test_plugins()) as single:
        await single.lead()
        # A single instance holds its store file's lock from the start.
        assert single.role == "single" and single.lock is not None and single.lock.held and single.may_send()

    shared = config({"url": pg_url})
    async with App(shared, plugins=make_test_plugins()) as first, App(shared, plugins=make_test_plugins()) as second:
        assert (first.role, first.may_send()) == ("standby", False)  # nothing goes out before it leads
        await first.lead()
        assert (first.role, first.may_send()) == ("leader", True)
        assert first.lock is not None and await first.lock.holder() == f"pid {os.getpid()} on {socket.gethostname()}"
        with pytest.raises(StoreLockedError, match="is led by another flamewatch"):
            await second.lead(wait=False)
        assert (second.role, second.may_send()) == ("standby", False)
    assert first.lock is not None and not first.lock.held  # released on leaving the block


async def test_a_lone_leader_whose_connections_all_drop_reconnects_and_leads_again(
    tmp_path: Path, pg_url: str, receiver: FakeWebhookReceiver
) -> None:
    # What a database restart looks like from the instance: every connection it has is ended at once.
    config = write_config(tmp_path / "fw.toml", {
        "watch": {"top": 5, "period": PERIOD, "shutdown_timeout": 1.0},
        "rules": {"comment_levels": [1, 2, 3, 5, 8], "points_levels": [1, 5]},
    }, [webhook_settings(receiver, concurrency=3)])
    async with SimulatorServer(static_world()) as sim, FlamewatchProcess(*run_cmd(config, sim, pg_url)) as a:
        await a.wait_for_line("cycle 0:", timeout=15)
        rows = await outbox_rows(pg_url)
        await receiver.wait_for_deliveries(len(rows), timeout=15)
        # Received is not yet recorded: a delivery whose "delivered" write the database restart kills is
        # sent again (at least once, with the same idempotency key). Restart once all are recorded.
        await _recorded_as_delivered(pg_url, len(rows))
        assert a.proc is not None
        conn = await asyncpg.connect(server_url())
        try:
            ended = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name LIKE $1 OR application_name LIKE $2",
                f"flamewatch % pid {a.proc.pid}", f"flamewatch pid {a.proc.pid} %",
            )
        finally:
            await conn.close()
        assert ended >= 2  # the lock connection and at least one pooled one
        await a.wait_for_line("lost the leader lock", timeout=15)
        await _wait_for_count(a, "leading ", 2)  # reconnected, and leads again (nobody else wanted it)
        await _wait_for_count(a, "watching ", 2)
        await _wait_for_count(a, "cycle 0:", 2)  # a new watcher after the new lead: cycles run again
        assert a.proc.returncode is None  # never exited
        a.signal(signal.SIGTERM)
        assert await a.exit_status(10) == 0, a.stderr
        log_tail = a.stderr[-4000:]
    # Nothing was sent twice. (Seen to fail rarely in full-suite runs and not alone: the message names the
    # repeated ids and shows the process's log, to find out which path sent again.)
    repeated = [msg_id for msg_id, n in receiver.accepted_ids.items() if n > 1]
    assert receiver.duplicates == 0, f"sent again: {repeated}\n{log_tail}"
    assert sorted(delivered_keys(receiver)) == sorted(key for key, _ in rows)


async def _recorded_as_delivered(url: str, count: int) -> None:
    """Wait until the outbox holds ``count`` rows, all delivered.

    Polled: the flamewatch process writes them and says nothing of it on its output, so there is no
    event to wait on."""
    async with asyncio.timeout(15):
        while [status for _, status in await outbox_rows(url)].count(DeliveryStatus.SENT) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _wait_for_count(proc: FlamewatchProcess, text: str, count: int) -> None:
    """Wait until ``count`` stderr lines contain ``text``."""
    try:
        async with asyncio.timeout(10), proc._changed:
            await proc._changed.wait_for(lambda: sum(text in line for line in proc.lines) >= count)
    except TimeoutError:
        raise AssertionError(f"fewer than {count} lines with {text!r}; stderr:\n{proc.stderr}") from None
