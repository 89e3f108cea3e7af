"""The SQLite store's notifier plugin state (table ``plugin_state``): small JSON values, one namespace
per notifier instance, each stamped with when it was last written so stale ones can be pruned."""

from __future__ import annotations

import json
from typing import Any, Protocol

import aiosqlite

from ..errors import StoreError
from ..notifier import PluginState
from .connection import SQLiteConnection

__all__ = ["STATE_UPSERT", "SQLitePluginState", "state_row"]


class SQLitePluginState(SQLiteConnection):
    """The plugin-state part of the :class:`~flamewatch.store.base.Store` contract, on SQLite."""

    def state_for(self, instance: str) -> PluginState:
        """See :meth:`Store.state_for <flamewatch.store.base.Store.state_for>`."""
        return InstanceState(self, instance)

    async def prune_state(self, older_than: float) -> int:
        """See :meth:`Store.prune_state <flamewatch.store.base.Store.prune_state>`."""
        return await self._change("DELETE FROM plugin_state WHERE updated_at < ?", (older_than,))

    async def _state_get(self, instance: str, key: str) -> Any | None:
        rows = await self._read("SELECT value FROM plugin_state WHERE instance = ? AND key = ?", (instance, key))
        if not rows:
            return None
        try:
            return json.loads(rows[0][0])
        except (ValueError, TypeError) as exc:  # only a damaged file holds anything but our JSON
            raise StoreError(
                f"store {self.path}: state {key!r} of notifier {instance!r} cannot be read: {exc}"
            ) from exc

    async def _state_set(self, instance: str, key: str, value: Any) -> None:
        row = state_row(instance, key, value, self.clock())

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.execute(STATE_UPSERT, row)

        await self._write(body)


#: One state value written (or rewritten) with its write time.
STATE_UPSERT = (
    "INSERT INTO plugin_state (instance, key, value, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


def state_row(instance: str, key: str, value: Any, written_at: float) -> tuple[str, str, str, float]:
    """The ``plugin_state`` row for ``value``; raises TypeError naming the key when JSON cannot encode it.

    The write time comes from the store's clock: plugins do not pass one, and pruning compares it with
    the caller's cutoff."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state {key!r} of notifier {instance!r} is not JSON-serialisable: {exc}") from exc
    return instance, key, text, written_at


class StateBackend(Protocol):
    """What :class:`InstanceState` needs of a store (the SQLite and PostgreSQL state halves both have it)."""

    path: str

    async def _state_get(self, instance: str, key: str) -> Any | None: ...

    async def _state_set(self, instance: str, key: str, value: Any) -> None: ...


class InstanceState:
    """One namespace's view of the ``plugin_state`` table (a :class:`PluginState`), on either backend."""

    def __init__(self, store: StateBackend, instance: str) -> None:
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
