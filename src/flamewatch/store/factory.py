"""Opening a store from a location: the embedded SQLite file by default."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from ..config.model import StoreSettings
from ..errors import StoreSetupError
from ..notifier import Secret
from .base import Store
from .connection import Clock
from .sqlite import DEFAULT_BUSY_TIMEOUT, SQLiteStore, default_store_path

__all__ = ["configured_location", "describe_location", "open_store"]


async def open_store(
    location: str | Path,
    *,
    clock: Clock = time.time,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    read_only: bool = False,
) -> Store:
    """Open the store at ``location``: a file path (or ``":memory:"``) opens the embedded SQLite store.

    A ``postgresql://`` URL opens the PostgreSQL store (:mod:`.postgres`); any other URL is refused with
    a :class:`StoreError`. ``clock`` is where the store reads the time when it needs it itself;
    ``busy_timeout`` is how long (seconds) the SQLite store waits for another process's lock.
    ``read_only`` opens an existing store for reading only (commands that only look at it).
    """
    if isinstance(location, str) and "://" in location:
        # Name only the scheme: the rest of a database URL may carry a password.
        scheme = location.split("://", 1)[0].lower()
        if scheme in ("postgresql", "postgres"):
            from .postgres import PostgresStore  # asyncpg is loaded only for a server store

            return await PostgresStore.open(location, clock=clock)
        raise StoreSetupError(f"cannot open store {scheme[:20]}://...: no store backend for {scheme[:20]!r} URLs")
    return await SQLiteStore.open(location, clock=clock, busy_timeout=busy_timeout, read_only=read_only)


def configured_location(settings: StoreSettings, override: str | None = None) -> str:
    """Where the store is: ``override`` (``--store``), else ``[store] url`` (its secret read now), else
    ``[store] path``, else the per-user default file. Raises :class:`StoreError` for an unreadable secret."""
    if override:
        return override
    url = settings.url
    if isinstance(url, Secret):
        try:
            url = url.reveal()
        except LookupError as exc:
            raise StoreSetupError(f"[store] url: {exc}") from None
    return url or settings.path or str(default_store_path())


def describe_location(location: str) -> str:
    """``location`` as it may be shown and logged: a URL without its password, query or fragment."""
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
        host = parts.hostname or "localhost"
        where = f"{host}:{parts.port}" if parts.port else host
        user = f"{parts.username}@" if parts.username else ""
    except ValueError:
        return location.split("://", 1)[0][:20] + "://..."
    return f"{parts.scheme}://{user}{where}{parts.path}"
