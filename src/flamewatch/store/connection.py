"""The SQLite store's one connection: serialised reads, whole-or-nothing writes, errors as StoreError.

One :mod:`aiosqlite` connection serves the whole process (its own thread, so the event loop never blocks).
Every statement goes through :meth:`SQLiteConnection._read` or :meth:`SQLiteConnection._write`, which are
the only places that turn a :class:`sqlite3.Error` into a :class:`StoreError`, so no SQLite exception
reaches a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite

from ..errors import StoreError
from .schema import reason

__all__ = ["Clock", "SQLiteConnection", "json_list"]

log = logging.getLogger("flamewatch.store")

T = TypeVar("T")

#: A source of "now" as a Unix timestamp in seconds.
Clock = Callable[[], float]


def json_list(values: Iterable[Any]) -> str:
    """A JSON array parameter, read back in SQL with ``json_each(?)``.

    One parameter whatever the number of ids, so no query ever hits SQLite's bound-variable limit.
    """
    return json.dumps(list(values))


class SQLiteConnection:
    """The connection and its discipline, shared by the parts of :class:`~flamewatch.store.SQLiteStore`.

    One lock serialises every statement on the connection, so a read never sees another task's open
    transaction. Writes run in their own shielded task, so cancelling a caller never leaves a transaction
    half done: it either commits or rolls back.
    """

    def __init__(self, path: str, conn: aiosqlite.Connection, *, clock: Clock = time.time) -> None:
        """Wire an already opened and migrated connection (use ``SQLiteStore.open``)."""
        self.path = path
        self.clock = clock
        self._conn: aiosqlite.Connection | None = conn
        self._lock = asyncio.Lock()
        self._writes: set[asyncio.Task[Any]] = set()

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"store {self.path}: {reason(exc)}")

    def _live(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path} is closed")
        return self._conn

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one query, run under the lock so it never sees another task's open transaction."""
        async with self._lock:
            conn = self._live()
            try:
                return list(await conn.execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc

    async def _write(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one IMMEDIATE transaction, committed if it returns, rolled back if it raises.

        The transaction runs in a task of its own behind :func:`asyncio.shield`: if the caller is
        cancelled, the transaction still finishes (or rolls back) before the next one starts, instead of
        stopping between two statements with the connection inside a transaction.
        """
        task = asyncio.ensure_future(self._transaction(body))
        self._writes.add(task)
        task.add_done_callback(self._write_finished)
        return await asyncio.shield(task)

    async def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one modifying statement in a transaction; returns the number of rows it changed."""

        async def body(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

        return await self._write(body)

    def _write_finished(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        # Retrieve the exception so a write whose caller was cancelled does not go unreported.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("store write finished with %s", exc)

    async def _transaction(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async with self._lock:
            conn = self._live()
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            try:
                result = await body(conn)
                await conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):  # the failure may already have ended the transaction
                    await conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._failure(exc) from exc
                raise
            return result

    async def _wait_for_writes(self) -> None:
        """Let writes that outlived their (cancelled) callers finish."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def _disconnect(self) -> None:
        """Close the connection once no statement runs; harmless when already closed."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await conn.close()
                except sqlite3.Error as exc:
                    raise self._failure(exc) from exc
