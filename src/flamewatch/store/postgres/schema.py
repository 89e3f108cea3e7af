"""The PostgreSQL store's schema: its own migrations (independent of SQLite's), and the version check.

All tables live in one schema (``flamewatch`` unless the URL says ``?schema=...``); its
``schema_version`` table holds one row, the version. Migrating runs under a transaction-level advisory
lock, so several instances starting at once apply each step once.
"""

from __future__ import annotations

import logging
import zlib

from ...errors import StoreSetupError
from .connection import Conn

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

log = logging.getLogger("flamewatch.store")

#: First key of every advisory lock flamewatch takes ("FLMW"); the second says what for.
LOCK_NAMESPACE = 0x464C4D57
#: Second key of the lock held while migrating (the leader lock uses the schema's own key).
MIGRATION_LOCK = 1

# Migration N (1-based) brings the version from N-1 to N. Never edit a released step; append one.
# Times are float8 Unix seconds, as in the SQLite store; the status literals are DeliveryStatus values.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE fired (
            key      text PRIMARY KEY,
            story_id bigint NOT NULL,
            rule     text NOT NULL,
            fired_at float8 NOT NULL,
            event    text NOT NULL          -- Event.to_dict() as JSON, exactly as written
        )""",
        "CREATE INDEX fired_by_story ON fired (story_id)",
        """CREATE TABLE outbox (
            id            bigserial PRIMARY KEY,
            event_key     text NOT NULL REFERENCES fired (key),
            instance      text NOT NULL,
            status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
            attempts      integer NOT NULL DEFAULT 0,
            created_at    float8 NOT NULL,
            next_at       float8 NOT NULL,
            done_at       float8,
            last_error    text,
            claimed_until float8,
            claimed_by    text,
            UNIQUE (event_key, instance)
        )""",
        "CREATE INDEX outbox_by_status ON outbox (status, next_at)",
        """CREATE TABLE snapshots (
            id          bigserial PRIMARY KEY,  -- insertion order, for ties in time
            story_id    bigint NOT NULL,
            at          float8 NOT NULL,
            comments    integer NOT NULL,
            score       integer NOT NULL,
            descendants integer,
            partial     boolean NOT NULL
        )""",
        "CREATE INDEX snapshots_by_story ON snapshots (story_id, at)",
        "CREATE INDEX snapshots_by_time ON snapshots (at)",
        """CREATE TABLE plugin_state (
            instance   text NOT NULL,
            key        text NOT NULL,
            value      text NOT NULL,       -- JSON
            updated_at float8 NOT NULL,
            PRIMARY KEY (instance, key)
        )""",
    ),
    # 2: delivery states are values of their own (sent, grouped, silenced, superseded) instead of "done"
    # with a reason prefix in last_error ("silenced: <silence>", "superseded: by <key>"), and state_ref
    # says by what or into what. Every SET expression reads the row as it was, so the order is free.
    (
        "ALTER TABLE outbox DROP CONSTRAINT outbox_status_check",
        "ALTER TABLE outbox ADD COLUMN state_ref text",
        """UPDATE outbox SET
            status = CASE WHEN last_error LIKE 'silenced:%' THEN 'silenced'
                          WHEN last_error LIKE 'superseded:%' THEN 'superseded' ELSE 'sent' END,
            state_ref = CASE WHEN last_error LIKE 'silenced:%' THEN btrim(substr(last_error, 10))
                             WHEN last_error LIKE 'superseded: by %' THEN substr(last_error, 16)
                             WHEN last_error LIKE 'superseded:%' THEN btrim(substr(last_error, 12)) END,
            last_error = CASE WHEN last_error LIKE 'silenced:%' OR last_error LIKE 'superseded:%' THEN NULL
                              ELSE last_error END
          WHERE status = 'done'""",
        "ALTER TABLE outbox ADD CONSTRAINT outbox_status_check"
        " CHECK (status IN ('pending', 'sent', 'grouped', 'silenced', 'superseded', 'dead'))",
    ),
)

#: The schema version this code writes and understands.
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: Conn, schema: str, display: str) -> None:
    """Create ``schema`` if needed and bring it to :data:`SCHEMA_VERSION`, one transaction per step.

    Raises :class:`StoreError` (one line) when the schema is newer than this code, or already holds
    tables that are not flamewatch's. Driver errors are left to the caller.
    """
    # The name was checked to be letters, digits and _ (parse_location), so quoting it is enough.
    quoted = f'"{schema}"'
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_NAMESPACE, MIGRATION_LOCK)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            await conn.execute(f"SET LOCAL search_path TO {quoted}")
            version = await _version(conn, schema, display)
            if version > SCHEMA_VERSION:
                raise StoreSetupError(
                    f"cannot open store {display} (schema {schema}): its schema version {version} is newer than "
                    f"this flamewatch supports ({SCHEMA_VERSION}); upgrade flamewatch or use another schema"
                )
            if version == SCHEMA_VERSION:
                return
            if version > 0 and (leader := await _leader(conn, schema)) is not None:
                # An older leader sends from this schema now (this version migrates before it competes): a
                # migrated schema would refuse its outcome writes, and what it sent would be sent again.
                raise StoreSetupError(
                    f"cannot open store {display} (schema {schema}): its schema version {version} is older than "
                    f"this flamewatch's ({SCHEMA_VERSION}), and the flamewatch leading it ({leader}) would fail to "
                    "record its deliveries once it is migrated; stop that one first, then use this version"
                )
            if version == 0:
                await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
                await conn.execute("INSERT INTO schema_version VALUES (0)")
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute("UPDATE schema_version SET version = $1", version + 1)
        log.info("migrated store %s (schema %s) to version %d", display, schema, version + 1)


def leader_key(schema: str) -> int:
    """The second advisory-lock key of ``schema``'s leader lock: one leader per schema (a positive int4)."""
    return zlib.crc32(f"leader:{schema}".encode()) & 0x7FFFFFFF


async def _leader(conn: Conn, schema: str) -> str | None:
    """Who holds ``schema``'s leader lock now (its connection's ``application_name``), or None."""
    row = await conn.fetchrow(
        "SELECT a.application_name, a.pid FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2",
        LOCK_NAMESPACE, leader_key(schema),
    )
    return None if row is None else str(row["application_name"] or f"server pid {row['pid']}")[:200]


async def _version(conn: Conn, schema: str, display: str) -> int:
    """The schema's version: 0 for an empty schema; StoreError for one holding someone else's tables."""
    tables = {
        row["table_name"]
        for row in await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
    }
    if "schema_version" not in tables:
        if tables:
            raise StoreSetupError(
                f"cannot open store {display}: schema {schema} already has tables that are not flamewatch's "
                "(use ?schema=... in the URL to choose another)"
            )
        return 0
    value = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(value or 0)
