"""The PostgreSQL leader lock never leaves a zombie: any driver error loses the lock, at once, for real.

Real server (a fresh schema per test; skipped with a reason when none answers, a failure under CI=true),
real connections. Leadership is cut the way it is lost in production: ``pg_terminate_backend`` on the
instance's sessions, and asyncpg failing the way it does when a query meets a session the server is
ending (it aborts the connection itself, so no termination listener hears of it).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pgserver import fresh_schema, server_url

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.store.postgres import PostgresLeaderLock, parse_location
from flamewatch.store.postgres.leader import leader_key
from flamewatch.store.postgres.schema import LOCK_NAMESPACE
from flamewatch.testing import make_test_plugins

CHECK = 0.1


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_schema() as url:
        yield url()


class Breakable(asyncpg.Connection):
    """A real lock connection that, once ``broken``, fails as asyncpg does on a session being ended:
    it aborts itself (no termination listener runs) and raises ``InternalClientError``."""

    broken = False

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:  # noqa: ASYNC109  (asyncpg's signature)
        if self.broken:
            self._abort()  # what asyncpg does before raising this error
            raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
        return await super().fetchval(query, *args, column=column, timeout=timeout)


async def test_an_unexpected_driver_error_loses_the_lock_and_it_is_competed_for_again(pg_url: str) -> None:
    lock = PostgresLeaderLock(parse_location(pg_url), "pid 1 on a", check_every=CHECK)
    lock.connection_class = Breakable
    lost = asyncio.Event()
    lock.on_lost(lambda reason: lost.set())
    await lock.acquire(wait=False)
    first = lock._conn
    assert isinstance(first, Breakable) and lock.held
    first.broken = True  # the watchdog's next check meets it
    async with asyncio.timeout(5):
        await lost.wait()
    assert not lock.held
    # Asking who leads never gives the lock a new connection (one that would hold no lock).
    await lock.holder()
    assert not lock.held and lock._conn in (first, None)
    await lock.acquire(wait=True)  # competes again: nobody else wants it
    assert lock.held and lock._conn is not first
    assert await lock.holder() == "pid 1 on a"
    assert isinstance(lock._conn, Breakable)
    lock._conn.broken = True  # the stop meets the same driver error: release still ends cleanly
    await lock.release()
    assert not lock.held
    await lock.release()  # idempotent


async def _end_sessions(admin: asyncpg.Connection, pid: int) -> int:
    """``pg_terminate_backend`` on every session of this process (its lock and its store pool)."""
    ended: int = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name LIKE $1 OR application_name = $2",
        f"flamewatch pid {pid} on %", f"flamewatch store pid {pid}",
    )
    return ended


async def _holder_on_server(admin: asyncpg.Connection, schema: str) -> str | None:
    """The application_name of the session the server says holds the schema's leader lock."""
    name: str | None = await admin.fetchval(
        "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2",
        LOCK_NAMESPACE, leader_key(schema),
    )
    return name


async def test_the_leaders_sessions_ended_at_30_random_moments_it_stands_by_each_time_and_leads_again(
    pg_url: str,
) -> None:
    config = parse_config({"store": {"url": pg_url}, "watch": {"period": 0.2}, "notifiers": []}, "fw.toml")
    schema = parse_location(pg_url).schema
    owner = f"pid {os.getpid()} on {socket.gethostname()}"
    rng = random.Random(22)
    delays: list[float] = []
    loop = asyncio.get_running_loop()
    admin = await asyncpg.connect(server_url())
    try:
        async with App(config, plugins=make_test_plugins()) as app:
            lost = asyncio.Event()
            app.on_leadership_lost = lost.set
            await app.lead()
            assert app.lock is not None
            check = app.lock.check_every
            for _ in range(30):
                assert (app.role, app.may_send()) == ("leader", True)
                assert await _holder_on_server(admin, schema) == f"flamewatch {owner}"
                lost.clear()
                await asyncio.sleep(rng.uniform(0, 2 * check))  # a random moment of the watchdog's period
                cut_at = loop.time()
                assert await _end_sessions(admin, os.getpid()) >= 1
                # Standby within one check period (plus slack for a loaded machine), sending nothing.
                async with asyncio.timeout(check + 1.0):
                    await lost.wait()
                delays.append(loop.time() - cut_at)
                assert (app.role, app.may_send()) == ("standby", False)
                await app.lead()  # reconnects, competes and leads again
    finally:
        await admin.close()
    print(f"\nLEADER-CUTS check={check}s standby after: max {max(delays):.3f}s, "
          f"median {statistics.median(delays):.3f}s over {len(delays)} cuts")
