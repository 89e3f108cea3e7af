"""The embedded store: one SQLite file holding what must survive a restart.

It keeps four things:

* **fired event keys** (table ``fired``): an event whose key is here never fires again, so a restart does
  not repeat alerts. The event itself is kept with its key, as JSON, for the outbox to send.
* **the delivery outbox** (table ``outbox``): one row per (event, notifier instance), written in the same
  transaction as the fired key and *before* any send, so delivery is at-least-once.
* **story count history** (table ``snapshots``): what each story looked like at each cycle, for velocity
  and growth rules.
* **plugin state** (table ``plugin_state``): small JSON values, one namespace per notifier instance.

One :mod:`aiosqlite` connection serves the whole process (its own thread, so the event loop never blocks),
in WAL mode so ``flamewatch`` CLI commands can read while the watcher writes. Every time that matters is a
Unix timestamp in seconds (float) passed in by the caller, so tests control the clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiosqlite

from ..errors import StoreError
from ..events import Event
from ..notifier import PluginState

__all__ = ["Delivery", "Snapshot", "Store", "StoreError", "default_store_path"]

log = logging.getLogger("flamewatch.store")

T = TypeVar("T")

#: Marks the file as ours (``PRAGMA application_id``), so we refuse to migrate some other program's database.
APPLICATION_ID = 0x464C4D57  # "FLMW"

#: How long a statement waits for another process's write lock before failing, in milliseconds.
BUSY_TIMEOUT_MS = 5000

#: Longest ``last_error`` kept on an outbox row (error text can be a whole HTTP body).
MAX_ERROR_CHARS = 1000

#: Outbox statuses.
PENDING, DONE, DEAD = "pending", "done", "dead"
STATUSES = (PENDING, DONE, DEAD)

# Schema migrations, applied in order: migration N (1-based) brings ``PRAGMA user_version`` from N-1 to N.
# Never edit a released step; append a new one. Each step runs in one transaction with its version bump.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE fired (
            key      TEXT PRIMARY KEY,
            story_id INTEGER NOT NULL,
            rule     TEXT NOT NULL,
            fired_at REAL NOT NULL,
            event    TEXT NOT NULL          -- Event.to_dict() as JSON
        )""",
        "CREATE INDEX fired_by_story ON fired (story_id)",
        """CREATE TABLE outbox (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            event_key  TEXT NOT NULL REFERENCES fired (key),
            instance   TEXT NOT NULL,
            status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
            attempts   INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_at    REAL NOT NULL,
            done_at    REAL,
            last_error TEXT,
            UNIQUE (event_key, instance)
        )""",
        "CREATE INDEX outbox_by_status ON outbox (status, next_at)",
        """CREATE TABLE snapshots (
            story_id    INTEGER NOT NULL,
            at          REAL NOT NULL,
            comments    INTEGER NOT NULL,
            score       INTEGER NOT NULL,
            descendants INTEGER,
            partial     INTEGER NOT NULL
        )""",
        "CREATE INDEX snapshots_by_story ON snapshots (story_id, at)",
        "CREATE INDEX snapshots_by_time ON snapshots (at)",
        """CREATE TABLE plugin_state (
            instance TEXT NOT NULL,
            key      TEXT NOT NULL,
            value    TEXT NOT NULL,         -- JSON
            PRIMARY KEY (instance, key)
        ) WITHOUT ROWID""",
    ),
    # 2: plugin state remembers when it was last written, so values nobody updates can be pruned
    # (Slack's live count keeps one per story); rows from version 1 count as written now.
    (
        "ALTER TABLE plugin_state ADD COLUMN updated_at REAL NOT NULL DEFAULT 0",
        "UPDATE plugin_state SET updated_at = CAST(strftime('%s', 'now') AS REAL)",
    ),
)

#: The schema version this code writes and understands.
SCHEMA_VERSION = len(MIGRATIONS)



def default_store_path() -> Path:
    """Where the store lives by default: ``$XDG_STATE_HOME/flamewatch/flamewatch.db``.

    Falls back to ``~/.local/state/flamewatch/flamewatch.db`` when ``XDG_STATE_HOME`` is unset or not an
    absolute path (the XDG spec says relative values are to be ignored).
    """
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "flamewatch" / "flamewatch.db"


