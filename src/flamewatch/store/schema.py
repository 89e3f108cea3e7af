"""The SQLite store's schema: its migrations, the per-connection settings, and the checks made on open."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite

from ..errors import StoreError, StoreSetupError
from .filelock import lock_holder

__all__ = [
    "APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "check_current", "configure", "migrate", "prepare_directory",
]

log = logging.getLogger("flamewatch.store")

#: Marks the file as ours (``PRAGMA application_id``), so we refuse to migrate some other program's database.
APPLICATION_ID = 0x464C4D57  # "FLMW"

#: Longest reason kept in an error message or in an outbox row's ``last_error`` (error text can be a
#: whole HTTP body).
MAX_REASON_CHARS = 1000

# Step 4's pieces. The literals are DeliveryStatus values; a version-3 row closed unsent was "done" with
# last_error "silenced: <silence>" or "superseded: by <key>".
_STATES_V4 = "'pending', 'sent', 'grouped', 'silenced', 'superseded', 'dead'"
_SKIPPED_V3 = "(status = 'done' AND (last_error LIKE 'silenced:%' OR last_error LIKE 'superseded:%'))"
_STATE_FROM_V3 = """CASE WHEN status != 'done' THEN status
                     WHEN last_error LIKE 'silenced:%' THEN 'silenced'
                     WHEN last_error LIKE 'superseded:%' THEN 'superseded'
                     ELSE 'sent' END"""
_REF_FROM_V3 = """CASE WHEN status != 'done' THEN NULL
                   WHEN last_error LIKE 'silenced:%' THEN trim(substr(last_error, 10))
                   WHEN last_error LIKE 'superseded: by %' THEN substr(last_error, 16)
                   WHEN last_error LIKE 'superseded:%' THEN trim(substr(last_error, 12)) END"""

# Schema migrations, applied in order: migration N (1-based) brings ``PRAGMA user_version`` from N-1 to N.
# Never edit a released step; append a new one. Each step runs in one transaction with its version bump.
# The status literals in step 1 are the values of DeliveryStatus (DDL cannot take parameters).
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
    # 3: a process sending an outbox row claims it for a while, so several processes (a shared server
    # database later) can work one outbox without sending a row twice at the same time. Existing rows
    # start unclaimed.
    (
        "ALTER TABLE outbox ADD COLUMN claimed_until REAL",
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
    ),
    # 4: delivery states are values of their own (sent, grouped, silenced, superseded) instead of "done"
    # with a reason prefix in last_error, and state_ref says by what or into what. SQLite cannot change a
    # CHECK constraint, so the table is rebuilt (ids and the AUTOINCREMENT counter kept).
    (
        f"""CREATE TABLE outbox_v4 (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            event_key     TEXT NOT NULL REFERENCES fired (key),
            instance      TEXT NOT NULL,
            status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({_STATES_V4})),
            attempts      INTEGER NOT NULL DEFAULT 0,
            created_at    REAL NOT NULL,
            next_at       REAL NOT NULL,
            done_at       REAL,
            last_error    TEXT,
            claimed_until REAL,
            claimed_by    TEXT,
            state_ref     TEXT,
            UNIQUE (event_key, instance)
        )""",
        f"""INSERT INTO outbox_v4 (id, event_key, instance, status, attempts, created_at, next_at, done_at,
                                  last_error, claimed_until, claimed_by, state_ref)
            SELECT id, event_key, instance, {_STATE_FROM_V3}, attempts, created_at, next_at, done_at,
                   CASE WHEN {_SKIPPED_V3} THEN NULL ELSE last_error END, claimed_until, claimed_by, {_REF_FROM_V3}
            FROM outbox""",
        # The counter goes on from the old table's (ids of deleted rows are never reused).
        "UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'outbox'))"
        " WHERE name = 'outbox_v4'",
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_v4', seq FROM sqlite_sequence WHERE name = 'outbox'"
        " AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_v4')",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_v4 RENAME TO outbox",
        "CREATE INDEX outbox_by_status ON outbox (status, next_at)",
    ),
)

#: The schema version this code writes and understands.
SCHEMA_VERSION = len(MIGRATIONS)


def one_line(text: str) -> str:
    """``text`` with its whitespace runs collapsed to single spaces, cut to :data:`MAX_REASON_CHARS`."""
    return " ".join(text.split())[:MAX_REASON_CHARS]


def reason(exc: BaseException) -> str:
    """A short lower-case reason for an OS or SQLite error, on one line."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return one_line(text[:1].lower() + text[1:])


