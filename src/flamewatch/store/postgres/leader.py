"""One leader among the instances sharing a PostgreSQL store: a session advisory lock on its own connection.

The lock lives as long as the server-side session that took it: when the leader is killed (``kill -9``)
its socket closes, the server ends the session and the lock is free at once; a standby, polling with
``pg_try_advisory_lock`` every ``check_every`` seconds, takes it. The leader watches its side too: a
termination listener and a ``SELECT 1`` every ``check_every`` seconds (bounded by the same time) turn
:attr:`held` False as soon as the connection is gone, and the callbacks registered with :meth:`on_lost`
run, so the instance stops sending before (or as) the server hands the lock to someone else. The
session's TCP keepalives are tightened so the server also notices a vanished client within seconds.

PgBouncer: a session advisory lock needs a session. Through PgBouncer in *transaction* pooling mode the
lock would be taken on whatever server connection served that one statement and stay there for another
client; point ``[store] url`` at PostgreSQL itself, or at a PgBouncer pool in *session* mode.

The holder is found in ``pg_locks`` joined with ``pg_stat_activity``: the lock connection's
``application_name`` says who it is, so there is no lease row to go stale.

**Never a zombie.** :attr:`held` is True only while the very connection that took the lock is open, and
that connection is never replaced while the lock counts as held: :meth:`holder` asks on a connection of
its own. Any failure on the lock connection, whatever the driver raises (a closed socket, a timeout,
asyncpg's ``InternalClientError`` when a query meets a connection the server is ending), and a watchdog
that ends for any reason other than a release, loses the lock at once: :attr:`held` turns False, "lost
the leader lock" is logged and the :meth:`on_lost` callbacks run (the app stops sending, stands by and
competes again through :meth:`acquire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from ...errors import StoreError, StoreLockedError
from .connection import PgLocation, db_reason
from .schema import LOCK_NAMESPACE, leader_key

__all__ = ["DEFAULT_CHECK_EVERY", "PostgresLeaderLock"]

log = logging.getLogger("flamewatch.store")

#: How often a standby tries the lock and a leader checks its connection, in seconds.
DEFAULT_CHECK_EVERY = 1.0

_APP_PREFIX = "flamewatch "


class PostgresLeaderLock:
    """The :class:`~flamewatch.store.base.InstanceLock` of a PostgreSQL store."""

    #: The class of the lock connection (tests use a subclass that fails the way the driver can).
    connection_class: type[asyncpg.Connection] = asyncpg.Connection

    def __init__(self, location: PgLocation, owner: str, *, check_every: float = DEFAULT_CHECK_EVERY) -> None:
        self.location = location
        self.owner = owner
        #: Seconds between a standby's tries, and between a leader's connection checks.
        self.check_every = check_every
        self._key = leader_key(location.schema)
        self._conn: asyncpg.Connection | None = None  # the lock's own connection, never pooled
        self._held = False
        self._peek: asyncpg.Connection | None = None  # holder()'s connection: never the lock's
        self._peek_io = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._lost_callbacks: list[Callable[[str], None]] = []
        self._lost_at: float | None = None  # loop time of the last loss
        # One query at a time on the lock connection (asyncpg refuses overlapping ones, and the watchdog
        # would take that refusal for a lost connection).
        self._io = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PostgresLeaderLock({self.location.display!r}, schema={self.location.schema!r}, held={self.held})"

    @property
    def held(self) -> bool:
        """True while this process holds the lock on a live connection."""
        return self._held and self._conn is not None and not self._conn.is_closed()

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when a held lock is lost (not when it is released)."""
        self._lost_callbacks.append(callback)

    async def acquire(self, *, wait: bool) -> None:
        """See :meth:`InstanceLock.acquire <flamewatch.store.base.InstanceLock.acquire>`.

        Waiting, connection failures are logged and retried (the database may be restarting); without
        waiting they are a :class:`StoreError`.
        """
        if self.held:
            return
        if self._held and self._conn is not None:
            self._lose("its connection closed", self._conn)  # gone before the watchdog's next check
        if self._lost_at is not None:
            # Just lost it: let a standby (trying every check) take it first, rather than win it straight
            # back on a fresh connection. Alone, this instance leads again after this pause.
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._lost_at + 2 * self.check_every - loop.time()))
        last_note: str | None = None
        while True:
            try:
                async with self._io:
                    conn = await self._connection()
                    got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, self._key))
                    holder = None if got else await self._ask_holder(conn)
            except Exception as exc:  # any driver error: this connection is unusable, start afresh
                async with self._io:
                    await self._drop_connection()
                note = f"cannot reach {self.location.display} ({db_reason(exc, self.location)})"
                if not wait:
                    raise StoreError(f"store {self.location.display}: {note}") from None
            else:
                if got:
                    self._became_leader(conn)
                    return
                if not wait:
                    raise StoreLockedError(
                        f"store {self.location.display} (schema {self.location.schema}) is led by another "
                        f"flamewatch ({holder or 'holder unknown'})"
                    )
                note = f"standby: waiting for {holder or 'the leader'}"
            if note != last_note:
                log.info("%s", note)
                last_note = note
            await asyncio.sleep(self.check_every)

    async def holder(self) -> str | None:
        """See :meth:`InstanceLock.holder <flamewatch.store.base.InstanceLock.holder>`.

        The leader answers from memory (status pages may ask often); others ask the server on a
        connection of their own, never the lock's (replacing that one would hold no lock).
        """
        if self.held:
            return self.owner[:200]
        try:
            async with self._peek_io:
                if self._peek is None or self._peek.is_closed():
                    self._peek = await asyncpg.connect(self.location.dsn, timeout=max(5.0, self.check_every * 2))
                return await asyncio.wait_for(self._ask_holder(self._peek), max(5.0, self.check_every * 2))
        except Exception:  # any failure: unknown; the next call connects afresh
            await self._drop_peek()
            return None

    async def release(self) -> None:
        """See :meth:`InstanceLock.release <flamewatch.store.base.InstanceLock.release>`.

        Whatever the connection's state, this never raises a driver error: a stopping instance whose
        lock connection broke exits as cleanly as one whose did not (the server frees the lock with it).
        """
        self._held = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        conn = self._conn
        async with self._io:
            if conn is not None and not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.fetchval("SELECT pg_advisory_unlock_all()"), self.check_every * 2)
                except Exception as exc:  # closing the connection below frees the lock anyway
                    log.debug("releasing the leader lock: %s", db_reason(exc, self.location))
            await self._drop_connection()
        await self._drop_peek()

    # -- inside ----------------------------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        """The lock connection, opened afresh if it is gone; only while the lock is not held (a held
        lock lives on the connection that took it, and dies with it)."""
        assert not self._held, "the lock connection is never replaced while the lock is held"
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        # The server drops a silent client within a few checks (keepalives and tcp_user_timeout), which
        # frees the lock of a leader whose machine vanished without closing its socket.
        seconds = max(1, round(self.check_every))
        self._conn = await asyncpg.connect(
            self.location.dsn,
            connection_class=self.connection_class,
            timeout=max(5.0, self.check_every * 2),
            server_settings={
                "application_name": (_APP_PREFIX + self.owner)[:63],
                "tcp_keepalives_idle": str(seconds),
                "tcp_keepalives_interval": str(seconds),
                "tcp_keepalives_count": "3",
                "tcp_user_timeout": str(seconds * 3000),
            },
        )
        return self._conn

    async def _ask_holder(self, conn: asyncpg.Connection) -> str | None:
        row = await conn.fetchrow(
            "SELECT a.application_name, a.pid FROM pg_locks AS l"
            " JOIN pg_stat_activity AS a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2",
            LOCK_NAMESPACE,
            self._key,
        )
        if row is None:
            return None
        name = str(row["application_name"] or "")
        who = name[len(_APP_PREFIX):] if name.startswith(_APP_PREFIX) else f"server pid {row['pid']}"
        return who[:200]

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        await self._close(conn)

    async def _drop_peek(self) -> None:
        conn, self._peek = self._peek, None
        await self._close(conn)

    async def _close(self, conn: asyncpg.Connection | None) -> None:
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), self.check_every * 2)
            except Exception:  # any failure: drop the socket without the goodbye
                conn.terminate()
            except asyncio.CancelledError:
                conn.terminate()
                raise

    def _became_leader(self, conn: asyncpg.Connection) -> None:
        self._held = True
        conn.add_termination_listener(lambda closed: self._lose("its connection closed", closed))
        self._watchdog = asyncio.create_task(self._watch(conn), name="leader-lock-watchdog")
        self._watchdog.add_done_callback(lambda task: self._watchdog_ended(task, conn))

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Check the lock's connection every ``check_every`` seconds; a check that fails in any way, or
        hangs, loses it."""
        while self._held and self._conn is conn:
            await asyncio.sleep(self.check_every)
            if not self._held or self._conn is not conn:
                return
            try:
                if conn.is_closed():
                    raise ConnectionError("the connection is closed")
                async with self._io:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check_every)
            except Exception as exc:  # not only DB_ERRORS: any driver error means the session may be gone
                self._lose(f"its connection failed ({db_reason(exc, self.location)})", conn)
                conn.terminate()
                return

    def _watchdog_ended(self, task: asyncio.Task[None], conn: asyncpg.Connection) -> None:
        """A watchdog that ended while its lock still counts as held (a bug, or a cancellation from
        outside) leaves nobody checking: lose the lock rather than lead unwatched."""
        if task.cancelled() or task.exception() is None:
            why = "its watchdog stopped"
        else:
            why = f"its watchdog failed ({type(task.exception()).__name__})"
        self._lose(why, conn)

    def _lose(self, reason: str, conn: asyncpg.Connection) -> None:
        if not self._held or conn is not self._conn:
            return  # released meanwhile, or a connection of an earlier term
        self._held = False
        self._lost_at = asyncio.get_running_loop().time()
        log.error("lost the leader lock of %s: %s; stopping sends", self.location.display, reason)
        for callback in self._lost_callbacks:
            try:
                callback(reason)
            except Exception as exc:  # one observer's bug must not keep the others from hearing
                log.error("leader lock callback raised %s: %s", type(exc).__name__, exc)