@dataclass(frozen=True)
class Snapshot:
    """One story's counts at one moment. ``partial`` means ``comments`` is a lower bound."""

    story_id: int
    at: float
    comments: int
    score: int
    descendants: int | None
    partial: bool


@dataclass(frozen=True)
class Delivery:
    """One outbox row: ``event`` to be sent to notifier ``instance``.

    ``status`` is ``"pending"`` (send when ``next_at`` has passed), ``"done"`` or ``"dead"`` (gave up; the
    CLI can requeue it). ``attempts`` counts failed sends.
    """

    id: int
    event: Event
    instance: str
    status: str
    attempts: int
    created_at: float
    next_at: float
    last_error: str | None


_DELIVERY_COLUMNS = (
    "o.id, f.event, o.instance, o.status, o.attempts, o.created_at, o.next_at, o.last_error"
)
_DELIVERY_FROM = "outbox AS o JOIN fired AS f ON f.key = o.event_key"


def _delivery(row: sqlite3.Row | tuple[Any, ...]) -> Delivery:
    id_, event, instance, status, attempts, created_at, next_at, last_error = row
    return Delivery(
        id=id_,
        event=Event.from_dict(json.loads(event)),
        instance=instance,
        status=status,
        attempts=attempts,
        created_at=created_at,
        next_at=next_at,
        last_error=last_error,
    )


def _snapshot(row: sqlite3.Row | tuple[Any, ...]) -> Snapshot:
    story_id, at, comments, score, descendants, partial = row
    return Snapshot(story_id, at, comments, score, descendants, bool(partial))


def _json_list(values: Iterable[Any]) -> str:
    """A JSON array parameter, read back in SQL with ``json_each(?)``.

    One parameter whatever the number of ids, so no query ever hits SQLite's bound-variable limit.
    """
    return json.dumps(list(values))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_ERROR_CHARS]


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown outbox status {status!r} (expected one of {', '.join(STATUSES)})")