def prepare_directory(file: Path) -> None:
    """Create the store's directory, failing early with a clear reason when it cannot be written.

    SQLite alone would only say "unable to open database file"; WAL mode also needs to create the
    ``-wal`` and ``-shm`` files next to the database, so the directory itself must be writable.
    """
    parent = file.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreSetupError(f"cannot open store {file}: {reason(exc)} (creating {parent})") from exc
    if file.is_dir():
        raise StoreSetupError(f"cannot open store {file}: it is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreSetupError(f"cannot open store {file}: permission denied (directory {parent} is not writable)")


async def configure(conn: aiosqlite.Connection, *, in_memory: bool, busy_timeout: float) -> None:
    """Per-connection settings. busy_timeout comes first so the WAL switch waits for other processes.

    ``busy_timeout`` is how long, in seconds, a statement waits for another process's write lock before
    failing with "database is locked".
    """
    # PRAGMA takes no parameters; the value is an int we computed, never text from outside.
    await conn.execute(f"PRAGMA busy_timeout = {max(0, round(busy_timeout * 1000))}")
    if not in_memory:
        ((mode,),) = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
    # NORMAL is durable in WAL mode against a process crash; only an OS crash can lose the last commits.
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA foreign_keys = ON")


async def migrate(conn: aiosqlite.Connection, name: str) -> None:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one transaction per step.

    Each step re-reads the version inside its write transaction, so two processes opening a new file at
    once do not both apply the same step. Raises :class:`StoreError` for a file that is not a flamewatch
    store or is newer than this code; SQLite errors are left to the caller.
    """
    while True:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            version = await _pragma_int(conn, "user_version")
            app_id = await _pragma_int(conn, "application_id")
            if version > SCHEMA_VERSION:
                raise StoreSetupError(
                    f"cannot open store {name}: its schema version {version} is newer than this flamewatch "
                    f"supports ({SCHEMA_VERSION}); upgrade flamewatch or use another store path"
                )
            if app_id not in (0, APPLICATION_ID) or (version > 0 and app_id != APPLICATION_ID):
                raise StoreSetupError(f"cannot open store {name}: not a flamewatch store")
            if version == 0 and app_id == 0 and await _has_tables(conn):
                raise StoreSetupError(f"cannot open store {name}: not a flamewatch store (it already has tables)")
            if version == SCHEMA_VERSION:
                await conn.execute("COMMIT")
                return
            if version > 0 and name != ":memory:" and (holder := lock_holder(name)) is not None:
                # A store older than this code, used by a flamewatch sending from it now: that is the older
                # version (this one migrates before it locks), and a migrated store would refuse its writes.
                raise StoreSetupError(
                    f"cannot open store {name}: its schema version {version} is older than this flamewatch's "
                    f"({SCHEMA_VERSION}), and the flamewatch sending from it ({holder}) would fail to record "
                    "its deliveries once it is migrated; stop that one first, then use this version"
                )
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version + 1}")
            await conn.execute("COMMIT")
            log.info("migrated store %s to schema version %d", name, version + 1)
        except BaseException:
            # The failure may already have ended the transaction; the first error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            raise


async def check_current(conn: aiosqlite.Connection, name: str) -> None:
    """Refuse (StoreError) a file that is not a flamewatch store at exactly :data:`SCHEMA_VERSION`.

    For a read-only open, which cannot migrate: an older store is migrated by the next ``run`` or ``once``.
    """
    version = await _pragma_int(conn, "user_version")
    app_id = await _pragma_int(conn, "application_id")
    if app_id != APPLICATION_ID or version == 0:
        raise StoreSetupError(f"cannot open store {name}: not a flamewatch store")
    if version > SCHEMA_VERSION:
        raise StoreSetupError(f"cannot open store {name}: its schema version {version} is newer than this flamewatch "
                         f"supports ({SCHEMA_VERSION}); upgrade flamewatch")
    if version < SCHEMA_VERSION:
        raise StoreError(f"cannot open store {name} read-only: its schema version {version} is older than this "
                         f"flamewatch's ({SCHEMA_VERSION}); 'flamewatch once' or 'run' migrates it")


async def _pragma_int(conn: aiosqlite.Connection, pragma: str) -> int:
    ((value,),) = await conn.execute_fetchall(f"PRAGMA {pragma}")
    return int(value)


async def _has_tables(conn: aiosqlite.Connection) -> bool:
    rows = await conn.execute_fetchall("SELECT 1 FROM sqlite_schema WHERE type = 'table' LIMIT 1")
    return bool(list(rows))
