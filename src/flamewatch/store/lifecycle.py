"""How a store closes, the same for every backend: writes drained, claims handed back, then disconnected.

A backend mixes :class:`StoreLifecycle` in and provides what :class:`_Closable` names (its connection
half does: ``_wait_for_writes``, ``_disconnect``, ``_connected``; its outbox half ``release_claims`` and
the ``_claim_owners`` it filled).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Protocol, Self

from ..errors import StoreError

log = logging.getLogger("flamewatch.store")


class _Closable(Protocol):
    _claim_owners: set[str]

    def _connected(self) -> bool: ...

    async def _wait_for_writes(self) -> None: ...

    async def _disconnect(self) -> None: ...

    async def release_claims(self, owner: str | None) -> int: ...

    async def close(self) -> None: ...


class StoreLifecycle:
    """``close()`` and ``async with`` for a store (see :meth:`Store.close <flamewatch.store.base.Store.close>`)."""

    async def close(self: _Closable) -> None:
        """See :meth:`Store.close <flamewatch.store.base.Store.close>`."""
        await self._wait_for_writes()
        if self._connected():
            for owner in sorted(self._claim_owners):
                try:
                    await self.release_claims(owner)
                except StoreError as exc:
                    # Not fatal: an unreleased claim lapses by itself; those rows are only sent later.
                    log.warning("%s; claims of %s are kept until they lapse", exc, owner)
            self._claim_owners.clear()
        await self._disconnect()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self: _Closable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