class Store:
    """The flamewatch SQLite store. Open with ``await Store.open(path)`` (or ``async with``), then share.

    All methods are safe to call from many tasks at once: one lock serialises them on the single
    connection. Writes run in their own shielded task, so cancelling a caller never leaves a transaction
    half done: it either commits or rolls back. Database failures raise :class:`StoreError`.
    """

    def __init__(self, path: str, conn: aiosqlite.Connection) -> None:
        """Use :meth:`open`; this only wires an already opened and migrated connection."""
        self.path = path
        self._conn: aiosqlite.Connection | None = conn
        self._lock = asyncio.Lock()
        self._writes: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # -- opening and closing ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating it and its parent directories if needed) and migrate the store at ``path``.

        ``":memory:"`` gives a private in-memory store (tests). Raises :class:`StoreError` with a one-line
        message when the file cannot be opened, is not a flamewatch store, or is newer than this code.
        """
        name = str(path)
        if name != ":memory:":
            file = Path(path).expanduser()
            name = str(file)
            _prepare_directory(file)
        try:
            conn = await aiosqlite.connect(name, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {name}: {_reason(exc)}") from None
        try:
            await _configure(conn, in_memory=name == ":memory:")
            await _migrate(conn, name)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {name}: {_reason(exc)}") from None
            raise
        return cls(name, conn)

    async def close(self) -> None:
        """Wait for running operations, then close the connection. Closing twice is harmless."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- running statements ----------------------------------------------------------------------------

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
                raise StoreError(f"store {self.path}: {_reason(exc)}") from None

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
                raise StoreError(f"store {self.path}: {_reason(exc)}") from None
            try:
                result = await body(conn)
                await conn.execute("COMMIT")
            except BaseException as exc:
                try:
                    await conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the failure may already have ended the transaction
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"store {self.path}: {_reason(exc)}") from None
                raise
            return result

    # -- events and the outbox -------------------------------------------------------------------------

    async def record_events(
        self,
        events: Sequence[Event],
        routes: Mapping[str, Sequence[str]],
        now: float,
        not_before: Mapping[str, float] | None = None,
    ) -> list[Event]:
        """Record events never fired before and queue their deliveries, all in one transaction.

        For each event whose key is new, one pending outbox row is written per notifier instance in
        ``routes[event.key]`` (none if absent), due at ``not_before[instance]`` or else ``now``. Returns the
        new events in the given order; an event whose key already fired is skipped entirely.
        """
        waits = dict(not_before or {})

        async def body(conn: aiosqlite.Connection) -> list[Event]:
            new: list[Event] = []
            for event in events:
                cursor = await conn.execute(
                    "INSERT OR IGNORE INTO fired (key, story_id, rule, fired_at, event)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (event.key, event.story.id, event.rule, now, json.dumps(event.to_dict())),
                )
                if cursor.rowcount != 1:
                    continue  # fired before (in an earlier run, or earlier in this batch)
                new.append(event)
                instances = dict.fromkeys(routes.get(event.key, ()))  # dedup, keep order
                await conn.executemany(
                    "INSERT INTO outbox (event_key, instance, created_at, next_at) VALUES (?, ?, ?, ?)",
                    [(event.key, name, now, waits.get(name, now)) for name in instances],
                )
            return new

        return await self._write(body)

    async def fired_keys(self, story_ids: Iterable[int] | None = None) -> set[str]:
        """Keys of every fired event, or only of those about ``story_ids``."""
        if story_ids is None:
            rows = await self._read("SELECT key FROM fired")
        else:
            rows = await self._read(
                "SELECT key FROM fired WHERE story_id IN (SELECT value FROM json_each(?))",
                (_json_list(story_ids),),
            )
        return {key for (key,) in rows}

    async def due(self, now: float, *, instance: str | None = None, limit: int = 500) -> list[Delivery]:
        """Pending deliveries whose ``next_at`` has come, longest waiting first (then oldest row)."""
        sql = (
            f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM}"
            " WHERE o.status = 'pending' AND o.next_at <= ?"
        )
        params: list[Any] = [now]
        if instance is not None:
            sql += " AND o.instance = ?"
            params.append(instance)
        sql += " ORDER BY o.next_at, o.id LIMIT ?"
        params.append(limit)
        return [_delivery(row) for row in await self._read(sql, params)]

    async def pending(self, instance: str | None = None) -> list[Delivery]:
        """Every pending delivery (due or not), oldest first: what is left to send at startup."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM} WHERE o.status = 'pending'"
        params: list[Any] = []
        if instance is not None:
            sql += " AND o.instance = ?"
            params.append(instance)
        sql += " ORDER BY o.id"
        return [_delivery(row) for row in await self._read(sql, params)]

    async def next_due_at(self, instance: str | None = None, *, after: float | None = None) -> float | None:
        """The earliest ``next_at`` among pending deliveries (only those due later than ``after``, if
        given), or None when there is none."""
        sql = "SELECT MIN(next_at) FROM outbox WHERE status = 'pending'"
        params: list[Any] = []
        if after is not None:
            sql += " AND next_at > ?"
            params.append(after)
        if instance is not None:
            sql += " AND instance = ?"
            params.append(instance)
        ((earliest,),) = await self._read(sql, params)
        return earliest

    async def mark_done(self, ids: Sequence[int], now: float) -> None:
        """Record that these deliveries were sent (only pending rows change)."""
        await self._update_pending(
            "UPDATE outbox SET status = 'done', done_at = ? WHERE status = 'pending'", (now,), ids
        )

    async def mark_retry(self, ids: Sequence[int], *, next_at: float, error: str) -> None:
        """Record a failed send to retry at ``next_at``: attempts += 1, ``error`` kept as ``last_error``."""
        await self._update_pending(
            "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE status = 'pending'",
            (next_at, _one_line(error)),
            ids,
        )

    async def mark_dead(self, ids: Sequence[int], *, error: str) -> None:
        """Give up on these deliveries: status ``dead``, attempts += 1, ``error`` kept as ``last_error``."""
        await self._update_pending(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?"
            " WHERE status = 'pending'",
            (_one_line(error),),
            ids,
        )

    async def _update_pending(self, sql: str, params: tuple[Any, ...], ids: Sequence[int]) -> None:
        # Only pending rows move: a row dropped or requeued from the CLI meanwhile is left as it is.
        if not ids:
            return

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                f"{sql} AND id IN (SELECT value FROM json_each(?))", (*params, _json_list(ids))
            )

        await self._write(body)

    async def outbox(self, status: str | None = None, *, limit: int = 1000) -> list[Delivery]:
        """Outbox rows, oldest first, optionally only those with ``status``."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM {_DELIVERY_FROM}"
        params: list[Any] = []
        if status is not None:
            _check_status(status)
            sql += " WHERE o.status = ?"
            params.append(status)
        sql += " ORDER BY o.id LIMIT ?"
        params.append(limit)
        return [_delivery(row) for row in await self._read(sql, params)]

    async def requeue(self, ids: Sequence[int] | None, now: float) -> int:
        """Make dead (or pending) deliveries pending again, due ``now``, with attempts reset to 0.

        ``ids=None`` requeues every dead delivery. Done rows are never resent. Returns how many rows changed.
        ``last_error`` is kept so the CLI can still show why it died.
        """
        sql = "UPDATE outbox SET status = 'pending', next_at = ?, attempts = 0"
        if ids is None:
            return await self._change(sql + " WHERE status = 'dead'", (now,))
        return await self._change(
            sql + " WHERE status IN ('dead', 'pending') AND id IN (SELECT value FROM json_each(?))",
            (now, _json_list(ids)),
        )

    async def drop(self, ids: Sequence[int] | None) -> int:
        """Delete these outbox rows (whatever their status), or every dead row when ``ids`` is None."""
        if ids is None:
            return await self._change("DELETE FROM outbox WHERE status = 'dead'")
        return await self._change(
            "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))", (_json_list(ids),)
        )

    async def outbox_counts(self) -> dict[str, int]:
        """How many outbox rows have each status (every status is present, possibly 0)."""
        rows = await self._read("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {status: 0 for status in STATUSES} | dict(rows)

    async def purge_done(self, older_than: float) -> int:
        """Delete delivered rows sent before ``older_than``; returns how many. Fired keys are kept."""
        return await self._change("DELETE FROM outbox WHERE status = 'done' AND done_at < ?", (older_than,))

    async def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one modifying statement in a transaction; returns the number of rows it changed."""

        async def body(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

        return await self._write(body)

    # -- story history ---------------------------------------------------------------------------------

    async def add_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        """Append snapshots (one transaction for the whole batch)."""
        if not snapshots:
            return
        rows = [(s.story_id, s.at, s.comments, s.score, s.descendants, int(s.partial)) for s in snapshots]

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.executemany(
                "INSERT INTO snapshots (story_id, at, comments, score, descendants, partial)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._write(body)

    async def history(self, story_id: int, since: float, *, include_partial: bool = False) -> list[Snapshot]:
        """Snapshots of one story taken at or after ``since``, oldest first.

        Partial snapshots (lower-bound counts) are left out unless ``include_partial``: they would make a
        thread look like it shrank and then grew.
        """
        sql = (
            "SELECT story_id, at, comments, score, descendants, partial FROM snapshots"
            " WHERE story_id = ? AND at >= ?"
        )
        if not include_partial:
            sql += " AND partial = 0"
        sql += " ORDER BY at, rowid"
        return [_snapshot(row) for row in await self._read(sql, (story_id, since))]

    async def latest(self, story_ids: Iterable[int]) -> dict[int, Snapshot]:
        """The most recent complete (non-partial) snapshot of each story that has one."""
        rows = await self._read(
            """SELECT story_id, at, comments, score, descendants, partial FROM (
                   SELECT *, ROW_NUMBER() OVER (PARTITION BY story_id ORDER BY at DESC, rowid DESC) AS n
                   FROM snapshots
                   WHERE partial = 0 AND story_id IN (SELECT value FROM json_each(?))
               ) WHERE n = 1""",
            (_json_list(story_ids),),
        )
        return {snap.story_id: snap for snap in map(_snapshot, rows)}

    async def prune_snapshots(self, older_than: float) -> int:
        """Delete snapshots taken before ``older_than``; returns how many."""
        return await self._change("DELETE FROM snapshots WHERE at < ?", (older_than,))

    async def prune_state(self, older_than: float) -> int:
        """Forget plugin state values last written before ``older_than``; returns how many."""
        return await self._change("DELETE FROM plugin_state WHERE updated_at < ?", (older_than,))

    # -- plugin state ----------------------------------------------------------------------------------

    def state_for(self, instance: str) -> PluginState:
        """The persistent key/value state of notifier instance ``instance`` (values are JSON)."""
        return _InstanceState(self, instance)

    async def _state_get(self, instance: str, key: str) -> Any | None:
        rows = await self._read(
            "SELECT value FROM plugin_state WHERE instance = ? AND key = ?", (instance, key)
        )
        return json.loads(rows[0][0]) if rows else None

    async def _state_set(self, instance: str, key: str, value: Any) -> None:
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"state {key!r} of notifier {instance!r} is not JSON-serialisable: {exc}"
            ) from None

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT INTO plugin_state (instance, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (instance, key, text, time.time()),
            )

        await self._write(body)


class _InstanceState:
    """One notifier instance's view of the ``plugin_state`` table (a :class:`PluginState`)."""

    def __init__(self, store: Store, instance: str) -> None:
        self._store = store
        self._instance = instance

    def __repr__(self) -> str:
        return f"<plugin state of {self._instance!r} in {self._store.path}>"

    async def get(self, key: str) -> Any | None:
        """The stored value, or None."""
        return await self._store._state_get(self._instance, key)

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can encode) under ``key``."""
        await self._store._state_set(self._instance, key, value)


# -- opening helpers -----------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """A short lower-case reason for an OS or SQLite error, on one line."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return _one_line(text[:1].lower() + text[1:])


