"""The PostgreSQL store: the same contract as the embedded SQLite store, on a server several instances share.

Chosen by ``[store] url = "postgresql://user@host:5432/db"`` (optionally ``?schema=name``; the default
schema is ``flamewatch``). asyncpg is the driver: a native asyncio protocol (no thread per connection,
no libpq), a built-in pool, array parameters for batch writes, and a termination listener that tells the
leader lock at once when its connection is gone.

Parts, one module each: :mod:`.connection` (pool, transactions, errors without the password),
:mod:`.schema` (own migrations, refuses a newer schema), :mod:`.outbox`, :mod:`.history`, :mod:`.state`
and :mod:`.leader` (one leader among instances: a session advisory lock).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import asyncpg

from ...errors import StoreError, StoreSetupError
from .connection import DB_ERRORS, PgLocation, db_reason, parse_location
from .history import PostgresHistory
from .leader import DEFAULT_CHECK_EVERY, PostgresLeaderLock
from .outbox import PostgresOutbox
from .schema import SCHEMA_VERSION, migrate
from ..lifecycle import StoreLifecycle
from .state import PostgresPluginState

__all__ = ["SCHEMA_VERSION", "PgLocation", "PostgresLeaderLock", "PostgresStore", "parse_location"]

log = logging.getLogger("flamewatch.store")

#: Connections in the pool: the pumps, the cycle and the CLI rarely need more at once.
POOL_SIZE = 5

#: Seconds to connect before giving up (a wrong host must not hang ``check`` or a start).
CONNECT_TIMEOUT = 10.0


#: What the server says when the URL itself is wrong (user, password, database): a setup mistake, not an
#: outage (see :class:`~flamewatch.errors.StoreSetupError`).
SETUP_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    asyncpg.InvalidAuthorizationSpecificationError,  # no such role, or pg_hba refuses it
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidCatalogNameError,  # no such database
)


def _open_error(exc: BaseException, location: PgLocation) -> StoreError:
    """The one-line error for a store that cannot be opened, a setup mistake or not."""
    kind = StoreSetupError if isinstance(exc, SETUP_ERRORS) else StoreError
    return kind(f"cannot open store {location.display}: {db_reason(exc, location)}")


class PostgresStore(PostgresOutbox, PostgresHistory, PostgresPluginState, StoreLifecycle):
    """The flamewatch store in a PostgreSQL schema (a :class:`~flamewatch.store.base.Store`)."""

    #: Seconds between a standby's tries for the leader lock and a leader's checks of its connection.
    lock_check_every: float = DEFAULT_CHECK_EVERY

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], float] = time.time) -> PostgresStore:
        """Connect, create the schema if needed and migrate it.

        Raises :class:`StoreError` with one line, never holding the password, when the server cannot be
        reached, refuses the login, or holds a schema newer than this code.
        """
        location = parse_location(url)
        try:
            pool = await asyncpg.create_pool(
                location.dsn,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                server_settings={
                    "search_path": location.schema,
                    "application_name": f"flamewatch store pid {os.getpid()}",  # whose, in pg_stat_activity
                },
            )
        except DB_ERRORS as exc:
            raise _open_error(exc, location) from None
        except ValueError as exc:  # asyncpg's own URL checks
            raise _open_error(exc, location) from None
        try:
            async with pool.acquire() as conn:
                await migrate(conn, location.schema, location.display)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, DB_ERRORS):
                raise _open_error(exc, location) from None
            raise
        return cls(location, pool, clock=clock)

    def __repr__(self) -> str:
        return f"PostgresStore({self.location.display!r}, schema={self.location.schema!r})"

    def file_problem(self) -> str | None:
        """See :meth:`Store.file_problem <flamewatch.store.base.Store.file_problem>`: a server store has no
        file to lose under us (a lost connection is the pool's and the leader lock's business)."""
        return None

    def instance_lock(self, owner: str) -> PostgresLeaderLock:
        """The leader lock of this schema (see :mod:`.leader`); ``owner`` describes this process."""
        return PostgresLeaderLock(self.location, owner, check_every=self.lock_check_every)

    def _connected(self) -> bool:
        return self._pool is not None
