"""The PostgreSQL store's connection pool, its transaction discipline and its error messages.

Every statement goes through :meth:`PostgresConnection._read` or :meth:`PostgresConnection._write`, the
only places that turn a driver or network error into a :class:`~flamewatch.errors.StoreError`, so no
asyncpg exception reaches a caller. Messages name the server as ``postgresql://user@host:port/db``:
never the password, wherever the URL came from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ...errors import StoreError, StoreSetupError
from ..schema import one_line

__all__ = ["DEFAULT_SCHEMA", "Conn", "PgLocation", "PostgresConnection", "db_reason", "parse_location"]

log = logging.getLogger("flamewatch.store")

T = TypeVar("T")

#: A connection lent by the pool: what a transaction body receives.
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

#: The schema holding flamewatch's tables when the URL names none (``?schema=...``).
DEFAULT_SCHEMA = "flamewatch"

#: Errors that mean "the database failed us", as opposed to bugs: each becomes a StoreError.
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # Raised by asyncpg itself, e.g. "cannot switch to state 12; another operation is in progress" when a
    # query meets a connection the server is ending: the connection is lost, not our bug.
    asyncpg.InternalClientError,
    OSError,  # includes ConnectionError: refused, reset, unreachable
    TimeoutError,
)


@dataclass(frozen=True)
class PgLocation:
    """A ``postgresql://`` URL split into what asyncpg needs and what may be shown."""

    dsn: str  # what asyncpg connects with (may hold the password: never print it)
    display: str  # postgresql://user@host:port/db, safe to show
    schema: str

    def __repr__(self) -> str:
        return f"PgLocation({self.display!r}, schema={self.schema!r})"


def parse_location(url: str) -> PgLocation:
    """Split ``url``; the ``schema`` query parameter chooses the schema (:data:`DEFAULT_SCHEMA` if absent).

    Raises :class:`StoreError` (without the password) for a URL that is not a usable PostgreSQL address.
    """
    # The parser's own message is never shown: a password holding '#', '/' or '?' ends the address early,
    # and then its pieces are what the parser complains about ("port ... 'hunter2'").
    unreadable = StoreSetupError(f"cannot open store {_scheme(url)}://...: bad URL (the host or port cannot be read; "
                            "percent-encode '@', ':', '/', '?' and '#' in the user name and password)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise unreadable from None
    if parts.fragment:
        raise unreadable
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreSetupError(f"cannot open store {_scheme(url)}://...: expected a postgresql:// URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    rest = [(k, v) for k, v in query if k != "schema"]
    user = unquote(parts.username) if parts.username else ""
    host = parts.hostname or "localhost"
    where = f"{host}:{port}" if port else host
    display = f"postgresql://{user + '@' if user else ''}{where}{parts.path or '/'}"
    if not schema or not schema.replace("_", "a").isalnum() or not schema[0].isalpha() or len(schema) > 63:
        raise StoreSetupError(f"cannot open store {display}: schema {schema!r} must be letters, digits and _")
    dsn = urlunsplit(("postgresql", _netloc(parts.netloc), parts.path, urlencode(rest), ""))
    return PgLocation(dsn=dsn, display=display, schema=schema.lower())


def _netloc(netloc: str) -> str:
    """``netloc`` with its user name and password percent-encoded, split at the last ``@``.

    Python's parser takes the host after the last ``@``, asyncpg after the first: with an unencoded ``@``
    in the password, flamewatch showed one host while asyncpg looked up ``<rest of the password>@host``
    in DNS. Encoded here, both read the same host and no piece of the password leaves the process.
    """
    userinfo, at, hostinfo = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, password = userinfo.partition(":")
    encoded = quote(unquote(user), safe="") + (":" + quote(unquote(password), safe="") if colon else "")
    return f"{encoded}@{hostinfo}"


def _scheme(url: str) -> str:
    return url.split("://", 1)[0][:20]


def _strip_secret(text: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def db_reason(exc: BaseException, location: PgLocation | None = None) -> str:
    """A short reason for a database failure, on one line, never holding the password."""
    if isinstance(exc, TimeoutError):
        text = "timed out"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    if location is not None:
        text = _strip_secret(text, location.dsn)
    return one_line(text[:1].lower() + text[1:])


class PostgresConnection:
    """The pool and its discipline, shared by the parts of :class:`~.store.PostgresStore`.

    Reads take any pooled connection. Writes run in a transaction inside their own shielded task, so a
    cancelled caller never leaves half a change: the transaction commits or rolls back either way.
    """

    def __init__(self, location: PgLocation, pool: asyncpg.Pool, *, clock: Callable[[], float] = time.time) -> None:
        """Wire an open pool on a migrated schema (use ``PostgresStore.open``)."""
        self.location = location
        self.path = location.display  # what messages and ``flamewatch`` commands show as the store
        self.clock = clock
        self._pool: asyncpg.Pool | None = pool
        self._writes: set[asyncio.Task[Any]] = set()

    def _failure(self, exc: BaseException) -> StoreError:
        return StoreError(f"store {self.path}: {db_reason(exc, self.location)}")

    def _live(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"store {self.path} is closed")
        return self._pool

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        """All rows of one query."""
        pool = self._live()
        try:
            return list(await pool.fetch(sql, *params))
        except DB_ERRORS as exc:
            raise self._failure(exc) from exc

    async def _write(self, body: Callable[[Conn], Awaitable[T]], *, one_statement: bool = False) -> T:
        """Run ``body`` in one transaction, committed if it returns, rolled back if it raises.

        The transaction runs in a task of its own behind :func:`asyncio.shield`, so cancelling the caller
        does not interrupt it between two statements. ``one_statement``: ``body`` runs a single statement,
        atomic by itself, so no BEGIN/COMMIT round trips are spent on it.
        """
        task = asyncio.ensure_future(self._transaction(body, one_statement))
        self._writes.add(task)
        task.add_done_callback(self._write_finished)
        return await asyncio.shield(task)

    async def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one modifying statement in a transaction; returns the number of rows it changed."""

        async def body(conn: Conn) -> int:
            return _rowcount(await conn.execute(sql, *params))

        return await self._write(body, one_statement=True)

    def _write_finished(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("store write finished with %s", exc)

    async def _transaction(self, body: Callable[[Conn], Awaitable[T]], one_statement: bool) -> T:
        pool = self._live()
        try:
            async with pool.acquire() as conn:
                if one_statement:
                    return await body(conn)
                async with conn.transaction():
                    return await body(conn)
        except DB_ERRORS as exc:
            raise self._failure(exc) from exc

    async def _wait_for_writes(self) -> None:
        """Let writes that outlived their (cancelled) callers finish."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def _disconnect(self) -> None:
        """Close the pool; harmless when already closed."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except DB_ERRORS as exc:
                log.warning("closing %s: %s", self.path, db_reason(exc, self.location))
                pool.terminate()


def _rowcount(status: str) -> int:
    """The row count at the end of a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