def _prepare_directory(file: Path) -> None:
    """Create the store's directory, failing early with a clear reason when it cannot be written.

    SQLite alone would only say "unable to open database file"; WAL mode also needs to create the
    ``-wal`` and ``-shm`` files next to the database, so the directory itself must be writable.
    """
    parent = file.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot open store {file}: {_reason(exc)} (creating {parent})") from None
    if file.is_dir():
        raise StoreError(f"cannot open store {file}: it is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot open store {file}: permission denied (directory {parent} is not writable)")


async def _configure(conn: aiosqlite.Connection, *, in_memory: bool) -> None:
    """Per-connection settings. busy_timeout comes first so the WAL switch waits for other processes."""
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not in_memory:
        ((mode,),) = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
    # NORMAL is durable in WAL mode against a process crash; only an OS crash can lose the last commits.
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA foreign_keys = ON")


async def _migrate(conn: aiosqlite.Connection, name: str) -> None:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one transaction per step.

    Each step re-reads the version inside its write transaction, so two processes opening a new file at
    once do not both apply the same step.
    """
    while True:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            version = await _pragma_int(conn, "user_version")
            app_id = await _pragma_int(conn, "application_id")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open store {name}: its schema version {version} is newer than this flamewatch "
                    f"supports ({SCHEMA_VERSION}); upgrade flamewatch or use another store path"
                )
            if app_id not in (0, APPLICATION_ID) or (version > 0 and app_id != APPLICATION_ID):
                raise StoreError(f"cannot open store {name}: not a flamewatch store")
            if version == 0 and app_id == 0 and await _has_tables(conn):
                raise StoreError(f"cannot open store {name}: not a flamewatch store (it already has tables)")
            if version == SCHEMA_VERSION:
                await conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version + 1}")
            await conn.execute("COMMIT")
            log.info("migrated store %s to schema version %d", name, version + 1)
        except BaseException:
            await conn.execute("ROLLBACK")
            raise


async def _pragma_int(conn: aiosqlite.Connection, pragma: str) -> int:
    ((value,),) = await conn.execute_fetchall(f"PRAGMA {pragma}")
    return int(value)


async def _has_tables(conn: aiosqlite.Connection) -> bool:
    rows = await conn.execute_fetchall("SELECT 1 FROM sqlite_schema WHERE type = 'table' LIMIT 1")
    return bool(list(rows))
