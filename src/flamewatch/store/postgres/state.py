"""The PostgreSQL store's notifier plugin state (table ``plugin_state``): small JSON values, one namespace
per notifier instance, stamped with when they were last written."""

from __future__ import annotations

import json
from typing import Any


from ...errors import StoreError
from ...notifier import PluginState
from ..state import InstanceState, state_row
from .connection import Conn, PostgresConnection

__all__ = ["STATE_UPSERT", "PostgresPluginState"]


class PostgresPluginState(PostgresConnection):
    """The plugin-state part of the :class:`~flamewatch.store.base.Store` contract, on PostgreSQL."""

    def state_for(self, instance: str) -> PluginState:
        """See :meth:`Store.state_for <flamewatch.store.base.Store.state_for>`."""
        return InstanceState(self, instance)

    async def prune_state(self, older_than: float) -> int:
        """See :meth:`Store.prune_state <flamewatch.store.base.Store.prune_state>`."""
        return await self._change("DELETE FROM plugin_state WHERE updated_at < $1", (older_than,))

    async def _state_get(self, instance: str, key: str) -> Any | None:
        rows = await self._read("SELECT value FROM plugin_state WHERE instance = $1 AND key = $2", (instance, key))
        if not rows:
            return None
        try:
            return json.loads(rows[0]["value"])
        except (ValueError, TypeError) as exc:  # only someone else's writes hold anything but our JSON
            raise StoreError(
                f"store {self.path}: state {key!r} of notifier {instance!r} cannot be read: {exc}"
            ) from exc

    async def _state_set(self, instance: str, key: str, value: Any) -> None:
        row = state_row(instance, key, value, self.clock())  # the store's clock: pruning compares it

        async def body(conn: Conn) -> None:
            await conn.execute(STATE_UPSERT, *row)

        await self._write(body)


#: One state value written (or rewritten) with its write time.
STATE_UPSERT = (
    "INSERT INTO plugin_state (instance, key, value, updated_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
